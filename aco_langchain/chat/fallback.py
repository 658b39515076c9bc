"""One call's retry and fallback state (:class:`FallbackRun`), the check that a tier's reply
holds an answer, and what a stream has delivered so far. Pure state machines and checks: the
tier caller drives them and the sync/async drivers do the I/O.

Example:
    ```python
    run = FallbackRun([2, 3, 1], retries=1, health=TierHealth(), base_delay_s=0.5)
    while (attempt := run.next_attempt()) is not None:
        tier, delay = attempt
        ...  # call tier after delay, then run.succeeded() or run.failed(exc)
    ```
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult

from aco_langchain.errors import (
    AllTiersFailedError,
    DeadlineExceededError,
    StreamInterruptedError,
    TierReplyError,
)
from aco_langchain.providers.deadline import MIN_ATTEMPT_S, Deadline, attempt_slice
from aco_langchain.providers.faults import (
    TierHealth,
    backoff_delay,
    classify_error,
    describe_error,
    is_timeout,
    scrub,
)

logger = logging.getLogger(__name__)


def has_answer(message: BaseMessage) -> bool:
    """Does a message carry an answer: content, tool calls, or an explicit refusal?"""
    content = message.content
    if isinstance(content, str):
        if content.strip():
            return True
    elif content:
        return True
    for calls in ("tool_calls", "tool_call_chunks", "invalid_tool_calls"):
        if getattr(message, calls, None):
            return True  # a call, even a broken one, is the agent's to judge
    extra = message.additional_kwargs
    return bool(extra.get("tool_calls") or extra.get("function_call") or extra.get("refusal"))


def check_result(tier: int, result: ChatResult) -> ChatResult:
    """The tier's result if it holds an answer; else a :class:`TierReplyError` (a fault).

    Args:
        tier: the tier that answered.
        result: what its ``_generate`` returned.

    Returns:
        ``result`` unchanged.

    Raises:
        TierReplyError: no generations (a 200 with empty ``choices``), or a message with
            neither content nor tool calls (null content).
    """
    if not result.generations:
        raise TierReplyError(tier, "the reply had no choices")
    if not has_answer(result.generations[0].message):
        raise TierReplyError(tier, "the reply had no content and no tool calls")
    return result


class FallbackRun:
    """The retry/fallback state machine of one call; sync and async loops drive it.

    Usage (the sync loop)::

        run = FallbackRun(order, retries, health, 0.5, plan.deadline)
        while (attempt := run.next_attempt()) is not None:
            tier, delay = attempt
            ...call tier with run.deadline.remaining()..., then run.succeeded() or run.failed(exc)
        raise run.exhausted_error() from run.last
    """

    def __init__(
        self,
        order: list[int],
        retries: int,
        health: TierHealth,
        base_delay_s: float,
        deadline: Deadline | None = None,
        lowest: int = 1,
        *,
        share: float = 1.0,
        expected_s: Mapping[int, float] | Callable[[int], float] | None = None,
    ) -> None:
        self.order = list(order)
        #: A provider fault never falls back below this tier (a forced tier or a risk
        #: floor unless routing.allow_degrade); budget skips may (the budget policy says so).
        self.lowest = lowest
        self.retries = retries
        self.health = health
        self.base_delay_s = base_delay_s
        self.deadline = deadline if deadline is not None else Deadline.start(float("inf"), "none")
        self.failures: dict[int, str] = {}
        self.exceptions: dict[int, BaseException] = {}
        self.last: BaseException | None = None
        self.deadline_spent = False
        #: routing.attempt_share and each tier's expected latency: an attempt with a tier
        #: after it gets a slice of the time left, so a hanging tier leaves time to fall back.
        self.share = share
        if callable(expected_s):  # read per attempted tier (the caller's config)
            self._expected_s: Callable[[int], float] = expected_s
        else:
            table = dict(expected_s or {})
            self._expected_s = lambda tier: table.get(tier, 1.0)
        self._sliced = False
        self._i = 0
        self._attempt = 0
        self._delay = 0.0

    @property
    def tier(self) -> int:
        return self.order[self._i]

    def next_attempt(self) -> tuple[int, float] | None:
        """(tier, seconds to wait first) for the next attempt, or None when exhausted or
        when the deadline leaves no time for it (wait included)."""
        if self._i >= len(self.order):
            return None
        left = self.deadline.remaining()
        if self._delay and left - self._delay < MIN_ATTEMPT_S <= left:
            # No time to wait for a retry of this tier, but time for another tier: go now.
            logger.info(
                "no time left to retry tier %s (%.2fs wait, %.2fs left): falling back",
                self.tier,
                self._delay,
                left,
            )
            self._give_up(self.tier, self.failures.get(self.tier, "retry skipped"))
            if self._i >= len(self.order):
                return None
        if self.deadline.remaining() - self._delay < MIN_ATTEMPT_S:
            self.deadline_spent = True
            logger.warning(
                "deadline %gs (%s) spent after %.2fs: no further attempt (next was tier %s)",
                self.deadline.budget_s,
                self.deadline.source,
                self.deadline.elapsed(),
                self.order[self._i],
            )
            return None
        return self.order[self._i], self._delay

    def attempt_budget(self) -> float:
        """Seconds the next attempt may take (``providers.deadline.attempt_slice``): all that
        is left for the last tier, a slice otherwise. A sliced attempt that times out falls
        back instead of retrying the same (hanging) tier."""
        left = self.deadline.remaining()
        budget = attempt_slice(
            left,
            expected_s=self._expected_s(self.tier),
            # Only tiers a fault may fall back to (never below a forced tier or risk floor).
            has_fallback=any(n >= self.lowest for n in self.order[self._i + 1 :]),
            share=self.share,
        )
        self._sliced = budget < left
        return budget

    def succeeded(self) -> None:
        self.health.succeeded(self.tier)

    def skip(self, reason: str) -> None:
        """Pass over the current tier without calling it (e.g. it does not fit the budget);
        not a provider fault, so its health is untouched."""
        self.failures[self.tier] = reason
        self._i += 1
        self._attempt = 0
        self._delay = 0.0

    def failed(self, exc: BaseException) -> None:
        tier = self.tier
        scrub(exc)  # it is kept (exceptions, __cause__): no key may ride along in it
        why = describe_error(exc)
        self.failures[tier] = why
        self.exceptions[tier] = exc
        self.last = exc
        if self._sliced and is_timeout(exc):
            # The tier used its whole slice: fall back while there is time for it.
            self.failures[tier] = why = f"{why} (its share of the deadline)"
            self._give_up(tier, why)
            return
        if classify_error(exc) == "retry" and self._attempt < self.retries:
            self._delay = backoff_delay(self._attempt, self.base_delay_s)
            self._attempt += 1
            logger.info(
                "tier %s failed (%s): retry %d of %d in %.2fs",
                tier,
                why,
                self._attempt,
                self.retries,
                self._delay,
            )
            return
        self._give_up(tier, why)

    def _give_up(self, tier: int, why: str) -> None:
        """Count a failure against the tier and move to the next one."""
        self.health.failed(tier)
        self._i += 1
        self._attempt = 0
        self._delay = 0.0
        below = [n for n in self.order[self._i :] if n < self.lowest]
        if below:
            self.order = self.order[: self._i] + [
                n for n in self.order[self._i :] if n >= self.lowest
            ]
            logger.info(
                "tier %s failed: no fault fallback to tier(s) %s, below tier %s "
                "(forced tier or risk floor; routing.allow_degrade)",
                tier,
                below,
                self.lowest,
            )
        if self._i < len(self.order):
            logger.warning("tier %s failed (%s): falling back to tier %s", tier, why, self.tier)
        else:
            logger.warning("tier %s failed (%s): no tier left to fall back to", tier, why)

    def exhausted_error(self) -> AllTiersFailedError:
        """The error that ends the call: :class:`DeadlineExceededError` when the deadline
        stopped it, else :class:`AllTiersFailedError`; raise it ``from run.last``."""
        # The last attempt ran into the deadline itself (nothing was left to fall back to).
        timed_out = self.last is not None and is_timeout(self.last)
        if self.deadline_spent or (timed_out and self.deadline.remaining() < MIN_ATTEMPT_S):
            return DeadlineExceededError(
                self.deadline.budget_s,
                self.deadline.source,
                self.deadline.elapsed(),
                self.failures,
                self.exceptions,
            )
        return AllTiersFailedError(self.failures, self.exceptions)


class Delivered:
    """What a stream has handed to the caller so far."""

    def __init__(self) -> None:
        self.chunks: list[ChatGenerationChunk] = []
        self.answered = False  # any chunk with content or tool calls

    def add(self, chunk: ChatGenerationChunk) -> None:
        self.chunks.append(chunk)
        if not self.answered and has_answer(chunk.message):
            self.answered = True

    def chars(self) -> int:
        return sum(len(str(c.message.content)) for c in self.chunks)

    def interrupted(
        self, tier: int, exc: BaseException, deadline: Deadline
    ) -> StreamInterruptedError:
        why = describe_error(exc)
        if deadline.remaining() <= MIN_ATTEMPT_S:
            # The transport timed out because the call's deadline was spent: say which one.
            why = f"deadline of {deadline.budget_s:g}s ({deadline.source}) spent ({why})"
        return StreamInterruptedError(tier, len(self.chunks), self.chars(), why)


def stream_deadline_error(d: Deadline) -> TimeoutError:
    """The fault that ends a sync stream whose deadline ran out between chunks."""
    return TimeoutError(f"deadline {d.budget_s:g}s ({d.source}) spent during the stream")


def takes_request_timeout(model: BaseChatModel) -> bool:
    """Does the tier's ``_generate``/``_stream`` take a per-request ``timeout`` (ChatOpenAI)?"""
    return _type_takes_timeout(type(model))


@functools.lru_cache(maxsize=128)
def _type_takes_timeout(cls: type) -> bool:
    # Per class, once: the MRO walk is not redone on every call.
    if not any(c.__module__.startswith("langchain_openai") for c in cls.__mro__):
        return False  # not an OpenAI model: no import of langchain_openai on the hot path
    from langchain_openai.chat_models.base import BaseChatOpenAI

    return issubclass(cls, BaseChatOpenAI)


__all__ = [
    "Delivered",
    "FallbackRun",
    "check_result",
    "has_answer",
    "stream_deadline_error",
    "takes_request_timeout",
]
