"""Monitoring: the seed's metrics and alerts, computed from traces.

Metrics (the seed's "What to watch"):

- ``cost_per_successful_task`` (primary): total spend / successful runs;
- ``success_rate_by_tier``: runs grouped by the tier that gave the final answer (the last
  model call's tier, else the predicted tier);
- ``escalation_rate``: share of runs with an escalated model call;
- ``cache_hit_rate``: share of model calls answered from a cache;
- ``verifier_call_rate``: share of steps that called the verifier;
- ``false_done_rate``: of the runs that claimed to be done, the share that failed.

Alerts (the seed's thresholds): success rate < 70% -> check routing thresholds; cost per
successful task > 2x frontier -> check escalation logic; verifier call rate > 50% ->
tighten verifier budgeter; escalation rate > 30% -> check task classifier. "Frontier" is
what the same runs would cost with every model call on tier 4 (same tokens, tier 4 prices).

Usage::

    report = stats_from_files(["traces/aco_traces.jsonl"])
    report.cost_per_successful_task, [a.message for a in report.alerts]
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field

from aco_langchain.config import ACOConfig
from aco_langchain.tracing.trace import Trace

ALERT_MIN_SUCCESS_RATE = 0.70
ALERT_MAX_COST_VS_FRONTIER = 2.0
ALERT_MAX_VERIFIER_RATE = 0.50
ALERT_MAX_ESCALATION_RATE = 0.30
FRONTIER_TIER = 4


class TierStats(BaseModel):
    """Runs whose final answer came from one tier."""

    runs: int
    successes: int
    success_rate: float


class Alert(BaseModel):
    """A metric past the seed's threshold, and what to check."""

    metric: str
    value: float
    threshold: float
    message: str


class StatsReport(BaseModel):
    """Everything ``aco stats`` prints. Rates are None when there is nothing to divide by."""

    runs: int = 0
    runs_with_outcome: int = 0
    """Runs whose outcome was observed: success rate and cost per success count only them."""
    runs_without_outcome: int = 0
    successes: int = 0
    success_rate: float | None = None
    total_cost: float = 0.0
    cost_per_successful_task: float | None = None
    frontier_cost_per_successful_task: float | None = None
    success_rate_by_tier: dict[int, TierStats] = Field(default_factory=dict)
    escalation_rate: float | None = None
    cache_hit_rate: float | None = None
    verifier_call_rate: float | None = None
    false_done_rate: float | None = None
    steps: int = 0
    model_calls: int = 0
    alerts: list[Alert] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list, description="Unreadable trace lines.")


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def frontier_cost(trace: Trace, config: ACOConfig) -> float:
    """What ``trace`` would have cost with every model call on the baseline tier
    (``ledger.baseline_tier``, the one ``aco spend`` and ``aco replay`` compare against).

    Usage::

        frontier_cost(trace, ACOConfig())
    """
    from aco_langchain.pricing import cost_usd

    spec = config.tier(config.ledger.baseline_tier)  # one baseline everywhere
    total = 0.0
    for step in trace.steps:
        if step.model_call is not None:
            m = step.model_call
            total += cost_usd(spec, m.input_tokens, m.output_tokens)
        total += sum(t.cost for t in step.tool_calls) + step.verifier_cost
    return total


def alerts_for(report: StatsReport) -> list[Alert]:
    """The seed's alerts for a report (pure).

    Usage::

        [a.message for a in alerts_for(report)]
    """
    out: list[Alert] = []
    r = report
    if r.success_rate is not None and r.success_rate < ALERT_MIN_SUCCESS_RATE:
        out.append(
            Alert(
                metric="success_rate",
                value=r.success_rate,
                threshold=ALERT_MIN_SUCCESS_RATE,
                message=(
                    f"success rate {r.success_rate:.0%} < {ALERT_MIN_SUCCESS_RATE:.0%}: "
                    "check routing thresholds"
                ),
            )
        )
    if (
        r.cost_per_successful_task is not None
        and r.frontier_cost_per_successful_task
        and r.cost_per_successful_task
        > ALERT_MAX_COST_VS_FRONTIER * r.frontier_cost_per_successful_task
    ):
        ratio = r.cost_per_successful_task / r.frontier_cost_per_successful_task
        out.append(
            Alert(
                metric="cost_per_successful_task",
                value=r.cost_per_successful_task,
                threshold=ALERT_MAX_COST_VS_FRONTIER * r.frontier_cost_per_successful_task,
                message=(
                    f"cost per successful task ${r.cost_per_successful_task:.4f} is "
                    f"{ratio:.1f}x frontier (> {ALERT_MAX_COST_VS_FRONTIER:g}x): "
                    "check escalation logic"
                ),
            )
        )
    if r.verifier_call_rate is not None and r.verifier_call_rate > ALERT_MAX_VERIFIER_RATE:
        out.append(
            Alert(
                metric="verifier_call_rate",
                value=r.verifier_call_rate,
                threshold=ALERT_MAX_VERIFIER_RATE,
                message=(
                    f"verifier call rate {r.verifier_call_rate:.0%} > "
                    f"{ALERT_MAX_VERIFIER_RATE:.0%}: tighten verifier budgeter"
                ),
            )
        )
    if r.escalation_rate is not None and r.escalation_rate > ALERT_MAX_ESCALATION_RATE:
        out.append(
            Alert(
                metric="escalation_rate",
                value=r.escalation_rate,
                threshold=ALERT_MAX_ESCALATION_RATE,
                message=(
                    f"escalation rate {r.escalation_rate:.0%} > "
                    f"{ALERT_MAX_ESCALATION_RATE:.0%}: check task classifier"
                ),
            )
        )
    return out


def with_outcomes(traces: Iterable[Trace], outcomes: Mapping[str, Any]) -> list[Trace]:
    """``traces`` with the observed outcomes (``spend/outcomes.py``, by run key) joined in."""
    out = []
    for t in traces:
        found = outcomes.get(t.run_key) if t.run_key else None
        out.append(t if found is None else t.model_copy(update={"task_success": found.success}))
    return out


def compute_stats(
    traces: Iterable[Trace],
    config: ACOConfig | None = None,
    *,
    problems: Sequence[str] = (),
    outcomes: Mapping[str, Any] | None = None,
) -> StatsReport:
    """The seed's metrics and alerts over ``traces`` (unfinished ``in_progress`` runs skipped).

    Success rate and cost per successful task count only runs with an observed outcome
    (``outcomes``, by run key, joined in first); ``runs_without_outcome`` says how many
    have none. A predicted success is never a success.

    Usage::

        compute_stats(sink.traces, outcomes=open_outcomes().many()).success_rate
    """
    config = config or ACOConfig()
    runs = [t for t in traces if t.final_outcome != "in_progress"]
    if outcomes:
        runs = with_outcomes(runs, outcomes)
    observed = [t for t in runs if t.task_success is not None]
    successes = [t for t in observed if t.task_success]
    total = sum(t.total_cost or t.compute_total_cost() for t in runs)
    observed_cost = sum(t.total_cost or t.compute_total_cost() for t in observed)
    frontier = sum(frontier_cost(t, config) for t in observed)
    by_tier: dict[int, list[Trace]] = {}
    for t in observed:
        calls = t.model_calls
        tier = calls[-1].tier if calls else t.predicted_tier
        by_tier.setdefault(tier, []).append(t)
    calls = [m for t in runs for m in t.model_calls]
    steps = [s for t in runs for s in t.steps]
    claimed = [t for t in runs if t.claimed_done]
    report = StatsReport(
        runs=len(runs),
        runs_with_outcome=len(observed),
        runs_without_outcome=len(runs) - len(observed),
        successes=len(successes),
        success_rate=_rate(len(successes), len(observed)),
        total_cost=round(total, 6),
        cost_per_successful_task=round(observed_cost / len(successes), 6) if successes else None,
        frontier_cost_per_successful_task=(
            round(frontier / len(successes), 6) if successes else None
        ),
        success_rate_by_tier={
            tier: TierStats(
                runs=len(ts),
                successes=sum(t.task_success is True for t in ts),
                success_rate=round(sum(t.task_success is True for t in ts) / len(ts), 4),
            )
            for tier, ts in sorted(by_tier.items())
        },
        escalation_rate=_rate(sum(t.escalated for t in runs), len(runs)),
        cache_hit_rate=_rate(sum(m.cache_hit for m in calls), len(calls)),
        verifier_call_rate=_rate(sum(s.verifier_called for s in steps), len(steps)),
        false_done_rate=_rate(sum(t.false_done for t in claimed), len(claimed)),
        steps=len(steps),
        model_calls=len(calls),
        problems=list(problems),
    )
    report.alerts = alerts_for(report)
    return report


def stats_from_files(
    paths: Sequence[str | os.PathLike[str]], config: ACOConfig | None = None
) -> StatsReport:
    """Read JSONL trace files (bad lines reported in ``problems``) and compute the stats.

    Usage::

        stats_from_files(["traces/aco_traces.jsonl"]).alerts
    """
    from aco_langchain.tracing.sinks import read_traces

    result = read_traces(paths)
    return compute_stats(result.traces, config, problems=result.problems)
