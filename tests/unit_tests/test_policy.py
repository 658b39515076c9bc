from __future__ import annotations

import pytest

from aco_langchain.config import ACOConfig, config_from_dict
from aco_langchain.errors import BudgetExceededError, RoutingError, TierUnavailableError
from aco_langchain.routing import Assessment, RouteRequest, RuleRouter, decide, route
from tests.prices import at_seed_prices

CFG = at_seed_prices(router="rules")  # the budget figures assume the seed's prices


def _assessment(
    tier: int = 2, p: dict[int, float] | None = None, task: str = "general"
) -> Assessment:
    return Assessment(
        task_type=task,
        difficulty=2,
        complexity="simple",
        suggested_tier=tier,
        confidence=0.8,
        p_success=p or {1: 0.6, 2: 0.8, 3: 0.9, 4: 0.95, 5: 0.96},
    )


def test_seed_examples() -> None:
    r = RuleRouter()
    prod = route(RouteRequest.from_text("Fix the auth bug in production"), CFG, router=r)
    assert prod.tier == 5 and prod.model_id == "specialist-expert"
    simple = route(RouteRequest.from_text("What is 2+2?"), CFG, router=r)
    assert simple.tier <= 2


def test_task_floor_raises_tier() -> None:
    d = decide(_assessment(1, task="coding"), RouteRequest.from_text("x"), CFG)
    assert d.tier == 3 and "task floor coding>=3" in d.reason


def test_risk_floor_and_force_tier() -> None:
    d = decide(_assessment(1), RouteRequest.from_text("x", risk="critical"), CFG)
    assert d.tier == 5
    forced = decide(_assessment(5), RouteRequest.from_text("x", force_tier=2), CFG)
    assert forced.tier == 2 and forced.reason.startswith("forced")
    by_model = decide(_assessment(5), RouteRequest.from_text("x", force_model="medium-70b"), CFG)
    assert by_model.tier == 3


def test_min_quality_picks_cheapest_tier_meeting_it() -> None:
    d = decide(_assessment(1), RouteRequest.from_text("x", min_quality=0.92), CFG)
    assert d.tier == 4


def test_safety_threshold_escalates_untrusted_tier() -> None:
    a = _assessment(1, p={1: 0.1, 2: 0.2, 3: 0.5, 4: 0.9, 5: 0.9})
    d = decide(a, RouteRequest.from_text("x"), CFG)
    assert d.tier == 3 and "safety_threshold" in d.reason


def test_downgrade_threshold_goes_local_first() -> None:
    a = _assessment(3, p={1: 0.95, 2: 0.96, 3: 0.97, 4: 0.98, 5: 0.99})
    assert decide(a, RouteRequest.from_text("x"), CFG).tier == 1
    no_local = config_from_dict({"routing": {"prefer_local": False}})
    assert decide(a, RouteRequest.from_text("x"), no_local).tier == 3


def test_max_cost_is_a_hard_constraint() -> None:
    req = RouteRequest.from_text("x" * 4000, max_cost_usd=0.01)
    d = decide(_assessment(5), req, CFG)
    assert d.cost_estimate <= 0.01 and d.tier < 5
    with pytest.raises(RoutingError, match="max_cost_usd"):
        decide(
            _assessment(5),
            RouteRequest.from_text("x", max_cost_usd=0.0),
            config_from_dict(
                {
                    "models": {
                        "tier1": {
                            "model_id": "paid",
                            "provider": "openai",
                            "cost_per_1k_input": 1.0,
                            "cost_per_1k_output": 1.0,
                        }
                    }
                }
            ),
        )


def test_latency_constraint() -> None:
    d = decide(_assessment(5), RouteRequest.from_text("x", max_latency_ms=700), CFG)
    assert CFG.tier(d.tier).avg_latency_ms <= 700


def test_budget_exceeded_forces_local_or_raises() -> None:
    d = decide(_assessment(4), RouteRequest.from_text("x"), CFG, spent_usd=5.0)
    assert d.tier == 1 and d.budget_exceeded
    raising = config_from_dict({"routing": {"on_budget_exceeded": "raise"}})
    with pytest.raises(BudgetExceededError, match="max_cost_per_task"):
        decide(_assessment(4), RouteRequest.from_text("x"), raising, spent_usd=5.0)


def test_projected_overrun_steps_down() -> None:
    req = RouteRequest.from_text("y" * 3000)
    d = decide(_assessment(5), req, CFG, spent_usd=4.99)
    assert d.cost_estimate <= 0.01 + 1e-9 and "budget remaining" in d.reason
    # a prompt too long for the local tier's context steps down only to tiers it fits
    long = decide(_assessment(5), RouteRequest.from_text("y" * 40000), CFG, spent_usd=4.99)
    assert long.tier == 2 and long.context_tokens > CFG.tier(1).max_context


def test_unavailable_tier_goes_to_nearest_up_then_down() -> None:
    d = decide(_assessment(3), RouteRequest.from_text("x"), CFG, unavailable={3: "no key"})
    assert d.tier == 4 and "unavailable" in d.reason
    d = decide(
        _assessment(5), RouteRequest.from_text("x"), CFG, unavailable={5: "no key", 4: "no key"}
    )
    assert d.tier == 3
    strict = config_from_dict({"routing": {"strict": True}})
    with pytest.raises(TierUnavailableError, match="strict"):
        decide(_assessment(3), RouteRequest.from_text("x"), strict, unavailable={3: "no key"})
    with pytest.raises(TierUnavailableError, match="no tier can serve this call"):
        decide(
            _assessment(3),
            RouteRequest.from_text("x"),
            CFG,
            unavailable={n: "down" for n in range(1, 6)},
        )


def test_tools_skip_tiers_without_tool_calling() -> None:
    req = RouteRequest(text="x", n_tools=2)
    no_tools = config_from_dict({"models": {"tier1": {"capabilities": ["chat"]}}})
    d = decide(_assessment(1), req, no_tools)
    assert d.tier >= 2 and no_tools.tier(d.tier).supports_tools
    assert "skip tier(s) [1] without tool calling" in d.reason


def test_the_default_local_tier_calls_tools() -> None:
    """Tier 1 (llama-server) calls tools by constrained decoding: no keys needed for tools."""
    assert {"tools", "structured_output"} <= set(CFG.tier(1).capabilities)
    d = decide(_assessment(1), RouteRequest(text="x", n_tools=2), CFG)
    assert d.tier == 1 and "skip" not in d.reason


def test_learned_router_keeps_the_seed_examples() -> None:
    cfg = ACOConfig()  # the shipped learned router
    prod = route(RouteRequest.from_text("Fix the auth bug in production"), cfg)
    assert prod.tier == 5 and prod.lowest_tier == 5  # the inferred critical floor holds it
    assert route(RouteRequest.from_text("What is 2+2?"), cfg).tier <= 2


def test_explicit_risk_wins_over_inferred() -> None:
    a = _assessment(2, task="coding")
    a.risk = "critical"
    assert decide(a, RouteRequest.from_text("x"), CFG).tier == 5
    assert decide(a, RouteRequest.from_text("x", risk="low"), CFG).tier == 3  # coding floor


@pytest.mark.parametrize(
    ("text", "task", "risk"),
    [
        ("Fix the auth bug in production", "coding", "critical"),
        (
            "Review this contract for GDPR compliance and fix the python code",
            "legal_regulated",
            None,
        ),
        ("Plan the database migration end-to-end", "long_horizon", None),
        ("Research transformer advances", "research", None),
        ("tl;dr of this thread please", "summarization", None),
        ("What is 17 * 23?", "math", None),
        ("Draft an email to the team", "writing", None),
        ("Deploy the payment service", "general", "critical"),
        ("What is the capital of France?", "quick_answer", None),
        ("Refactoring the parser", "coding", None),
    ],
)
def test_text_signals(text: str, task: str, risk: str | None) -> None:
    from aco_langchain.routing.rules import text_signals

    assert text_signals(text) == (task, risk)


def test_no_tier_for_a_tool_bound_call_names_every_tier_and_the_fix() -> None:
    no_tools = config_from_dict({"models": {"tier1": {"capabilities": ["chat"]}}})
    unavailable = {n: "no OPENAI_API_KEY" for n in range(2, 6)}
    with pytest.raises(TierUnavailableError) as err:
        decide(_assessment(2), RouteRequest(text="x", n_tools=2), no_tools, unavailable=unavailable)
    msg = str(err.value)
    assert msg.startswith("no tier can serve this tool-bound call: tier 1 (tiny-local-3b): ")
    assert "tier 1 (tiny-local-3b): no tool calling" in msg
    assert all(f"tier {n} " in msg for n in range(2, 6))
    assert "set OPENAI_API_KEY" in msg and "capabilities" in msg
    assert "aco local-model start" not in msg  # the local model is running: don't say start it
    down = {1: "local model not running (aco local-model start)", **unavailable}
    with pytest.raises(TierUnavailableError, match="fix: start the local model") as err:
        decide(_assessment(2), RouteRequest(text="x", n_tools=1), CFG, unavailable=down)
    assert "no tool calling" not in str(err.value)  # the default tier 1 calls tools
