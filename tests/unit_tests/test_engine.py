"""The agent engine's pure decisions: one critical-word list, the escalation flow, approval."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage

from aco_langchain.agent.checks import apply_approval, gate_tool_calls, is_critical_call
from aco_langchain.agent.engine import RunView, TierCall, drive, plan_step, step_flow
from aco_langchain.agent.per_step import classify_action
from aco_langchain.agent.policy import AgentPolicy, run_settings
from aco_langchain.config import ACOConfig
from aco_langchain.errors import ConfigError
from aco_langchain.routing.markers import CRITICAL_WORDS
from aco_langchain.routing.rules import text_signals

CFG = ACOConfig(router="rules")


@pytest.mark.parametrize("word", sorted(CRITICAL_WORDS))
def test_routing_risk_steps_and_approval_share_one_word_list(word: str) -> None:
    # the same word makes a prompt critical risk, a step critical, and a tool call need approval
    assert text_signals(f"please {word} it now")[1] == "critical"
    assert classify_action(f"{word} the service") == "critical"
    policy = AgentPolicy(config=CFG, task_risk="low", human_approval=True)
    assert is_critical_call({"name": f"{word}_thing", "args": {}, "id": "1"}, policy)


def test_ordinary_words_are_not_critical_anywhere() -> None:
    text = "merge the two sorted lists and release notes"
    assert text_signals(text)[1] is None
    assert classify_action(text) != "critical"
    policy = AgentPolicy(config=CFG, task_risk="low")
    assert not is_critical_call({"name": "merge_lists", "args": {"a": "release"}}, policy)


def _plan(policy: AgentPolicy, spent: float = 0.0):  # type: ignore[no-untyped-def]
    view = RunView.from_events([{"type": "turn", "run_key": "r"}], policy, spent=spent)
    return plan_step(view, policy, [], run_key="r", step_action=lambda _m, _r: "Fix the bug")


def test_step_flow_escalates_one_tier_per_unusable_answer() -> None:
    policy = AgentPolicy(config=CFG, max_escalations=2)
    plan = _plan(policy)
    seen: list[TierCall] = []
    answers = iter([AIMessage(""), AIMessage(""), AIMessage("done")])

    def call(c: TierCall) -> AIMessage:
        seen.append(c)
        return next(answers)

    outcome = drive(step_flow(plan, lambda _t: True), call)
    assert [c.tier for c in seen] == [3, 4, 5]
    assert [c.escalated_because for c in seen] == [None, "empty answer", "empty answer"]
    assert outcome.event["tier"] == 5 and outcome.event["escalated"]
    assert outcome.message.response_metadata["aco_step"]["tier"] == 5


def test_step_flow_stops_at_max_escalations() -> None:
    plan = _plan(AgentPolicy(config=CFG, max_escalations=0))
    outcome = drive(step_flow(plan, lambda _t: True), lambda _c: AIMessage(""))
    assert len(outcome.attempts) == 1 and not outcome.event["escalated"]


def test_the_budget_comes_from_the_spent_number_given() -> None:
    cfg = ACOConfig(router="rules", agent={"on_low_budget": "stop"})
    policy = AgentPolicy(config=cfg, max_budget=1.0)
    assert not hasattr(_plan(policy, spent=0.1), "event")  # a plan, not a stop
    stop = _plan(policy, spent=0.99)
    assert stop.event["kind"] == "budget_low"


def test_one_approval_for_all_critical_calls_and_a_rejection() -> None:
    policy = AgentPolicy(config=CFG, task_risk="low", human_approval=True)
    view = RunView.from_events([], policy, spent=0.0)
    calls = [
        {"name": "deploy_service", "args": {"name": "api"}, "id": "a", "type": "tool_call"},
        {"name": "read_file", "args": {"path": "x"}, "id": "b", "type": "tool_call"},
    ]
    gate = gate_tool_calls(view, policy, calls, known_tools={"deploy_service", "read_file"})
    assert gate.approval is not None
    assert [c["name"] for c in gate.approval["tool_calls"]] == ["deploy_service"]
    rejected = apply_approval(gate, {"approved": False, "reason": "freeze"}, policy, 1)
    assert [c["id"] for c in rejected.allowed] == ["b"]
    assert "rejected by a human: freeze" in rejected.messages[-1].content
    assert apply_approval(gate, "approve", policy, 1).allowed == gate.allowed


def test_settings_context_wins_over_configurable_and_bad_values_are_clear() -> None:
    s = run_settings({"task_risk": "high"}, {"aco_task_risk": "low", "aco_max_budget": 0.2})
    assert s == {"task_risk": "high", "max_budget": 0.2}
    with pytest.raises(ConfigError, match="aco_task_risk"):
        AgentPolicy(config=CFG).with_settings({"task_risk": "extreme"})  # type: ignore[typeddict-item]
    with pytest.raises(ConfigError, match="tool_tiers"):
        AgentPolicy(config=CFG, tool_tiers=frozenset({0}))
