"""Tool gate and verification gate: decisions a user would see, with reasons."""

from __future__ import annotations

import pytest

from aco_langchain.agent.gates import gate, tool_cost, tool_kind, verify
from aco_langchain.config import ACOConfig
from tests.prices import at_seed_prices  # the gate weighs a tool's cost against tier prices


def test_a_tool_with_no_configured_cost_runs_whatever_its_usefulness():
    for name, task in (("count_messages", "general"), ("web_search", "quick_answer")):
        d = gate(name, task, prior_calls=3, budget_remaining=0.0)
        assert d.allowed and d.cost == 0.0 and "no cost configured" in d.reason


def test_a_priced_tool_is_weighed_and_the_decline_names_the_setting():
    cfg = at_seed_prices(agent={"tool_costs": {"web_search": 0.01}})
    assert gate("web_search", "research", config=cfg).allowed
    no = gate("web_search", "quick_answer", config=cfg)
    assert not no.allowed and "unlikely to help" in no.reason
    assert "agent.tool_costs['web_search']" in no.reason


def test_tool_costs_come_from_config():
    cfg = at_seed_prices(agent={"tool_costs": {"web_search": 5.0}})
    assert tool_cost("web_search", cfg) == 5.0
    assert tool_cost("web_search") == 0.0
    d = gate("web_search", "research", config=cfg)
    assert not d.allowed and "EV" in d.reason and d.cost == 5.0
    assert "agent.tool_costs['web_search'] = $5.0000" in d.reason


def test_repeated_calls_lose_value_and_budget_is_respected():
    cfg = at_seed_prices(agent={"tool_costs": {"web_search": 0.01}})
    assert gate("web_search", "research", config=cfg, prior_calls=1).allowed
    third = gate("web_search", "research", config=cfg, prior_calls=2)
    assert not third.allowed and "prior call" in third.reason
    broke = gate("web_search", "research", config=cfg, budget_remaining=0.001)
    assert not broke.allowed and "remaining budget" in broke.reason
    assert "max_budget" in broke.reason


def test_an_identical_failed_call_is_not_repeated_unless_retries_are_allowed():
    d = gate("run_tests", "coding", identical_failures=1)
    assert not d.allowed and "agent.max_identical_retries is 0" in d.reason
    assert gate("run_tests", "coding", identical_failures=0).allowed
    cfg = ACOConfig(agent={"max_identical_retries": 1})
    assert gate("run_tests", "coding", config=cfg, identical_failures=1).allowed
    assert not gate("run_tests", "coding", config=cfg, identical_failures=2).allowed


def test_tool_kinds_from_names():
    assert tool_kind("code_search") == "code"
    assert tool_kind("web_search") == "search"
    assert tool_kind("read_file") == "files"
    assert tool_kind("tools") == "other"  # 'ls' must be a whole name part


@pytest.mark.parametrize(
    ("risk", "confidence", "needed"),
    [
        ("high", 0.7, True),
        ("high", 0.95, False),
        ("low", 0.6, False),
        ("medium", 0.6, True),
        ("critical", 0.99, True),
    ],
)
def test_verify_bars_by_risk(risk, confidence, needed):
    assert verify(risk, confidence).needed is needed


def test_verifier_budget_limits_the_call_rate():
    # ratio 0.5: after 2 verified of 3 steps another call would make 3/3
    d = verify("medium", 0.5, verifier_calls=2, total_steps=3)
    assert not d.needed and not d.budget_ok and "verifier budget" in d.reason
    assert verify("medium", 0.5, verifier_calls=1, total_steps=4).needed
    # critical is verified whatever the budget
    assert verify("critical", 0.5, verifier_calls=9, total_steps=9).needed


def test_verify_rejects_bad_input():
    with pytest.raises(ValueError, match="risk"):
        verify("extreme", 0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="confidence"):
        verify("low", 1.5)


def test_a_prediction_is_weaker_evidence_than_the_answers_confidence() -> None:
    # a nonsense answer the router predicted at 0.98 is still verified at medium/high risk
    assert verify("medium", predicted_success=0.98).needed
    assert verify("high", predicted_success=0.98).needed
    d = verify("low", predicted_success=0.98)
    assert not d.needed and d.evidence == "prediction" and "predicted_success" in d.reason
    # the answer's own confidence wins over the prediction, both ways
    assert not verify("medium", 0.95, predicted_success=0.1).needed
    assert verify("medium", 0.2, predicted_success=0.99).needed
    assert verify("low").evidence == "none"
    with pytest.raises(ValueError, match="predicted_success"):
        verify("low", predicted_success=1.5)
