"""The decision pipeline: small named pure stages, shared by chat calls and agent steps.

A decision is a fold over ``STAGES``: each stage reads the fixed ``RouteInputs`` (the
request, the router's assessment, the config, what is unavailable, the budget) and returns
the next ``Draft`` (the tier so far and why). The decision's ``reason`` is the stages'
reasons in order. ``policy.decide`` (a chat call) and ``agent.per_step.decide_step`` (an
agent step) differ only in the ``StageRules`` they pass: which floors apply, whether prior
failures escalate, the budget rule and how far an unavailable tier may give way.

Stages, in order: ``forced`` (or the assessment's tier), ``tools``, ``floors``
(task and risk), ``escalation`` (prior failures), ``quality`` (``min_quality``), ``safety``
(``safety_threshold``), ``local_first`` (``downgrade_threshold``), ``context`` (a tier the
prompt fits), ``hard_constraints`` (``max_cost_usd``, ``max_latency_ms``), ``budget`` and
``availability``.

Example:
    ```python
    rules = StageRules.for_call(cfg, request, spent_usd=0.0)
    inputs = RouteInputs.build(assessment, request, cfg, rules=rules)
    draft = run_stages(inputs)
    draft.tier, "; ".join(draft.reasons)
    ```
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from aco_langchain.config import TIER_NUMBERS, ACOConfig
from aco_langchain.errors import (
    BudgetExceededError,
    ContextTooLongError,
    RoutingError,
    TierUnavailableError,
)
from aco_langchain.pricing import DEFAULT_OUTPUT_TOKENS, cost_usd, estimate_tokens
from aco_langchain.routing.base import Assessment, RouteRequest
from aco_langchain.routing.limits import (
    RISK_FLOORS,
    context_error,
    context_tokens,
    estimate_call_cost,
    forced_tier,
    nearest_available,
    no_tier_message,
)
from aco_langchain.routing.rules import text_signals

OnExhausted = Literal["force_local", "raise", "stop"]


@dataclass(frozen=True)
class BudgetRule:
    """How the budget stage treats the money left.

    Attributes:
        limit_usd: The budget (a run's ``max_cost_per_task``, an agent's ``max_budget``).
        spent_usd: What has been spent against it.
        tokens: (input, output) tokens a call is estimated at, priced per tier.
        on_exhausted: What happens once the budget is exhausted: ``force_local`` (the
            lowest local tier), ``raise`` (``BudgetExceededError``) or ``stop``.
        low_ratio: The budget counts as exhausted once at most this share is left
            (0: once it is spent).
        lowest_step_down: A call projected to overrun steps down to a tier no lower than
            this that fits; when none fits, ``on_exhausted`` applies (2 for agent steps:
            "the highest cheaper cloud tier"; 1 for calls: a $0 local tier always fits).
        setting: The config setting and value ``on_exhausted`` comes from, named in the
            reason (``agent.on_low_budget=local``).
        round_digits: Estimates are rounded to this many digits (None: not rounded).
    """

    limit_usd: float
    spent_usd: float
    tokens: tuple[int, int]
    on_exhausted: OnExhausted = "force_local"
    low_ratio: float = 0.0
    lowest_step_down: int = 1
    setting: str = "routing.on_budget_exceeded=force_local"
    round_digits: int | None = None

    @property
    def remaining(self) -> float:
        return max(0.0, round(self.limit_usd - self.spent_usd, 10))

    def estimate(self, config: ACOConfig, tier: int) -> float:
        """USD of one call at ``tier`` at this rule's token estimate."""
        usd = cost_usd(config.tier(tier), *self.tokens)
        return usd if self.round_digits is None else round(usd, self.round_digits)


@dataclass(frozen=True)
class StageRules:
    """What differs between a chat call and an agent step; everything else is shared.

    Attributes:
        budget: The budget rule.
        task_floors: Apply ``task_floors`` (agent steps: the action kind replaces them).
        risk_cap: Risk floors are capped at this tier (routine agent steps: 2).
        escalate: One tier up (an agent step after a failed attempt).
        fit_context: Skip tiers the prompt does not fit (agent steps are judged by their
            action, not the prompt: the call's own decision checks its prompt).
        strict_availability: An unavailable tier raises or gives way as ``routing.strict``
            and ``routing.allow_degrade`` say; False: it gives way to the nearest available
            tier, and stays when none is (agent steps: the step's call decides again).
    """

    budget: BudgetRule
    task_floors: bool = True
    risk_cap: int | None = None
    escalate: bool = False
    fit_context: bool = True
    strict_availability: bool = True

    @classmethod
    def for_call(cls, config: ACOConfig, request: RouteRequest, spent_usd: float) -> StageRules:
        """The rules of one chat call: the run's ``max_cost_per_task`` and its policy."""
        rs = config.routing
        return cls(
            budget=BudgetRule(
                limit_usd=rs.max_cost_per_task,
                spent_usd=spent_usd,
                tokens=_call_tokens(request),
                on_exhausted=rs.on_budget_exceeded,
                setting=f"routing.on_budget_exceeded={rs.on_budget_exceeded}",
            )
        )


def _call_tokens(request: RouteRequest) -> tuple[int, int]:
    return estimate_tokens(request.text), request.expected_output_tokens or DEFAULT_OUTPUT_TOKENS


@dataclass(frozen=True)
class RouteInputs:
    """Everything the stages read, fixed for one decision."""

    request: RouteRequest
    config: ACOConfig
    assessment: Assessment | None
    rules: StageRules
    unavailable: Mapping[int, str]
    fit: frozenset[int]
    need: int
    forced: int | None

    @classmethod
    def build(
        cls,
        assessment: Assessment | None,
        request: RouteRequest,
        config: ACOConfig,
        *,
        rules: StageRules,
        unavailable: Mapping[int, str] | None = None,
    ) -> RouteInputs:
        """The inputs of one decision; the context check happens here (no tier fits: raise).

        Raises:
            ContextTooLongError: the prompt and output cap fit no tier, or not the forced one.
            RoutingError: ``force_model`` names no tier.
            ValueError: no assessment for an unforced call.
        """
        need = context_tokens(request, config)
        # tiers_that_fit(config, request), from the need just computed
        fit = frozenset(
            [n for n in TIER_NUMBERS if need <= config.tier(n).max_context]
            if rules.fit_context
            else TIER_NUMBERS
        )
        if not fit:
            raise ContextTooLongError(
                context_error(request, config, list(TIER_NUMBERS)),
                need,
                max(config.tier(n).max_context for n in TIER_NUMBERS),
            )
        forced = forced_tier(request, config)
        if forced is not None and forced not in fit:
            raise ContextTooLongError(
                context_error(request, config, [forced]) + f" (tier {forced} is forced)",
                need,
                config.tier(forced).max_context,
            )
        if forced is None and assessment is None:
            raise ValueError("decide() needs an assessment unless the call forces a tier")
        return cls(request, config, assessment, rules, dict(unavailable or {}), fit, need, forced)


@dataclass(frozen=True)
class Draft:
    """The decision so far: the tier, why, and what later stages must respect."""

    tier: int
    task_type: str
    reasons: tuple[str, ...] = ()
    allowed: frozenset[int] = frozenset(TIER_NUMBERS)
    floor: int = 1
    protected: int | None = None
    budget_exceeded: bool = False
    stop: bool = False
    degraded_from: int | None = None
    lowest: int = 1

    def to(self, tier: int, reason: str) -> Draft:
        """The draft moved to ``tier``, saying why."""
        return self.but(tier=tier, reasons=(*self.reasons, reason))

    def say(self, reason: str) -> Draft:
        return self.but(reasons=(*self.reasons, reason))

    def but(self, **changes: Any) -> Draft:
        """A copy with ``changes`` (field names of this class), itself when nothing changes.

        ``dataclasses.replace`` re-runs ``__init__`` through its field introspection (~3 us
        a stage, ten stages a decision); the fields need no validation, so the copy is made
        directly (the class stays frozen for everyone else).
        """
        now = self.__dict__
        if all(now[k] == v for k, v in changes.items()):
            return self
        new = object.__new__(Draft)
        new.__dict__.update(now, **changes)
        return new


Stage = Callable[[RouteInputs, Draft], Draft]


def start(inp: RouteInputs) -> Draft:
    """The first draft: the forced tier, else the assessment's suggested tier."""
    c = inp.request.constraints
    if inp.forced is not None:
        # No router assessment; the task label comes from the keyword rules (microseconds).
        task = c.task_type or text_signals(inp.request.routing_text)[0]
        return Draft(
            tier=inp.forced,
            task_type=task,
            reasons=(f"forced tier {inp.forced} (no assessment)",),
            protected=inp.forced,
        )
    a = _assessment(inp)
    return Draft(
        tier=a.suggested_tier,
        task_type=c.task_type or a.task_type,
        reasons=(a.reason,) if a.reason else (),
    )


def tools(inp: RouteInputs, d: Draft) -> Draft:
    """Tools bound: tiers without tool calling are not allowed (availability skips them)."""
    allowed = set(inp.fit)
    if inp.request.n_tools:
        no_tools = {n for n in TIER_NUMBERS if not inp.config.tier(n).supports_tools}
        allowed -= no_tools
        if no_tools and inp.forced is None:
            d = d.say(f"tools bound: skip tier(s) {sorted(no_tools)} without tool calling")
    if inp.forced is not None:
        allowed.add(inp.forced)
    return d.but(allowed=frozenset(allowed))


def floors(inp: RouteInputs, d: Draft) -> Draft:
    """Task floors and risk floors raise the tier; a risk floor above 1 is protected."""
    if inp.forced is not None:
        return d
    c = inp.request.constraints
    a = _assessment(inp)
    floor = inp.config.floor_for(d.task_type) if inp.rules.task_floors else 1
    risk = c.risk or a.risk
    risk_floor = RISK_FLOORS.get(risk or "low", 1)
    if inp.rules.risk_cap is not None:
        risk_floor = min(risk_floor, inp.rules.risk_cap)
    if floor > d.tier:
        d = d.to(floor, f"task floor {d.task_type}>={floor}")
    if risk_floor > d.tier:
        inferred = "" if c.risk else " (inferred from the request)"
        d = d.to(risk_floor, f"risk {risk}{inferred} floor>={risk_floor}")
    protected = risk_floor if risk_floor > 1 else None
    return d.but(floor=max(floor, risk_floor), protected=protected)


def escalation(inp: RouteInputs, d: Draft) -> Draft:
    """After a failed attempt, one tier up (the cheaper tier had its chance)."""
    if not inp.rules.escalate or inp.forced is not None or d.tier >= max(TIER_NUMBERS):
        return d
    return d.to(d.tier + 1, f"prior failures: escalate -> tier {d.tier + 1}")


def quality(inp: RouteInputs, d: Draft) -> Draft:
    """``min_quality``: the cheapest tier at or above the floor predicted to meet it."""
    c = inp.request.constraints
    if inp.forced is not None or c.min_quality is None or not _assessment(inp).p_success:
        return d
    a = _assessment(inp)
    meets = [n for n in TIER_NUMBERS if n >= d.floor and (_p(a, n) or 0) >= c.min_quality]
    if not meets:
        top = max(TIER_NUMBERS)
        return d.to(top, f"no tier predicted >= min_quality {c.min_quality:.2f}: top tier")
    if meets[0] != d.tier:
        return d.to(meets[0], f"min_quality {c.min_quality:.2f} -> tier {meets[0]}")
    return d


def safety(inp: RouteInputs, d: Draft) -> Draft:
    """A tier predicted below ``safety_threshold`` is not trusted: up to one that clears it."""
    if inp.forced is not None:
        return d
    a = _assessment(inp)
    threshold = inp.config.routing.safety_threshold
    p_here = _p(a, d.tier)
    if p_here is None or p_here >= threshold:
        return d
    safer = [n for n in TIER_NUMBERS if n > d.tier and (_p(a, n) or 0) >= threshold]
    new = safer[0] if safer else max(TIER_NUMBERS)
    return d.to(new, f"p(t{d.tier})={p_here:.2f} < safety_threshold {threshold:.2f} -> tier {new}")


def local_first(inp: RouteInputs, d: Draft) -> Draft:
    """With ``prefer_local``, the local tier when it is predicted good enough and no floor
    forbids."""
    if inp.forced is not None:
        return d
    rs = inp.config.routing
    p_local = _p(_assessment(inp), 1)
    if (
        rs.prefer_local
        and d.tier > 1
        and d.floor <= 1
        and 1 in inp.fit
        and p_local is not None
        and p_local >= rs.downgrade_threshold
    ):
        return d.to(
            1,
            f"local-first: p(t1)={p_local:.2f} >= downgrade_threshold {rs.downgrade_threshold:.2f}",
        )
    return d


def context(inp: RouteInputs, d: Draft) -> Draft:
    """A tier the prompt does not fit gives way to the first larger one that fits."""
    if inp.forced is not None or d.tier in inp.fit:
        return d
    up = [n for n in sorted(inp.fit) if n > d.tier] or sorted(inp.fit, reverse=True)
    return d.to(
        up[0],
        f"context ~{inp.need} tokens > tier {d.tier} max_context "
        f"{inp.config.tier(d.tier).max_context} -> tier {up[0]}",
    )


def hard_constraints(inp: RouteInputs, d: Draft) -> Draft:
    """``max_cost_usd`` and ``max_latency_ms`` step down to the highest tier that fits,
    even below a floor (the reason says so).

    Raises:
        RoutingError: ``max_cost_usd`` is below the cheapest tier's estimate.
    """
    if inp.forced is not None:
        return d
    c = inp.request.constraints
    cfg, req = inp.config, inp.request
    if c.max_cost_usd is not None:
        cap = c.max_cost_usd
        tier = _step_down(d.tier, inp.fit, lambda n: estimate_call_cost(cfg, n, req) <= cap)
        if estimate_call_cost(cfg, tier, req) > cap:
            raise RoutingError(
                f"max_cost_usd={cap} is below the cheapest tier's estimate "
                f"(${estimate_call_cost(cfg, tier, req):.6f}): raise max_cost_usd"
            )
        d = d.to(tier, f"max_cost_usd {cap} -> tier<={tier}")
    if c.max_latency_ms is not None:
        lat = c.max_latency_ms
        tier = _step_down(d.tier, inp.fit, lambda n: cfg.tier(n).avg_latency_ms <= lat)
        if tier != d.tier:
            d = d.to(tier, f"max_latency_ms {lat:g} -> tier {tier}")
    return d


def budget(inp: RouteInputs, d: Draft) -> Draft:
    """Never start a call projected to overrun the budget: step down until it fits; once
    the budget is exhausted (or nothing fits), ``on_exhausted`` decides.

    Raises:
        BudgetExceededError: the budget is spent and the rule says ``raise``, or a forced
            tier does not fit what is left (it is never served by a cheaper one silently).
    """
    rule, cfg = inp.rules.budget, inp.config
    remaining = rule.remaining
    if rule.low_ratio == 0.0 and rule.spent_usd >= rule.limit_usd:
        return _exhausted(inp, d, f"exceeded (${rule.spent_usd:.4f} >= ${rule.limit_usd})")
    est = rule.estimate(cfg, d.tier)
    low = rule.low_ratio > 0.0 and remaining <= rule.limit_usd * rule.low_ratio
    if est <= remaining and not low:
        return d
    if inp.forced is not None and rule.on_exhausted == "raise":
        raise BudgetExceededError(
            f"forced tier {d.tier} (${est:.6f}) does not fit the run's remaining budget "
            f"${remaining:.6f} (spent ${rule.spent_usd:.6f} of max_cost_per_task "
            f"${rule.limit_usd:.4f}); raise the budget or start a new run",
            limit_usd=rule.limit_usd,
            spent_usd=rule.spent_usd,
        )
    below = [n for n in range(d.tier, 0, -1) if n in inp.fit and n >= rule.lowest_step_down]
    fits = [n for n in below if rule.estimate(cfg, n) <= remaining]
    if fits and not low:
        return d.to(
            fits[0],
            f"budget remaining ${remaining:.4f}: estimate ${est:.4f} at tier {d.tier} "
            f"-> tier {fits[0]}",
        )
    if rule.lowest_step_down == 1:
        # Not even the cheapest tier the call fits is within budget: it goes there and the
        # ledger's hold decides (the run is not over yet).
        if not below or below[-1] == d.tier:
            return d
        return d.to(below[-1], f"budget remaining ${remaining:.4f} -> tier {below[-1]}")
    return _exhausted(inp, d, f"low (${remaining:.4f} of ${rule.limit_usd:.4f} left)")


def _exhausted(inp: RouteInputs, d: Draft, state: str) -> Draft:
    """The budget is exhausted (``state`` says how): raise, stop, or the local tier."""
    rule, cfg = inp.rules.budget, inp.config
    if rule.on_exhausted == "raise":
        raise BudgetExceededError(
            f"run budget spent: ${rule.spent_usd:.4f} of max_cost_per_task "
            f"${rule.limit_usd:.4f} (raise routing.max_cost_per_task or start a new run)",
            limit_usd=rule.limit_usd,
            spent_usd=rule.spent_usd,
        )
    if rule.on_exhausted == "stop":
        return d.say(f"budget {state}: stop ({rule.setting})").but(stop=True)
    local = [n for n in TIER_NUMBERS if cfg.tier(n).is_local]
    tier = min(local) if local else 1
    d = d.to(tier, f"budget {state}: local tier ({rule.setting})")
    return d.but(budget_exceeded=True)


def availability(inp: RouteInputs, d: Draft) -> Draft:
    """An unavailable (or disallowed) tier gives way to the nearest available one, up
    first; going down is a degradation, allowed only as ``routing.allow_degrade`` says.

    Raises:
        TierUnavailableError: ``routing.strict``; no tier can serve the call; or the nearest
            one is below a forced tier or a risk floor.
    """
    cfg, rs = inp.config, inp.config.routing
    lowest = min(_lowest_tier(cfg, d.tier, d.protected), d.tier)
    d = d.but(lowest=lowest)
    if d.tier in d.allowed and d.tier not in inp.unavailable:
        return d
    if not inp.rules.strict_availability:
        alt = nearest_available(d.tier, inp.unavailable, set(d.allowed))
        if alt is None:
            return d
        why = inp.unavailable.get(d.tier, "no tool calling")
        return d.to(alt, f"tier {d.tier} unavailable ({why}) -> tier {alt}")
    why = inp.unavailable.get(d.tier) or (
        "no tool calling" if d.tier in inp.fit else f"context ~{inp.need} tokens > max_context"
    )
    if rs.strict:
        raise TierUnavailableError(
            f"tier {d.tier} ({cfg.tier(d.tier).model_id}) is unavailable: {why} "
            "(set routing.strict: false to fall back to the nearest tier)"
        )
    nearest = nearest_available(d.tier, inp.unavailable, set(d.allowed))
    if nearest is None:
        raise TierUnavailableError(
            no_tier_message(cfg, inp.unavailable, set(d.allowed), inp.request, inp.fit)
        )
    if nearest < lowest:
        what = "forced" if inp.forced is not None else "the risk floor"
        raise TierUnavailableError(
            f"tier {d.tier} ({cfg.tier(d.tier).model_id}, {what}) is unavailable: {why}; "
            f"the nearest available tier is {nearest}, below it. Make tier {d.tier} "
            "available (set its API key or start its server), or set "
            "routing.allow_degrade: true to accept a weaker answer"
        )
    d = d.say(f"tier {d.tier} unavailable ({why}) -> tier {nearest}")
    if nearest < d.tier:
        d = d.say(f"degraded from tier {d.tier}").but(degraded_from=d.tier)
    return d.but(tier=nearest, lowest=min(lowest, nearest))


#: The pipeline, in order. Every decision (a chat call, an agent step) runs all of them.
STAGES: tuple[Stage, ...] = (
    tools,
    floors,
    escalation,
    quality,
    safety,
    local_first,
    context,
    hard_constraints,
    budget,
    availability,
)


def run_stages(inputs: RouteInputs, stages: tuple[Stage, ...] = STAGES) -> Draft:
    """Fold ``stages`` over the first draft (``start``): the decided tier and why.

    Args:
        inputs: The decision's fixed inputs (``RouteInputs.build``).
        stages: The stages to apply (default: all of them, in order).

    Returns:
        The final draft (tier, reasons, flags).

    Raises:
        BudgetExceededError, RoutingError, TierUnavailableError: from the stages.

    Example:
        ```python
        run_stages(RouteInputs.build(a, req, cfg, rules=StageRules.for_call(cfg, req, 0.0)))
        ```
    """
    d = start(inputs)
    for stage in stages:
        d = stage(inputs, d)
    return d


def _assessment(inp: RouteInputs) -> Assessment:
    assert inp.assessment is not None, "an unforced decision has an assessment (build checks)"
    return inp.assessment


def _p(assessment: Assessment, tier: int) -> float | None:
    return assessment.p_success.get(tier)


def _step_down(tier: int, allowed: frozenset[int], fits: Callable[[int], bool]) -> int:
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


__all__ = [
    "STAGES",
    "BudgetRule",
    "Draft",
    "RouteInputs",
    "Stage",
    "StageRules",
    "run_stages",
]
