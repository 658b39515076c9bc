"""ACOTraceCallbackHandler: seed-format traces from callback events of chains and graphs."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableLambda
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from aco_langchain.chat.model import ACORouterChatModel
from aco_langchain.integrations.langgraph import create_aco_agent
from aco_langchain.spend.outcomes import OutcomeStore
from aco_langchain.testing import ScriptedChatModel
from aco_langchain.tracing import InMemoryTraceSink, read_traces
from aco_langchain.tracing.callback import (
    EVENT_OUTCOME,
    ACOTraceCallbackHandler,
    AsyncACOTraceCallbackHandler,
)
from aco_langchain.tracing.stats import compute_stats
from tests.prices import at_seed_prices
from tests.unit_tests.agent_helpers import call, deploy_service, read_file, run_tests, tiers

CFG = at_seed_prices(router="rules")


def test_agent_run_becomes_one_seed_format_trace() -> None:
    t = tiers(t3=[call("read_file", {"path": "utils.py"}, "c1")])
    t[1] = ScriptedChatModel(model="fake-t1", script=["fixed"], logprob=-0.01)  # measured
    graph = create_aco_agent(CFG, [read_file], tier_models=t)
    h = ACOTraceCallbackHandler(InMemoryTraceSink(), config=CFG)
    out = graph.invoke(
        {"messages": [HumanMessage("Fix the parse bug in utils.py")]}, {"callbacks": [h]}
    )
    assert len(h.traces) == 1 and h.sink.traces[0].trace_id == h.traces[0].trace_id
    tr = h.traces[0]
    assert tr.request == "Fix the parse bug in utils.py"
    assert [s.model_call.tier for s in tr.steps] == [3, 1]
    assert tr.steps[0].model_call.model_id == "medium-70b"
    assert tr.steps[0].tool_calls[0].tool_name == "read_file"
    assert tr.steps[0].tool_calls[0].success
    assert tr.steps[0].action == "Fix the parse bug in utils.py"
    assert tr.task_type == "coding" and tr.predicted_tier == 3
    # a final answer is not an observed success: unknown until something reports it
    assert tr.final_outcome == "completed" and tr.task_success is None and tr.claimed_done
    model_cost = sum(e["cost"] for e in out["aco_events"] if e["type"] in ("model", "tool"))
    assert tr.total_cost == pytest.approx(model_cost)
    assert tr.steps[0].model_call.input_tokens > 0


def test_verifier_call_and_verdict_are_recorded() -> None:
    t = tiers(t4=["FAIL\nwrong", "better answer"])
    t[3] = ScriptedChatModel(model="fake-t3", script=["first"], logprob=-1.0)
    graph = create_aco_agent(CFG, [], tier_models=t, task_risk="high")
    h = ACOTraceCallbackHandler(config=CFG)
    graph.invoke({"messages": [HumanMessage("Fix the parse bug")]}, {"callbacks": [h]})
    tr = h.traces[0]
    assert len(tr.steps) == 2  # the verifier is not a step of its own
    assert tr.steps[0].verifier_called and tr.steps[0].verifier_passed is False
    assert tr.steps[0].verifier_cost > 0
    assert not tr.steps[1].verifier_called
    # the last answer was not verified: its success is unknown (not assumed)
    assert tr.task_success is None and tr.final_outcome == "completed"
    assert tr.total_cost == pytest.approx(tr.compute_total_cost())


def test_doomed_run_trace() -> None:
    t = tiers(t3=[call("run_tests", {"target": "t"}, "c1")])
    cfg = at_seed_prices(router="rules", agent={"max_repeated_failures": 2})
    graph = create_aco_agent(cfg, [run_tests], tier_models=t)
    h = ACOTraceCallbackHandler(config=cfg)
    graph.invoke({"messages": [HumanMessage("Fix the failing unit tests")]}, {"callbacks": [h]})
    tr = h.traces[0]
    assert tr.final_outcome == "doomed" and not tr.task_success
    assert "failed 2 times" in tr.doom_reason
    fails = [c for s in tr.steps for c in s.tool_calls]
    assert len(fails) == 2 and not any(c.success for c in fails)
    assert "RuntimeError" in fails[0].error


def test_budget_stop_trace() -> None:
    cfg = at_seed_prices(router="rules", agent={"on_low_budget": "stop"})
    graph = create_aco_agent(cfg, [], tier_models=tiers(), max_budget=0.0001)
    h = ACOTraceCallbackHandler(config=cfg)
    graph.invoke({"messages": [HumanMessage("Fix it")]}, {"callbacks": [h]})
    assert h.traces[0].final_outcome == "budget_exceeded"
    assert "on_low_budget=stop" in h.traces[0].doom_reason


def test_interrupted_run_continues_in_one_trace() -> None:
    t = tiers(t5=[call("deploy_service", {"name": "api"}, "c1"), "deployed", "PASS\nok"])
    graph = create_aco_agent(
        CFG, [deploy_service], tier_models=t, checkpointer=InMemorySaver(), task_risk="critical"
    )
    h = ACOTraceCallbackHandler(config=CFG)
    conf = {"configurable": {"thread_id": "th"}, "callbacks": [h]}
    graph.invoke({"messages": [HumanMessage("Deploy the api service")]}, conf)
    assert h.traces == []  # waiting for the human
    graph.invoke(Command(resume=True), conf)
    assert len(h.traces) == 1
    tr = h.traces[0]
    assert tr.request == "Deploy the api service"
    assert tr.steps[0].tool_calls[0].tool_name == "deploy_service"
    assert tr.final_outcome == "completed"


def test_waiting_runs_can_be_flushed() -> None:
    t = tiers(t5=[call("deploy_service", {"name": "api"}, "c1")])
    graph = create_aco_agent(
        CFG, [deploy_service], tier_models=t, checkpointer=InMemorySaver(), task_risk="critical"
    )
    h = ACOTraceCallbackHandler(config=CFG)
    graph.invoke(
        {"messages": [HumanMessage("Deploy")]},
        {"configurable": {"thread_id": "w"}, "callbacks": [h]},
    )
    flushed = h.flush_waiting()
    assert [t.final_outcome for t in flushed] == ["in_progress"]
    assert compute_stats(h.traces, CFG).runs == 0  # unfinished runs are not counted


def test_plain_router_model_call_is_a_one_step_trace() -> None:
    llm = ACORouterChatModel(config=CFG, tier_models=tiers())
    h = ACOTraceCallbackHandler(config=CFG)
    msg = llm.invoke("What is 2+2?", config={"callbacks": [h]}, force_tier=2)
    tr = h.traces[0]
    assert tr.request == "What is 2+2?"
    assert tr.steps[0].model_call.tier == 2
    assert tr.steps[0].model_call.cost == pytest.approx(msg.response_metadata["aco"]["cost_usd"])
    assert tr.final_outcome == "completed"


def test_non_aco_model_is_priced_by_the_tier_table() -> None:
    m = ScriptedChatModel(model="gpt-4.1", script=["hi"])  # tier 4's provider model
    h = ACOTraceCallbackHandler(config=CFG)
    msg = m.invoke("hello", config={"callbacks": [h]})
    call_ = h.traces[0].steps[0].model_call
    u = msg.usage_metadata
    assert call_.tier == 4 and call_.model_id == "frontier-latest"
    assert call_.cost == pytest.approx((u["input_tokens"] * 1.0 + u["output_tokens"] * 3.0) / 1000)


class _Wrapper(BaseChatModel):
    """A chat model that calls an inner model's invoke (nested runs, duplicate usage)."""

    inner: Any
    report_usage: bool = True

    @property
    def _llm_type(self) -> str:
        return "wrapper"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        from langchain_core.callbacks import CallbackManager

        cb = None
        if run_manager is not None:  # a child manager (there is no get_child on LLM runs)
            cb = CallbackManager(
                handlers=run_manager.inheritable_handlers,
                inheritable_handlers=run_manager.inheritable_handlers,
                parent_run_id=run_manager.run_id,
            )
        out = self.inner.invoke(messages, config={"callbacks": cb})
        msg = AIMessage(
            out.content, usage_metadata=out.usage_metadata if self.report_usage else None
        )
        return ChatResult(generations=[ChatGeneration(message=msg)])


@pytest.mark.parametrize("outer_usage", [True, False])
def test_nested_model_runs_are_counted_once(outer_usage: bool) -> None:
    inner = ScriptedChatModel(model="gpt-4.1", script=["hi"])
    outer = _Wrapper(inner=inner, report_usage=outer_usage)
    h = ACOTraceCallbackHandler(config=CFG)
    outer.invoke("hello", config={"callbacks": [h]})
    tr = h.traces[0]
    assert len(tr.steps) == 1
    assert tr.steps[0].model_call.input_tokens > 0


def test_chain_outcome_event_and_errors() -> None:
    from langchain_core.callbacks.manager import dispatch_custom_event

    def judge(x: str) -> str:
        dispatch_custom_event(EVENT_OUTCOME, {"task_success": False, "final_outcome": "failed"})
        return x

    h = ACOTraceCallbackHandler(config=CFG)
    RunnableLambda(judge).invoke("check the report", {"callbacks": [h]})
    assert h.traces[0].final_outcome == "failed" and h.traces[0].request == "check the report"

    def boom(x: str) -> str:
        raise ValueError("nope")

    with pytest.raises(ValueError):
        RunnableLambda(boom).invoke("x", {"callbacks": [h]})
    assert h.traces[-1].final_outcome == "error"


def test_jsonl_sink_and_stats(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "traces.jsonl"
    h = ACOTraceCallbackHandler(path, config=CFG)
    t = tiers(t3=[call("read_file", {"path": "a"}, "c1")], t1=["done"])
    graph = create_aco_agent(CFG, [read_file], tier_models=t)
    for _ in range(2):
        graph.invoke({"messages": [HumanMessage("Fix the bug in a.py")]}, {"callbacks": [h]})
    res = read_traces(path)
    assert len(res.traces) == 2 and not res.problems
    report = compute_stats(res.traces, CFG)
    assert report.runs == 2 and report.success_rate is None  # no outcome observed
    assert report.runs_without_outcome == 2 and report.cost_per_successful_task is None
    # one run reported a success: rates count it alone
    store = OutcomeStore()
    store.record(res.traces[0].run_key, success=True, source="test")
    report = compute_stats(res.traces, CFG, outcomes=store.many())
    assert report.runs_with_outcome == 1 and report.runs_without_outcome == 1
    assert report.success_rate == 1.0
    assert report.cost_per_successful_task == pytest.approx(res.traces[0].total_cost)


async def test_async_handler_gives_the_same_trace() -> None:
    def run(handler: Any) -> Any:
        t = tiers(t3=[call("read_file", {"path": "a"}, "c1")], t1=["done"])
        return create_aco_agent(CFG, [read_file], tier_models=t), handler

    graph, sync_h = run(ACOTraceCallbackHandler(config=CFG))
    graph.invoke({"messages": [HumanMessage("Fix the bug in a.py")]}, {"callbacks": [sync_h]})
    graph, async_h = run(AsyncACOTraceCallbackHandler(config=CFG))
    await graph.ainvoke(
        {"messages": [HumanMessage("Fix the bug in a.py")]}, {"callbacks": [async_h]}
    )
    a, b = sync_h.traces[0], async_h.traces[0]
    assert [s.model_call.tier for s in a.steps] == [s.model_call.tier for s in b.steps]
    assert [len(s.tool_calls) for s in a.steps] == [len(s.tool_calls) for s in b.steps]
    assert a.total_cost == pytest.approx(b.total_cost)
    assert a.final_outcome == b.final_outcome == "completed"
