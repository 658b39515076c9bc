"""Stats over traces: the seed's metrics and its four alerts."""

from __future__ import annotations

import pytest

from aco_langchain.config import ACOConfig
from aco_langchain.tracing import JsonlTraceSink, Trace, TraceRecorder
from aco_langchain.tracing.stats import compute_stats, stats_from_files
from tests.prices import at_seed_prices

#: The frontier baseline (tier 4) at the seed's $1/$3 per 1K: the figures below assume it.
SEED = at_seed_prices()


def _run(
    success: bool,
    tier: int = 2,
    *,
    cost: float = 0.1,
    escalated: bool = False,
    cache_hit: bool = False,
    verified: bool = False,
    claimed_done: bool | None = None,
    tokens: tuple[int, int] = (1000, 200),
) -> Trace:
    rec = TraceRecorder(request="task", predicted_tier=tier)
    rec.record_model_call(
        model_id=f"t{tier}",
        tier=tier,
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        cost=cost,
        escalated=escalated,
        cache_hit=cache_hit,
    )
    if verified:
        rec.record_verifier_call(passed=True)
    return rec.finish(task_success=success, claimed_done=claimed_done)


def test_core_metrics():
    traces = [
        _run(True, 1, cost=0.0, cache_hit=True),
        _run(True, 3, cost=0.3, escalated=True, claimed_done=True),
        _run(False, 3, cost=0.3, claimed_done=True),
        _run(True, 2, cost=0.1, verified=True),
    ]
    r = compute_stats(traces, SEED)
    assert r.runs == 4 and r.successes == 3 and r.success_rate == 0.75
    assert r.total_cost == pytest.approx(0.7)
    assert r.cost_per_successful_task == pytest.approx(0.7 / 3, abs=1e-6)
    assert r.success_rate_by_tier[3].runs == 2 and r.success_rate_by_tier[3].success_rate == 0.5
    assert r.escalation_rate == 0.25
    assert r.cache_hit_rate == 0.25
    assert r.verifier_call_rate == 0.25
    assert r.false_done_rate == 0.5  # of 2 runs that claimed done, 1 failed
    # frontier baseline: 1000 in + 200 out at tier 4 ($1/$3 per 1k) = $1.60 per run
    assert r.frontier_cost_per_successful_task == pytest.approx(4 * 1.6 / 3, abs=1e-6)
    assert r.alerts == []


def test_no_data_gives_no_rates_and_no_alerts():
    r = compute_stats([])
    assert r.runs == 0 and r.success_rate is None and r.cost_per_successful_task is None
    assert r.alerts == []


def test_in_progress_traces_are_skipped():
    rec = TraceRecorder(request="x")
    assert compute_stats([rec.trace]).runs == 0


@pytest.mark.parametrize(
    ("traces", "metric", "hint"),
    [
        ([_run(True), _run(False), _run(False)], "success_rate", "check routing thresholds"),
        (
            [_run(True, cost=5.0, tokens=(1000, 0))],
            "cost_per_successful_task",
            "check escalation logic",
        ),
        (
            [_run(True, verified=True), _run(True, verified=True)],
            "verifier_call_rate",
            "tighten verifier budgeter",
        ),
        ([_run(True, escalated=True), _run(True)], "escalation_rate", "check task classifier"),
    ],
)
def test_seed_alerts(traces, metric, hint):
    alerts = {a.metric: a for a in compute_stats(traces, SEED).alerts}
    assert metric in alerts and hint in alerts[metric].message


def test_thresholds_are_strict_at_the_boundary():
    # exactly 70% success and exactly 30% escalation do not alert
    traces = [_run(True, escalated=i < 3) for i in range(7)] + [_run(False) for _ in range(3)]
    r = compute_stats(traces, SEED)
    assert r.success_rate == 0.7 and r.escalation_rate == 0.3
    assert not {"success_rate", "escalation_rate"} & {a.metric for a in r.alerts}


def test_stats_from_files_reports_bad_lines(tmp_path):
    path = tmp_path / "t.jsonl"
    sink = JsonlTraceSink(path)
    sink.write(_run(True))
    with open(path, "a") as f:
        f.write("not json\n")
    sink.write(_run(False))
    r = stats_from_files([path], ACOConfig())
    assert r.runs == 2 and len(r.problems) == 1 and ":2:" in r.problems[0]
