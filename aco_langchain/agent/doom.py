"""Doom detector: stop a run that will not succeed before it burns more money.

A run is doomed when (checked in this order, the first one found is reported):

1. ``budget_exhausted``: spend reached the run's budget;
2. ``budget_projected``: the next step, at the recent average step cost, would overrun it
   (only with ``agent.on_low_budget: stop``; with ``local`` the run continues at $0 locally);
3. ``repeated_failure``: the same tool call (name + arguments) failed
   ``agent.max_repeated_failures`` times;
4. ``no_progress``: ``agent.no_progress_steps`` steps in a row made no progress;
5. ``step_limit``: ``agent.max_steps`` steps were taken (``agent.step_caps[model]`` for a
   run on a model named there: the calibrated step cap of ``aco replay --runs``).

``assess_doom`` is the pure rule over a ``RunProgress`` snapshot; ``DoomDetector`` keeps that
snapshot up to date as steps are recorded. A step makes progress when the caller says so,
or (when the caller does not say) when it has a successful tool call not seen before or an
output not seen before.

Usage::

    det = DoomDetector(ACOConfig(), max_budget=2.0)
    det.record_step(cost=0.4, tool_calls=[("run_tests", {"k": "auth"}, False)])
    det.check().doomed            # False
    det.check(total_spent=2.0)    # DoomResult(doomed=True, kind='budget_exhausted', ...)
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, Field

from aco_langchain.config import ACOConfig

DoomKind = Literal[
    "budget_exhausted", "budget_projected", "repeated_failure", "no_progress", "step_limit"
]

#: Steps averaged for the projected next-step cost.
PROJECTION_WINDOW = 3


class RunProgress(BaseModel):
    """What the doom rule looks at: spend, steps, failures, progress."""

    total_spent: float = Field(0.0, ge=0.0)
    max_budget: float = Field(..., ge=0.0)
    steps_taken: int = Field(0, ge=0)
    step_costs: list[float] = Field(default_factory=list)
    failure_counts: dict[str, int] = Field(
        default_factory=dict, description="Failures per tool-call signature."
    )
    steps_since_progress: int = Field(0, ge=0)
    model: str | None = Field(None, description="The run's model (its step cap, if any).")


class DoomResult(BaseModel):
    """The detector's verdict. ``kind`` and ``reason`` say which rule fired and why."""

    doomed: bool
    reason: str
    kind: DoomKind | None = None
    total_spent: float = 0.0
    max_budget: float = 0.0
    projected_spend: float | None = None
    steps_taken: int = 0

    def __bool__(self) -> bool:
        return self.doomed


def tool_signature(tool_name: str, args: Any = None) -> str:
    """A stable key for "the same tool call": name plus a hash of the canonical args.

    Usage::

        tool_signature("run_tests", {"path": "tests/"})   # 'run_tests:3f2a...'
    """
    if args is None:
        return tool_name
    try:
        blob = json.dumps(args, sort_keys=True, default=str)
    except (TypeError, ValueError):
        blob = repr(args)
    return f"{tool_name}:{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def assess_doom(progress: RunProgress, config: ACOConfig | None = None) -> DoomResult:
    """Apply the doom rules to a snapshot (pure).

    Usage::

        assess_doom(RunProgress(total_spent=5.0, max_budget=5.0)).kind   # 'budget_exhausted'
    """
    agent = (config or ACOConfig()).agent
    p = progress
    base: dict[str, Any] = {
        "total_spent": round(p.total_spent, 10),
        "max_budget": p.max_budget,
        "steps_taken": p.steps_taken,
    }
    if p.max_budget >= 0 and p.total_spent >= p.max_budget and (p.total_spent > 0 or p.steps_taken):
        return DoomResult(
            doomed=True,
            kind="budget_exhausted",
            reason=f"budget exhausted: spent ${p.total_spent:.4f} of ${p.max_budget:.4f}",
            **base,
        )
    recent = p.step_costs[-PROJECTION_WINDOW:]
    # With on_low_budget "local" the run can go on at the local tier for $0, so only an
    # exhausted budget dooms it; with "stop" a projected overrun already does.
    if recent and agent.on_low_budget == "stop":
        next_cost = sum(recent) / len(recent)
        projected = p.total_spent + next_cost
        if next_cost > 0 and projected > p.max_budget:
            return DoomResult(
                doomed=True,
                kind="budget_projected",
                reason=(
                    f"projected overrun: spent ${p.total_spent:.4f} + next step ~${next_cost:.4f}"
                    f" (avg of last {len(recent)}) = ${projected:.4f} > budget ${p.max_budget:.4f}"
                ),
                projected_spend=round(projected, 6),
                **base,
            )
    if p.failure_counts:
        sig, n = max(p.failure_counts.items(), key=lambda kv: kv[1])
        if n >= agent.max_repeated_failures:
            return DoomResult(
                doomed=True,
                kind="repeated_failure",
                reason=(
                    f"the same tool call failed {n} times ({sig.split(':')[0]}): "
                    f"agent.max_repeated_failures is {agent.max_repeated_failures}"
                ),
                **base,
            )
    if p.steps_since_progress >= agent.no_progress_steps:
        return DoomResult(
            doomed=True,
            kind="no_progress",
            reason=(
                f"no progress for {p.steps_since_progress} steps "
                f"(agent.no_progress_steps is {agent.no_progress_steps})"
            ),
            **base,
        )
    cap, setting = agent.max_steps, "agent.max_steps"
    if p.model is not None and p.model in agent.step_caps:
        cap, setting = agent.step_caps[p.model], f"agent.step_caps[{p.model!r}]"
    if p.steps_taken >= cap:
        return DoomResult(
            doomed=True,
            kind="step_limit",
            reason=f"step limit: {p.steps_taken} steps ({setting} is {cap})",
            **base,
        )
    return DoomResult(
        doomed=False,
        reason=f"ok: ${p.total_spent:.4f} of ${p.max_budget:.4f}, {p.steps_taken} step(s)",
        **base,
    )


ToolOutcome = tuple[str, Any, bool]


class DoomDetector:
    """Tracks one run's steps and answers ``check()``.

    ``max_budget`` defaults to ``config.routing.max_cost_per_task``.

    Usage::

        det = DoomDetector(cfg)
        det.record_step(cost=0.1, output="patched auth.py", tool_calls=[("edit", {}, True)])
        det.check(total_spent=0.1)
    """

    def __init__(self, config: ACOConfig | None = None, *, max_budget: float | None = None):
        self.config = config or ACOConfig()
        self.max_budget = (
            self.config.routing.max_cost_per_task if max_budget is None else max_budget
        )
        self._step_costs: list[float] = []
        self._failures: Counter[str] = Counter()
        self._seen_ok: set[str] = set()
        self._seen_outputs: set[str] = set()
        self._since_progress = 0
        self._extra = 0.0
        self._model: str | None = None

    @property
    def steps_taken(self) -> int:
        """Steps recorded so far."""
        return len(self._step_costs)

    @property
    def total_spent(self) -> float:
        """Sum of recorded step costs (and costs recorded before the first step)."""
        return sum(self._step_costs) + self._extra

    def record_step(
        self,
        *,
        cost: float = 0.0,
        tool_calls: Iterable[ToolOutcome] = (),
        output: str | None = None,
        progress: bool | None = None,
        model: str | None = None,
    ) -> bool:
        """Record a finished step; returns whether it counted as progress.

        ``tool_calls``: ``(tool_name, args, success)`` triples; ``model``: who answered
        (its ``agent.step_caps`` entry, if any, caps the run).
        """
        self._model = model or self._model
        made = False
        for name, args, ok in tool_calls:
            sig = tool_signature(name, args)
            if ok:
                if sig not in self._seen_ok:
                    made = True
                self._seen_ok.add(sig)
            else:
                self._failures[sig] += 1
        if output:
            digest = hashlib.sha256(output.strip().encode()).hexdigest()
            if digest not in self._seen_outputs:
                made = True
            self._seen_outputs.add(digest)
        if progress is not None:
            made = progress
        self._step_costs.append(max(0.0, cost))
        self._since_progress = 0 if made else self._since_progress + 1
        return made

    def record_tool(
        self, tool_name: str, args: Any = None, success: bool = True, cost: float = 0.0
    ) -> bool:
        """Record one tool call inside the current step; returns whether it was progress.

        A successful call not seen before is progress (resets the no-progress count); a
        failure counts toward ``repeated_failure``. ``cost`` is added to the current step.
        """
        if self._step_costs:
            self._step_costs[-1] += max(0.0, cost)
        else:
            self._extra += max(0.0, cost)
        sig = tool_signature(tool_name, args)
        if not success:
            self._failures[sig] += 1
            return False
        new = sig not in self._seen_ok
        self._seen_ok.add(sig)
        if new:
            self._since_progress = 0
        return new

    def add_cost(self, usd: float) -> None:
        """Add spend (e.g. a verifier call) to the current step."""
        if self._step_costs:
            self._step_costs[-1] += max(0.0, usd)
        else:
            self._extra += max(0.0, usd)

    def snapshot(self, total_spent: float | None = None) -> RunProgress:
        """The current RunProgress (``total_spent`` overrides the recorded step costs)."""
        return RunProgress(
            total_spent=self.total_spent if total_spent is None else total_spent,
            max_budget=self.max_budget,
            steps_taken=self.steps_taken,
            step_costs=list(self._step_costs),
            failure_counts=dict(self._failures),
            steps_since_progress=self._since_progress,
            model=self._model,
        )

    def check(self, total_spent: float | None = None) -> DoomResult:
        """Is the run doomed? ``total_spent`` (e.g. ``PerStepRouter.total_spent``) wins."""
        return assess_doom(self.snapshot(total_spent), self.config)
