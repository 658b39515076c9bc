"""Gates that help by default: a user's tools run with the defaults, every decline names its
setting, and the trace lists every tool call (ran or declined) with its cost and latency."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.prebuilt import InjectedState

from aco_langchain import ACOMiddleware, create_aco_agent
from aco_langchain.config import ACOConfig
from aco_langchain.testing import ScriptedChatModel
from aco_langchain.tracing.callback import ACOTraceCallbackHandler
from tests.unit_tests.agent_helpers import call, run_tests


@tool
def count_messages(state: Annotated[dict, InjectedState]) -> str:
    """Count the messages of the conversation so far."""
    return str(len(state["messages"]))


@tool
def get_weather(city: str) -> str:
    """Get the weather for a city."""
    return f"sunny in {city}"


def _all_tiers(script: list[Any]) -> dict[int, Any]:
    # One scripted model behind every tier: whichever tier a step is routed to, the run
    # follows the script in order.
    model = ScriptedChatModel(model="fake-any-tier", script=list(script))
    return dict.fromkeys(range(1, 6), model)


TWO_CALLS = [
    call("count_messages", {}, "c1"),
    call("get_weather", {"city": "Paris"}, "c2"),
    "3 messages; sunny in Paris",
]


def _graph_agent(cfg: ACOConfig, script: list[Any]) -> Any:
    return create_aco_agent(
        cfg, [count_messages, get_weather], tier_models=_all_tiers(script), verify_answers=False
    )


def _middleware_agent(cfg: ACOConfig, script: list[Any]) -> Any:
    aco = ACOMiddleware(cfg, tier_models=_all_tiers(script), verify_answers=False)
    return create_agent(aco.model, [count_messages, get_weather], middleware=[aco])


@pytest.mark.parametrize("build", [_graph_agent, _middleware_agent], ids=["graph", "middleware"])
def test_unpriced_tools_run_with_the_defaults_and_the_trace_lists_them(build: Any) -> None:
    handler = ACOTraceCallbackHandler()
    out = build(ACOConfig(), TWO_CALLS).invoke(
        {"messages": [HumanMessage("How many messages so far, and the weather in Paris?")]},
        {"callbacks": [handler]},
    )
    answers = {m.name: m for m in out["messages"] if isinstance(m, ToolMessage)}
    assert answers["count_messages"].status != "error" and answers["count_messages"].content
    assert answers["get_weather"].content == "sunny in Paris"
    calls = [c for s in handler.traces[0].steps for c in s.tool_calls]
    assert [c.tool_name for c in calls] == ["count_messages", "get_weather"]
    assert all(c.success and not c.skipped and c.cost == 0.0 for c in calls)
    assert all(c.latency_ms is not None and c.latency_ms >= 0 for c in calls)


@pytest.mark.parametrize("build", [_graph_agent, _middleware_agent], ids=["graph", "middleware"])
def test_a_priced_tool_over_budget_is_declined_naming_the_setting(build: Any) -> None:
    cfg = ACOConfig(agent={"tool_costs": {"get_weather": 50.0}})
    handler = ACOTraceCallbackHandler()
    out = build(cfg, TWO_CALLS).invoke(
        {"messages": [HumanMessage("How many messages so far, and the weather in Paris?")]},
        {"callbacks": [handler]},
    )
    answers = {m.name: m for m in out["messages"] if isinstance(m, ToolMessage)}
    declined = answers["get_weather"].content
    assert "agent.tool_costs['get_weather'] = $50.0000" in declined
    assert "remaining budget" in declined
    assert answers["count_messages"].status != "error"  # the unpriced tool still ran
    calls = {c.tool_name: c for s in handler.traces[0].steps for c in s.tool_calls}
    assert calls["get_weather"].skipped and not calls["get_weather"].success
    assert "agent.tool_costs" in (calls["get_weather"].error or "")
    assert calls["count_messages"].success and not calls["count_messages"].skipped


def test_the_trace_prices_tools_from_the_agents_config_not_the_handlers() -> None:
    cfg = ACOConfig(agent={"tool_costs": {"get_weather": 0.002}})
    handler = ACOTraceCallbackHandler()  # as the README builds it: no config
    _graph_agent(cfg, TWO_CALLS).invoke(
        {"messages": [HumanMessage("Research the weather in Paris")]}, {"callbacks": [handler]}
    )
    calls = {c.tool_name: c for s in handler.traces[0].steps for c in s.tool_calls}
    assert calls["get_weather"].cost == pytest.approx(0.002)


def test_an_identical_failed_call_is_declined_and_says_which_setting() -> None:
    script = [call("run_tests", {"target": "t"}, "c1"), call("run_tests", {"target": "t"}, "c2")]
    graph = create_aco_agent(
        ACOConfig(),
        [run_tests],
        tier_models=_all_tiers([*script, "gave up"]),
        verify_answers=False,
    )
    out = graph.invoke({"messages": [HumanMessage("Fix the failing unit tests")]})
    answers = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert "RuntimeError" in answers[0].content
    assert "agent.max_identical_retries is 0" in answers[1].content
