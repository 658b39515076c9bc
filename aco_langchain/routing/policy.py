"""The decision rule shared by every router: from an Assessment to a RouteDecision.

Order of application (each step says itself in the decision's ``reason``):

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

from collections.abc import Callable, Collection, Mapping

from aco_langchain.config import TIER_NUMBERS, ACOConfig
from aco_langchain.errors import (
    BudgetExceededError,
    ContextTooLongError,
    RoutingError,
    TierUnavailableError,
)
from aco_langchain.pricing import DEFAULT_OUTPUT_TOKENS, cost_usd, estimate_tokens
from aco_langchain.routing.base import Assessment, RouteDecision, RouteRequest
from aco_langchain.routing.rules import text_signals

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


def no_tier_message(
    config: ACOConfig,
    unavailable: Mapping[int, str],
    allowed: set[int],
    request: RouteRequest,
    fit: Collection[int] | None = None,
) -> str:
    """Why no tier can serve ``request``: every tier with its reason, then the fixes.

    Example:
        ```python
        no_tier_message(cfg, {1: "local model not running (aco local-model start)",
                              2: "no OPENAI_API_KEY"}, {1, 2}, request)
        # "no tier can serve this call: tier 1 (tiny-local-3b): local model not running ...;
        #  fix: start the local model ...; or set OPENAI_API_KEY"
        ```
    """
    why: dict[int, str] = {}
    for n in TIER_NUMBERS:
        if n in unavailable:
            why[n] = unavailable[n]
        elif fit is not None and n not in fit:
            why[n] = f"the request does not fit its max_context ({config.tier(n).max_context})"
        elif n not in allowed:
            why[n] = "no tool calling"
    fixes: list[str] = []
    reasons = list(why.values())
    if any("local model not running" in r for r in reasons):
        fixes.append("start the local model with `aco local-model start`")
    keys = sorted({r[3:] for r in reasons if r.startswith("no ") and r[3:].isupper()})
    if keys:
        fixes.append("set " + " or ".join(keys))
    if any(r == "no tool calling" for r in reasons):
        fixes.append(
            "add 'tools' to a tier's capabilities (models.tierN.capabilities) or call without tools"
        )
    if any("cooling down" in r for r in reasons):
        fixes.append("wait for the cooldown (its tier kept failing)")
    what = "this tool-bound call" if request.n_tools else "this call"
    lines = "; ".join(f"tier {n} ({config.tier(n).model_id}): {w}" for n, w in sorted(why.items()))
    return f"no tier can serve {what}: {lines}" + (f"; fix: {'; or '.join(fixes)}" if fixes else "")


def _p(assessment: Assessment, tier: int) -> float | None:
    return assessment.p_success.get(tier)


def output_cap(request: RouteRequest, config: ACOConfig) -> int:
    """The output cap sent to the tier: the call's ``max_tokens``, else
    ``routing.max_output_tokens``."""
    return request.expected_output_tokens or config.routing.max_output_tokens


def context_tokens(request: RouteRequest, config: ACOConfig) -> int:
    """Tokens the call needs in a tier's context: prompt estimate + the output cap."""
    return estimate_tokens(request.text) + output_cap(request, config)


def tiers_that_fit(config: ACOConfig, request: RouteRequest) -> set[int]:
    """The tiers whose ``max_context`` holds ``context_tokens(request, config)``."""
    need = context_tokens(request, config)
    return {n for n in TIER_NUMBERS if need <= config.tier(n).max_context}


def forced_tier(request: RouteRequest, config: ACOConfig) -> int | None:
    """The tier ``force_tier`` / ``force_model`` names, or None when the call is not forced.

    Raises:
        RoutingError: ``force_model`` names no tier of the config.
    """
    c = request.constraints
    if c.force_model is not None:
        tier = config.tier_of_model(c.force_model)
        if tier is None:
            raise RoutingError(
                f"force_model={c.force_model!r} names no tier: use one of "
                + ", ".join(config.tier(n).model_id for n in TIER_NUMBERS)
            )
        return tier
    return c.force_tier


def needs_assessment(request: RouteRequest) -> bool:
    """False for a forced call: the router's assessment would not change its tier."""
    c = request.constraints
    return c.force_tier is None and c.force_model is None


def _context_error(request: RouteRequest, config: ACOConfig, tiers: list[int]) -> str:
    need = context_tokens(request, config)
    sizes = ", ".join(f"tier {n}: {config.tier(n).max_context}" for n in tiers)
    out = output_cap(request, config)
    return (
        f"the prompt (~{need - out} tokens) plus the output cap ({out} tokens) needs ~{need} "
        f"tokens of context, more than {sizes} (max_context): shorten the prompt or its "
        "history, lower max_tokens, or configure a tier with a larger max_context"
    )


def _step_down(tier: int, allowed: set[int], fits: Callable[[int], bool]) -> int:
    """The highest allowed tier at or below ``tier`` that ``fits``; when none does, the
    lowest allowed one (the cheapest the call can go)."""
    below = [n for n in range(tier, 0, -1) if n in allowed]
    for n in below:
        if fits(n):
            return n
    return below[-1] if below else tier


def _lowest_tier(config: ACOConfig, decided: int, protected: int | None) -> int:
    """The lowest tier that may answer a call decided at ``decided``."""
    allow = config.routing.allow_degrade
    if allow is True:
        return 1
    if allow is False:
        return decided
    return protected if protected is not None else 1


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
    unavailable = dict(unavailable or {})
    c = request.constraints
    rs = config.routing
    need = context_tokens(request, config)
    fit = tiers_that_fit(config, request)
    if not fit:
        raise ContextTooLongError(
            _context_error(request, config, list(TIER_NUMBERS)),
            need,
            max(config.tier(n).max_context for n in TIER_NUMBERS),
        )
    reasons: list[str] = []
    allowed = set(fit)
    if request.n_tools:
        no_tools = {n for n in TIER_NUMBERS if not config.tier(n).supports_tools}
        allowed -= no_tools
        if no_tools:
            reasons.append(f"tools bound: skip tier(s) {sorted(no_tools)} without tool calling")

    forced = forced_tier(request, config)
    protected: int | None = None
    if forced is not None:
        if forced not in fit:
            raise ContextTooLongError(
                _context_error(request, config, [forced]) + f" (tier {forced} is forced)",
                need,
                config.tier(forced).max_context,
            )
        tier = forced
        reasons = [f"forced tier {forced} (no assessment)"]
        allowed.add(forced)
        protected = forced
        # No router assessment; the task label comes from the keyword rules (microseconds).
        task_type = c.task_type or text_signals(request.routing_text)[0]
    else:
        if assessment is None:
            raise ValueError("decide() needs an assessment unless the call forces a tier")
        task_type = c.task_type or assessment.task_type
        if assessment.reason:
            reasons.insert(0, assessment.reason)
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
        if risk_floor > 1:
            protected = risk_floor
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
            and 1 in fit
            and p_local is not None
            and p_local >= rs.downgrade_threshold
        ):
            reasons.append(
                f"local-first: p(t1)={p_local:.2f}"
                f" >= downgrade_threshold {rs.downgrade_threshold:.2f}"
            )
            tier = 1

        if tier not in fit:
            up = [n for n in sorted(fit) if n > tier] or sorted(fit, reverse=True)
            reasons.append(
                f"context ~{need} tokens > tier {tier} max_context "
                f"{config.tier(tier).max_context} -> tier {up[0]}"
            )
            tier = up[0]

        if c.max_cost_usd is not None:
            cap = c.max_cost_usd
            tier = _step_down(tier, fit, lambda n: estimate_call_cost(config, n, request) <= cap)
            if estimate_call_cost(config, tier, request) > cap:
                raise RoutingError(
                    f"max_cost_usd={cap} is below the cheapest tier's estimate "
                    f"(${estimate_call_cost(config, tier, request):.6f}): raise max_cost_usd"
                )
            reasons.append(f"max_cost_usd {cap} -> tier<={tier}")
        if c.max_latency_ms is not None:
            before = tier
            lat = c.max_latency_ms
            tier = _step_down(tier, fit, lambda n: config.tier(n).avg_latency_ms <= lat)
            if tier != before:
                reasons.append(f"max_latency_ms {lat:g} -> tier {tier}")

    budget_exceeded = False
    if spent_usd >= rs.max_cost_per_task:
        if rs.on_budget_exceeded == "raise":
            raise BudgetExceededError(
                f"run budget spent: ${spent_usd:.4f} of max_cost_per_task "
                f"${rs.max_cost_per_task:.4f} (raise routing.max_cost_per_task or start a new run)",
                limit_usd=rs.max_cost_per_task,
                spent_usd=spent_usd,
            )
        reasons.append(
            f"budget_exceeded (${spent_usd:.4f} >= ${rs.max_cost_per_task}): forced local"
        )
        local = [n for n in TIER_NUMBERS if config.tier(n).is_local]
        tier = min(local) if local else 1
        budget_exceeded = True
    else:
        # Never start a call projected to overrun the run's budget: step down until it fits.
        remaining = rs.max_cost_per_task - spent_usd
        before = tier
        if (
            forced is not None
            and rs.on_budget_exceeded == "raise"
            and estimate_call_cost(config, tier, request) > remaining
        ):
            # A forced tier is never served by a cheaper one behind the caller's back.
            raise BudgetExceededError(
                f"forced tier {tier} (${estimate_call_cost(config, tier, request):.6f}) does "
                f"not fit the run's remaining budget ${remaining:.6f} (spent ${spent_usd:.6f} "
                f"of max_cost_per_task ${rs.max_cost_per_task:.4f}); raise the budget or start "
                "a new run",
                limit_usd=rs.max_cost_per_task,
                spent_usd=spent_usd,
            )
        tier = _step_down(tier, fit, lambda n: estimate_call_cost(config, n, request) <= remaining)
        if tier != before:
            reasons.append(f"budget remaining ${remaining:.4f} -> tier {tier}")

    decided = tier
    lowest = min(_lowest_tier(config, decided, protected), decided)
    degraded_from: int | None = None
    if tier not in allowed or tier in unavailable:
        why = unavailable.get(tier) or (
            "no tool calling" if tier in fit else f"context ~{need} tokens > max_context"
        )
        if rs.strict:
            raise TierUnavailableError(
                f"tier {tier} ({config.tier(tier).model_id}) is unavailable: {why} "
                "(set routing.strict: false to fall back to the nearest tier)"
            )
        nearest = nearest_available(tier, unavailable, allowed)
        if nearest is None:
            raise TierUnavailableError(no_tier_message(config, unavailable, allowed, request, fit))
        if nearest < lowest:
            what = "forced" if forced is not None else "the risk floor"
            raise TierUnavailableError(
                f"tier {tier} ({config.tier(tier).model_id}, {what}) is unavailable: {why}; "
                f"the nearest available tier is {nearest}, below it. Make tier {tier} "
                "available (set its API key or start its server), or set "
                "routing.allow_degrade: true to accept a weaker answer"
            )
        reasons.append(f"tier {tier} unavailable ({why}) -> tier {nearest}")
        if nearest < tier:
            degraded_from = tier
            reasons.append(f"degraded from tier {tier}")
        tier = nearest

    confidence: float | None = None
    if assessment is not None and forced is None:
        confidence = _p(assessment, tier)
        if confidence is None:
            confidence = assessment.confidence
        confidence = max(0.0, min(1.0, confidence))
    return RouteDecision(
        tier=tier,
        model_id=config.tier(tier).model_id,
        confidence=confidence,
        reason="; ".join(r for r in reasons if r),
        cost_estimate=round(estimate_call_cost(config, tier, request), 6),
        task_type=task_type,
        difficulty=assessment.difficulty if assessment is not None and forced is None else None,
        complexity=assessment.complexity if assessment is not None and forced is None else None,
        unavailable={n: w for n, w in unavailable.items()},
        budget_exceeded=budget_exceeded,
        forced=forced is not None,
        degraded_from=degraded_from,
        lowest_tier=min(lowest, tier),
        context_tokens=need,
    )
