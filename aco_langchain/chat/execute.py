"""The call loops of :class:`ACORouterChatModel`: sync and async tier calls with retries,
fallback and streaming. Every decision comes from ``plan`` and :class:`FallbackRun`; only the
I/O is here.

Each tier call is built (tier model, tool binding, config errors) *outside* the ``try`` that
classifies provider faults, as langchain's ``model_fallback`` middleware does: a bug or a
config error surfaces as itself, never as "tier failed". Every reply is checked
(:func:`check_result`): no choices, or no content and no tool calls, is a tier fault like any
other. One deadline covers the call (``providers/deadline.py``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult

from aco_langchain.chat.metadata import _result_as_chunks
from aco_langchain.chat.plan import CallPlan, TierCall, _no_extra
from aco_langchain.errors import (
    AllTiersFailedError,
    DeadlineExceededError,
    StreamInterruptedError,
    TierReplyError,
)
from aco_langchain.providers.deadline import MIN_ATTEMPT_S, Deadline
from aco_langchain.providers.faults import (
    TierHealth,
    backoff_delay,
    classify_error,
    describe_error,
    scrub,
)

if TYPE_CHECKING:
    from aco_langchain.chat.model import ACORouterChatModel

logger = logging.getLogger(__name__)


def _has_answer(message: BaseMessage) -> bool:
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
    if not _has_answer(result.generations[0].message):
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
        if self.deadline_spent:
            return DeadlineExceededError(
                self.deadline.budget_s,
                self.deadline.source,
                self.deadline.elapsed(),
                self.failures,
                self.exceptions,
            )
        return AllTiersFailedError(self.failures, self.exceptions)


class _Delivered:
    """What a stream has handed to the caller so far."""

    def __init__(self) -> None:
        self.chunks: list[ChatGenerationChunk] = []
        self.answered = False  # any chunk with content or tool calls

    def add(self, chunk: ChatGenerationChunk) -> None:
        self.chunks.append(chunk)
        if not self.answered and _has_answer(chunk.message):
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


def _stream_deadline_error(run: FallbackRun) -> TimeoutError:
    d = run.deadline
    return TimeoutError(f"deadline {d.budget_s:g}s ({d.source}) spent during the stream")


class ExecuteMixin:
    """The sync and async I/O around the shared decisions."""

    def _retries(self: ACORouterChatModel) -> int:
        return self.config.routing.max_retries if self.max_retries is None else self.max_retries

    def _fallback_run(self: ACORouterChatModel, plan: CallPlan, order: list[int]) -> FallbackRun:
        return FallbackRun(
            order,
            self._retries(),
            self._rt.health,
            self.retry_base_delay_s,
            plan.deadline,
            lowest=plan.decision.lowest_tier,
        )

    def _attempt_args(
        self: ACORouterChatModel,
        plan: CallPlan,
        tier: int,
        extra: dict[str, Any],
        run: FallbackRun,
    ) -> tuple[BaseChatModel, dict[str, Any]]:
        """The tier's model and call kwargs, with the time left as the request timeout for
        clients that take one (ChatOpenAI). Built outside the fault ``try``: a config error
        or a tool-binding bug is raised as itself."""
        cold = not self._rt.registry.is_built(tier)
        started = time.monotonic()
        model, kw = self._tier_call_args(plan, tier, extra)
        if cold:  # first use builds the client (imports, TLS): setup, not call time
            run.deadline.exclude(time.monotonic() - started)
        if _takes_request_timeout(model):
            kw["timeout"] = max(MIN_ATTEMPT_S, run.deadline.remaining())
        return model, kw

    def _call_tiers(
        self: ACORouterChatModel,
        plan: CallPlan,
        order: list[int],
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_manager: CallbackManagerForLLMRun | None,
        extra: Callable[[int], dict[str, Any]] = _no_extra,
    ) -> tuple[ChatResult, TierCall]:
        run = self._fallback_run(plan, order)
        while (attempt := run.next_attempt()) is not None:
            tier, delay = attempt
            if (skip := self._hold_tier(plan, tier)) is not None:
                run.skip(skip)
                continue
            if delay:
                time.sleep(delay)
            model, kw = self._attempt_args(plan, tier, extra(tier), run)
            try:
                if model.rate_limiter:
                    model.rate_limiter.acquire(blocking=True)
                result = check_result(
                    tier,
                    model._generate(messages, stop=self._stop(stop), run_manager=run_manager, **kw),
                )
            except Exception as exc:  # noqa: BLE001 - provider faults: classified by FallbackRun
                run.failed(exc)
                continue
            run.succeeded()
            return result, self._tier_call(plan, tier, result.generations[0].message, run.failures)
        raise self._exhausted(plan, run) from run.last

    def _generate(
        self: ACORouterChatModel,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._generate_planned(self.plan(messages, kwargs), messages, stop, run_manager)

    def _generate_planned(
        self: ACORouterChatModel,
        plan: CallPlan,
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_manager: CallbackManagerForLLMRun | None,
    ) -> ChatResult:
        """The answer of an already planned call (a buffered cascade stream plans once)."""
        flow = self._answer_flow(plan)
        order, extra = next(flow)
        try:
            while True:
                try:
                    answer = self._call_tiers(plan, order, messages, stop, run_manager, extra)
                except DeadlineExceededError as exc:
                    try:  # the flow may still answer (a cascade keeps its cheap answer)
                        order, extra = flow.throw(exc)
                    except StopIteration as done:
                        return done.value
                    continue
                try:
                    order, extra = flow.send(answer)
                except StopIteration as done:
                    return done.value
        finally:
            self._finish(plan)  # releases the hold of a tier that did not answer

    def _stream(
        self: ACORouterChatModel,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        plan = self.plan(messages, kwargs, streaming=True)
        if plan.cascade:
            # Tokens cannot be taken back: answer in full (buffered), then re-chunk. The
            # plan is reused: the call is routed (and its budget held) once.
            result = self._generate_planned(plan, messages, stop, None)
            yield from _result_as_chunks(result)
            return
        out = _Delivered()
        try:
            run = self._fallback_run(plan, plan.order)
            while (attempt := run.next_attempt()) is not None:
                tier, delay = attempt
                if (skip := self._hold_tier(plan, tier)) is not None:
                    run.skip(skip)
                    continue
                if delay:
                    time.sleep(delay)
                model, kw = self._attempt_args(plan, tier, {}, run)
                out = _Delivered()
                try:
                    if model.rate_limiter:
                        model.rate_limiter.acquire(blocking=True)
                    chunks = model._stream(messages, stop=self._stop(stop), **kw)
                    # Sync tiers we did not build cannot be cut mid-read: stop between chunks.
                    while (chunk := next(chunks, None)) is not None:
                        out.add(chunk)
                        yield chunk
                        if run.deadline.remaining() <= 0:
                            raise _stream_deadline_error(run)
                    if not out.answered:
                        raise TierReplyError(tier, "the stream ended without any content")
                except Exception as exc:  # noqa: BLE001 - provider faults: classified below
                    if out.answered:
                        # Part of an answer is out: never answer twice.
                        self._rt.health.failed(tier)
                        raise out.interrupted(tier, exc, run.deadline) from exc
                    run.failed(exc)
                    continue
                run.succeeded()
                yield self._final_chunk(plan, tier, out.chunks, run)
                return
            raise self._exhausted(plan, run) from run.last
        finally:
            # An abandoned or failed stream: what was streamed is charged its worst case.
            self._finish(plan, partial=out.answered)

    async def _acall_tiers(
        self: ACORouterChatModel,
        plan: CallPlan,
        order: list[int],
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_manager: AsyncCallbackManagerForLLMRun | None,
        extra: Callable[[int], dict[str, Any]] = _no_extra,
    ) -> tuple[ChatResult, TierCall]:
        run = self._fallback_run(plan, order)
        while (attempt := run.next_attempt()) is not None:
            tier, delay = attempt
            if (skip := self._hold_tier(plan, tier)) is not None:
                run.skip(skip)
                continue
            if delay:
                await asyncio.sleep(delay)
            model, kw = self._attempt_args(plan, tier, extra(tier), run)
            try:
                # The deadline around any tier, built or passed in.
                async with asyncio.timeout(run.deadline.remaining()):
                    if model.rate_limiter:
                        await model.rate_limiter.aacquire(blocking=True)
                    result = check_result(
                        tier,
                        await model._agenerate(
                            messages, stop=self._stop(stop), run_manager=run_manager, **kw
                        ),
                    )
            except Exception as exc:  # noqa: BLE001 - provider faults: classified by FallbackRun
                run.failed(exc)
                continue
            run.succeeded()
            return result, self._tier_call(plan, tier, result.generations[0].message, run.failures)
        raise self._exhausted(plan, run) from run.last

    async def _agenerate(
        self: ACORouterChatModel,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        plan = self.plan(messages, kwargs)
        return await self._agenerate_planned(plan, messages, stop, run_manager)

    async def _agenerate_planned(
        self: ACORouterChatModel,
        plan: CallPlan,
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_manager: AsyncCallbackManagerForLLMRun | None,
    ) -> ChatResult:
        """The async answer of an already planned call."""
        flow = self._answer_flow(plan)
        order, extra = next(flow)
        try:
            while True:
                try:
                    answer = await self._acall_tiers(
                        plan, order, messages, stop, run_manager, extra
                    )
                except DeadlineExceededError as exc:
                    try:  # the flow may still answer (a cascade keeps its cheap answer)
                        order, extra = flow.throw(exc)
                    except StopIteration as done:
                        return done.value
                    continue
                try:
                    order, extra = flow.send(answer)
                except StopIteration as done:
                    return done.value
        finally:
            self._finish(plan)  # releases the hold of a tier that did not answer

    async def _astream(
        self: ACORouterChatModel,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        plan = self.plan(messages, kwargs, streaming=True)
        if plan.cascade:
            result = await self._agenerate_planned(plan, messages, stop, None)
            for chunk in _result_as_chunks(result):
                yield chunk
            return
        out = _Delivered()
        try:
            run = self._fallback_run(plan, plan.order)
            while (attempt := run.next_attempt()) is not None:
                tier, delay = attempt
                if (skip := self._hold_tier(plan, tier)) is not None:
                    run.skip(skip)
                    continue
                if delay:
                    await asyncio.sleep(delay)
                model, kw = self._attempt_args(plan, tier, {}, run)
                out = _Delivered()
                chunks = model._astream(messages, stop=self._stop(stop), **kw)
                try:
                    async with asyncio.timeout(run.deadline.remaining()):
                        if model.rate_limiter:
                            await model.rate_limiter.aacquire(blocking=True)
                    while True:
                        # Each chunk under what is left of the deadline (never across a yield).
                        try:
                            async with asyncio.timeout(run.deadline.remaining()):
                                chunk = await anext(chunks)
                        except StopAsyncIteration:
                            break
                        out.add(chunk)
                        yield chunk
                    if not out.answered:
                        raise TierReplyError(tier, "the stream ended without any content")
                except Exception as exc:  # noqa: BLE001 - provider faults: classified below
                    if out.answered:
                        self._rt.health.failed(tier)
                        raise out.interrupted(tier, exc, run.deadline) from exc
                    run.failed(exc)
                    continue
                finally:
                    await chunks.aclose()  # type: ignore[attr-defined]
                run.succeeded()
                yield self._final_chunk(plan, tier, out.chunks, run)
                return
            raise self._exhausted(plan, run) from run.last
        finally:
            self._finish(plan, partial=out.answered)


def _takes_request_timeout(model: BaseChatModel) -> bool:
    """Does the tier's ``_generate``/``_stream`` take a per-request ``timeout`` (ChatOpenAI)?"""
    if not any(c.__module__.startswith("langchain_openai") for c in type(model).__mro__):
        return False  # not an OpenAI model: no import of langchain_openai on the hot path
    from langchain_openai.chat_models.base import BaseChatOpenAI

    return isinstance(model, BaseChatOpenAI)
