"""Faults over real HTTP: ChatOpenAI tiers pointed at scripted loopback servers."""

from __future__ import annotations

import pytest

from aco_langchain import ACORouterChatModel
from aco_langchain.config import config_from_dict
from aco_langchain.errors import AllTiersFailedError, StreamInterruptedError
from aco_langchain.routing import RuleRouter
from tests.fault_server import Fault, FaultServer


def _llm(servers: dict[int, FaultServer], **routing) -> ACORouterChatModel:
    models = {
        f"tier{n}": {
            "model_id": f"t{n}",
            "provider": "openai-compatible",
            "base_url": srv.base_url,
            "cost_per_1k_input": 0.1 * n,
            "cost_per_1k_output": 0.1 * n,
            "capabilities": ["chat", "tools", "logprobs"],
        }
        for n, srv in servers.items()
    }
    cfg = config_from_dict(
        {
            "routing": {
                "max_retries": 2,
                "max_latency_per_call_s": 0.5,
                "retry_base_delay_s": 0.01,
                **routing,
            },
            "models": models,
        }
    )
    llm = ACORouterChatModel(config=cfg, router=RuleRouter())
    for n in servers:
        llm.registry.model(n)  # build the clients first: these tests time faults, not setup
    return llm


@pytest.fixture
def servers():
    srvs = {
        n: FaultServer(default=Fault("ok", text=f"tier {n} says hi"), hang_s=3).start()
        for n in range(1, 6)
    }
    yield srvs
    for s in srvs.values():
        s.stop()


def test_429_and_500_are_retried_on_the_same_tier(servers) -> None:
    servers[2].push("429", "500")
    msg = _llm(servers).invoke("hi", force_tier=2)
    assert msg.content == "tier 2 says hi"
    assert [r.behaviour for r in servers[2].requests] == ["429", "500", "ok"]
    assert msg.response_metadata["aco"]["fallback_from"] is None
    assert msg.response_metadata["model_name"]  # the tier's own model name survives


@pytest.mark.parametrize("fault", ["close", "reset", "503"])
def test_persistent_fault_falls_back_once_per_request(servers, fault: str) -> None:
    servers[3].push(fault, fault, fault)
    msg = _llm(servers).invoke("hi", force_tier=3)
    meta = msg.response_metadata["aco"]
    assert msg.content == "tier 4 says hi"
    assert meta["tier"] == 4 and meta["fallback_from"] == 3
    assert len(servers[3].requests) == 3  # one try + max_retries, then fallback
    assert len(servers[4].requests) == 1  # answered exactly once


def test_stream_falls_back_before_first_chunk(servers) -> None:
    servers[2].push("500", "500", "500")
    text = "".join(str(c.content) for c in _llm(servers).stream("hi", force_tier=2))
    assert text == "tier 3 says hi"
    assert len(servers[3].requests) == 1


def test_stream_cut_midway_is_not_answered_twice(servers) -> None:
    servers[2].push("cut")
    llm = _llm(servers)
    with pytest.raises(StreamInterruptedError, match="tier 2"):
        "".join(str(c.content) for c in llm.stream("hi", force_tier=2))
    assert len(servers[3].requests) == 0


async def test_async_fallback(servers) -> None:
    servers[1].push("close", "close", "close")
    # 2 s: three closed connections and retries, then tier 2 (its client built in the call)
    msg = await _llm(servers, max_latency_per_call_s=2.0).ainvoke("hi", force_tier=1)
    assert msg.response_metadata["aco"]["tier"] == 2


def test_all_failing_lists_every_tier(servers) -> None:
    for s in servers.values():
        s.push(*["500"] * 3)
    with pytest.raises(AllTiersFailedError) as info:
        _llm(servers, max_latency_per_call_s=30).invoke("hi", force_tier=1)
    assert type(info.value) is AllTiersFailedError  # not the deadline: every tier was tried
    assert set(info.value.failures) == {1, 2, 3, 4, 5}
    assert "500" in info.value.failures[3]
    # Each tier's exception is kept, and the error is raised from the last one.
    assert set(info.value.exceptions) == {1, 2, 3, 4, 5}
    assert info.value.__cause__ is info.value.exceptions[list(info.value.failures)[-1]]


def test_usage_and_cost_from_real_response(servers) -> None:
    msg = _llm(servers).invoke("hello there", force_tier=2)
    u = msg.usage_metadata
    assert u["input_tokens"] > 0 and u["output_tokens"] > 0
    expected = (u["input_tokens"] + u["output_tokens"]) * 0.2 / 1000
    assert msg.response_metadata["aco"]["cost_usd"] == pytest.approx(expected)
