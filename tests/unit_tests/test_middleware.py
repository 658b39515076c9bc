"""ACOMiddleware with LangChain v1 create_agent: whole loops offline with scripted tiers."""

from __future__ import annotations

from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from aco_langchain.config import ACOConfig
from aco_langchain.integrations.middleware import ACOMiddleware
from aco_langchain.testing import ScriptedChatModel
from aco_langchain.tracing.callback import ACOTraceCallbackHandler
from tests.prices import at_seed_prices
from tests.unit_tests.agent_helpers import call, deploy_service, read_file, run_tests, tiers

CFG = at_seed_prices(router="rules")
TASK = "Fix the parse bug in utils.py"


def agent(t: dict[int, ScriptedChatModel], tools: list[Any], cfg: ACOConfig = CFG, **kw: Any):  # type: ignore[no-untyped-def]
    checkpointer = kw.pop("checkpointer", None)
    aco = ACOMiddleware(cfg, tier_models=t, **kw)
    return create_agent(aco.model, tools, middleware=[aco], checkpointer=checkpointer)


def events(out: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in out["aco_events"] if e["type"] == kind]


def test_per_step_routing_through_wrap_model_call() -> None:
    t = tiers(t3=[call("read_file", {"path": "utils.py"}, "c1")])
    t[1] = ScriptedChatModel(model="fake-t1", script=["fixed"], logprob=-0.01)  # measured
    out = agent(t, [read_file]).invoke({"messages": [HumanMessage(TASK)]})
    assert [type(m).__name__ for m in out["messages"]] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
    ]
    steps = events(out, "model")
    assert [s["tier"] for s in steps] == [3, 1]
    assert len(t[3].calls) == 1 and len(t[1].calls) == 1
    assert "tools" in t[3].call_kwargs[0]  # tools bound to the tier the step went to
    assert events(out, "tool")[0]["success"]
    assert out["messages"][-1].response_metadata["aco"]["tier"] == 1


def test_direct_mode_overrides_the_model_with_the_tier() -> None:
    t = tiers(t3=[call("read_file", {"path": "a"}, "c1")], t1=["fixed"])
    out = agent(t, [read_file], direct=True).invoke({"messages": [HumanMessage(TASK)]})
    steps = events(out, "model")
    assert [s["tier"] for s in steps] == [3, 1]
    assert "aco" not in out["messages"][-1].response_metadata  # the tier answered directly
    assert steps[0]["cost"] > 0  # priced from usage at tier 3's price


async def test_async_agent_loop() -> None:
    t = tiers(t3=[call("read_file", {"path": "a"}, "c1")], t1=["fixed"])
    out = await agent(t, [read_file]).ainvoke({"messages": [HumanMessage(TASK)]})
    assert [s["tier"] for s in events(out, "model")] == [3, 1]
    assert out["messages"][-1].content == "fixed"


@pytest.mark.parametrize("use_async", [False, True])
async def test_empty_answer_falls_back_inside_the_model_call(use_async: bool) -> None:
    # An empty reply is a tier fault (issue 11): the chat model falls back to tier 4 within
    # the one model call, so the agent sees one real answer.
    t = tiers(t3=[""], t4=["real answer"])
    graph = agent(t, [], verify_answers=False)
    inp = {"messages": [HumanMessage(TASK)]}
    out = await graph.ainvoke(inp) if use_async else graph.invoke(inp)
    step = events(out, "model")[0]
    assert step["tier"] == 4
    assert out["messages"][-1].response_metadata["aco"]["fallback_from"] == 3
    assert out["messages"][-1].content == "real answer"
    assert len([m for m in out["messages"] if isinstance(m, AIMessage)]) == 1


def test_unparseable_tool_call_escalates() -> None:
    bad = AIMessage(
        "",
        invalid_tool_calls=[
            {"name": "read_file", "args": "{not json", "id": "x", "error": "bad json"}
        ],
    )
    t = tiers(t3=[bad], t4=["answer"])
    out = agent(t, [read_file], verify_answers=False).invoke({"messages": [HumanMessage(TASK)]})
    assert "unparseable tool call" in events(out, "model")[0]["reason"]


def test_doom_stop_jumps_to_end_with_a_message() -> None:
    cfg = at_seed_prices(router="rules", agent={"max_repeated_failures": 2})
    t = tiers(t3=[call("run_tests", {"target": "t"}, "c1")])
    h = ACOTraceCallbackHandler(config=cfg)
    out = agent(t, [run_tests], cfg).invoke(
        {"messages": [HumanMessage("Fix the failing unit tests")]}, {"callbacks": [h]}
    )
    last = out["messages"][-1]
    assert last.name == "aco" and "repeated_failure" in last.content
    fails = events(out, "tool")
    assert len(fails) == 2 and "RuntimeError" in fails[0]["error"]
    assert h.traces[0].final_outcome == "doomed"


def test_budget_stop() -> None:
    big = AIMessage(
        "",
        tool_calls=[{"name": "read_file", "args": {"path": "x"}, "id": "c1"}],
        usage_metadata={"input_tokens": 3000, "output_tokens": 500, "total_tokens": 3500},
    )
    out = agent(tiers(t3=[big]), [read_file], max_budget=1.0).invoke(
        {"messages": [HumanMessage(TASK)]}
    )
    assert events(out, "stop")[0]["kind"] == "budget_exhausted"
    assert "budget exhausted" in out["messages"][-1].content


def test_budget_low_stop_policy_in_wrap_model_call() -> None:
    cfg = at_seed_prices(router="rules", agent={"on_low_budget": "stop"})
    out = agent(tiers(), [], cfg, max_budget=0.0001).invoke({"messages": [HumanMessage(TASK)]})
    assert events(out, "stop")[0]["kind"] == "budget_low"
    assert out["messages"][-1].name == "aco"


def test_tool_gate_skips() -> None:
    @tool
    def web_search(query: str) -> str:
        """Search the web."""
        raise AssertionError("gated")

    t = tiers(t1=[call("web_search", {"query": "2+2"}, "c1"), "4"])
    priced = at_seed_prices(router="rules", agent={"tool_costs": {"web_search": 0.01}})
    out = agent(t, [web_search], priced, verify_answers=False).invoke(
        {"messages": [HumanMessage("What is 2+2?")]}
    )
    tm = [m for m in out["messages"] if isinstance(m, ToolMessage)][0]
    assert "tool gate" in tm.content and "agent.tool_costs['web_search']" in tm.content
    assert events(out, "tool")[0]["skipped"]


def test_verifier_fail_goes_back_to_the_model() -> None:
    t = tiers(t4=["FAIL\nincomplete", "complete answer"])
    t[3] = ScriptedChatModel(model="fake-t3", script=["first"], logprob=-1.0)
    h = ACOTraceCallbackHandler(config=CFG)
    out = agent(t, [], task_risk="high").invoke(
        {"messages": [HumanMessage(TASK)]}, {"callbacks": [h]}
    )
    ver = events(out, "verifier")
    assert [v["passed"] for v in ver] == [False]
    assert [s["tier"] for s in events(out, "model")] == [3, 4]
    assert out["messages"][-1].content == "complete answer"
    tr = h.traces[0]
    assert tr.steps[0].verifier_called and tr.steps[0].verifier_passed is False
    assert tr.final_outcome == "completed"


def test_human_approval_interrupt_and_resume() -> None:
    t = tiers(t5=[call("deploy_service", {"name": "api"}, "c1"), "deployed"])
    graph = agent(
        t,
        [deploy_service],
        task_risk="critical",
        human_approval=True,
        verify_answers=False,
        checkpointer=InMemorySaver(),
    )
    conf = {"configurable": {"thread_id": "m1"}}
    out = graph.invoke({"messages": [HumanMessage("Deploy the api")]}, conf)
    assert out["__interrupt__"][0].value["tool_calls"][0]["name"] == "deploy_service"
    out = graph.invoke(Command(resume={"approved": False, "reason": "no"}), conf)
    tm = [m for m in out["messages"] if isinstance(m, ToolMessage)][0]
    assert "rejected by a human: no" in tm.content


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="max_budget"):
        ACOMiddleware(CFG, tier_models=tiers(), max_budget=-1)
    with pytest.raises(ValueError, match="verifier_tier"):
        ACOMiddleware(CFG, tier_models=tiers(), verifier_tier=0)


def test_uses_the_router_model_given_to_create_agent() -> None:
    from aco_langchain.chat.model import ACORouterChatModel

    t = tiers(t3=[call("read_file", {"path": "utils.py"}, "c1")])
    t[1] = ScriptedChatModel(model="fake-t1", script=["fixed"], logprob=-0.01)  # measured
    llm = ACORouterChatModel(config=CFG, tier_models=t)
    aco = ACOMiddleware()  # no config of its own: the agent's model routes
    out = create_agent(llm, [read_file], middleware=[aco]).invoke(
        {"messages": [HumanMessage(TASK)]}, context={"run_id": "mw-run"}
    )
    assert [s["tier"] for s in events(out, "model")] == [3, 1]
    assert len(t[3].calls) == 1 and len(t[1].calls) == 1  # the scripted tiers answered
    assert aco.llm is llm
    assert llm.spent("mw-run") == pytest.approx(sum(e["cost"] for e in events(out, "model")))


def test_tool_tiers_reach_the_policy() -> None:
    t = tiers(t3=[call("read_file", {"path": "a"}, "c1")], t2=["from tier 2"])
    aco = ACOMiddleware(CFG, tier_models=t, tool_tiers={2, 3, 4, 5}, verify_answers=False)
    assert aco.policy.tool_tiers == frozenset({2, 3, 4, 5})
    out = create_agent(aco.model, [read_file], middleware=[aco]).invoke(
        {"messages": [HumanMessage(TASK)]}
    )
    step = events(out, "model")[1]
    assert step["tier"] == 2 and "no tool calling -> tier 2" in step["reason"]
    assert not t[1].calls
