"""The OpenAI-family tiers the router builds (``providers/openai_chat.TierChatOpenAI``) answer
exactly as ChatOpenAI does, parsed on the event loop instead of a worker thread (issue 18).

Both models call ``tests/fault_server.FaultServer`` (a loopback OpenAI-compatible server) with
the same script; their answers, metadata, tool calls and errors are compared field by field.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from langchain_openai import ChatOpenAI

from aco_langchain.config import config_from_dict
from aco_langchain.providers.openai_chat import TierChatOpenAI
from aco_langchain.providers.tiers import TierRegistry
from tests.fault_server import Fault, FaultServer


def _pair(srv: FaultServer, **kw: Any) -> tuple[ChatOpenAI, TierChatOpenAI]:
    args = {"model": "up-2", "base_url": srv.base_url, "api_key": "x", "max_retries": 0, **kw}
    return ChatOpenAI(**args), TierChatOpenAI(**args)


def _same(a: Any, b: Any) -> None:
    assert b.content == a.content
    assert b.usage_metadata == a.usage_metadata
    assert b.tool_calls == a.tool_calls
    drop = {"id", "created"}
    assert {k: v for k, v in b.response_metadata.items() if k not in drop} == {
        k: v for k, v in a.response_metadata.items() if k not in drop
    }


async def test_a_plain_answer_a_tool_call_and_logprobs_are_chatopenais() -> None:
    script = [Fault(text="Paris."), Fault(text="Paris.")]
    script += [Fault(tool_call=("search", '{"q": "x"}'))] * 2
    with FaultServer(script + [Fault(text="Lyon.")] * 2) as srv:
        plain, ours = _pair(srv)
        _same(await plain.ainvoke("Capital?"), await ours.ainvoke("Capital?"))
        tools = [{"type": "function", "function": {"name": "search", "parameters": {}}}]
        _same(
            await plain.bind_tools(tools).ainvoke("Find x"),
            await ours.bind_tools(tools).ainvoke("Find x"),
        )
        a = await plain.ainvoke("Where?", logprobs=True)
        b = await ours.ainvoke("Where?", logprobs=True)
        _same(a, b)
        assert b.response_metadata["logprobs"]  # carried, as ChatOpenAI carries them


@pytest.mark.parametrize("fault", ["400", "401", "429", "500"])
async def test_a_provider_error_is_the_error_chatopenai_raises(fault: str) -> None:
    with FaultServer([fault, fault], default="ok") as srv:
        plain, ours = _pair(srv)
        with pytest.raises(Exception) as expected:
            await plain.ainvoke("hi")
        with pytest.raises(Exception) as got:
            await ours.ainvoke("hi")
    assert type(got.value) is type(expected.value)
    assert str(got.value) == str(expected.value)


async def test_the_answer_is_parsed_on_the_event_loops_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: list[int] = []
    parse = TierChatOpenAI._create_chat_result

    def spy(self: TierChatOpenAI, *args: Any, **kwargs: Any) -> Any:
        threads.append(threading.get_ident())
        return parse(self, *args, **kwargs)

    monkeypatch.setattr(TierChatOpenAI, "_create_chat_result", spy)
    with FaultServer([Fault(text="ok")]) as srv:
        _, ours = _pair(srv)
        assert (await ours.ainvoke("hi")).content == "ok"
    assert threads == [threading.get_ident()]


def test_the_router_builds_its_openai_tiers_with_it() -> None:
    cfg = config_from_dict(
        {
            "models": {
                "tier2": {
                    "model_id": "t2",
                    "provider": "openai-compatible",
                    "model": "m",
                    "base_url": "http://127.0.0.1:9/v1",
                }
            }
        }
    )
    assert type(TierRegistry(cfg).model(2)) is TierChatOpenAI
