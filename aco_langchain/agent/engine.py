"""The agent engine: every step decision of an ACO agent, pure, over typed events.

The LangGraph nodes (``integrations/langgraph/nodes.py``) and the ``create_agent`` middleware
(``integrations/middleware.py``) are thin adapters around this module: they read state, call
the models and tools, and write back what the engine decided. Nothing here does I/O.

One place for each decision: ``agent/run.py`` the run (``turn_event``, ``RunView``); here a
step (``plan_step``, the escalation loop ``step_flow``, ``finish_step``); ``agent/checks.py`` stop,
doom, the tool gate, approval and verification; ``agent/policy.py`` the settings;
``agent/events.py`` the typed events.

**Budget: one source of truth.** What a run has spent is read from the chat model's spend
ledger under the run's key (``ACORouterChatModel.spent(run_key)``): every model call of the
run (steps, escalations, the verifier) is made with ``aco_run_id=run_key`` and tool costs are
added to the same key. ``RunView`` takes that number; the per-step tier choice
(``per_step.decide_step``) keeps no book of its own, and the event log's ``cost`` fields are a
record for traces and stats, not a second budget.

Example:
    ```python
    from aco_langchain.agent.engine import RunView, plan_step
    from aco_langchain.agent.policy import AgentPolicy

    policy = AgentPolicy(config=cfg, max_budget=1.0)
    view = RunView.from_events(state["aco_events"], policy, spent=llm.spent(run_key))
    plan = plan_step(view, policy, state["messages"], run_key=run_key)
    ```
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage

from aco_langchain.agent.checks import StopOutcome, stop_outcome
from aco_langchain.agent.events import (
    AgentEvent,
    ModelEvent,
    StepStamp,
    answer_confidence,
    call_cost,
    model_event,
)
from aco_langchain.agent.flow import adrive, drive
from aco_langchain.agent.per_step import StepDecision, decide_step
from aco_langchain.agent.policy import AgentPolicy
from aco_langchain.agent.run import RunView, current_run_key, request_text, turn_event
from aco_langchain.chat.messages import message_text
from aco_langchain.config import TIER_NUMBERS

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- a step
StepActionFn = Callable[[Sequence[BaseMessage], str], str]


def default_step_action(messages: Sequence[Any], request: str) -> str:
    """What the next step does, from the conversation (used for per-step routing).

    The first step is the request itself; after tool results, the step works on them (its
    kind follows the tools' names: ``read_file`` -> routine, ``run_tests`` -> verify, ...);
    after a verifier's rejection it redoes the task.

    Args:
        messages: The conversation so far.
        request: The task (``request_text(messages)``).

    Returns:
        The step's action text.

    Example:
        ```python
        default_step_action(state["messages"], "Fix the bug")   # 'read_file results: Fix ...'
        ```
    """
    tool_names: list[str] = []
    for m in reversed(messages):
        if getattr(m, "type", None) == "tool":
            tool_names.append(str(getattr(m, "name", None) or "tool"))
            continue
        break
    if tool_names:
        names = ", ".join(dict.fromkeys(reversed(tool_names)))
        return f"{names} results: {request}"
    return request


@dataclass(frozen=True)
class StepPlan:
    """One agent step, decided before any I/O."""

    policy: AgentPolicy
    decision: StepDecision
    bind_tools: bool
    action: str
    run_key: str


def route_step(
    view: RunView,
    policy: AgentPolicy,
    action: str,
    *,
    unavailable: Mapping[int, str] | None = None,
    tools_bound: bool = False,
    can_call_tools: Callable[[int], bool] = lambda _t: True,
) -> tuple[StepDecision, bool]:
    """Choose the next step's tier: ``(decision, bind_tools)``.

    ``decide_step`` picks the tier from the action, risk, prior failures and the budget left
    (``view.spent``, the ledger's number); a tier without tool calling is then skipped upward
    (``toolless_tiers="skip"``) or answers in text (``"text"``: ``bind_tools`` is False).

    Args:
        view: The run so far.
        policy: The agent's policy.
        action: What the step does.
        unavailable: Tiers that cannot be called, with why.
        tools_bound: Whether the agent has tools.
        can_call_tools: Whether a tier can call tools.

    Returns:
        The decision and whether to bind the tools for this step.

    Example:
        ```python
        d, bind = route_step(view, policy, "Read the file", tools_bound=True)
        ```
    """
    unavailable = dict(unavailable or {})
    d = decide_step(
        policy.config,
        action,
        view.steps + 1,
        max_budget=policy.budget,
        spent=min(view.spent, policy.budget),
        has_prior_failures=view.prior_failure,
        task_risk=policy.task_risk,
        unavailable=unavailable,
    )
    bind = tools_bound
    if tools_bound and not d.stop and not can_call_tools(d.adjusted_tier):
        if policy.toolless_tiers == "text":
            bind = False
            reason = f"{d.reason}; tier {d.adjusted_tier} has no tool calling: answers in text"
            d = d.model_copy(update={"reason": reason})
        else:
            up = [n for n in TIER_NUMBERS if n > d.adjusted_tier and can_call_tools(n)]
            up = [n for n in up if n not in unavailable] or up
            if up:
                new = up[0]
                reason = f"{d.reason}; tier {d.adjusted_tier} has no tool calling -> tier {new}"
                d = d.model_copy(
                    update={
                        "adjusted_tier": new,
                        "model_id": policy.config.tier(new).model_id,
                        "reason": reason,
                    }
                )
            else:
                bind = False
    return d, bind


def plan_step(
    view: RunView,
    policy: AgentPolicy,
    messages: Sequence[BaseMessage],
    *,
    run_key: str,
    step_action: StepActionFn = default_step_action,
    unavailable: Mapping[int, str] | None = None,
    tools_bound: bool = False,
    can_call_tools: Callable[[int], bool] = lambda _t: True,
) -> StepPlan | StopOutcome:
    """Decide the next agent step (tier, tool binding), or stop when the budget says so.

    Args:
        view: The run so far.
        policy: The agent's policy.
        messages: The conversation.
        run_key: The run's ledger key.
        step_action: Describes the step from the conversation.
        unavailable: Tiers that cannot be called, with why.
        tools_bound: Whether the agent has tools.
        can_call_tools: Whether a tier can call tools.

    Returns:
        The plan, or the stop (``budget_low`` with ``agent.on_low_budget: stop``).

    Example:
        ```python
        plan = plan_step(view, policy, messages, run_key="r1", tools_bound=True)
        ```
    """
    action = step_action(messages, request_text(messages))
    decision, bind = route_step(
        view,
        policy,
        action,
        unavailable=unavailable,
        tools_bound=tools_bound,
        can_call_tools=can_call_tools,
    )
    if decision.stop:
        return stop_outcome("budget_low", decision.reason)
    logger.debug(
        "step %d -> tier %d: %s", decision.step_num, decision.adjusted_tier, decision.reason
    )
    return StepPlan(policy, decision, bind, action, run_key)


def escalation_reason(message: Any, confidence: float | None, policy: AgentPolicy) -> str | None:
    """Why an answer should be retried one tier up, or None when it is usable.

    Args:
        message: The answer.
        confidence: Its confidence (``answer_confidence``), if measured.
        policy: The agent's policy (``routing.safety_threshold``).

    Returns:
        ``"unparseable tool call"``, ``"empty answer"``, a low-confidence reason, or None.

    Example:
        ```python
        escalation_reason(AIMessage(""), None, policy)   # 'empty answer'
        ```
    """
    if getattr(message, "invalid_tool_calls", None):
        return "unparseable tool call"
    if not message_text(message).strip() and not getattr(message, "tool_calls", None):
        return "empty answer"
    threshold = policy.config.routing.safety_threshold
    if confidence is not None and confidence < threshold:
        return f"confidence {confidence:.2f} < safety_threshold {threshold:.2f}"
    return None


@dataclass(frozen=True)
class TierCall:
    """One model call the step needs: the tier and, for an escalation, why."""

    tier: int
    escalated_because: str | None = None


@dataclass(frozen=True)
class Attempt:
    """One model call of a step and its answer (None when the response had no AIMessage)."""

    call: TierCall
    answer: AIMessage | None


@dataclass(frozen=True)
class StepOutcome:
    """A finished step: the answer to keep and its ``model`` event (None without an answer)."""

    message: AIMessage | None
    event: ModelEvent | None
    attempts: tuple[Attempt, ...]


def next_tier_call(
    plan: StepPlan, attempt: Attempt, can_call_tools: Callable[[int], bool]
) -> TierCall | None:
    """The escalation after an attempt: one tier up (one that can call tools when they are
    bound), or None when the answer is usable or no tier is left."""
    if attempt.answer is None:
        return None
    why = escalation_reason(attempt.answer, answer_confidence(attempt.answer), plan.policy)
    tier = attempt.call.tier
    if why is None or tier >= max(TIER_NUMBERS):
        return None
    up = [n for n in TIER_NUMBERS if n > tier and (not plan.bind_tools or can_call_tools(n))]
    if not up:
        return None
    logger.info("step %d: %s at tier %d -> tier %d", plan.decision.step_num, why, tier, up[0])
    return TierCall(up[0], why)


def finish_step(plan: StepPlan, attempts: Sequence[Attempt]) -> StepOutcome:
    """The step's ``model`` event (escalations priced in) and its answer, stamped.

    Args:
        plan: The step's plan.
        attempts: Every model call of the step, in order (the last one is kept).

    Returns:
        The outcome; the answer's ``response_metadata["aco_step"]`` is set.

    Example:
        ```python
        finish_step(plan, [Attempt(TierCall(3), AIMessage("done"))]).event["tier"]   # 3
        ```
    """
    last = attempts[-1]
    final = last.answer
    if final is None:
        return StepOutcome(None, None, tuple(attempts))
    decision = plan.decision
    extra = 0.0
    if len(attempts) > 1:
        extra = sum(
            call_cost(a.answer, a.call.tier, plan.policy.config)[0]
            for a in attempts[:-1]
            if a.answer is not None
        )
        hops = "".join(
            f"; escalated ({a.call.escalated_because}) -> tier {a.call.tier}" for a in attempts[1:]
        )
        decision = decision.model_copy(update={"reason": decision.reason + hops})
    event = model_event(
        final,
        decision,
        plan.policy,
        action=plan.action,
        escalated=len(attempts) > 1,
        tier=last.call.tier,
        extra_cost=extra,
    )
    event["run_key"] = plan.run_key
    final.response_metadata["aco_step"] = StepStamp(
        step=decision.step_num, tier=event["tier"], reason=decision.reason, cost=event["cost"]
    )
    return StepOutcome(final, event, tuple(attempts))


StepFlow = Generator[TierCall, AIMessage | None, StepOutcome]


def step_flow(plan: StepPlan, can_call_tools: Callable[[int], bool]) -> StepFlow:
    """The escalation loop of one step, shared by every adapter (sync and async).

    Yields each ``TierCall`` the step needs and receives its answer; returns the outcome.
    Drive it with ``drive`` / ``adrive``.

    Args:
        plan: The step's plan.
        can_call_tools: Whether a tier can call tools (escalations keep the tools bound).

    Returns:
        A generator: ``yield TierCall`` -> ``send(answer)`` ... -> ``StepOutcome``.

    Example:
        ```python
        outcome = drive(step_flow(plan, can_call), lambda c: llm.invoke(msgs, force_tier=c.tier))
        ```
    """
    call: TierCall | None = TierCall(plan.decision.adjusted_tier)
    attempts: list[Attempt] = []
    for _ in range(plan.policy.max_escalations + 1):
        assert call is not None  # noqa: S101 - the loop breaks before a None call
        answer = yield call
        attempts.append(Attempt(call, answer))
        call = next_tier_call(plan, attempts[-1], can_call_tools)
        if call is None:
            break
    return finish_step(plan, attempts)


__all__ = [
    "AgentEvent",
    "Attempt",
    "RunView",
    "StepActionFn",
    "StepFlow",
    "StepOutcome",
    "StepPlan",
    "TierCall",
    "adrive",
    "current_run_key",
    "default_step_action",
    "drive",
    "escalation_reason",
    "finish_step",
    "next_tier_call",
    "plan_step",
    "request_text",
    "route_step",
    "step_flow",
    "turn_event",
]
