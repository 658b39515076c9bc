"""The agent engine: every step decision of an ACO agent, pure, over typed events.

The LangGraph nodes (``integrations/langgraph/nodes.py``) and the ``create_agent`` middleware
(``integrations/middleware.py``) are thin adapters around this module: they read state, call
the models and tools, and write back what the engine decided. Nothing here does I/O.

One place for each decision: here the run (``turn_event``, ``RunView``) and a step
(``plan_step``, the escalation loop ``step_flow``, ``finish_step``); ``agent/checks.py`` stop,
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
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage

from aco_langchain.agent.checks import StopOutcome, stop_outcome
from aco_langchain.agent.doom import DoomDetector, DoomResult
from aco_langchain.agent.events import (
    AgentEvent,
    ModelEvent,
    StepStamp,
    TurnEvent,
    answer_confidence,
    call_cost,
    model_event,
)
from aco_langchain.agent.flow import adrive, drive
from aco_langchain.agent.per_step import StepDecision, decide_step
from aco_langchain.agent.policy import AgentPolicy, RunSettings
from aco_langchain.chat.messages import message_text
from aco_langchain.config import TIER_NUMBERS

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- the run
def turn_event(settings: RunSettings, thread_id: str | None, new_id: str) -> TurnEvent:
    """The event that starts a turn, with the run's ledger key.

    Args:
        settings: The run's settings (``run_id`` names the key).
        thread_id: LangGraph's thread id, if any.
        new_id: A fresh random id (the adapter draws it).

    Returns:
        ``{"type": "turn", "run_key": ...}``: ``run_id``, else ``thread_id:<8 chars>``, else
        ``aco-agent-<12 chars>``.

    Example:
        ```python
        turn_event({}, "t1", uuid.uuid4().hex)["run_key"]   # 't1:3f2a9c1d'
        ```
    """
    if settings.get("run_id"):
        key = str(settings["run_id"])
    elif thread_id:
        key = f"{thread_id}:{new_id[:8]}"
    else:
        key = f"aco-agent-{new_id[:12]}"
    return TurnEvent(type="turn", run_key=key)


def current_run_key(events: Iterable[Mapping[str, Any]] | None) -> str | None:
    """The run key of the current turn: its ``turn`` event's, else the turn's latest step's.

    Args:
        events: The state's ``aco_events``.

    Returns:
        The key, or None when the turn has none yet (a graph without the ``start`` node).

    Example:
        ```python
        current_run_key([{"type": "turn", "run_key": "t1:3f2a9c1d"}])   # 't1:3f2a9c1d'
        ```
    """
    for e in reversed(list(events or [])):
        if e.get("run_key"):
            return str(e["run_key"])
        if e.get("type") == "turn":
            break
    return None


@dataclass
class RunView:
    """A run's state derived from its event log (pure; rebuild it whenever needed).

    Example:
        ```python
        view = RunView.from_events(state["aco_events"], policy, spent=llm.spent(run_key))
        view.spent, view.steps, view.prior_failure
        ```
    """

    policy: AgentPolicy
    events: list[dict[str, Any]]
    detector: DoomDetector
    spent: float
    steps: int
    verifier_calls: int
    tool_counts: dict[str, int]
    prior_failure: bool
    task_type: str | None
    stopped: dict[str, Any] | None
    run_key: str | None

    @classmethod
    def from_events(
        cls,
        events: Iterable[Mapping[str, Any]] | None,
        policy: AgentPolicy,
        *,
        spent: float | None = None,
    ) -> RunView:
        """Replay the current turn's events into a doom detector and counters.

        Args:
            events: The state's ``aco_events``.
            policy: The agent's policy.
            spent: What the run has spent, from the spend ledger (the source of truth).
                None only to read a finished run's log offline: the events' recorded costs.

        Returns:
            The view.

        Example:
            ```python
            RunView.from_events(out["aco_events"], policy).steps
            ```
        """
        evs = [dict(e) for e in events or []]
        start = max((i for i, e in enumerate(evs) if e.get("type") == "turn"), default=-1)
        run_key = current_run_key(evs)
        evs = evs[start + 1 :]
        det = DoomDetector(policy.config, max_budget=policy.budget)
        recorded = 0.0
        steps = verifier_calls = 0
        tool_counts: dict[str, int] = {}
        prior_failure = False
        task_type = None
        stopped = None
        for e in evs:
            kind = e.get("type")
            cost = float(e.get("cost") or 0.0)
            if kind == "model":
                steps += 1
                recorded += cost
                det.record_step(cost=cost, output=e.get("digest") or None, model=e.get("model_id"))
                prior_failure = False
                task_type = task_type or e.get("task_type")
            elif kind == "tool":
                recorded += cost
                if e.get("repeat_failure"):
                    # The model insisted on a call that already failed: for doom it
                    # failed again (repeated_failure), though the gate did not run it.
                    det.record_tool(e.get("sig") or e["name"], None, False, 0.0)
                    prior_failure = True
                if e.get("skipped"):
                    continue
                tool_counts[e["name"]] = tool_counts.get(e["name"], 0) + 1
                det.record_tool(e.get("sig") or e["name"], None, bool(e.get("success")), cost)
                if not e.get("success"):
                    prior_failure = True
            elif kind == "verifier":
                recorded += cost
                verifier_calls += 1
                det.add_cost(cost)
                if e.get("passed") is False:
                    prior_failure = True
            elif kind == "stop":
                stopped = e
        return cls(
            policy=policy,
            events=evs,
            detector=det,
            spent=round(recorded if spent is None else spent, 10),
            steps=steps,
            verifier_calls=verifier_calls,
            tool_counts=tool_counts,
            prior_failure=prior_failure,
            task_type=task_type,
            stopped=stopped,
            run_key=run_key,
        )

    @property
    def budget_remaining(self) -> float:
        """USD left of the run's budget."""
        return max(0.0, self.policy.budget - self.spent)

    def doom(self) -> DoomResult:
        """The doom detector's verdict on the run so far."""
        return self.detector.check(self.spent)

    def last_model(self) -> dict[str, Any] | None:
        """The latest ``model`` event, if any."""
        return next((e for e in reversed(self.events) if e.get("type") == "model"), None)


def request_text(messages: Sequence[Any]) -> str:
    """The task: the first human message's text (else the last message's)."""
    for m in messages:
        if getattr(m, "type", None) == "human":
            return message_text(m)
    return message_text(messages[-1]) if messages else ""


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
