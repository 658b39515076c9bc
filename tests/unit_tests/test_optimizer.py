"""ACOOptimizer: the seed's Python API and its Custom Agent Harness, offline."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

from aco_langchain.agent.optimizer import ACOOptimizer
from aco_langchain.tracing import InMemoryTraceSink, read_traces
from tests.prices import at_seed_prices

RULES = at_seed_prices(router="rules")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cost_aware_agent.py"


def _logprobs(p: float, n: int = 6) -> dict:
    return {"content": [{"token": "t", "logprob": math.log(p), "top_logprobs": []}] * n}


def test_seed_basic_routing_shape():
    opt = ACOOptimizer(at_seed_prices(router="rules", router_model_path="router_models/x"))
    result = opt.start_run("Debug this critical production bug")
    assert set(result) == {"run_id", "routing", "context_budget"}
    assert {"tier", "model_id", "confidence", "cost_estimate"} <= set(result["routing"])
    assert {"total_tokens", "keep_exact", "omit"} <= set(result["context_budget"])
    assert result["routing"]["tier"] == 5 and result["routing"]["model_id"] == "specialist-expert"
    assert result["context_budget"]["total_tokens"] > 0


def test_default_constructor_works():
    result = ACOOptimizer().start_run("What is 2+2?")
    assert result["routing"]["tier"] <= 2  # a trivial prompt stays on a cheap tier
    assert result["routing"]["reason"]


def test_langchain_integration_example_routes_without_end_run(tmp_path):
    path = tmp_path / "t.jsonl"
    opt = ACOOptimizer(at_seed_prices(router="rules", trace_path=str(path)))

    class ACORouter:
        def route(self, prompt: str) -> str:
            return opt.start_run(prompt)["routing"]["model_id"]

    llm = ACORouter()
    assert llm.route("What is 2+2?") == "tiny-local-3b"
    assert llm.route("Fix the auth bug in production") == "specialist-expert"
    assert not path.exists()  # abandoned route-only runs are not written


def test_full_run_records_and_writes_trace(tmp_path):
    path = tmp_path / "traces" / "aco.jsonl"
    opt = ACOOptimizer(at_seed_prices(router="rules", trace_path=str(path)))
    r = opt.start_run("Fix the typo in README")
    call = opt.record_model_call(
        model_id=r["routing"]["model_id"], input_tokens=1000, output_tokens=200
    )
    assert call.cost == pytest.approx((1000 * 0.30 + 200 * 0.30) / 1000)  # tier 3 price
    opt.record_tool_call("code_search", success=True)
    opt.record_verifier_call(passed=True, cost=0.01)
    trace = opt.end_run(success=True, claimed_done=True)
    assert trace.trace_id == r["run_id"] and trace.final_outcome == "completed"
    assert trace.total_cost == pytest.approx(call.cost + 0.01)
    assert trace.steps[0].tool_calls[0].cost == 0.0  # no cost configured: $0
    on_disk = read_traces(path).traces
    assert [t.trace_id for t in on_disk] == [trace.trace_id]
    assert opt.stats().runs == 1 and opt.stats().success_rate == 1.0


def test_record_without_a_run_is_a_clear_error():
    with pytest.raises(RuntimeError, match="start_run"):
        ACOOptimizer(RULES).record_model_call(model_id="medium-70b")
    with pytest.raises(RuntimeError, match="start_run"):
        ACOOptimizer(RULES).end_run(success=True)
    opt = ACOOptimizer(RULES)
    opt.start_run("x")
    with pytest.raises(ValueError, match="names no tier"):
        opt.record_model_call(model_id="gpt-99")
    with pytest.raises(ValueError, match="empty"):
        opt.start_run("   ")


def test_cascade_step_delegates_and_marks_the_next_call_escalated():
    sink = InMemoryTraceSink()
    opt = ACOOptimizer(RULES, sink=sink)
    opt.start_run("What is the capital of Peru?")
    opt.record_model_call(tier=1, input_tokens=20, output_tokens=5)
    low = opt.cascade_step("Capital of Peru?", 1, _logprobs(0.3), "Lima?", threshold=0.5)
    assert low.escalated and low.final_tier == 2 and low.model_id == "cheap-cloud-8b"
    opt.record_model_call(model_id=low.model_id, input_tokens=20, output_tokens=5)
    high = opt.cascade_step("Capital of Peru?", 2, _logprobs(0.99), "Lima", threshold=0.5)
    assert not high.escalated
    trace = opt.end_run(success=True)
    assert [m.escalated for m in trace.model_calls] == [False, True]
    assert sink.traces[0].escalated


def test_cascade_respects_unavailable_tiers():
    opt = ACOOptimizer(RULES, unavailable={2: "no OPENAI_API_KEY"})
    c = opt.cascade_step("q", 1, _logprobs(0.2), "hmm", threshold=0.5)
    assert c.escalated and c.final_tier == 3


def test_check_doom_and_end_run_outcome():
    opt = ACOOptimizer(RULES)
    opt.start_run("Fix the auth bug", max_budget=1.0)
    opt.record_model_call(tier=4, input_tokens=1000, output_tokens=0)  # $1.00
    doom = opt.check_doom()
    assert doom.doomed and doom.kind == "budget_exhausted"
    trace = opt.end_run(success=False)
    assert trace.final_outcome == "doomed" and "budget exhausted" in trace.doom_reason


def test_check_doom_uses_given_total_spent_and_repeated_failures():
    opt = ACOOptimizer(RULES)
    opt.start_run("Fix the auth bug")
    assert opt.check_doom(total_spent=5.0).kind == "budget_exhausted"
    for i in range(3):
        opt.record_model_call(tier=1, output=f"attempt {i}")
        opt.record_tool_call("run_tests", success=False, args={"k": "auth"})
    assert opt.check_doom().kind == "repeated_failure"


def test_gate_and_verify_use_the_run_state():
    opt = ACOOptimizer(at_seed_prices(router="rules", agent={"tool_costs": {"web_search": 0.01}}))
    opt.start_run("Research transformer advances")
    assert opt.gate("web_search").allowed  # task type research from routing
    opt.record_model_call(tier=1)
    opt.record_tool_call("web_search")
    opt.record_tool_call("web_search")
    assert not opt.gate("web_search").allowed  # third call: diminishing returns
    assert opt.verify("high", 0.7).needed
    opt.record_verifier_call(passed=True)
    opt.record_model_call(tier=1)
    assert not opt.verify("high", 0.7).needed  # 2 of 2 steps would exceed the 0.5 budget


def _load_example():
    spec = importlib.util.spec_from_file_location("cost_aware_agent", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_seed_custom_agent_harness_runs_offline():
    ex = _load_example()
    agent = ex.CostAwareAgent(max_budget=5.0, config=RULES)
    trace = agent.run("Fix the auth bug")
    assert trace.task_success and trace.final_outcome == "completed"
    tiers = [m.tier for m in trace.model_calls]
    assert tiers[:2] == [1, 1]  # reads go local
    assert any(m.escalated for m in trace.model_calls)  # the hard edit escalated
    assert trace.total_cost == pytest.approx(agent.ps.total_spent)
    assert trace.total_cost < 5.0


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_seed_harness_stops_when_doomed():
    ex = _load_example()
    trace = ex.CostAwareAgent(max_budget=1.0, config=RULES).run("Fix the auth bug")
    assert not trace.task_success and trace.final_outcome == "doomed"
