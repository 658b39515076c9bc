"""The agent's event log: one TypedDict per event kind, and the helpers that build them.

The LangGraph nodes and ``ACOMiddleware`` keep an append-only log in their state
(``aco_events``, merged by list concatenation, so parallel tool calls and checkpointers are
safe). Each entry is a plain JSON-able dict typed here:

- ``turn``: a new input started a run (budget and doom rules restart there; ``run_key`` is
  the ledger key every call of the run is recorded under);
- ``model``: one agent step's model call (tier, reason, cost, tokens, escalation, digest);
- ``tool``: one tool call (name, signature, success, cost, skipped and why);
- ``verify_gate``: the verification gate's decision;
- ``verifier``: a verifier call and its verdict;
- ``stop``: why the controls ended the run.

Events are a *record* (traces, stats, the doom detector's progress rules); what a run has
spent is read from the chat model's spend ledger (see ``agent/engine.py``).

Example:
    ```python
    from aco_langchain.agent.events import merge_events

    log = merge_events([{"type": "turn", "run_key": "r1"}], [{"type": "stop", ...}])
    [e["type"] for e in log]   # ['turn', 'stop']
    ```
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, NotRequired

from typing_extensions import TypedDict

from aco_langchain.agent.doom import tool_signature
from aco_langchain.agent.gates import tool_cost
from aco_langchain.call_info import AcoCallInfo
from aco_langchain.chat.messages import message_text
from aco_langchain.config import ACOConfig

if TYPE_CHECKING:
    from aco_langchain.agent.per_step import StepDecision
    from aco_langchain.agent.policy import AgentPolicy

Risk = Literal["low", "medium", "high", "critical"]
EventType = Literal["turn", "model", "tool", "verify_gate", "verifier", "stop"]


class TurnEvent(TypedDict):
    """A new input to the graph: the run's budget and doom rules count from here."""

    type: Literal["turn"]
    run_key: NotRequired[str]
    """Ledger key of the run (every model call and tool cost of the turn is recorded there)."""


class ModelEvent(TypedDict):
    """One agent step's model call (after any escalation)."""

    type: Literal["model"]
    step: int
    tier: int
    routed_tier: int
    model_id: str
    kind: str
    action: str
    reason: str
    cost: float
    input_tokens: int
    output_tokens: int
    escalated: bool
    confidence: float | None
    task_type: str | None
    digest: str
    tool_calls: list[str]
    run_key: NotRequired[str]


class ToolEvent(TypedDict):
    """One tool call: run (``success``) or skipped by a gate or a human (``skipped``)."""

    type: Literal["tool"]
    step: int
    name: str
    id: str | None
    sig: str
    success: bool
    skipped: bool
    cost: float
    reason: str | None
    error: str | None
    repeat_failure: NotRequired[bool]


class VerifyGateEvent(TypedDict):
    """The verification gate's decision on a final answer."""

    type: Literal["verify_gate"]
    step: int
    needed: bool
    confidence: float
    reason: str


class VerifierEvent(TypedDict):
    """A verifier call and its verdict (``passed`` None when it said neither)."""

    type: Literal["verifier"]
    step: int
    tier: int
    model_id: str
    passed: bool | None
    why: str
    cost: float


class StopEvent(TypedDict):
    """The controls ended the run: ``kind`` is a doom kind or ``budget_low``."""

    type: Literal["stop"]
    kind: str
    reason: str


AgentEvent = TurnEvent | ModelEvent | ToolEvent | VerifyGateEvent | VerifierEvent | StopEvent


class ApprovalCall(TypedDict):
    """One tool call a human is asked to approve."""

    name: str
    args: dict[str, Any]
    id: str | None


class ApprovalRequest(TypedDict):
    """The ``interrupt`` payload for critical tool calls.

    Resume with ``Command(resume=True)`` / ``"approve"``, or ``False`` /
    ``{"approved": False, "reason": "..."}`` to reject.
    """

    type: Literal["aco_approval"]
    question: str
    risk: Risk
    tool_calls: list[ApprovalCall]


class Verdict(TypedDict):
    """A verifier's verdict (the payload of the ``aco_verifier_verdict`` custom event)."""

    passed: bool | None
    why: str
    tier: int
    cost: float


class StepStamp(TypedDict):
    """``response_metadata["aco_step"]`` of an agent step's answer."""

    step: int
    tier: int
    reason: str
    cost: float


def merge_events(left: list[AgentEvent] | None, right: list[AgentEvent] | None) -> list[AgentEvent]:
    """Reducer of ``aco_events``: concatenate (each node appends its own events).

    Args:
        left: The events so far.
        right: The events a node returned.

    Returns:
        Both lists, in order.

    Example:
        ```python
        merge_events([{"type": "turn"}], None)   # [{'type': 'turn'}]
        ```
    """
    return [*(left or []), *(right or [])]


def digest(text: str) -> str:
    """A short stable hash of a step's output (for the no-progress rule).

    Args:
        text: The output text.

    Returns:
        16 hex characters of its SHA-256.

    Example:
        ```python
        digest("patched auth.py") == digest("  patched auth.py\\n")   # True
        ```
    """
    return hashlib.sha256(text.strip().encode("utf-8")).hexdigest()[:16]


def output_digest(message: Any) -> str:
    """Digest of an AI message: its text and its tool calls (names and arguments).

    Args:
        message: An ``AIMessage`` (or anything with ``content`` / ``tool_calls``).

    Returns:
        The digest of the text plus the canonical JSON of the calls.

    Example:
        ```python
        output_digest(AIMessage("done"))
        ```
    """
    calls = [
        (tc.get("name"), json.dumps(tc.get("args"), sort_keys=True, default=str))
        for tc in (getattr(message, "tool_calls", None) or [])
    ]
    return digest(message_text(message) + json.dumps(calls))


def tool_event(
    tool_call: Mapping[str, Any],
    config: ACOConfig,
    *,
    step: int,
    success: bool,
    skipped: bool = False,
    reason: str | None = None,
    error: str | None = None,
    repeat_failure: bool = False,
) -> ToolEvent:
    """The ``tool`` event of one tool call (skipped calls cost nothing).

    Args:
        tool_call: The call (``name``, ``args``, ``id``).
        config: The config its cost comes from (``agent.tool_costs``).
        step: The agent step it belongs to.
        success: Whether it ran without an error.
        skipped: Whether a gate or a human kept it from running.
        reason: Why it was skipped.
        error: The error text of a failed call.
        repeat_failure: The gate declined it as an identical retry of a failed call (the
            doom detector counts it as that call failing again).

    Returns:
        The event.

    Example:
        ```python
        tool_event({"name": "read_file", "args": {}, "id": "1"}, cfg, step=1, success=True)
        ```
    """
    name = str(tool_call.get("name"))
    event = ToolEvent(
        type="tool",
        step=step,
        name=name,
        id=tool_call.get("id"),
        sig=tool_signature(name, tool_call.get("args")),
        success=success,
        skipped=skipped,
        cost=0.0 if skipped else tool_cost(name, config),
        reason=reason,
        error=error,
    )
    if repeat_failure:
        event["repeat_failure"] = True
    return event


def answer_confidence(message: Any) -> float | None:
    """Confidence of an answer from its token logprobs, or None when it has none."""
    meta = getattr(message, "response_metadata", None) or {}
    raw = meta.get("logprobs")
    if not raw:
        return None
    from aco_langchain.chat.cascade import confidence_from_logprobs, normalize_logprobs

    # The normaliser reads every provider's shape; the name only labels its errors.
    tokens = normalize_logprobs(raw, str(meta.get("model_provider") or "the answer's"))
    return confidence_from_logprobs(tokens).value if tokens else None


def call_cost(message: Any, tier: int, config: ACOConfig) -> tuple[float, int, int]:
    """``(usd, input_tokens, output_tokens)`` of a model answer.

    The ACO router's own cost when present, else the usage at the tier's price (cached
    input and reasoning tokens priced from the usage details when genai-prices prices it).
    """
    from dataclasses import replace

    from aco_langchain.pricing import TokenUsage, estimate_tokens, usage_cost_usd, usage_tokens

    usage = getattr(message, "usage_metadata", None)
    i, o = usage_tokens(usage)  # type: ignore[arg-type]
    if not usage:
        o = estimate_tokens(message_text(message) or " ")
    info = AcoCallInfo.from_message(message)
    if info is not None and "cost_usd" in info.model_fields_set:
        return info.cost_usd, i, o  # the router priced it: never priced twice
    used = replace(TokenUsage.from_metadata(usage), input=i, output=o)  # type: ignore[arg-type]
    return usage_cost_usd(config.tier(tier), used), i, o


def aco_meta(message: Any) -> dict[str, Any]:
    """``response_metadata["aco"]`` of a message as a dict (empty when absent); typed
    readers use :meth:`AcoCallInfo.from_message`."""
    meta = (getattr(message, "response_metadata", None) or {}).get("aco")
    return dict(meta) if isinstance(meta, Mapping) else {}


def model_event(
    message: Any,
    decision: StepDecision,
    policy: AgentPolicy,
    *,
    action: str,
    escalated: bool = False,
    tier: int | None = None,
    extra_cost: float = 0.0,
) -> ModelEvent:
    """The ``model`` event of one step (cost from the answer's metadata or usage).

    Example:
        ```python
        model_event(ai_message, decision, policy, action="Read the file")
        ```
    """
    info = AcoCallInfo.from_message(message) or AcoCallInfo.model_construct()
    has = info.model_fields_set
    t = int((info.tier if "tier" in has else None) or tier or decision.adjusted_tier)
    cost, i, o = call_cost(message, t, policy.config)
    return ModelEvent(
        type="model",
        step=decision.step_num,
        tier=t,
        routed_tier=decision.adjusted_tier,
        model_id=info.model_id or policy.config.tier(t).model_id,
        kind=decision.action_kind,
        action=action[:200],
        reason=decision.reason,
        cost=round(cost + extra_cost, 10),
        input_tokens=i,
        output_tokens=o,
        escalated=bool(escalated or info.escalated),
        confidence=info.confidence,
        task_type=info.task_type,
        digest=output_digest(message),
        tool_calls=[tc.get("name") for tc in getattr(message, "tool_calls", None) or []],
    )


__all__ = [
    "AgentEvent",
    "ApprovalCall",
    "ApprovalRequest",
    "EventType",
    "ModelEvent",
    "StepStamp",
    "StopEvent",
    "ToolEvent",
    "TurnEvent",
    "Verdict",
    "VerifierEvent",
    "VerifyGateEvent",
    "aco_meta",
    "answer_confidence",
    "call_cost",
    "digest",
    "merge_events",
    "model_event",
    "output_digest",
    "tool_event",
]
