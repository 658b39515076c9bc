"""PerStepRouter: routine steps go cheap, failures escalate, risk floors, budget."""

from __future__ import annotations

import pytest

from aco_langchain.agent.per_step import PerStepRouter, classify_action
from aco_langchain.agent.per_step import PerStepRouter as SeedAlias
from aco_langchain.config import ACOConfig
from tests.prices import at_seed_prices


def test_seed_alias_module():
    assert SeedAlias is PerStepRouter


def test_routine_steps_de_escalate_to_local():
    ps = PerStepRouter(max_budget=2.0)
    for i, action in enumerate(["Read auth.py", "Search the docs", "List the files"], 1):
        d = ps.route_step(action, i, has_prior_failures=False, task_risk="medium")
        assert d.adjusted_tier == 1 and d.model_id == "tiny-local-3b" and d.cost_estimate == 0.0
    assert ps.total_spent == 0.0 and ps.budget_remaining == 2.0


def test_prior_failures_escalate_one_tier():
    ps = PerStepRouter(max_budget=10.0)
    a = ps.route_step("Fix the token check", 1)
    b = ps.route_step("Fix the token check", 2, has_prior_failures=True)
    assert b.adjusted_tier == a.adjusted_tier + 1 and "prior failures" in b.reason


def test_risk_floors_apply_but_routine_reads_stay_cheap():
    ps = PerStepRouter(max_budget=50.0)
    assert ps.route_step("Fix the token check", 1, task_risk="critical").adjusted_tier == 5
    assert ps.route_step("Read the logs", 2, task_risk="critical").adjusted_tier == 2
    assert ps.route_step("Fix the typo", 3, task_risk="high").adjusted_tier == 3


def test_estimates_are_reserved_until_actual_spend_replaces_them():
    ps = PerStepRouter(max_budget=2.0)
    d = ps.route_step("Fix the token check", 1)
    assert ps.total_spent == pytest.approx(d.cost_estimate)
    ps.record_spend(0.1, step_num=1)
    assert ps.total_spent == pytest.approx(0.1)
    ps.record_spend(0.05)  # a tool call outside routed steps
    assert ps.total_spent == pytest.approx(0.15)
    assert ps.budget_remaining == pytest.approx(1.85)


def test_budget_steps_down_then_drops_to_local():
    ps = PerStepRouter(max_budget=1.0, config=at_seed_prices())
    d = ps.route_step("Deploy the fix", 1)  # tier 4 estimate $3.50 does not fit
    assert d.adjusted_tier < 4 and "remaining" in d.reason
    ps.record_spend(0.98, step_num=1)
    d2 = ps.route_step("Fix the token check", 2)
    assert d2.adjusted_tier == 1 and "on_low_budget=local" in d2.reason and not d2.stop


def test_budget_stop_policy():
    ps = PerStepRouter(max_budget=1.0, config=at_seed_prices(agent={"on_low_budget": "stop"}))
    ps.record_spend(0.99)
    d = ps.route_step("Fix the token check", 1)
    assert d.stop and "stop" in d.reason
    assert ps.total_spent == pytest.approx(0.99)  # nothing reserved for a stopped step


def test_unavailable_tier_gives_way():
    ps = PerStepRouter(max_budget=10.0, unavailable={3: "no OPENAI_API_KEY"})
    d = ps.route_step("Fix the token check", 1)
    assert d.adjusted_tier == 4 and "unavailable" in d.reason


def test_classify_and_validation():
    assert classify_action("Read the file then deploy") == "critical"
    assert classify_action("Run the tests") == "verify"
    assert classify_action("Plan the migration steps") == "plan"  # planning is not migrating
    with pytest.raises(ValueError, match="task_risk"):
        PerStepRouter().route_step("x", 1, task_risk="extreme")
    with pytest.raises(ValueError, match="max_budget"):
        PerStepRouter(max_budget=-1)


def test_default_budget_is_the_configs_max_cost_per_task():
    assert PerStepRouter().max_budget == ACOConfig().routing.max_cost_per_task
