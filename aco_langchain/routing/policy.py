"""The decision rule shared by every router: from an Assessment to a RouteDecision.

``decide`` runs the decision pipeline (``routing/pipeline.py``: one small pure function per
stage) with a chat call's rules; agent steps run the same stages with theirs
(``agent/per_step.py``). Order of application (each stage says itself in the decision's
``reason``):

0. Context: the prompt's token estimate plus the output cap (``max_tokens``, else
   ``routing.max_output_tokens``) must fit a tier's ``max_context``; tiers it does not fit are
   never chosen (a call routed to one goes up to the first that fits), and when none fits
   ``ContextTooLongError`` names the sizes.
1. ``force_tier`` / ``force_model`` win over everything but availability, and need no
   assessment (``decide(None, ...)``: the router is not consulted at all; the task type is
   the keyword rules' ``text_signals``).
2. Start at the router's ``suggested_tier``.
3. Floors raise the tier: the config's ``task_floors`` for the task type, and risk floors
   (high -> 3, critical -> 5, seed 3's "critical: specialists"). The risk is the per-call
   ``risk`` or else the one the router inferred (seed 3's critical markers).
4. ``min_quality``: the cheapest tier at or above the floor whose predicted success meets it.
5. ``safety_threshold``: a tier whose predicted success is below it is not trusted; move up
   to the first tier that clears it (when predictions exist).
6. ``downgrade_threshold`` with ``prefer_local``: when the local tier's predicted success is at
   or above it and no floor forbids, take the local tier (local-first).
7. Hard constraints (seed 3: "hard constraints"): ``max_cost_usd`` and ``max_latency_ms`` move
   down to the highest tier that fits, even below a floor (the reason says so).
8. Tools bound: tiers without the ``tools`` capability are skipped.
9. Run budget: once a run has spent ``max_cost_per_task``, ``on_budget_exceeded`` decides:
   force the local tier, or raise ``BudgetExceededError``.
10. Availability: an unavailable tier (no key, server down) gives way to the nearest available
    one, up first then down; ``strict`` raises instead. Going *down* is a degradation: it is
    allowed by default only for unforced calls without a risk floor (``routing.allow_degrade``
    changes that), says ``degraded_from``, and otherwise raises ``TierUnavailableError``.

Usage::

    decision = decide(assessment, request, cfg, unavailable={2: "no OPENAI_API_KEY"})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, get_args

from aco_langchain.config import ACOConfig
from aco_langchain.routing.base import Assessment, Complexity, RouteDecision, RouteRequest
from aco_langchain.routing.limits import (
    RISK_FLOORS,
    context_tokens,
    estimate_call_cost,
    forced_tier,
    nearest_available,
    needs_assessment,
    no_tier_message,
    output_cap,
    tiers_that_fit,
)
from aco_langchain.routing.pipeline import RouteInputs, StageRules, run_stages


def decide(
    assessment: Assessment | None,
    request: RouteRequest,
    config: ACOConfig,
    *,
    unavailable: Mapping[int, str] | None = None,
    spent_usd: float = 0.0,
) -> RouteDecision:
    """Apply context, constraints, floors, thresholds, budget and availability.

    Args:
        assessment: the router's view of the request; None only for a forced call
            (``needs_assessment(request)`` is False).
        request: the call.
        config: tiers, floors and thresholds.
        unavailable: tiers that cannot be called now, with why.
        spent_usd: what the call's run has spent so far.

    Returns:
        The decision, with every step that changed the tier in ``reason``.

    Raises:
        ContextTooLongError: the prompt and output cap fit no (allowed) tier.
        TierUnavailableError: no tier is available, ``strict`` is set, or serving the call
            would go below a forced tier or a risk floor (see ``routing.allow_degrade``).
        BudgetExceededError: the run's budget is spent and ``on_budget_exceeded: raise``.
        RoutingError: ``max_cost_usd`` is below every tier, or ``force_model`` is unknown.

    Example:
        ```python
        a = RuleRouter().assess(req, cfg)
        decide(a, req, cfg, unavailable={2: "no OPENAI_API_KEY"}, spent_usd=0.1).tier
        ```
    """
    inputs = RouteInputs.build(
        assessment,
        request,
        config,
        rules=StageRules.for_call(config, request, spent_usd),
        unavailable=unavailable,
    )
    d = run_stages(inputs)
    unforced = assessment if inputs.forced is None else None
    confidence: float | None = None
    if unforced is not None:
        p = unforced.p_success.get(d.tier)
        confidence = max(0.0, min(1.0, unforced.confidence if p is None else p))
    values = {
        "tier": d.tier,
        "model_id": config.tier(d.tier).model_id,
        "confidence": confidence,
        "reason": "; ".join(r for r in d.reasons if r),
        "cost_estimate": round(estimate_call_cost(config, d.tier, request), 6),
        "task_type": d.task_type,
        "difficulty": unforced.difficulty if unforced is not None else None,
        "complexity": unforced.complexity if unforced is not None else None,
        "unavailable": dict(inputs.unavailable),
        "budget_exceeded": d.budget_exceeded,
        "forced": inputs.forced is not None,
        "degraded_from": d.degraded_from,
        "lowest_tier": min(d.lowest, d.tier),
        "context_tokens": inputs.need,
    }
    if _well_formed(values):
        return RouteDecision.trusted(values)
    return RouteDecision(**values)


_COMPLEXITIES = frozenset({None, *get_args(Complexity)})


def _well_formed(values: dict[str, Any]) -> bool:
    """Every value is the pipeline's own (tiers 1-5, a clamped confidence, a rounded cost)
    but the assessment's task, difficulty and complexity and the caller's ``unavailable``:
    when those have their exact types too, the decision needs no second validation pass;
    else it validates (coercing, or raising on a custom router's malformed assessment, as
    ever)."""
    diff = values["difficulty"]
    return (
        (diff is None or (type(diff) is int and 1 <= diff <= 5))
        and values["complexity"] in _COMPLEXITIES
        and type(values["task_type"]) is str
        and all(type(k) is int and type(v) is str for k, v in values["unavailable"].items())
    )


__all__ = [
    "RISK_FLOORS",
    "context_tokens",
    "decide",
    "estimate_call_cost",
    "forced_tier",
    "nearest_available",
    "needs_assessment",
    "no_tier_message",
    "output_cap",
    "tiers_that_fit",
]
