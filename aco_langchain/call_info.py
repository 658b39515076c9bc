"""What one routed call did and cost, as one typed record: :class:`AcoCallInfo`.

A record every layer reads (chat, agent, spend cache, tracing, server), so it lives at the
package's base beside ``errors`` and ``config`` and imports nothing of ours.
``ACORouterChatModel`` builds it once per answer (``chat/reporter.py``) and serialises it into
``response_metadata["aco"]`` (and ``llm_output["aco"]``); traces, the server, the response cache
and the agent engine read it back with :meth:`AcoCallInfo.from_message` instead of parsing dict
keys, so nothing downstream re-routes or re-prices a call.

Example:
    ```python
    from aco_langchain import AcoCallInfo

    msg = llm.invoke("What is 2+2?")
    info = AcoCallInfo.from_message(msg)
    info.tier, info.cost_usd, info.routed_tier, info.reason
    ```
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

logger = logging.getLogger(__name__)
_M = TypeVar("_M", bound=BaseModel)

#: Keys written only when they carry something (absent rather than null, as before).
_OPTIONAL = frozenset(
    {
        "confidence",
        "first_confidence",
        "degraded_from",
        "failures",
        "usage_estimated",
        "escalation_skipped",
        "cache_hit",
        "cached_cost_usd",
        "saved_cost_usd",
    }
)


def _trusted(cls: type[_M], values: dict[str, Any]) -> _M:
    """An instance from values our own code built and typed (every field given, in order):
    ``model_construct`` without its per-field work, for the per-call hot path."""
    obj = cls.__new__(cls)
    object.__setattr__(obj, "__dict__", values)
    object.__setattr__(obj, "__pydantic_fields_set__", set(values))
    object.__setattr__(obj, "__pydantic_extra__", None)
    object.__setattr__(obj, "__pydantic_private__", None)
    return obj


class AcoTierCall(BaseModel):
    """One tier call inside a routed call (the cheap one of a cascade, or the final one)."""

    model_config = ConfigDict(extra="allow")

    tier: int
    model_id: str = ""
    cost_usd: float = 0.0
    usage: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def trusted(cls, values: dict[str, Any]) -> AcoTierCall:
        """A tier call from values the router built itself (see :meth:`AcoCallInfo.trusted`)."""
        return _trusted(cls, values)


class AcoCallInfo(BaseModel):
    """The record of one routed call: the tier that answered, why, and what it cost.

    ``predicted_success`` is the router's prediction for the routed tier; ``confidence`` is
    the answer's own (logprobs or the cascade's measure), None when nothing measured it.
    ``routed_tier`` is the tier the router that routed the call chose (a trace's
    ``predicted_tier``); ``tier`` the one that answered (after fallback or escalation).

    Example:
        ```python
        info = AcoCallInfo.from_message(llm.invoke("hi"))
        if info is not None and info.escalated:
            print(info.first_tier, "->", info.tier, info.reason)
        ```
    """

    model_config = ConfigDict(extra="allow")

    tier: int = 1
    """The tier that answered."""
    model_id: str = ""
    """The config's ``model_id`` of the tier that answered."""
    predicted_success: float | None = None
    """The router's predicted success for the routed tier (None when nothing assessed)."""
    reason: str = ""
    """Why this tier: the decision's reason (and the cascade's, when one ran)."""
    cost_usd: float = 0.0
    """USD of every tier call of this answer (0 for a cache hit)."""
    estimated_cost_usd: float = 0.0
    """The decision's cost estimate before the call."""
    escalated: bool = False
    """A cascade escalated the cheap answer to a stronger tier."""
    fallback_from: int | None = None
    """The routed tier when a provider fault made another tier answer."""
    routed_tier: int | None = None
    """The tier the router decided on (before fallback and escalation)."""
    task_type: str | None = None
    difficulty: int | None = None
    run_key: str | None = None
    """The budget's run key the call was charged to."""
    run_spent_usd: float | None = None
    """The run's settled spend after this call."""
    latency_ms: float | None = None
    confidence: float | None = None
    """The answer's own confidence, when measured."""
    first_confidence: float | None = None
    """The cheap answer's confidence when a cascade escalated."""
    degraded_from: int | None = None
    """The decided tier when a lower one answered (unavailable or failed)."""
    failures: dict[str, str] | None = None
    """{tier: why} of tiers that failed or were skipped on the way."""
    calls: list[AcoTierCall] = Field(default_factory=list)
    """Every tier call of the answer, in order."""
    first_tier: int | None = None
    """The first tier called (the cheap one of a cascade)."""
    usage_estimated: bool | None = None
    """True when the tier reported no usage and the cost comes from an estimate."""
    escalation_skipped: str | None = None
    """Why a cascade did not escalate although it wanted to (the deadline)."""
    cache_hit: bool | None = None
    """True when the response cache answered (no tier call, $0)."""
    cached_cost_usd: float | None = None
    """What the cached answer cost when it was first made."""
    saved_cost_usd: float | None = None

    def to_metadata(self) -> dict[str, Any]:
        """The JSON-ready ``response_metadata["aco"]`` dict (optional keys only when set).

        Returns:
            A new dict of the fields that were given or set, in the documented order.
        """
        given = self.model_fields_set  # a record read from a partial dict stays partial
        values = self.__dict__
        if given.issuperset(values):  # every field given (the router's own records)
            out = {k: v for k, v in values.items() if v is not None or k not in _OPTIONAL}
        else:
            out = {
                k: v
                for k, v in values.items()
                if k in given and (v is not None or k not in _OPTIONAL)
            }
        if "calls" in out:
            out["calls"] = [
                {"tier": c.tier, "model_id": c.model_id, "cost_usd": c.cost_usd, "usage": c.usage}
                for c in self.calls
            ]
        if self.__pydantic_extra__:
            out.update(self.__pydantic_extra__)
        return out

    @classmethod
    def trusted(cls, values: dict[str, Any]) -> AcoCallInfo:
        """A record from values the router built itself (every field given, already typed):
        no validation, as ``model_construct`` but without its per-field work (hot path).

        Args:
            values: one value per field, in field order.

        Returns:
            The record (its ``to_metadata()`` has exactly the keys given, optional Nones out).
        """
        return _trusted(cls, values)

    @classmethod
    def from_metadata(cls, meta: Mapping[str, Any] | None) -> AcoCallInfo | None:
        """The record from a ``response_metadata["aco"]`` dict (None when absent or unreadable).

        Args:
            meta: the ``aco`` dict, or None.

        Returns:
            The record, or None when ``meta`` is empty or not a record (logged).
        """
        if isinstance(meta, AcoCallInfo):
            return meta
        if not meta or not isinstance(meta, Mapping):
            return None
        try:
            return cls.model_validate(dict(meta))
        except ValidationError as err:
            logger.warning("unreadable response_metadata['aco'] ignored: %s", err)
            return None

    @classmethod
    def from_message(cls, message: Any) -> AcoCallInfo | None:
        """The record a routed answer carries (None for a message no router answered).

        Args:
            message: an ``AIMessage``/``AIMessageChunk`` (or anything with
                ``response_metadata``).

        Returns:
            The record, or None.

        Example:
            ```python
            info = AcoCallInfo.from_message(msg)
            cost = info.cost_usd if info else 0.0
            ```
        """
        meta = getattr(message, "response_metadata", None) or {}
        return cls.from_metadata(meta.get("aco") if isinstance(meta, Mapping) else None)


__all__ = ["AcoCallInfo", "AcoTierCall"]
