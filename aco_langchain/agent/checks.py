"""The agent's checks: stop and doom, the tool gate and human approval, tool outcomes,
and answer verification. Pure decisions over the run's ``RunView``; no I/O.

Used by the engine (``agent/engine.py``) and by both adapters (the LangGraph nodes and
``ACOMiddleware``), so the two cannot disagree on a skip message, an approval payload, a
verifier prompt or a stop.

Example:
    ```python
    from aco_langchain.agent.checks import gate_tool_calls, plan_verification

    gate = gate_tool_calls(view, policy, ai.tool_calls, known_tools={"read_file"})
    gate.allowed, gate.approval          # calls to run; the interrupt payload, if any
    plan = plan_verification(view, policy, messages)
    plan.needed if plan else None
    ```
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.messages.tool import ToolCall

from aco_langchain.agent.doom import tool_signature
from aco_langchain.agent.events import (
    ApprovalCall,
    ApprovalRequest,
    StopEvent,
    ToolEvent,
    Verdict,
    VerifierEvent,
    VerifyGateEvent,
    aco_meta,
    answer_confidence,
    call_cost,
    tool_event,
)
from aco_langchain.agent.gates import gate, verify
from aco_langchain.agent.policy import AgentPolicy
from aco_langchain.agent.run import RunView, request_text
from aco_langchain.chat.messages import message_text
from aco_langchain.config import TIER_NUMBERS
from aco_langchain.routing.markers import has_critical_marker

logger = logging.getLogger(__name__)

#: ``name`` of the messages the controls write themselves (stops).
CONTROL_NAME = "aco"
#: ``name`` of the feedback message a verifier's FAIL adds.
VERIFIER_FEEDBACK_NAME = "aco_verifier"

VERIFIER_PROMPT = (
    "You are a strict verifier. Decide whether the ANSWER correctly and completely does what "
    "the REQUEST asks. Reply with PASS or FAIL on the first line, then one short line saying why."
)


# --------------------------------------------------------------------------- stop and doom
@dataclass(frozen=True)
class StopOutcome:
    """The controls end the run: the final message and its ``stop`` event."""

    message: AIMessage
    event: StopEvent


def stop_message_text(kind: str, reason: str) -> str:
    """The final message of a run the controls ended."""
    return f"Stopped by the agent cost optimizer ({kind}): {reason}"


def stop_outcome(kind: str, reason: str) -> StopOutcome:
    """The final message and event of a run the controls end.

    Args:
        kind: A doom kind (``budget_exhausted``, ...) or ``budget_low``.
        reason: Why, for the user.

    Returns:
        The outcome (the message is named ``aco`` so edges and traces see a stop).

    Example:
        ```python
        stop_outcome("step_limit", "20 steps").message.content
        ```
    """
    logger.info("agent run stopped (%s): %s", kind, reason)
    msg = AIMessage(
        content=stop_message_text(kind, reason),
        name=CONTROL_NAME,
        response_metadata={"aco_stop": {"kind": kind, "reason": reason}},
    )
    return StopOutcome(msg, StopEvent(type="stop", kind=kind, reason=reason))


def is_stop_message(message: Any) -> bool:
    """Is ``message`` the controls' own final message (a stop)?"""
    return isinstance(message, AIMessage) and message.name == CONTROL_NAME


def doom_stop(view: RunView) -> StopOutcome | None:
    """The stop of a doomed run (out of budget, repeating failures, ...), else None.

    Args:
        view: The run so far.

    Returns:
        The outcome when the doom detector says the run must end now.

    Example:
        ```python
        doom_stop(RunView.from_events(events, policy, spent=9.9))
        ```
    """
    verdict = view.doom()
    return stop_outcome(str(verdict.kind), verdict.reason) if verdict.doomed else None


def is_critical_call(tool_call: Mapping[str, Any], policy: AgentPolicy) -> bool:
    """Does this tool call need a human's approval (critical risk, or a critical marker in its
    name or arguments: the same word list as routing risk, ``routing/markers.py``)?"""
    if policy.task_risk == "critical":
        return True
    text = f"{tool_call.get('name')} {json.dumps(tool_call.get('args'), default=str)}"
    return has_critical_marker(text)


def approval_granted(value: Any) -> bool:
    """Read a human's resume value: ``True``, ``"approve"``/``"yes"``, ``{"approved": True}``."""
    if isinstance(value, Mapping):
        value = value.get("approved", value.get("approve", value.get("type")))
    if isinstance(value, str):
        return value.strip().lower() in {"approve", "approved", "yes", "y", "accept", "ok"}
    return bool(value)


def rejection_reason(value: Any) -> str:
    """The reason a human gave with a rejection (``{"approved": False, "reason": ...}``)."""
    why = value.get("reason") if isinstance(value, Mapping) else None
    return f"rejected by a human{': ' + str(why) if why else ''}"


# --------------------------------------------------------------------------- tool calls
def _error_answer(tool_call: Mapping[str, Any], content: str) -> ToolMessage:
    return ToolMessage(
        content=content,
        tool_call_id=str(tool_call["id"]),
        name=str(tool_call["name"]),
        status="error",
    )


def not_run_message(tool_call: Mapping[str, Any], reason: str) -> ToolMessage:
    """The ToolMessage that answers a call that was not run (gate or human), saying why."""
    return _error_answer(tool_call, f"Tool call not run: {reason}")


def unknown_tool_message(tool_call: Mapping[str, Any], known: Collection[str]) -> ToolMessage:
    """The error ToolMessage for a call of a tool the agent does not have."""
    names = ", ".join(known) or "none"
    return _error_answer(
        tool_call, f"Error: unknown tool {tool_call['name']!r} (available: {names})"
    )


def error_message(tool_call: Mapping[str, Any], exc: BaseException) -> ToolMessage:
    """The error ToolMessage of a tool that raised (a failing tool is an answer, not a crash)."""
    return _error_answer(tool_call, f"Error: {type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class ToolGateOutcome:
    """The tool gate's answer for one AI message's tool calls.

    ``allowed`` run; ``messages`` / ``events`` answer and record the ones that do not;
    ``approval`` is the interrupt payload when critical calls wait for a human (``critical``).
    """

    allowed: list[ToolCall]
    messages: list[ToolMessage] = field(default_factory=list)
    events: list[ToolEvent] = field(default_factory=list)
    critical: list[ToolCall] = field(default_factory=list)
    approval: ApprovalRequest | None = None


def identical_failures(events: Sequence[Mapping[str, Any]], name: str, args: Any) -> int:
    """How often this exact call (name and arguments) ran and failed in the turn's events."""
    sig = tool_signature(name, args)
    return sum(
        1
        for e in events
        if e.get("type") == "tool"
        and not e.get("skipped")
        and not e.get("success")
        and e.get("sig") == sig
    )


def gate_tool_calls(
    view: RunView,
    policy: AgentPolicy,
    tool_calls: Sequence[ToolCall],
    *,
    known_tools: Collection[str],
    task_text: str = "",
) -> ToolGateOutcome:
    """The cost gate for each call, then which calls need a human's approval.

    Args:
        view: The run so far (prior calls of each tool, the budget left).
        policy: The agent's policy (``human_approval``, ``task_risk``).
        tool_calls: The AI message's tool calls.
        known_tools: Names of the agent's tools (an unknown one is let through: the tool
            runner answers it with an error message).
        task_text: The task, for its type when the run has none yet.

    Returns:
        The outcome.

    Example:
        ```python
        out = gate_tool_calls(view, policy, ai.tool_calls, known_tools={"web_search"})
        [m.content for m in out.messages]   # ['Tool call not run: skipped by the tool gate...']
        ```
    """
    from aco_langchain.routing.rules import classify_task

    task_type = view.task_type or classify_task(task_text)
    allowed: list[ToolCall] = []
    messages: list[ToolMessage] = []
    events: list[ToolEvent] = []
    for tc in tool_calls:
        name = str(tc["name"])
        if name not in known_tools:
            allowed.append(tc)
            continue
        g = gate(
            name,
            task_type,
            config=policy.config,
            prior_calls=view.tool_counts.get(name, 0),
            budget_remaining=view.budget_remaining,
            identical_failures=identical_failures(view.events, name, tc.get("args")),
        )
        if g.allowed:
            allowed.append(tc)
            continue
        reason = f"skipped by the tool gate: {g.reason}"
        logger.info("tool call %s %s", name, reason)
        messages.append(not_run_message(tc, reason))
        events.append(
            tool_event(
                tc,
                policy.config,
                step=view.steps,
                success=False,
                skipped=True,
                reason=reason,
                repeat_failure=g.rule == "identical_retry",
            )
        )
    critical = [tc for tc in allowed if policy.human_approval and is_critical_call(tc, policy)]
    approval = None
    if critical:
        approval = ApprovalRequest(
            type="aco_approval",
            question="Approve this critical tool call?"
            if len(critical) == 1
            else "Approve these critical tool calls?",
            risk=policy.task_risk,
            tool_calls=[
                ApprovalCall(name=tc["name"], args=tc["args"], id=tc["id"]) for tc in critical
            ],
        )
    return ToolGateOutcome(allowed, messages, events, critical, approval)


def apply_approval(
    outcome: ToolGateOutcome, answer: Any, policy: AgentPolicy, step: int
) -> ToolGateOutcome:
    """The gate's outcome after a human answered its approval request.

    Args:
        outcome: ``gate_tool_calls``'s outcome (with ``approval`` set).
        answer: The resume value (``approval_granted`` reads it).
        policy: The agent's policy.
        step: The agent step the calls belong to.

    Returns:
        The same outcome when approved; else the critical calls moved to not-run messages.

    Example:
        ```python
        apply_approval(out, {"approved": False, "reason": "freeze week"}, policy, 1).allowed
        ```
    """
    if outcome.approval is None or approval_granted(answer):
        return replace(outcome, approval=None)
    reason = rejection_reason(answer)
    logger.info("critical tool calls %s", reason)
    rejected = {tc["id"] for tc in outcome.critical}
    return ToolGateOutcome(
        allowed=[tc for tc in outcome.allowed if tc["id"] not in rejected],
        messages=[*outcome.messages, *(not_run_message(tc, reason) for tc in outcome.critical)],
        events=[
            *outcome.events,
            *(
                tool_event(tc, policy.config, step=step, success=False, skipped=True, reason=reason)
                for tc in outcome.critical
            ),
        ],
    )


def tool_outcome_event(
    tool_call: Mapping[str, Any], result: ToolMessage | None, policy: AgentPolicy, step: int
) -> ToolEvent:
    """The ``tool`` event of a call that ran: a success unless its ToolMessage is an error.

    Args:
        tool_call: The call.
        result: Its ToolMessage (None: the tool returned a ``Command``, a success).
        policy: The agent's policy (tool costs).
        step: The agent step the call belongs to.

    Returns:
        The event.

    Example:
        ```python
        tool_outcome_event(tc, ToolMessage("ok", tool_call_id="1"), policy, 1)["success"]
        ```
    """
    ok = result is None or result.status != "error"
    error = None if ok or result is None else message_text(result)[:300]
    if not ok:
        logger.info("tool %s failed: %s", tool_call.get("name"), error)
    return tool_event(tool_call, policy.config, step=step, success=ok, error=error)


# --------------------------------------------------------------------------- verification
@dataclass(frozen=True)
class VerifyPlan:
    """The verification gate's decision on a final answer, and the verifier call it needs."""

    gate_event: VerifyGateEvent
    needed: bool
    step: int
    tier: int
    prompt: list[BaseMessage]


@dataclass(frozen=True)
class VerifierOutcome:
    """A verifier's reply read: its event, the feedback for a FAIL, the verdict."""

    event: VerifierEvent
    feedback: HumanMessage | None
    verdict: Verdict


def verifier_tier(policy: AgentPolicy, answer_tier: int) -> int:
    """The verifier's tier: ``policy.verifier_tier`` or one above the answer's, at least 3."""
    if policy.verifier_tier is not None:
        return policy.verifier_tier
    return min(max(TIER_NUMBERS), max(answer_tier + 1, 3))


def parse_verdict(text: str) -> tuple[bool | None, str]:
    """``(passed, why)`` from a verifier's reply; ``passed`` None when it says neither.

    Example:
        ```python
        parse_verdict("PASS\\nthe numbers add up")   # (True, 'the numbers add up')
        ```
    """
    stripped = text.strip()
    first, _, rest = stripped.partition("\n")
    head = first.strip().upper()
    why = rest.strip() or first.strip()
    if head.startswith("PASS") or head.startswith("VERDICT: PASS"):
        return True, why
    if head.startswith("FAIL") or head.startswith("VERDICT: FAIL"):
        return False, why
    upper = stripped.upper()
    has_pass, has_fail = "PASS" in upper, "FAIL" in upper
    if has_pass != has_fail:
        return has_pass, why
    return None, why or "no verdict"


def plan_verification(
    view: RunView,
    policy: AgentPolicy,
    messages: Sequence[BaseMessage],
    unavailable: Mapping[int, str] | None = None,
) -> VerifyPlan | None:
    """The verification gate on the conversation's final answer.

    Args:
        view: The run so far (verifier calls, steps, the answering tier).
        policy: The agent's policy (``verify_answers``, ``task_risk``, ``verifier_tier``).
        messages: The conversation; its last message is the answer.
        unavailable: ``{tier: why}`` of tiers that cannot be called now. An unavailable
            verifier tier gives way to the next stronger available one; when there is none
            the answer is not verified and the gate's reason says why (a verifier weaker than
            its tier would be no check, and a forced tier is never degraded).

    Returns:
        None when there is nothing to verify (verification off, the last message is not a
        final AI answer, or it is the controls' stop); else the gate's decision and, when
        ``needed``, the verifier's tier and prompt.

    Example:
        ```python
        plan = plan_verification(view, policy, state["messages"])
        if plan and plan.needed: reply = llm.invoke(plan.prompt, force_tier=plan.tier)
        ```
    """
    last = messages[-1] if messages else None
    if (
        not policy.verify_answers
        or not isinstance(last, AIMessage)
        or last.tool_calls
        or is_stop_message(last)
    ):
        return None
    # The answer's own confidence (logprobs, or the chat model's measured one) is the
    # evidence; the router's predicted_success is weaker evidence (gates.PREDICTION_WEIGHT).
    meta = aco_meta(last)
    conf = answer_confidence(last)
    if conf is None:
        conf = meta.get("confidence")
    predicted = meta.get("predicted_success")
    d = verify(
        policy.task_risk,
        None if conf is None else max(0.0, min(1.0, float(conf))),
        predicted_success=None if predicted is None else max(0.0, min(1.0, float(predicted))),
        config=policy.config,
        verifier_calls=view.verifier_calls,
        total_steps=max(view.steps, 1),
    )
    last_model = view.last_model() or {}
    tier = verifier_tier(policy, int(last_model.get("tier") or 1))
    needed, reason = d.needed, d.reason
    down = dict(unavailable or {})
    if needed and tier in down:
        up = [n for n in TIER_NUMBERS if n > tier and n not in down]
        if up:
            reason += f"; verifier tier {tier} unavailable ({down[tier]}) -> tier {up[0]}"
            tier = up[0]
        else:
            needed = False
            reason += (
                f"; not verified: verifier tier {tier} is unavailable ({down[tier]}) and no "
                "stronger tier is"
            )
    logger.debug("verification gate: %s", reason)
    event = VerifyGateEvent(
        type="verify_gate",
        step=view.steps,
        needed=needed,
        confidence=d.confidence,
        reason=reason,
    )
    prompt: list[BaseMessage] = [
        SystemMessage(VERIFIER_PROMPT),
        HumanMessage(f"REQUEST:\n{request_text(messages)}\n\nANSWER:\n{message_text(last)}"),
    ]
    return VerifyPlan(event, needed, view.steps, tier, prompt)


def verification_outcome(plan: VerifyPlan, policy: AgentPolicy, reply: Any) -> VerifierOutcome:
    """Read a verifier's reply: its event, and for a FAIL the feedback that sends the run back.

    Args:
        plan: The verification plan the call was made for.
        policy: The agent's policy (prices, model ids).
        reply: The verifier's answer.

    Returns:
        The outcome.

    Example:
        ```python
        verification_outcome(plan, policy, AIMessage("FAIL\\nno tests")).feedback.content
        ```
    """
    passed, why = parse_verdict(message_text(reply))
    tier = int(aco_meta(reply).get("tier") or plan.tier)
    cost = call_cost(reply, tier, policy.config)[0]
    said = "no verdict" if passed is None else ("PASS" if passed else "FAIL")
    logger.info("verifier (tier %d): %s - %s", tier, said, why[:120])
    event = VerifierEvent(
        type="verifier",
        step=plan.step,
        tier=tier,
        model_id=policy.config.tier(tier).model_id,
        passed=passed,
        why=why[:300],
        cost=cost,
    )
    feedback = None
    if passed is False:
        feedback = HumanMessage(
            f"A verifier rejected your last answer: {why}\nFix it and answer again.",
            name=VERIFIER_FEEDBACK_NAME,
        )
    return VerifierOutcome(event, feedback, Verdict(passed=passed, why=why, tier=tier, cost=cost))


__all__ = [
    "CONTROL_NAME",
    "VERIFIER_FEEDBACK_NAME",
    "VERIFIER_PROMPT",
    "StopOutcome",
    "ToolGateOutcome",
    "VerifierOutcome",
    "VerifyPlan",
    "apply_approval",
    "approval_granted",
    "doom_stop",
    "error_message",
    "gate_tool_calls",
    "is_critical_call",
    "is_stop_message",
    "not_run_message",
    "parse_verdict",
    "plan_verification",
    "rejection_reason",
    "stop_message_text",
    "stop_outcome",
    "tool_outcome_event",
    "unknown_tool_message",
    "verification_outcome",
    "verifier_tier",
]
