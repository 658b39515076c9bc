"""One deadline per call, and the HTTP transport that makes a tier's request keep it.

The deadline of a call is ``routing.max_latency_per_call_s``, or the call's
``max_latency_ms`` when that is shorter. It covers the whole call: every
attempt, retry, fallback and cascade step gets only what is left of it. Building a tier's
client the first time it is used (imports, TLS setup) is setup, not call time: it is not
counted.

How each kind of tier keeps it:

- **Tiers built from the config** (ChatOpenAI for ``openai``/``openai-compatible``/``local``):
  the client's own retries are off (``max_retries=0``); every request is sent with the
  remaining time as its timeout, and the client's ``DeadlineTransport``
  (``providers/transport.py``) treats that
  timeout as a total: connect, each socket read and write wait at most what is left, so a
  server that trickles bytes is cut when the time is spent, not when it goes quiet.
- **Async calls, any tier** (built or passed in ``tier_models``): each attempt runs under
  ``asyncio.timeout`` with the remaining time (streams: each chunk).
- **Sync calls to passed-in tiers**: a ``ChatOpenAI`` is given the remaining time as its
  request timeout (connect and idle-read bounded, but a trickle is not cut and its own
  ``max_retries`` still run inside ours); other chat models cannot be interrupted from
  outside in sync code. The loop still stops retrying and falling back once the deadline is
  spent, and a stream is stopped between chunks. Use async calls, or build the tier from
  the config, for a hard bound.
- **Ollama tiers built from the config** get the deadline of ``max_latency_per_call_s`` as
  their client timeout (ollama's API takes no per-request timeout); a shorter per-call
  deadline holds in async calls and between stream chunks.

Example:
    ```python
    from aco_langchain.providers.deadline import Deadline

    d = Deadline.start(3.0, "routing.max_latency_per_call_s=3")
    d.remaining()     # ~3.0
    d.expired()       # False
    ```
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field

#: Below this many seconds left, another attempt is not started.
MIN_ATTEMPT_S = 0.05


@dataclass
class Deadline:
    """The time budget of one call (monotonic clock).

    Attributes:
        budget_s: the deadline in seconds.
        source: the setting that set it, for messages (``"max_latency_ms=500"``).
        started: ``time.monotonic()`` when the call started.
    """

    budget_s: float
    source: str
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def start(cls, budget_s: float, source: str) -> Deadline:
        """A deadline of ``budget_s`` seconds starting now."""
        return cls(budget_s, source, time.monotonic())

    @property
    def at(self) -> float:
        """The monotonic time at which the call must end."""
        return self.started + self.budget_s

    def elapsed(self) -> float:
        """Seconds since the call started."""
        return time.monotonic() - self.started

    def remaining(self) -> float:
        """Seconds left (never negative)."""
        return max(0.0, self.at - time.monotonic())

    def exclude(self, seconds: float) -> None:
        """Do not count ``seconds`` (one-time setup, e.g. building a tier's client)."""
        self.started += seconds

    def expired(self) -> bool:
        """Is there too little time left to start another attempt?"""
        return self.remaining() < MIN_ATTEMPT_S

    def attempt_budget(self, *, expected_s: float, has_fallback: bool, share: float) -> float:
        """Seconds the next attempt may take (see :func:`attempt_slice`)."""
        return attempt_slice(
            self.remaining(), expected_s=expected_s, has_fallback=has_fallback, share=share
        )


#: An attempt with a fallback after it never takes more than this share of the time left:
#: the rest is the fallback's.
MAX_ATTEMPT_SHARE = 0.75
#: How many times its expected latency (``avg_latency_ms``) an attempt may take when that is
#: more than ``routing.attempt_share`` of the time left.
LATENCY_FACTOR = 3.0


def attempt_slice(
    remaining_s: float, *, expected_s: float, has_fallback: bool, share: float
) -> float:
    """How long one attempt may run so that a hanging tier still leaves time to fall back
    (pure).

    The last tier gets all that is left. Otherwise: ``share`` of the time left or
    ``LATENCY_FACTOR`` x the tier's expected latency, whichever is larger, but never more
    than ``MAX_ATTEMPT_SHARE`` of the time left.

    Args:
        remaining_s: seconds left of the call's deadline.
        expected_s: the tier's expected latency (``avg_latency_ms`` / 1000).
        has_fallback: is there a tier to fall back to after this one?
        share: ``routing.attempt_share``.

    Returns:
        The attempt's time budget in seconds (at most ``remaining_s``).

    Example:
        ```python
        attempt_slice(3.0, expected_s=1.0, has_fallback=True, share=0.5)    # 2.25
        attempt_slice(30.0, expected_s=0.6, has_fallback=True, share=0.5)   # 15.0
        attempt_slice(3.0, expected_s=1.0, has_fallback=False, share=0.5)   # 3.0
        ```
    """
    if not has_fallback or remaining_s <= 0:
        return max(0.0, remaining_s)
    by_latency = min(LATENCY_FACTOR * expected_s, MAX_ATTEMPT_SHARE * remaining_s)
    return min(remaining_s, max(share * remaining_s, by_latency))


def call_deadline(config_s: float, max_latency_ms: float | None) -> Deadline:
    """The deadline of a call: the setting, or the call's own option when it is shorter.

    Args:
        config_s: ``routing.max_latency_per_call_s``.
        max_latency_ms: the call's ``max_latency_ms`` option (None: unset).

    Returns:
        A started :class:`Deadline` naming the setting that won.

    Example:
        ```python
        call_deadline(30.0, 500).source     # 'max_latency_ms=500'
        ```
    """
    budget, source, given = config_s, "routing.max_latency_per_call_s", config_s
    if max_latency_ms is not None and 0 < max_latency_ms / 1000.0 < budget:
        budget, source, given = max_latency_ms / 1000.0, "max_latency_ms", max_latency_ms
    # the first of equal budgets wins; the label is formatted once per setting and value
    return Deadline.start(budget, _label(source, given))


@functools.lru_cache(maxsize=64)
def _label(setting: str, value: float) -> str:
    return f"{setting}={value:g}"


__all__ = [
    "LATENCY_FACTOR",
    "MAX_ATTEMPT_SHARE",
    "MIN_ATTEMPT_S",
    "Deadline",
    "attempt_slice",
    "call_deadline",
]
