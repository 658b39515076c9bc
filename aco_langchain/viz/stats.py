"""Plots of agent runs: spend per step, tier mix and escalations, success by tier, rates.

``trace_series`` sums finished traces into the series to draw (pure); ``stats_figure``
draws them beside the ``StatsReport`` that ``aco stats`` prints, with the seed's alert
thresholds marked on the rates.

Example:
    ```python
    from aco_langchain.tracing import read_traces
    from aco_langchain.tracing.stats import compute_stats

    traces = read_traces(["traces/aco_traces.jsonl"]).traces
    fig = stats_figure(traces, compute_stats(traces))
    ```
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aco_langchain.tracing import stats as st
from aco_langchain.tracing.trace import Trace
from aco_langchain.viz.figure import new_figure


@dataclass
class TraceSeries:
    """Totals over finished runs (``in_progress`` traces are left out, as in ``aco stats``).

    Attributes:
        steps: step numbers present in any run, ascending.
        model_cost: USD of model calls at each step number (summed over runs).
        tool_cost: USD of tool calls at each step number.
        verifier_cost: USD of verifier calls at each step number.
        verifier_calls: verifier calls at each step number.
        calls_by_tier: model calls per tier.
        escalated_by_tier: escalated model calls per tier (the tier escalated *to*).
        cache_hits_by_tier: model calls per tier answered from a cache.
    """

    steps: list[int] = field(default_factory=list)
    model_cost: list[float] = field(default_factory=list)
    tool_cost: list[float] = field(default_factory=list)
    verifier_cost: list[float] = field(default_factory=list)
    verifier_calls: list[int] = field(default_factory=list)
    calls_by_tier: dict[int, int] = field(default_factory=dict)
    escalated_by_tier: dict[int, int] = field(default_factory=dict)
    cache_hits_by_tier: dict[int, int] = field(default_factory=dict)

    @property
    def total_cost(self) -> float:
        """USD over every step (equals the report's ``total_cost`` for the same runs)."""
        return sum(self.model_cost) + sum(self.tool_cost) + sum(self.verifier_cost)


def trace_series(traces: Iterable[Trace]) -> TraceSeries:
    """Sum finished runs step by step and tier by tier (pure).

    Args:
        traces: Traces, finished or not (unfinished ones are skipped).

    Returns:
        The per-step and per-tier totals.

    Example:
        ```python
        s = trace_series(traces)
        dict(zip(s.steps, s.model_cost))     # {1: 0.0, 2: 0.0031, ...}
        ```
    """
    per_step: dict[int, list[float]] = {}
    out = TraceSeries()
    for t in traces:
        if t.final_outcome == "in_progress":
            continue
        for s in t.steps:
            row = per_step.setdefault(s.step_num, [0.0, 0.0, 0.0, 0.0])
            row[1] += sum(c.cost for c in s.tool_calls)
            row[2] += s.verifier_cost
            row[3] += int(s.verifier_called)
            m = s.model_call
            if m is None:
                continue
            row[0] += m.cost
            out.calls_by_tier[m.tier] = out.calls_by_tier.get(m.tier, 0) + 1
            if m.escalated:
                out.escalated_by_tier[m.tier] = out.escalated_by_tier.get(m.tier, 0) + 1
            if m.cache_hit:
                out.cache_hits_by_tier[m.tier] = out.cache_hits_by_tier.get(m.tier, 0) + 1
    out.steps = sorted(per_step)
    out.model_cost = [per_step[n][0] for n in out.steps]
    out.tool_cost = [per_step[n][1] for n in out.steps]
    out.verifier_cost = [per_step[n][2] for n in out.steps]
    out.verifier_calls = [int(per_step[n][3]) for n in out.steps]
    return out


def _rates(report: st.StatsReport) -> list[tuple[str, float | None, float | None]]:
    """(label, value, seed alert threshold) for the rate panel."""
    return [
        ("success", report.success_rate, st.ALERT_MIN_SUCCESS_RATE),
        ("escalation", report.escalation_rate, st.ALERT_MAX_ESCALATION_RATE),
        ("verifier calls", report.verifier_call_rate, st.ALERT_MAX_VERIFIER_RATE),
        ("cache hits", report.cache_hit_rate, None),
        ("false DONE", report.false_done_rate, None),
    ]


def stats_figure(traces: Iterable[Trace], report: st.StatsReport, title: str | None = None) -> Any:
    """Four panels: spend per step, model calls per tier, success by tier, rates vs alerts.

    Args:
        traces: The runs (the same ones ``report`` was computed from).
        report: ``compute_stats`` over ``traces``.
        title: Figure title (default: runs and cost per successful task).

    Returns:
        A matplotlib ``Figure``.

    Raises:
        PlotError: matplotlib is not installed.

    Example:
        ```python
        save_png(stats_figure(traces, compute_stats(traces)), "stats.png")
        ```
    """
    s = trace_series(traces)
    fig = new_figure(10, 6.5)
    (a_step, a_tier), (a_succ, a_rate) = fig.subplots(2, 2)

    bottom = [0.0] * len(s.steps)
    for label, vals, color in (
        ("model", s.model_cost, "tab:blue"),
        ("tools", s.tool_cost, "tab:orange"),
        ("verifier", s.verifier_cost, "tab:green"),
    ):
        a_step.bar(s.steps, vals, bottom=bottom, label=label, color=color)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    for n, k in zip(s.steps, s.verifier_calls, strict=True):
        if k:
            a_step.annotate(
                f"{k} verif.",
                (n, 0),
                fontsize=6,
                ha="center",
                va="bottom",
                xytext=(0, 2),
                textcoords="offset points",
            )
    a_step.set_title("spend per step (all runs)", fontsize=9)
    a_step.set_xlabel("step")
    a_step.set_xticks(s.steps)
    a_step.set_ylabel("USD")
    a_step.legend(fontsize=7)

    tiers = [1, 2, 3, 4, 5]
    calls = [s.calls_by_tier.get(t, 0) for t in tiers]
    esc = [s.escalated_by_tier.get(t, 0) for t in tiers]
    a_tier.bar(tiers, calls, color="tab:blue", label="model calls")
    a_tier.bar(tiers, esc, color="tab:red", hatch="//", label="of which escalated")
    a_tier.set_title("tier mix", fontsize=9)
    a_tier.set_xlabel("tier")
    a_tier.set_ylabel("calls")
    a_tier.set_xticks(tiers)
    a_tier.set_xlim(0.5, 5.5)
    a_tier.legend(fontsize=7)

    by = report.success_rate_by_tier
    a_succ.bar(list(by), [v.success_rate for v in by.values()], color="tab:green")
    for t, v in by.items():
        a_succ.annotate(
            f"{v.successes}/{v.runs}", (t, v.success_rate), fontsize=7, ha="center", va="bottom"
        )
    a_succ.axhline(st.ALERT_MIN_SUCCESS_RATE, color="tab:red", ls=":", lw=1)
    a_succ.set_ylim(0, 1.1)
    a_succ.set_xlim(0.5, 5.5)
    a_succ.set_xticks(tiers)
    a_succ.set_title("success rate by tier of the final answer", fontsize=9)
    a_succ.set_xlabel("tier")

    rates = _rates(report)
    ys = list(range(len(rates)))
    a_rate.barh(ys, [r or 0.0 for _, r, _ in rates], color="tab:purple")
    for y, (_, rate, thr) in zip(ys, rates, strict=True):
        a_rate.annotate(
            "n/a" if rate is None else f"{rate:.0%}",
            (rate or 0.0, y),
            fontsize=7,
            va="center",
            xytext=(3, 0),
            textcoords="offset points",
        )
        if thr is not None:
            a_rate.plot([thr, thr], [y - 0.4, y + 0.4], color="tab:red", lw=1.5)
    a_rate.set_yticks(ys, [lbl for lbl, _, _ in rates], fontsize=8)
    a_rate.set_xlim(0, 1.15)
    a_rate.invert_yaxis()
    a_rate.set_title("rates (red: the seed's alert thresholds)", fontsize=9)

    cpst = report.cost_per_successful_task
    per_success = "n/a" if cpst is None else f"\\${cpst:.4f}"  # \$: no mathtext
    fig.suptitle(
        title
        or (
            f"{report.runs} runs, {report.model_calls} model calls, "
            f"total \\${report.total_cost:.4f}, "
            f"per successful task {per_success}"
        ),
        fontsize=10,
    )
    return fig


__all__ = ["TraceSeries", "stats_figure", "trace_series"]
