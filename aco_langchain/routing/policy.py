"""The decision rule shared by every router: from an Assessment to a RouteDecision.

Order of application (each step says itself in the decision's ``reason``):

1. ``force_tier`` / ``force_model`` win over everything but availability.
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
    one, up first then down; ``strict`` raises instead.

Usage::

    decision = decide(assessment, request, cfg, unavailable={2: "no OPENAI_API_KEY"})
"""

from __future__ import annotations

from collections.abc import Mapping

from aco_langchain.config import TIER_NUMBERS, ACOConfig
from aco_langchain.errors import BudgetExceededError, RoutingError, TierUnavailableError
from aco_langchain.providers.tiers import DEFAULT_OUTPUT_TOKENS, cost_usd, estimate_tokens
from aco_langchain.routing.base import Assessment, RouteDecision, RouteRequest

RISK_FLOORS = {"low": 1, "medium": 1, "high": 3, "critical": 5}


def estimate_call_cost(config: ACOConfig, tier: int, request: RouteRequest) -> float:
    """USD estimate for sending ``request`` to ``tier`` (approximate token counts)."""
    out_tokens = request.expected_output_tokens or DEFAULT_OUTPUT_TOKENS
    return cost_usd(config.tier(tier), estimate_tokens(request.text), out_tokens)


def nearest_available(tier: int, unavailable: Mapping[int, str], allowed: set[int]) -> int | None:
    """The nearest tier that is available and allowed: up first, then down."""
    for n in [t for t in TIER_NUMBERS if t >= tier] + [
        t for t in reversed(TIER_NUMBERS) if t < tier
    ]:
        if n in allowed and n not in unavailable:
            return n
    return None


def _p(assessment: Assessment, tier: int) -> float | None:
    return assessment.p_success.get(tier)


def decide(
    assessment: Assessment,
    request: RouteRequest,
    config: ACOConfig,
    *,
    unavailable: Mapping[int, str] | None = None,
    spent_usd: float = 0.0,
) -> RouteDecision:
    """Apply constraints, floors, thresholds, budget and availability to an assessment."""
    unavailable = dict(unavailable or {})
    c = request.constraints
    rs = config.routing
    task_type = c.task_type or assessment.task_type
    reasons: list[str] = [assessment.reason] if assessment.reason else []
    allowed = set(TIER_NUMBERS)
    if request.n_tools:
        no_tools = {n for n in TIER_NUMBERS if not config.tier(n).supports_tools}
        allowed -= no_tools
        if no_tools:
            reasons.append(f"tools bound: skip tier(s) {sorted(no_tools)} without tool calling")

    forced: int | None = c.force_tier
    if c.force_model is not None:
        forced = config.tier_of_model(c.force_model)
        if forced is None:
            raise RoutingError(
                f"force_model={c.force_model!r} names no tier: use one of "
                + ", ".join(config.tier(n).model_id for n in TIER_NUMBERS)
            )
    if forced is not None:
        tier = forced
        reasons = [f"forced tier {forced}"]
        allowed.add(forced)
    else:
        tier = assessment.suggested_tier
        floor = config.floor_for(task_type)
        risk = c.risk or assessment.risk
        risk_floor = RISK_FLOORS.get(risk or "low", 1)
        if floor > tier:
            reasons.append(f"task floor {task_type}>={floor}")
            tier = floor
        if risk_floor > tier:
            inferred = "" if c.risk else " (inferred from the request)"
            reasons.append(f"risk {risk}{inferred} floor>={risk_floor}")
            tier = risk_floor
        floor = max(floor, risk_floor)

        if c.min_quality is not None and assessment.p_success:
            meets = [
                n for n in TIER_NUMBERS if n >= floor and (_p(assessment, n) or 0) >= c.min_quality
            ]
            if meets:
                if meets[0] != tier:
                    reasons.append(f"min_quality {c.min_quality:.2f} -> tier {meets[0]}")
                tier = meets[0]
            else:
                tier = max(TIER_NUMBERS)
                reasons.append(f"no tier predicted >= min_quality {c.min_quality:.2f}: top tier")

        p_here = _p(assessment, tier)
        if p_here is not None and p_here < rs.safety_threshold:
            safer = [
                n
                for n in TIER_NUMBERS
                if n > tier and (_p(assessment, n) or 0) >= rs.safety_threshold
            ]
            new = safer[0] if safer else max(TIER_NUMBERS)
            reasons.append(
                f"p(t{tier})={p_here:.2f} < safety_threshold {rs.safety_threshold:.2f}"
                f" -> tier {new}"
            )
            tier = new

        p_local = _p(assessment, 1)
        if (
            rs.prefer_local
            and tier > 1
            and floor <= 1
            and p_local is not None
            and p_local >= rs.downgrade_threshold
        ):
            reasons.append(
                f"local-first: p(t1)={p_local:.2f}"
                f" >= downgrade_threshold {rs.downgrade_threshold:.2f}"
            )
            tier = 1

        if c.max_cost_usd is not None:
            while tier > 1 and estimate_call_cost(config, tier, request) > c.max_cost_usd:
                tier -= 1
            if estimate_call_cost(config, tier, request) > c.max_cost_usd:
                raise RoutingError(
                    f"max_cost_usd={c.max_cost_usd} is below the cheapest tier's estimate "
                    f"(${estimate_call_cost(config, tier, request):.6f}): raise max_cost_usd"
                )
            reasons.append(f"max_cost_usd {c.max_cost_usd} -> tier<={tier}")
        if c.max_latency_ms is not None:
            before = tier
            while tier > 1 and config.tier(tier).avg_latency_ms > c.max_latency_ms:
                tier -= 1
            if tier != before:
                reasons.append(f"max_latency_ms {c.max_latency_ms:g} -> tier {tier}")

    budget_exceeded = False
    if spent_usd >= rs.max_cost_per_task:
        if rs.on_budget_exceeded == "raise":
            raise BudgetExceededError(
                f"run budget spent: ${spent_usd:.4f} of max_cost_per_task "
                f"${rs.max_cost_per_task:.4f} (raise routing.max_cost_per_task or start a new run)"
            )
        reasons.append(
            f"budget_exceeded (${spent_usd:.4f} >= ${rs.max_cost_per_task}): forced local"
        )
        tier = (
            min(n for n in TIER_NUMBERS if config.tier(n).is_local)
            if any(config.tier(n).is_local for n in TIER_NUMBERS)
            else 1
        )
        budget_exceeded = True
    else:
        # Never start a call projected to overrun the run's budget: step down until it fits.
        remaining = rs.max_cost_per_task - spent_usd
        before = tier
        while tier > 1 and estimate_call_cost(config, tier, request) > remaining:
            tier -= 1
        if tier != before:
            reasons.append(f"budget remaining ${remaining:.4f} -> tier {tier}")

    if tier not in allowed or tier in unavailable:
        why = unavailable.get(tier, "no tool calling")
        if rs.strict:
            raise TierUnavailableError(
                f"tier {tier} ({config.tier(tier).model_id}) is unavailable: {why} "
                "(set routing.strict: false to fall back to the nearest tier)"
            )
        nearest = nearest_available(tier, unavailable, allowed)
        if nearest is None:
            raise TierUnavailableError(
                "no tier is available: "
                + "; ".join(f"tier {n}: {w}" for n, w in sorted(unavailable.items()))
                + " (start the local model with `aco local-model start` or set an API key)"
            )
        reasons.append(f"tier {tier} unavailable ({why}) -> tier {nearest}")
        tier = nearest

    confidence = _p(assessment, tier)
    if confidence is None:
        confidence = assessment.confidence
    return RouteDecision(
        tier=tier,
        model_id=config.tier(tier).model_id,
        confidence=max(0.0, min(1.0, confidence)),
        reason="; ".join(r for r in reasons if r),
        cost_estimate=round(estimate_call_cost(config, tier, request), 6),
        task_type=task_type,
        difficulty=assessment.difficulty,
        complexity=assessment.complexity,
        unavailable={n: w for n, w in unavailable.items()},
        budget_exceeded=budget_exceeded,
    )
