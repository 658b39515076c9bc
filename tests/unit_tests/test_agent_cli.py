"""aco budget / gate / verify / stats, on a fresh Typer app."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from aco_langchain.cli.agent_cmds import register
from aco_langchain.tracing import JsonlTraceSink, TraceRecorder

runner = CliRunner()


@pytest.fixture
def app() -> typer.Typer:
    a = typer.Typer()
    register(a)
    return a


def _ok(app, *args):
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _err(app, *args):
    result = runner.invoke(app, list(args))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    return result.output


def test_budget_prints_keep_exact_and_omit(app):
    out = _ok(app, "budget", "Research transformer advances")
    assert "total_tokens" in out and "keep_exact" in out and "omit" in out
    assert "cited_sources" in out
    data = json.loads(_ok(app, "budget", "Research transformer advances", "--json"))
    assert data["task_type"] == "research" and data["total_tokens"] > 0


def test_gate_as_in_the_seed(app):
    out = _ok(app, "gate", "web_search", "--task-type", "research")
    assert "ALLOW" in out and "web_search" in out
    data = json.loads(
        _ok(app, "gate", "web_search", "--task-type", "quick_answer", "--cost", "0.01", "--json")
    )
    assert data["allowed"] is False and "unlikely" in data["reason"]


def test_verify_as_in_the_seed(app):
    out = _ok(app, "verify", "--risk", "high", "--confidence", "0.7")
    assert "VERIFY" in out and "0.90" in out
    data = json.loads(_ok(app, "verify", "--risk", "low", "--confidence", "0.9", "--json"))
    assert data["needed"] is False


def test_stats_over_a_trace_file(app, tmp_path):
    path = tmp_path / "t.jsonl"
    sink = JsonlTraceSink(path)
    for ok in (True, False, False):
        rec = TraceRecorder(request="x", predicted_tier=2)
        rec.record_model_call(model_id="cheap-cloud-8b", tier=2, input_tokens=100, cost=0.01)
        sink.write(rec.finish(task_success=ok))
    out = _ok(app, "stats", str(path))
    assert "cost per successful task" in out and "ALERT" in out
    assert "check routing thresholds" in out
    data = json.loads(_ok(app, "stats", str(path), "--json"))
    assert data["runs"] == 3 and data["alerts"][0]["metric"] == "success_rate"


def test_stats_default_path_comes_from_config(app, tmp_path):
    path = tmp_path / "traces.jsonl"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"trace_path: {path}\n")
    out = _err(app, "stats", "--config", str(cfg))
    assert str(path) in out
    rec = TraceRecorder(request="x")
    JsonlTraceSink(path).write(rec.finish(task_success=True))
    assert json.loads(_ok(app, "stats", "--config", str(cfg), "--json"))["runs"] == 1


def test_user_mistakes_are_one_clean_error(app, tmp_path):
    assert "no trace file" in _err(app, "stats", str(tmp_path / "missing.jsonl"))
    assert "--risk" in _err(app, "verify", "--risk", "extreme", "--confidence", "0.5")
    assert "between 0 and 1" in _err(app, "verify", "--risk", "low", "--confidence", "2")
    assert "--task-type" in _err(app, "gate", "web_search", "--task-type", "nope")
    assert "empty" in _err(app, "budget", "  ")
    bad = tmp_path / "bad.yaml"
    bad.write_text("routing:\n  safety_threshold: 7\n")
    assert "safety_threshold" in _err(app, "budget", "x", "--config", str(bad))
    data = json.loads(_err(app, "gate", "x", "--task-type", "nope", "--json"))
    assert data["ok"] is False


def test_module_imports_only_typer_at_top_level():
    import subprocess
    import sys

    code = (
        "import sys; import aco_langchain.cli.agent_cmds; "
        "heavy = [m for m in ('rich', 'langchain_core', 'numpy') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
