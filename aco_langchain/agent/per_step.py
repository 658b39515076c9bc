"""PerStepRouter: route every step of an agent run, within the run's budget.

A step is mapped to a ``RouteRequest`` (its ``action`` text, the task's risk) and decided by
the same pipeline as a chat call (``routing/pipeline.py``), with the step's rules:

1. **Kind of action** (earliest keyword in the text wins; destructive verbs anywhere win):
   ``routine`` (read, search, list, ...) -> tier 1; ``verify`` (test, check, ...) -> 2;
   ``edit`` (fix, write, implement, ...) -> 3; ``plan`` (plan, design, debug, ...) -> 3;
   ``critical`` (deploy, delete, migrate, payment, ...) -> 4: the step's assessment.
   Anything else (``other``) is assessed by the configured router (the learned one by
   default), whose predictions the pipeline's thresholds then use.
2. **Risk floors** (``task_risk``): as for calls (high >= 3, critical >= 5); routine steps
   are de-escalated (at most tier 2 even for critical risk). Task floors do not apply: the
   action kind replaces them.
3. **Prior failures**: one tier up (after a failed attempt the cheap tier had its chance).
4. **Budget**: each step's estimate (``DEFAULT_STEP_TOKENS`` at the tier's price) must fit
   what is left of ``max_budget``. When it does not, the highest cheaper cloud tier that
   fits is taken; when none fits or less than ``LOW_BUDGET_RATIO`` of the budget is left,
   ``config.agent.on_low_budget`` decides: ``local`` drops to the local tier, ``stop``
   returns ``stop=True``.
5. **Availability** (optional ``unavailable``): nearest available tier, up first.

Usage::

    ps = PerStepRouter(max_budget=2.0)
    d = ps.route_step("Read the failing test", 1, has_prior_failures=False, task_risk="medium")
    d.adjusted_tier, d.model_id, d.cost_estimate, d.reason
    ps.record_spend(0.0, step_num=1)       # the step's actual cost replaces its estimate
    ps.budget_remaining, ps.total_spent
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from aco_langchain.config import ACOConfig
from aco_langchain.pricing import cost_usd
from aco_langchain.routing.base import Assessment, RouteConstraints, RouteRequest
from aco_langchain.routing.limits import RISK_FLOORS
from aco_langchain.routing.markers import CRITICAL_WORDS
from aco_langchain.routing.pipeline import BudgetRule, RouteInputs, StageRules, run_stages
from aco_langchain.routing.rules import success_curve, text_signals

if TYPE_CHECKING:
    from aco_langchain.routing.base import Complexity, Router

ActionKind = Literal["routine", "verify", "edit", "plan", "critical", "other"]

#: Tokens assumed for one agent step when the caller gives none (the seed's trace example).
DEFAULT_STEP_TOKENS = (2000, 500)
#: Below this share of the budget left, ``on_low_budget`` applies whatever the step.
LOW_BUDGET_RATIO = 0.05

_KIND_TIER: dict[ActionKind, int] = {"routine": 1, "verify": 2, "edit": 3, "plan": 3, "critical": 4}
_ROUTINE_RISK_CAP = 2
_KIND_COMPLEXITY: dict[int, Complexity] = {1: "simple", 2: "simple", 3: "moderate", 4: "complex"}


_KIND_WORDS: dict[ActionKind, set[str]] = {
    "routine": {
        "read", "search", "list", "ls", "grep", "find", "open", "view", "look", "lookup",
        "fetch", "get", "cat", "browse", "inspect", "show", "load", "download", "retrieve",
        "scan", "locate",
    },
    "verify": {"test", "tests", "verify", "check", "validate", "lint", "review", "confirm"},
    "edit": {
        "edit", "write", "implement", "fix", "refactor", "patch", "modify", "update",
        "create", "add", "rename", "rewrite", "draft", "change", "apply", "code",
    },
    "plan": {
        "plan", "design", "decide", "analyze", "analyse", "debug", "diagnose", "investigate",
        "architect", "reason", "summarize", "summarise", "compare", "evaluate", "prioritize",
    },
}  # fmt: skip


@dataclass
class _Entry:
    step_num: int
    estimate: float
    actual: float | None = None


class StepDecision(BaseModel):
    """One step's routing: the tier to use and why (``stop`` when the budget says stop).

    Example:
        ```python
        d = PerStepRouter(max_budget=2.0).route_step("Read the logs", 1)
        d.adjusted_tier, d.action_kind, d.reason
        ```
    """

    step_num: int
    action_kind: ActionKind
    base_tier: int = Field(..., ge=1, le=5, description="Tier from the action alone.")
    adjusted_tier: int = Field(..., ge=1, le=5)
    model_id: str
    cost_estimate: float = Field(..., ge=0.0)
    budget_remaining: float = Field(..., ge=0.0, description="Before this step's reservation.")
    stop: bool = False
    reason: str


def classify_action(action: str) -> ActionKind:
    """What kind of step ``action`` describes.

    Usage::

        classify_action("Read the config file")     # 'routine'
        classify_action("Deploy the fix")           # 'critical'
    """
    words = re.findall(r"[a-z]+", action.lower())
    if not CRITICAL_WORDS.isdisjoint(words):
        return "critical"
    for w in words:
        for kind, vocab in _KIND_WORDS.items():
            if w in vocab:
                return kind
    return "other"


def step_cost_estimate(
    config: ACOConfig, tier: int, input_tokens: int | None = None, output_tokens: int | None = None
) -> float:
    """USD estimate of one step at ``tier`` (``DEFAULT_STEP_TOKENS`` when not given)."""
    return round(cost_usd(config.tier(tier), *_step_tokens(input_tokens, output_tokens)), 6)


def decide_step(
    config: ACOConfig,
    action: str,
    step_num: int,
    *,
    max_budget: float,
    spent: float,
    has_prior_failures: bool = False,
    task_risk: str = "medium",
    unavailable: Mapping[int, str] | None = None,
    router: Router | None = None,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
) -> StepDecision:
    """One step's tier from its action, risk, prior failures, the budget left and availability.

    Pure: it keeps no book. ``spent`` is what the run has spent so far, read from wherever
    the caller keeps it (the agent engine reads the chat model's spend ledger;
    ``PerStepRouter`` passes its own total).

    Args:
        config: Tier prices and ``agent.on_low_budget``.
        action: What the step does.
        step_num: The step's number in the run (1-based).
        max_budget: The run's budget in USD.
        spent: USD the run has spent so far.
        has_prior_failures: Whether the previous attempt failed (one tier up).
        task_risk: ``low``, ``medium``, ``high`` or ``critical``.
        unavailable: Tiers that cannot be called, with why.
        router: Suggests the tier of an ``other`` step (default: the config's router).
        input_tokens: The step's expected input tokens.
        output_tokens: The step's expected output tokens.

    Returns:
        The step's decision (``stop=True`` when the budget policy says stop).

    Raises:
        ValueError: ``task_risk`` is not one of the four risks.

    Example:
        ```python
        decide_step(ACOConfig(), "Read the file", 1, max_budget=1.0, spent=0.2).adjusted_tier
        ```
    """
    if task_risk not in RISK_FLOORS:
        raise ValueError(f"task_risk must be low, medium, high or critical, not {task_risk!r}")
    kind = classify_action(action)
    request = step_request(action, task_risk)
    assessment = step_assessment(kind, request, config, router)
    rules = step_rules(
        config,
        kind,
        max_budget=max_budget,
        spent=spent,
        has_prior_failures=has_prior_failures,
        tokens=_step_tokens(input_tokens, output_tokens),
    )
    inputs = RouteInputs.build(assessment, request, config, rules=rules, unavailable=unavailable)
    d = run_stages(inputs)
    return StepDecision(
        step_num=step_num,
        action_kind=kind,
        base_tier=assessment.suggested_tier,
        adjusted_tier=d.tier,
        model_id=config.tier(d.tier).model_id,
        cost_estimate=step_cost_estimate(config, d.tier, input_tokens, output_tokens),
        budget_remaining=rules.budget.remaining,
        stop=d.stop,
        reason="; ".join(r for r in d.reasons if r),
    )


def step_request(action: str, task_risk: str) -> RouteRequest:
    """The step as a routing request: its action text at the task's risk.

    Example:
        ```python
        step_request("Read the logs", "high").constraints.risk   # 'high'
        ```
    """
    return RouteRequest(
        text=action,
        last_user_text=action,
        roles=["human"],
        constraints=RouteConstraints.from_options({"risk": task_risk}),
    )


def step_assessment(
    kind: ActionKind, request: RouteRequest, config: ACOConfig, router: Router | None
) -> Assessment:
    """The step's assessment: its action kind's tier, or the router's for an ``other`` step.

    A kind's assessment carries no per-tier predictions (the pipeline's thresholds leave it
    alone); its confidence is the rule router's heuristic curve at that tier.

    Example:
        ```python
        step_assessment("routine", step_request("Read the logs", "low"), cfg, None).suggested_tier
        ```
    """
    base = _KIND_TIER.get(kind)
    if base is None:
        from aco_langchain.routing import get_router

        a = (router or get_router(config)).assess(request, config)
        return a.model_copy(
            update={"reason": f"other step -> tier {a.suggested_tier} ({a.router} router)"}
        )
    return Assessment(
        task_type=text_signals(request.routing_text)[0],
        difficulty=base,
        complexity=_KIND_COMPLEXITY[base],
        suggested_tier=base,
        confidence=success_curve(base)[base],
        reason=f"{kind} step -> tier {base}",
        router="action",
    )


def step_rules(
    config: ACOConfig,
    kind: ActionKind,
    *,
    max_budget: float,
    spent: float,
    has_prior_failures: bool,
    tokens: tuple[int, int] = DEFAULT_STEP_TOKENS,
) -> StageRules:
    """An agent step's pipeline rules: no task floors, routine steps' risk cap, escalation
    after a failure, the agent's budget and ``agent.on_low_budget``, lenient availability.

    Example:
        ```python
        step_rules(cfg, "edit", max_budget=1.0, spent=0.2, has_prior_failures=True).escalate
        ```
    """
    on_low = config.agent.on_low_budget
    return StageRules(
        budget=BudgetRule(
            limit_usd=max_budget,
            spent_usd=spent,
            tokens=tokens,
            on_exhausted="stop" if on_low == "stop" else "force_local",
            low_ratio=LOW_BUDGET_RATIO,
            lowest_step_down=2,
            setting=f"agent.on_low_budget={on_low}",
            round_digits=6,
        ),
        task_floors=False,
        risk_cap=_ROUTINE_RISK_CAP if kind == "routine" else None,
        escalate=has_prior_failures,
        fit_context=False,
        strict_availability=False,
    )


def _step_tokens(input_tokens: int | None, output_tokens: int | None) -> tuple[int, int]:
    i = DEFAULT_STEP_TOKENS[0] if input_tokens is None else input_tokens
    o = DEFAULT_STEP_TOKENS[1] if output_tokens is None else output_tokens
    return i, o


class PerStepRouter:
    """Routes each agent step and keeps the run's spend against ``max_budget``.

    ``max_budget`` defaults to ``config.routing.max_cost_per_task``. Not thread-safe: one
    router per run.

    Example:
        ```python
        ps = PerStepRouter(max_budget=2.0)
        d = ps.route_step("Fix the null check", 2, has_prior_failures=True)
        ```
    """

    def __init__(
        self,
        max_budget: float | None = None,
        config: ACOConfig | None = None,
        *,
        router: Router | None = None,
        unavailable: Mapping[int, str] | None = None,
    ) -> None:
        self.config = config or ACOConfig()
        if max_budget is not None and max_budget < 0:
            raise ValueError(f"max_budget must be >= 0, got {max_budget}")
        self.max_budget = (
            self.config.routing.max_cost_per_task if max_budget is None else float(max_budget)
        )
        self.unavailable = dict(unavailable or {})
        self._router = router
        self._entries: list[_Entry] = []
        self._extra = 0.0
        self.decisions: list[StepDecision] = []

    @property
    def total_spent(self) -> float:
        """USD spent: actual costs where recorded, estimates for steps not yet recorded."""
        steps = sum(e.estimate if e.actual is None else e.actual for e in self._entries)
        return round(steps + self._extra, 10)

    @property
    def budget_remaining(self) -> float:
        """USD left of ``max_budget`` (never below 0)."""
        return max(0.0, round(self.max_budget - self.total_spent, 10))

    def record_spend(self, usd: float, *, step_num: int | None = None) -> float:
        """Record actual spend; returns the new ``total_spent``.

        With ``step_num``: the step's actual model cost (replaces its estimate; repeated
        calls add up). Without: spend outside routed steps (tools, verifier, ...).
        """
        if usd < 0:
            raise ValueError(f"spend must be >= 0, got {usd}")
        if step_num is not None:
            for entry in reversed(self._entries):
                if entry.step_num == step_num:
                    entry.actual = (entry.actual or 0.0) + usd
                    return self.total_spent
        self._extra += usd
        return self.total_spent

    def route_step(
        self,
        action: str,
        step_num: int,
        has_prior_failures: bool = False,
        task_risk: str = "medium",
        *,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
    ) -> StepDecision:
        """Choose the tier for one step; reserves its estimate against the budget.

        Args:
            action: What the step does (its kind picks the base tier).
            step_num: The step's number in the run (1-based).
            has_prior_failures: Whether the previous attempt failed (one tier up).
            task_risk: ``low``, ``medium``, ``high`` or ``critical`` (risk floors).
            input_tokens: The step's expected input tokens (default ``DEFAULT_STEP_TOKENS``).
            output_tokens: The step's expected output tokens.

        Returns:
            The decision; ``stop`` only with ``agent.on_low_budget == "stop"``.

        Raises:
            ValueError: ``task_risk`` is not one of the four risks.

        Example:
            ```python
            d = ps.route_step("Search the docs", 3, task_risk="high")
            ```
        """
        if self._router is None and classify_action(action) == "other":
            from aco_langchain.routing import get_router

            self._router = get_router(self.config)
        decision = decide_step(
            self.config,
            action,
            step_num,
            max_budget=self.max_budget,
            spent=self.total_spent,
            has_prior_failures=has_prior_failures,
            task_risk=task_risk,
            unavailable=self.unavailable,
            router=self._router,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
        )
        stop, est = decision.stop, decision.cost_estimate
        if not stop:
            self._entries.append(_Entry(step_num, est))
        self.decisions.append(decision)
        return decision
