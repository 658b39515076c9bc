"""Doom detector: each rule fires with the reason a user needs."""

from __future__ import annotations

from aco_langchain.agent.doom import DoomDetector, RunProgress, assess_doom
from aco_langchain.config import ACOConfig


def test_healthy_run_is_not_doomed():
    det = DoomDetector(max_budget=2.0)
    det.record_step(cost=0.1, output="read the test", tool_calls=[("read_file", {"p": 1}, True)])
    r = det.check()
    assert not r.doomed and not r and r.kind is None


def test_budget_exhausted():
    r = DoomDetector(max_budget=2.0).check(total_spent=2.0)
    assert r.doomed and r.kind == "budget_exhausted" and "$2.0000" in r.reason


def test_budget_projected_overrun_only_when_policy_is_stop():
    stop = ACOConfig(agent={"on_low_budget": "stop"})
    det = DoomDetector(stop, max_budget=2.0)
    det.record_step(cost=0.8, output="a")
    det.record_step(cost=0.8, output="b")
    r = det.check()
    assert r.kind == "budget_projected" and r.projected_spend == 2.4
    local = DoomDetector(ACOConfig(), max_budget=2.0)
    local.record_step(cost=0.8, output="a")
    local.record_step(cost=0.8, output="b")
    assert not local.check().doomed  # it can go on at the local tier for $0


def test_same_failing_tool_call_repeated():
    det = DoomDetector(max_budget=5.0)
    for i in range(3):
        det.record_step(cost=0.01, output=f"try {i}")
        det.record_tool("run_tests", {"path": "tests/"}, success=False)
    r = det.check()
    assert r.kind == "repeated_failure" and "run_tests" in r.reason and "3 times" in r.reason


def test_different_args_are_different_calls():
    det = DoomDetector(max_budget=5.0)
    for i in range(3):
        det.record_step(output=f"try {i}")
        det.record_tool("run_tests", {"path": f"tests/{i}"}, success=False)
    assert not det.check().doomed


def test_no_progress_for_n_steps():
    det = DoomDetector(ACOConfig(agent={"no_progress_steps": 3}), max_budget=5.0)
    det.record_step(output="same answer")
    for _ in range(3):
        det.record_step(output="same answer")
    r = det.check()
    assert r.kind == "no_progress" and "3 steps" in r.reason


def test_new_successful_tool_call_is_progress():
    det = DoomDetector(ACOConfig(agent={"no_progress_steps": 2}), max_budget=5.0)
    det.record_step(output="x")
    det.record_step(output="x")
    det.record_tool("grep", {"q": "token"}, success=True)
    det.record_step(output="x")
    assert not det.check().doomed


def test_step_limit():
    r = assess_doom(RunProgress(max_budget=5.0, steps_taken=25), ACOConfig(agent={"max_steps": 25}))
    assert r.kind == "step_limit" and "max_steps" in r.reason
