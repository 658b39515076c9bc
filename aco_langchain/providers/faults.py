"""Provider faults: which errors are retried, backoff, fallback order, tier cooldown.

Policy (documented in README "Faults"):

- Retried on the same tier, up to ``routing.max_retries`` times with exponential backoff
  (from ``routing.retry_base_delay_s``) and jitter: HTTP 429, 5xx, timeouts, refused or
  dropped connections.
- Not retried, straight to fallback: other provider errors (401/403 bad key, 404 unknown
  model, 400 the provider rejects), since a retry would fail the same way.
- Fallback order from the routed tier: the stronger tiers first (ascending), then the cheaper
  ones (descending). A local routed tier only falls back to cloud tiers when
  ``routing.allow_cloud_fallback`` is true.
- A tier that exhausts its retries ``routing.cooldown_after`` times in a row cools down for
  ``routing.cooldown_s`` seconds: routing treats it as unavailable meanwhile.
- A stream that fails after its first chunk was delivered is not retried or re-routed:
  the caller already holds part of an answer, and a second answer would be a duplicate.

Usage::

    kind = classify_error(exc)            # "retry" | "fallback"
    order = fallback_order(3, {1, 2, 3, 4, 5}, allow_cloud=True, local={1})   # [3, 4, 5, 2, 1]
"""

from __future__ import annotations

import logging
import random
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.exceptions import ModelError

from aco_langchain.redact import mask, mask_obj

ErrorKind = Literal["retry", "fallback"]

logger = logging.getLogger(__name__)

_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529}

#: Transport faults worth a retry on the same tier: timeouts, refused/dropped connections,
#: a reply cut in the middle. httpx's are what openai and ollama raise underneath.
_TRANSIENT_BUILTIN: tuple[type[BaseException], ...] = (TimeoutError, ConnectionError)


def _loaded(name: str) -> Any:
    """The provider module if it is imported, else None.

    An exception of a provider's class can only exist once its module is imported, so the
    checks below never import openai, httpx or ollama themselves (``aco route`` starts fast).
    """
    return sys.modules.get(name)


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, _TRANSIENT_BUILTIN):
        return True
    if (httpx := _loaded("httpx")) is not None and isinstance(
        exc, (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
    ):
        return True
    openai = _loaded("openai")
    return openai is not None and isinstance(exc, openai.APIConnectionError)  # + timeouts


def is_timeout(exc: BaseException) -> bool:
    """Did a call end on a timeout (asyncio's/the builtin, httpx's or openai's)? Typed."""
    if isinstance(exc, TimeoutError):
        return True
    if (httpx := _loaded("httpx")) is not None and isinstance(exc, httpx.TimeoutException):
        return True
    openai = _loaded("openai")
    return openai is not None and isinstance(exc, openai.APITimeoutError)


def _status_code(exc: BaseException) -> int | None:
    """The HTTP status a provider error carries (openai, httpx, ollama), None for others."""
    if (openai := _loaded("openai")) is not None and isinstance(exc, openai.APIStatusError):
        return int(exc.status_code)
    if (httpx := _loaded("httpx")) is not None and isinstance(exc, httpx.HTTPStatusError):
        return int(exc.response.status_code)
    if (ollama := _loaded("ollama")) is not None and isinstance(exc, ollama.ResponseError):
        code = exc.status_code
        return code if isinstance(code, int) and code > 0 else None
    return None


def classify_error(exc: BaseException) -> ErrorKind:
    """Whether a failed call is worth retrying on the same tier or should fall back.

    Typed errors only (no class-name matching): langchain-core's ``ModelError`` family says
    itself whether it is retryable; provider status errors (openai, httpx, ollama) by their
    HTTP status; transport faults (timeouts, refused or dropped connections) are retried.
    Everything else falls back to the next tier.

    Args:
        exc: the exception a tier call raised.

    Returns:
        ``"retry"`` or ``"fallback"``.

    Example:
        ```python
        classify_error(TimeoutError())      # 'retry'
        classify_error(ValueError("bad"))   # 'fallback'
        ```
    """
    status = _status_code(exc)
    if status is not None:
        return "retry" if status in _RETRY_STATUS or status >= 500 else "fallback"
    if isinstance(exc, ModelError):
        return "retry" if exc.is_retryable else "fallback"
    if _transient(exc):
        return "retry"
    return "fallback"


@dataclass(frozen=True)
class Unparsed:
    """A reply the provider answered (and billed) that the client could not use: not a
    provider fault (no retry on its account, no cooldown), but spend to settle.

    Attributes:
        input_tokens: the provider's count, None when the reply carried none.
        output_tokens: likewise.
        why: one line for logs and the ledger.
    """

    input_tokens: int | None
    output_tokens: int | None
    why: str

    @property
    def usage_known(self) -> bool:
        return self.input_tokens is not None and self.output_tokens is not None


def _usage_of(obj: Any) -> tuple[int | None, int | None]:
    usage = getattr(obj, "usage", None)
    if usage is None:
        return None, None
    i = getattr(usage, "prompt_tokens", None)
    o = getattr(usage, "completion_tokens", None)
    return (int(i) if i is not None else None, int(o) if o is not None else None)


def unparsed_reply(exc: BaseException) -> Unparsed | None:
    """Is ``exc`` a billed reply the client failed to parse (pure)? Typed errors only:

    - openai's ``LengthFinishReasonError`` / ``ContentFilterFinishReasonError`` (a structured
      answer cut by ``max_tokens`` or filtered; the first carries the reply's usage);
    - a pydantic ``ValidationError`` or langchain's ``OutputParserException`` raised while
      parsing a 200 reply's content into the requested structure (usage unknown).

    A body that is not JSON at all (an HTML error page, a cut connection) is a provider
    fault, not a billed answer: it falls back as before.

    Args:
        exc: what the tier call raised.

    Returns:
        What was billed (usage when known), or None for any other error.

    Example:
        ```python
        unparsed_reply(ValueError("x"))       # None
        ```
    """
    openai = _loaded("openai")
    if openai is not None:
        if isinstance(exc, openai.LengthFinishReasonError):
            i, o = _usage_of(getattr(exc, "completion", None))
            return Unparsed(i, o, "the reply hit the output cap before its structure was done")
        if isinstance(exc, openai.ContentFilterFinishReasonError):
            return Unparsed(None, None, "the provider's content filter cut the reply")
        if isinstance(exc, openai.APIError):
            return None  # an HTTP-level error: nothing was answered
    from langchain_core.exceptions import OutputParserException
    from pydantic import ValidationError

    if isinstance(exc, ValidationError | OutputParserException):
        first = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
        return Unparsed(None, None, f"the reply could not be parsed ({mask(first)[:120]})")
    return None


#: Request fields a provider's 400 may name that are the caller's to fix on any tier.
CALLER_PARAMS = ("response_format",)


def caller_mistake(exc: BaseException) -> str | None:
    """Is ``exc`` a provider's 400 about the request's shape (the caller's
    ``response_format``), which every tier would refuse alike (pure)? Then it is the
    caller's error, not a reason to fall back to a pricier tier.

    Args:
        exc: what the tier call raised.

    Returns:
        The field at fault, or None.

    Example:
        ```python
        caller_mistake(TimeoutError())   # None
        ```
    """
    if _status_code(exc) != 400:
        return None
    param = getattr(exc, "param", None)
    if isinstance(param, str) and param in CALLER_PARAMS:
        return param
    text = str(exc)
    return next((p for p in CALLER_PARAMS if p in text), None)


def backoff_delay(attempt: int, base_s: float, cap_s: float = 8.0) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based): full jitter, capped."""
    if base_s <= 0:
        return 0.0
    return random.uniform(0, min(cap_s, base_s * (2**attempt)))


def fallback_order(
    tier: int, candidates: Iterable[int], *, allow_cloud: bool, local: Iterable[int]
) -> list[int]:
    """The routed tier, then stronger tiers ascending, then cheaper tiers descending."""
    ranked = sorted({*candidates, tier})
    at = ranked.index(tier)
    order = [tier, *ranked[at + 1 :], *reversed(ranked[:at])]
    if not allow_cloud:
        local_set = set(local)
        if tier in local_set:
            order = [n for n in order if n in local_set]
    return order


def describe_error(exc: BaseException) -> str:
    """A one-line, secret-free description of a provider error.

    Args:
        exc: the exception.

    Returns:
        ``"ClassName status: first line"`` with every known secret masked, at most ~230 chars.
    """
    status = _status_code(exc)
    text = str(exc).splitlines()[0] if str(exc).strip() else ""
    # API keys never belong in messages we repeat; providers sometimes echo them.
    text = mask(text)
    head = type(exc).__name__ + (f" {status}" if status else "")
    return f"{head}: {text[:200]}" if text else head


def scrub(exc: BaseException) -> BaseException:
    """Mask secrets inside a provider exception we keep or re-raise: its args, ``message``
    and ``body``, and those of the exceptions it was raised from. A 401 often quotes the key
    it was sent, and the exception travels on (``AllTiersFailedError.exceptions``,
    ``__cause__``) into tracebacks.

    Args:
        exc: the exception (changed in place).

    Returns:
        ``exc``.
    """
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:  # the chain shows in tracebacks too
        seen.add(id(link))
        link.args = tuple(mask(a) if isinstance(a, str) else a for a in link.args)
        for attr in ("message", "body"):
            value = getattr(link, attr, None)
            if value is not None:
                try:
                    setattr(link, attr, mask_obj(value))
                except AttributeError:  # a read-only property: args already masked
                    logger.debug("cannot mask %s.%s", type(link).__name__, attr)
        link = link.__cause__ or link.__context__
    return exc


@dataclass
class _TierState:
    failures: int = 0
    cooldown_until: float = 0.0


@dataclass
class TierHealth:
    """Consecutive-failure counts and cooldowns of one router instance's tiers.

    Usage::

        health = TierHealth(cooldown_after=2, cooldown_s=30)
        health.failed(2); health.failed(2)
        health.cooling()   # {2: 'cooling down after 2 failures (30s)'}
    """

    cooldown_after: int = 2
    cooldown_s: float = 30.0
    _states: dict[int, _TierState] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def failed(self, tier: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            st = self._states.setdefault(tier, _TierState())
            st.failures += 1
            if st.failures >= self.cooldown_after:
                st.cooldown_until = now + self.cooldown_s
                failures = st.failures
            else:
                failures = 0
        if failures:
            logger.warning(
                "tier %s cools down for %gs after %d failures in a row",
                tier,
                self.cooldown_s,
                failures,
            )

    def succeeded(self, tier: int) -> None:
        with self._lock:
            self._states.pop(tier, None)

    def cooling(self, now: float | None = None) -> dict[int, str]:
        """{tier: why} for tiers cooling down right now."""
        now = time.monotonic() if now is None else now
        with self._lock:
            return {
                n: f"cooling down after {st.failures} failures"
                for n, st in self._states.items()
                if st.cooldown_until > now
            }
