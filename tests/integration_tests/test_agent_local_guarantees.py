"""Agents on the real local tier (SmolLM2-135M on llama-server), no keys: what our code
guarantees, not what a 135M model chooses.

Which tool to call is forced by name (``tool_choice``) on the local tier for each tool not
called yet: constrained decoding then guarantees a well-formed call whatever the model
"wants", so these tests check our part: an unpriced tool (plain or ``InjectedState``) runs
with the defaults, its result reaches the model, the final answer is text (never the
``{"final_answer": ...}`` envelope), the trace lists every tool call, and nothing is billed.
"""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.prebuilt import InjectedState

from aco_langchain.config import ACOConfig
from aco_langchain.providers import local as lm
from aco_langchain.providers.local.chat import ChatLlamaServer
from aco_langchain.tracing.callback import ACOTraceCallbackHandler

pytestmark = pytest.mark.local_model


@tool
def count_messages(state: Annotated[dict, InjectedState]) -> str:
    """Count the messages of the conversation so far."""
    return str(len(state["messages"]))


@tool
def get_weather(city: str) -> str:
    """Get the weather for a city."""
    return f"sunny in {city}"


TOOLS = [count_messages, get_weather]
QUESTION = "How many messages so far, and what is the weather in Paris?"


class _EachToolOnce(ChatLlamaServer):
    """The local tier, asked to call each bound tool not called yet (by name), then free."""

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> Any:
        called = {tc["name"] for m in messages if isinstance(m, AIMessage) for tc in m.tool_calls}
        names = [t["function"]["name"] for t in kwargs.get("tools") or []]
        todo = [n for n in names if n not in called]
        if todo:
            kwargs["tool_choice"] = todo[0]
        return super()._generate(messages, *args, **kwargs)


def _config() -> ACOConfig:
    # No keys: tiers 2-5 are unavailable, every step is the local tier. Short answers and a
    # roomy deadline: the 135M model shares 2 cores with other test runs.
    return ACOConfig(routing={"max_output_tokens": 64, "max_latency_per_call_s": 180})


def _local(info: lm.ServerInfo) -> _EachToolOnce:
    return _EachToolOnce(
        base_url=info.base_url,
        api_key="local",
        model=lm.MODEL_ALIAS,
        temperature=0.0,
        max_retries=0,
        timeout=180,
    )


def _check(out: dict[str, Any], handler: ACOTraceCallbackHandler) -> None:
    messages = out["messages"]
    asked = [tc for m in messages if isinstance(m, AIMessage) for tc in m.tool_calls]
    answers = {m.tool_call_id: m for m in messages if isinstance(m, ToolMessage)}
    # Both unpriced tools were called and ran with the defaults (no gate decline).
    assert {tc["name"] for tc in asked} >= {"count_messages", "get_weather"}
    for tc in asked:
        answer = answers[tc["id"]]
        assert "skipped by the tool gate" not in str(answer.content), answer
    ran = {answers[tc["id"]].name for tc in asked if answers[tc["id"]].status != "error"}
    assert ran >= {"count_messages", "get_weather"}
    last = messages[-1]
    assert isinstance(last, AIMessage) and not last.tool_calls
    assert '"final_answer"' not in str(last.content)  # the answer is text, never the envelope
    trace = handler.traces[0]
    traced = [c for s in trace.steps for c in s.tool_calls]
    assert {c.call_id for c in traced} >= {tc["id"] for tc in asked}
    assert all(c.latency_ms is not None for c in traced if not c.skipped)
    assert trace.total_cost == 0.0  # the local tier is free


def test_create_aco_agent_runs_unpriced_tools_on_the_local_tier(
    local_server: lm.ServerInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aco_langchain import create_aco_agent

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    handler = ACOTraceCallbackHandler()
    graph = create_aco_agent(
        _config(), TOOLS, tier_models={1: _local(local_server)}, verify_answers=False
    )
    out = graph.invoke({"messages": [HumanMessage(QUESTION)]}, {"callbacks": [handler]})
    _check(out, handler)


def test_create_agent_with_aco_middleware_runs_them_too(
    local_server: lm.ServerInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langchain.agents import create_agent

    from aco_langchain import ACOMiddleware

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    handler = ACOTraceCallbackHandler()
    aco = ACOMiddleware(_config(), tier_models={1: _local(local_server)}, verify_answers=False)
    agent = create_agent(aco.model, TOOLS, middleware=[aco])
    out = agent.invoke({"messages": [HumanMessage(QUESTION)]}, {"callbacks": [handler]})
    _check(out, handler)
