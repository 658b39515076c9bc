"""One decision pipeline for chat calls and agent steps (routing/pipeline.py)."""

from __future__ import annotations

from aco_langchain.agent.per_step import decide_step
from aco_langchain.config import ACOConfig
from aco_langchain.routing import RouteRequest, RuleRouter, decide
from aco_langchain.routing.base import Assessment
from aco_langchain.routing.pipeline import STAGES, RouteInputs, StageRules, run_stages
from tests.prices import at_seed_prices


class _SpyRouter:
    """Suggests tier 3 but predicts the local tier good enough; counts its assessments."""

    name = "spy"

    def __init__(self) -> None:
        self.calls = 0

    def assess(self, request: RouteRequest, config: ACOConfig) -> Assessment:
        self.calls += 1
        return Assessment(
            task_type="general",
            difficulty=3,
            complexity="moderate",
            suggested_tier=3,
            confidence=0.97,
            p_success={1: 0.95, 2: 0.96, 3: 0.97, 4: 0.98, 5: 0.99},
            reason="spy: tier 3",
            router=self.name,
        )


def test_stages_are_named_in_their_order() -> None:
    assert [s.__name__ for s in STAGES] == [
        "tools",
        "floors",
        "escalation",
        "quality",
        "safety",
        "local_first",
        "context",
        "hard_constraints",
        "budget",
        "availability",
    ]


def test_an_unclassified_step_goes_through_the_router_and_the_call_thresholds() -> None:
    spy = _SpyRouter()
    d = decide_step(ACOConfig(), "Ponder the quarterly numbers", 1, max_budget=5.0, spent=0.0,
                    router=spy)  # fmt: skip
    assert spy.calls == 1 and d.action_kind == "other" and d.base_tier == 3
    # the same local-first stage as a chat call with the same assessment
    assert d.adjusted_tier == 1 and "local-first" in d.reason
    call = decide(spy.assess(RouteRequest.from_text("x"), ACOConfig()),
                  RouteRequest.from_text("x"), ACOConfig())  # fmt: skip
    assert call.tier == 1 and "local-first" in call.reason


def test_a_classified_step_does_not_consult_the_router() -> None:
    spy = _SpyRouter()
    d = decide_step(ACOConfig(), "Fix the null check", 1, max_budget=5.0, spent=0.0, router=spy)
    assert spy.calls == 0 and d.adjusted_tier == 3 and d.reason.startswith("edit step -> tier 3")


def test_the_reason_is_the_stages_reasons_in_order() -> None:
    cfg = ACOConfig()
    req = RouteRequest.from_text("Fix the auth bug", risk="critical")
    a = RuleRouter().assess(req, cfg)
    draft = run_stages(RouteInputs.build(a, req, cfg, rules=StageRules.for_call(cfg, req, 0.0)))
    assert decide(a, req, cfg).reason == "; ".join(draft.reasons)
    assert draft.tier == 5 and any(r.startswith("risk critical floor>=5") for r in draft.reasons)


def test_a_step_and_a_call_share_the_budget_stage() -> None:
    cfg = at_seed_prices()
    step = decide_step(cfg, "Deploy the fix", 1, max_budget=0.01, spent=0.0)
    assert step.adjusted_tier < 4 and "budget" in step.reason
    spent = decide_step(cfg, "Deploy the fix", 2, max_budget=1.0, spent=1.0)
    assert spent.adjusted_tier == 1 and "agent.on_low_budget=local" in spent.reason
