"""Plots: the frontier's series (sorted, no segment joining its two ends), trace series,
and the PNGs ``aco train|eval --plot`` and ``aco stats --plot`` write."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

pytest.importorskip("matplotlib")

from aco_langchain.cli import app as aco_app  # noqa: E402
from aco_langchain.cli.agent_cmds import register  # noqa: E402
from aco_langchain.errors import PlotError  # noqa: E402
from aco_langchain.routing.training import evaluate as ev  # noqa: E402
from aco_langchain.tracing import JsonlTraceSink, TraceRecorder  # noqa: E402
from aco_langchain.tracing.stats import compute_stats  # noqa: E402
from aco_langchain.viz import (  # noqa: E402
    frontier_figure,
    frontier_series,
    save_png,
    stats_figure,
    trace_series,
)

runner = CliRunner()


def _report(seed: int = 0) -> dict:
    """A real ``evaluate.report`` over synthetic outcomes of three models."""
    rng = np.random.default_rng(seed)
    n = 200
    skill = rng.random(n)
    correct = np.stack([(skill > 0.6), (skill > 0.35), (skill > 0.15)], axis=1).astype(float)
    cost = np.tile([0.0001, 0.001, 0.01], (n, 1))
    p = np.clip(correct * 0.7 + rng.random((n, 3)) * 0.3, 0, 1)
    knobs = ev.default_lambdas(41)
    u = rng.random(n)
    choices, idx, mixes = ev.mixed_sweep(p, cost / 0.01, knobs, u)
    return ev.report(["small", "mid", "big"], correct, cost, choices, knobs[idx], None, mixes)


def _png_is_a_real_plot(path: Path) -> None:
    import matplotlib.image as mpimg

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(path)
    # a drawn figure, not a blank canvas: many distinct colours
    assert len(np.unique(img.reshape(-1, img.shape[-1]), axis=0)) > 20


def test_report_curve_is_not_in_cost_order_but_the_series_is():
    rep = _report()
    raw = [c["mean_cost"] for c in rep["router"]["curve"]]
    # knob order then mixed points: drawn as is, the line jumps back from the cheap end
    assert any(b < a for a, b in zip(raw, raw[1:], strict=False))
    s = frontier_series(rep)
    xs = [c for c, _ in s.router]
    assert xs == sorted(xs)
    assert xs[0] == min(raw) and xs[-1] == max(raw)
    hx = [c for c, _ in s.router_hull]
    assert hx == sorted(hx)


def test_operating_point_is_the_cheapest_reaching_the_quality_target():
    rep = _report()
    best = rep["best_single"]["accuracy"]
    s = frontier_series(rep, quality_level=0.9)
    c, a = s.operating_point
    assert a >= 0.9 * best - 1e-12
    assert all(
        pt["mean_cost"] >= c for pt in rep["router"]["curve"] if pt["accuracy"] >= 0.9 * best
    )
    # at 95% the report's own point_at_95 is the same choice
    s95 = frontier_series(rep, 0.95)
    assert s95.operating_point == (
        rep["router"]["point_at_95"]["mean_cost"],
        rep["router"]["point_at_95"]["accuracy"],
    )
    with pytest.raises(ValueError, match="quality_level"):
        frontier_series(rep, 1.5)


def test_frontier_figure_draws_the_router_line_in_cost_order(tmp_path: Path):
    fig = frontier_figure(_report())
    line = next(ln for ln in fig.axes[0].get_lines() if ln.get_label() == "learned router")
    xs = list(line.get_xdata())
    assert xs == sorted(xs) and len(xs) >= 2
    out = save_png(fig, tmp_path / "f.png")
    _png_is_a_real_plot(out)
    assert not list(tmp_path.glob(".plot-*"))  # no temporary left behind


def test_save_png_into_a_missing_directory_is_a_clear_error(tmp_path: Path):
    with pytest.raises(PlotError, match="does not exist"):
        save_png(frontier_figure(_report()), tmp_path / "nope" / "f.png")


def _trace(tiers: list[int], *, escalated_last: bool = False, success: bool = True):
    rec = TraceRecorder(request="task", predicted_tier=tiers[0])
    for i, t in enumerate(tiers):
        rec.record_model_call(
            model_id=f"t{t}",
            tier=t,
            input_tokens=100,
            output_tokens=50,
            cost=0.001 * t,
            escalated=escalated_last and i == len(tiers) - 1,
        )
        rec.record_tool_call("search", cost=0.0005)
    rec.record_verifier_call(passed=True, cost=0.002)
    return rec.finish(task_success=success, claimed_done=True)


def test_trace_series_sums_steps_and_tiers():
    traces = [_trace([1, 3], escalated_last=True), _trace([1, 1, 2], success=False)]
    unfinished = TraceRecorder(request="still going")
    unfinished.record_model_call(model_id="t5", tier=5, cost=9.0)
    s = trace_series([*traces, unfinished.trace])
    assert s.steps == [1, 2, 3]
    assert s.model_cost == pytest.approx([0.002, 0.003 + 0.001, 0.002])
    assert s.tool_cost == pytest.approx([0.001, 0.001, 0.0005])
    assert s.verifier_calls == [0, 1, 1]  # the verifier runs on each run's last step
    assert s.calls_by_tier == {1: 3, 3: 1, 2: 1}
    assert s.escalated_by_tier == {3: 1}
    report = compute_stats(traces)
    assert s.total_cost == pytest.approx(report.total_cost)
    fig = stats_figure(traces, report)
    assert len(fig.axes) == 4


@pytest.fixture
def agent_app() -> typer.Typer:
    a = typer.Typer()
    register(a)
    return a


def test_aco_stats_plot_writes_a_png(agent_app, tmp_path: Path):
    path = tmp_path / "traces.jsonl"
    sink = JsonlTraceSink(path)
    for t in (_trace([1, 3], escalated_last=True), _trace([2])):
        sink.write(t)
    png = tmp_path / "stats.png"
    res = runner.invoke(agent_app, ["stats", str(path), "--plot", str(png), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["plot"] == str(png)
    _png_is_a_real_plot(png)
    bad = runner.invoke(agent_app, ["stats", str(path), "--plot", str(tmp_path / "x" / "s.png")])
    assert bad.exit_code == 1 and "does not exist" in bad.output
    assert "Traceback" not in bad.output


def test_aco_train_and_eval_plot_write_pngs(tmp_path: Path):
    pytest.importorskip("sklearn")
    from tests.unit_tests.test_router_bundle import _write_slice

    data = _write_slice(tmp_path / "slice.jsonl", n=80)
    cv_png, eval_png = tmp_path / "cv.png", tmp_path / "eval.png"
    res = runner.invoke(
        aco_app,
        [
            "train",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "b"),
            "--plot",
            str(cv_png),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    _png_is_a_real_plot(cv_png)
    res = runner.invoke(
        aco_app,
        [
            "eval",
            "--data",
            str(data),
            "--bundle",
            str(tmp_path / "b"),
            "--plot",
            str(eval_png),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output)
    assert "choices" not in rep and rep["router"]["curve"]
    _png_is_a_real_plot(eval_png)
