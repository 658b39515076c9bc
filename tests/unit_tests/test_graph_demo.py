"""The agent part of the demo, offline (scripted tiers, labelled as such)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from aco_langchain.tracing import read_traces
from aco_langchain.tracing.stats import compute_stats
from tests.examples import load_example

_demo = load_example("demo_agent")
run_demo_agent = _demo.run_demo_agent
scripted_reply = _demo.scripted_reply


def test_demo_agent_runs_and_writes_traces(tmp_path: Path) -> None:
    console = Console(record=True, width=200)
    path = tmp_path / "traces" / "demo.jsonl"
    run_demo_agent(path, console)
    res = read_traces(path)
    assert not res.problems
    debug, fix = res.traces
    assert debug.final_outcome == "completed" and debug.task_success
    assert any(s.verifier_called and s.verifier_passed for s in debug.steps)
    assert [s.model_call.tier for s in debug.steps if s.model_call][:2] == [3, 1]
    assert fix.final_outcome == "doomed" and "failed 2 times" in fix.doom_reason
    text = console.export_text()
    assert "scripted (no OPENAI_API_KEY)" in text
    assert "local model not running" in text
    assert "Stopped by the agent cost optimizer" in text
    report = compute_stats(res.traces)
    assert report.runs == 2 and report.successes == 1


def test_scripted_reply_paths() -> None:
    from langchain_core.messages import HumanMessage, SystemMessage, ToolMessage

    assert scripted_reply([HumanMessage("Fix the flaky test")]).tool_calls[0]["name"] == "run_tests"
    log = ToolMessage("x timed out", tool_call_id="1", name="read_log")
    assert "timed out" in scripted_reply([HumanMessage("nightly"), log]).content
    verdict = scripted_reply([SystemMessage("You are a strict verifier."), HumanMessage("nope")])
    assert verdict.content.startswith("FAIL")
