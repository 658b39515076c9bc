"""Trace schema, recorder and sinks: the seed's format round-trips; no half lines."""

from __future__ import annotations

import json
import os
import threading

import pytest

from aco_langchain.tracing import (
    SCHEMA_VERSION,
    InMemoryTraceSink,
    JsonlTraceSink,
    Trace,
    TraceRecorder,
    parse_trace_line,
    read_traces,
)

SEED_TRACE = {
    "trace_id": "abc123",
    "request": "Fix the auth bug",
    "task_type": "coding",
    "difficulty": 4,
    "predicted_tier": 5,
    "steps": [
        {
            "step_num": 1,
            "model_call": {
                "model_id": "specialist-expert",
                "tier": 5,
                "input_tokens": 2000,
                "output_tokens": 500,
                "cost": 3.50,
            },
            "tool_calls": [{"tool_name": "code_search", "success": True, "cost": 0.01}],
            "verifier_called": False,
        }
    ],
    "final_outcome": "completed",
    "task_success": True,
    "total_cost": 3.51,
}


def _seed_fields(d: dict) -> dict:
    """The seed's keys only, for comparison."""
    step = d["steps"][0]
    return {
        **{k: d[k] for k in SEED_TRACE if k != "steps"},
        "steps": [
            {
                "step_num": step["step_num"],
                "model_call": {
                    k: step["model_call"][k] for k in SEED_TRACE["steps"][0]["model_call"]
                },
                "tool_calls": [
                    {k: t[k] for k in ("tool_name", "success", "cost")} for t in step["tool_calls"]
                ],
                "verifier_called": step["verifier_called"],
            }
        ],
    }


def test_seed_trace_parses_and_dumps_back_field_for_field():
    trace = Trace.model_validate(SEED_TRACE)
    assert trace.schema_version == SCHEMA_VERSION
    assert _seed_fields(trace.model_dump()) == SEED_TRACE


def test_recorder_builds_the_seed_example():
    rec = TraceRecorder(
        request="Fix the auth bug",
        trace_id="abc123",
        task_type="coding",
        difficulty=4,
        predicted_tier=5,
    )
    rec.record_model_call(
        model_id="specialist-expert", tier=5, input_tokens=2000, output_tokens=500, cost=3.50
    )
    rec.record_tool_call("code_search", success=True, cost=0.01)
    trace = rec.finish(task_success=True)
    assert trace.final_outcome == "completed"
    assert trace.total_cost == pytest.approx(3.51)
    assert _seed_fields(trace.model_dump()) == SEED_TRACE


def test_recorder_one_model_call_per_step_and_tools_attach_to_current_step():
    rec = TraceRecorder(request="x")
    rec.record_tool_call("read_file")  # before any model call: opens step 1
    rec.record_model_call(model_id="a", tier=1)  # step 1 has no model call yet? it opens step 2
    rec.record_model_call(model_id="b", tier=2, escalated=True)
    rec.record_tool_call("run_tests", success=False)
    rec.record_verifier_call(passed=False, cost=0.01)
    t = rec.finish(task_success=False)
    assert [s.step_num for s in t.steps] == [1, 2, 3]
    assert t.steps[2].tool_calls[0].tool_name == "run_tests"
    assert t.steps[2].verifier_called and t.steps[2].verifier_passed is False
    assert t.escalated and t.final_outcome == "failed"
    assert t.total_cost == pytest.approx(0.01)


def test_unknown_fields_from_newer_writers_are_ignored():
    t = parse_trace_line(json.dumps({**SEED_TRACE, "future_field": 1}))
    assert t.trace_id == "abc123"


def test_jsonl_sink_appends_complete_lines_and_reader_skips_a_torn_tail(tmp_path):
    path = tmp_path / "sub" / "traces.jsonl"
    sink = JsonlTraceSink(path)
    sink.write(Trace.model_validate(SEED_TRACE))
    sink.write(Trace.model_validate({**SEED_TRACE, "trace_id": "def456"}))
    with open(path, "ab") as f:  # a writer killed mid-line
        f.write(b'{"trace_id": "torn", "request": "Fi')
    res = read_traces(path)
    assert [t.trace_id for t in res.traces] == ["abc123", "def456"]
    assert len(res.problems) == 1 and "truncated last line" in res.problems[0]
    assert ":3:" in res.problems[0]


def test_reader_flags_a_non_trace_line_by_field(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"trace_id": "x"}) + "\n" + json.dumps(SEED_TRACE) + "\n")
    res = read_traces([path])
    assert len(res.traces) == 1
    assert "request" in res.problems[0]


def test_concurrent_appenders_never_interleave(tmp_path):
    path = tmp_path / "t.jsonl"
    sink = JsonlTraceSink(path)
    big = Trace.model_validate({**SEED_TRACE, "request": "x" * 20_000})

    def work():
        for _ in range(20):
            sink.write(big)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    res = read_traces(path)
    assert len(res.traces) == 80 and res.problems == []
    assert os.path.getsize(path) == 80 * len(big.model_dump_json().encode() + b"\n")


def test_memory_sink_keeps_a_copy():
    sink = InMemoryTraceSink()
    rec = TraceRecorder(request="x")
    trace = rec.finish(task_success=True)
    sink.write(trace)
    trace.task_success = False
    assert sink.traces[0].task_success is True
