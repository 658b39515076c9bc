"""The agent controls shared by the LangGraph nodes and the LangChain v1 middleware.

Everything here is pure (no I/O, no LangGraph import): the nodes and ``ACOMiddleware`` keep an
append-only **event log** in their state (``aco_events``, a list of JSON-able dicts merged by
list concatenation, so parallel tool calls and checkpointers are safe) and derive the run's
spend, steps, failures and progress from it with ``RunView``. The decisions themselves come
from the existing building blocks: ``PerStepRouter`` (each step's tier), ``gates.gate`` (tool
gate), ``gates.verify`` (verification gate) and ``doom.assess_doom`` (doom detector).

Event kinds (``type``):

- ``model``: one agent step's model call (``step``, ``tier``, ``model_id``, ``reason``,
  ``action``, ``kind``, ``cost``, ``input_tokens``, ``output_tokens``, ``escalated``,
  ``confidence``, ``digest`` of the output for the no-progress rule);
- ``tool``: one tool call (``name``, ``sig``, ``success``, ``cost``, ``skipped``, ``reason``);
- ``verify_gate``: the verification gate's decision (``needed``, ``reason``);
- ``verifier``: a verifier call (``tier``, ``passed``, ``cost``, ``why``);
- ``stop``: why the run was ended by the controls (``kind``, ``reason``);
- ``turn``: a new input started a run on the thread (budget and doom rules restart there).

Usage::

    policy = AgentPolicy(config=ACOConfig(), max_budget=1.0)
    view = RunView.from_events(events, policy)
    view.spent, view.steps, view.doom().doomed
    decision = route_step(view, policy, "Read the failing test")
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aco_langchain.agent.doom import DoomDetector, DoomResult, tool_signature
from aco_langchain.agent.gates import ToolGateDecision, VerifyDecision, gate, tool_cost, verify
from aco_langchain.agent.per_step import PerStepRouter, StepDecision, classify_action
from aco_langchain.chat.messages import message_text
from aco_langchain.config import TIER_NUMBERS, ACOConfig
from aco_langchain.routing.policy import RISK_FLOORS

# The verifier tag and the custom event names live next to their reader, the trace handler.
from aco_langchain.tracing.callback import EVENT_STOP, EVENT_VERDICT, VERIFIER_TAG

Risk = Literal["low", "medium", "high", "critical"]
ToollessPolicy = Literal["skip", "text"]


VERIFIER_PROMPT = (
    "You are a strict verifier. Decide whether the ANSWER correctly and completely does what "
    "the REQUEST asks. Reply with PASS or FAIL on the first line, then one short line saying why."
)


def answer_confidence(message: Any) -> float | None:
    """Confidence of an answer from its token logprobs, or None when it has none."""
    meta = getattr(message, "response_metadata", None) or {}
    raw = meta.get("logprobs")
    if not raw:
        return None
    from aco_langchain.chat.cascade import confidence_from_logprobs, normalize_logprobs

    provider = "ollama" if isinstance(raw, list) else "openai"
    tokens = normalize_logprobs(raw, provider)
    return confidence_from_logprobs(tokens).value if tokens else None


def merge_events(left: list[dict[str, Any]] | None, right: list[dict[str, Any]] | None) -> list:
    """Reducer for ``aco_events``: concatenate (each node appends its own events)."""
    return [*(left or []), *(right or [])]


@dataclass(frozen=True)
class AgentPolicy:
    """The settings of one agent's controls.

    Usage::

        AgentPolicy(config=cfg, max_budget=0.5, task_risk="high", verifier_tier=4)
    """

    config: ACOConfig = field(default_factory=ACOConfig)
    max_budget: float | None = None
    """USD for one run; None: ``config.routing.max_cost_per_task``."""
    task_risk: Risk = "medium"
    verifier_tier: int | None = None
    """Tier of the verifier; None: one above the answering tier, at least 3."""
    toolless_tiers: ToollessPolicy = "skip"
    """A routed tier without tool calling: ``skip`` moves up to one with it; ``text`` lets it
    answer in text (no tools bound for that step)."""
    human_approval: bool = False
    """Interrupt for a human's approval before critical tool calls (needs a checkpointer)."""
    max_escalations: int = 1
    """Extra calls, each one tier up, when an answer is empty or its tool call unparseable."""
    verify_answers: bool = True
    """Run the verification gate on final answers."""
    tool_tiers: frozenset[int] | None = None
    """Tiers that can call tools; None: detect (a tier model overriding ``bind_tools``, or
    the tier spec's ``tools`` capability)."""

    @property
    def budget(self) -> float:
        """The run's budget in USD."""
        if self.max_budget is None:
            return self.config.routing.max_cost_per_task
        return self.max_budget

    def with_overrides(self, configurable: Mapping[str, Any] | None) -> AgentPolicy:
        """This policy with per-invocation overrides (``aco_task_risk``, ``aco_max_budget``)."""
        if not configurable:
            return self
        risk = configurable.get("aco_task_risk", self.task_risk)
        budget = configurable.get("aco_max_budget", self.max_budget)
        if risk == self.task_risk and budget == self.max_budget:
            return self
        if risk not in RISK_FLOORS:
            raise ValueError(f"aco_task_risk must be low, medium, high or critical, not {risk!r}")
        from dataclasses import replace

        return replace(self, task_risk=risk, max_budget=budget)


def tier_takes_tools(llm: Any, policy: AgentPolicy, tier: int) -> bool:
    """Can ``tier`` of the router model ``llm`` call tools (``policy.tool_tiers`` first)?"""
    if policy.tool_tiers is not None:
        return tier in policy.tool_tiers
    return bool(llm.registry.takes_tools(tier))


def digest(text: str) -> str:
    """A short stable hash of a step's output (for the no-progress rule)."""
    return hashlib.sha256(text.strip().encode("utf-8")).hexdigest()[:16]


def output_digest(message: Any) -> str:
    """Digest of an AI message: its text and its tool calls (names and arguments)."""
    calls = [
        (tc.get("name"), json.dumps(tc.get("args"), sort_keys=True, default=str))
        for tc in (getattr(message, "tool_calls", None) or [])
    ]
    return digest(message_text(message) + json.dumps(calls))


@dataclass
class RunView:
    """A run's state derived from its event log (pure; rebuild it whenever needed).

    Usage::

        view = RunView.from_events(state["aco_events"], policy)
        view.spent, view.steps, view.prior_failure
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

    @classmethod
    def from_events(cls, events: Iterable[Mapping[str, Any]], policy: AgentPolicy) -> RunView:
        """Replay ``events`` into a doom detector and counters."""
        evs = [dict(e) for e in events or []]
        # Only the current turn counts: each new input to the graph starts a "turn".
        start = max((i for i, e in enumerate(evs) if e.get("type") == "turn"), default=-1)
        evs = evs[start + 1 :]
        det = DoomDetector(policy.config, max_budget=policy.budget)
        spent = 0.0
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
                spent += cost
                det.record_step(cost=cost, output=e.get("digest") or None)
                prior_failure = False
                task_type = task_type or e.get("task_type")
            elif kind == "tool":
                spent += cost
                if e.get("skipped"):
                    continue
                tool_counts[e["name"]] = tool_counts.get(e["name"], 0) + 1
                det.record_tool(e.get("sig") or e["name"], None, bool(e.get("success")), cost)
                if not e.get("success"):
                    prior_failure = True
            elif kind == "verifier":
                spent += cost
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
            spent=round(spent, 10),
            steps=steps,
            verifier_calls=verifier_calls,
            tool_counts=tool_counts,
            prior_failure=prior_failure,
            task_type=task_type,
            stopped=stopped,
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


def default_step_action(messages: Sequence[Any], request: str) -> str:
    """What the next step does, from the conversation (used for per-step routing).

    The first step is the request itself; after tool results, the step works on them (its
    kind follows the tools' names: ``read_file`` -> routine, ``run_tests`` -> verify, ...);
    after a verifier's rejection it redoes the task.

    Usage::

        default_step_action(state["messages"], "Fix the bug")   # 'read_file results: Fix ...'
    """
    tool_names: list[str] = []
    for m in reversed(messages):
        mtype = getattr(m, "type", None)
        if mtype == "tool":
            tool_names.append(str(getattr(m, "name", None) or "tool"))
            continue
        break
    if tool_names:
        names = ", ".join(dict.fromkeys(reversed(tool_names)))
        return f"{names} results: {request}"
    return request


def route_step(
    view: RunView,
    policy: AgentPolicy,
    action: str,
    *,
    unavailable: Mapping[int, str] | None = None,
    tools_bound: bool = False,
    takes_tools: Callable[[int], bool] = lambda _t: True,
) -> tuple[StepDecision, bool]:
    """Choose the next step's tier: ``(decision, bind_tools)``.

    ``PerStepRouter`` decides from the action, risk, prior failures and the budget left;
    then a tier without tool calling is skipped upward (``toolless_tiers="skip"``) or
    answers in text (``"text"``: ``bind_tools`` is False).

    Usage::

        d, bind = route_step(view, policy, "Read the file", tools_bound=True)
    """
    unavailable = dict(unavailable or {})
    ps = PerStepRouter(max_budget=policy.budget, config=policy.config, unavailable=unavailable)
    if view.spent:
        ps.record_spend(min(view.spent, policy.budget))
    d = ps.route_step(
        action,
        view.steps + 1,
        has_prior_failures=view.prior_failure,
        task_risk=policy.task_risk,
    )
    bind = tools_bound
    if tools_bound and not d.stop and not takes_tools(d.adjusted_tier):
        if policy.toolless_tiers == "text":
            bind = False
            reason = f"{d.reason}; tier {d.adjusted_tier} has no tool calling: answers in text"
            d = d.model_copy(update={"reason": reason})
        else:
            up = [n for n in TIER_NUMBERS if n > d.adjusted_tier and takes_tools(n)]
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


def escalation_reason(message: Any, confidence: float | None, policy: AgentPolicy) -> str | None:
    """Why an answer should be retried one tier up, or None when it is usable.

    Empty answers, unparseable tool calls (``invalid_tool_calls``) and a confidence below
    ``routing.safety_threshold`` escalate.

    Usage::

        escalation_reason(AIMessage(""), None, policy)   # 'empty answer'
    """
    if getattr(message, "invalid_tool_calls", None):
        return "unparseable tool call"
    if not message_text(message).strip() and not getattr(message, "tool_calls", None):
        return "empty answer"
    threshold = policy.config.routing.safety_threshold
    if confidence is not None and confidence < threshold:
        return f"confidence {confidence:.2f} < safety_threshold {threshold:.2f}"
    return None


def aco_meta(message: Any) -> dict[str, Any]:
    """``response_metadata["aco"]`` of a message (empty when absent)."""
    meta = (getattr(message, "response_metadata", None) or {}).get("aco")
    return dict(meta) if isinstance(meta, Mapping) else {}


def call_cost(message: Any, tier: int, config: ACOConfig) -> tuple[float, int, int]:
    """``(usd, input_tokens, output_tokens)`` of a model answer.

    The ACO router's own cost when present, else the usage at the tier's price.
    """
    from aco_langchain.providers.tiers import cost_usd, estimate_tokens, usage_tokens

    usage = getattr(message, "usage_metadata", None)
    i, o = usage_tokens(usage)  # type: ignore[arg-type]
    if not usage:
        o = estimate_tokens(message_text(message) or " ")
    meta = aco_meta(message)
    if "cost_usd" in meta:
        return float(meta["cost_usd"]), i, o
    return cost_usd(config.tier(tier), i, o), i, o


def model_event(
    message: Any,
    decision: StepDecision,
    policy: AgentPolicy,
    *,
    action: str,
    escalated: bool = False,
    tier: int | None = None,
    extra_cost: float = 0.0,
) -> dict[str, Any]:
    """The ``model`` event of one step (cost from the answer's metadata or usage).

    Usage::

        model_event(ai_message, decision, policy, action="Read the file")
    """
    meta = aco_meta(message)
    t = int(meta.get("tier") or tier or decision.adjusted_tier)
    cost, i, o = call_cost(message, t, policy.config)
    return {
        "type": "model",
        "step": decision.step_num,
        "tier": t,
        "routed_tier": decision.adjusted_tier,
        "model_id": meta.get("model_id") or policy.config.tier(t).model_id,
        "kind": decision.action_kind,
        "action": action[:200],
        "reason": decision.reason,
        "cost": round(cost + extra_cost, 10),
        "input_tokens": i,
        "output_tokens": o,
        "escalated": bool(escalated or meta.get("escalated")),
        "confidence": meta.get("confidence"),
        "task_type": meta.get("task_type"),
        "digest": output_digest(message),
        "tool_calls": [tc.get("name") for tc in getattr(message, "tool_calls", None) or []],
    }


def gate_tool_call(
    view: RunView, policy: AgentPolicy, tool_call: Mapping[str, Any], task_type: str
) -> ToolGateDecision:
    """The tool gate for one tool call of this run (prior calls and budget applied).

    Usage::

        gate_tool_call(view, policy, {"name": "web_search", "args": {}, "id": "1"}, "research")
    """
    name = str(tool_call.get("name"))
    return gate(
        name,
        task_type,
        config=policy.config,
        prior_calls=view.tool_counts.get(name, 0),
        budget_remaining=view.budget_remaining,
    )


def tool_event(
    tool_call: Mapping[str, Any],
    policy: AgentPolicy,
    *,
    step: int,
    success: bool,
    skipped: bool = False,
    reason: str | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """The ``tool`` event of one tool call (skipped calls cost nothing)."""
    name = str(tool_call.get("name"))
    return {
        "type": "tool",
        "step": step,
        "name": name,
        "id": tool_call.get("id"),
        "sig": tool_signature(name, tool_call.get("args")),
        "success": success,
        "skipped": skipped,
        "cost": 0.0 if skipped else tool_cost(name, policy.config),
        "reason": reason,
        "error": error,
    }


def is_critical_call(tool_call: Mapping[str, Any], policy: AgentPolicy) -> bool:
    """Does this tool call need a human's approval (critical risk or a critical action)?"""
    if policy.task_risk == "critical":
        return True
    text = f"{tool_call.get('name')} {json.dumps(tool_call.get('args'), default=str)}"
    return classify_action(text.replace("_", " ")) == "critical"


def approval_granted(value: Any) -> bool:
    """Read a human's resume value: ``True``, ``"approve"``/``"yes"``, ``{"approved": True}``."""
    if isinstance(value, Mapping):
        value = value.get("approved", value.get("approve", value.get("type")))
    if isinstance(value, str):
        return value.strip().lower() in {"approve", "approved", "yes", "y", "accept", "ok"}
    return bool(value)


def verify_gate(view: RunView, policy: AgentPolicy, confidence: float | None) -> VerifyDecision:
    """The verification gate for the run's answer (verifier-call budget applied).

    Usage::

        verify_gate(view, policy, 0.6).needed
    """
    c = 0.5 if confidence is None else max(0.0, min(1.0, float(confidence)))
    return verify(
        policy.task_risk,
        c,
        config=policy.config,
        verifier_calls=view.verifier_calls,
        total_steps=max(view.steps, 1),
    )


def verifier_tier(policy: AgentPolicy, answer_tier: int) -> int:
    """The verifier's tier: ``policy.verifier_tier`` or one above the answer's, at least 3."""
    if policy.verifier_tier is not None:
        return policy.verifier_tier
    return min(max(TIER_NUMBERS), max(answer_tier + 1, 3))


def parse_verdict(text: str) -> tuple[bool | None, str]:
    """``(passed, why)`` from a verifier's reply; ``passed`` None when it says neither.

    Usage::

        parse_verdict("PASS\\nthe numbers add up")   # (True, 'the numbers add up')
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


def stop_message_text(kind: str, reason: str) -> str:
    """The final message of a run the controls ended."""
    return f"Stopped by the agent cost optimizer ({kind}): {reason}"


def doom_or_stop(view: RunView) -> tuple[str, str] | None:
    """``(kind, reason)`` when the run must end now (doomed or over budget), else None."""
    verdict = view.doom()
    if verdict.doomed:
        return str(verdict.kind), verdict.reason
    return None


def request_text(messages: Sequence[Any]) -> str:
    """The task: the first human message's text (else the last message's)."""
    for m in messages:
        if getattr(m, "type", None) == "human":
            return message_text(m)
    return message_text(messages[-1]) if messages else ""


__all__ = [
    "EVENT_STOP",
    "EVENT_VERDICT",
    "VERIFIER_PROMPT",
    "VERIFIER_TAG",
    "AgentPolicy",
    "RunView",
    "aco_meta",
    "answer_confidence",
    "approval_granted",
    "call_cost",
    "default_step_action",
    "digest",
    "doom_or_stop",
    "escalation_reason",
    "gate_tool_call",
    "is_critical_call",
    "merge_events",
    "message_text",
    "model_event",
    "output_digest",
    "parse_verdict",
    "request_text",
    "route_step",
    "stop_message_text",
    "tier_takes_tools",
    "tool_event",
    "verifier_tier",
    "verify_gate",
]
