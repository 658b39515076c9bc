"""One deadline per call, over real HTTP: ChatOpenAI tiers on loopback fault servers.

Every call's wall time is asserted against its deadline (+0.5 s): the deadline is a
functional bound a user relies on, not a speed target. The cloud tiers are fakes (loopback
servers, tests/fault_server.py) because no real provider can run here.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_openai import ChatOpenAI

from aco_langchain import ACORouterChatModel
from aco_langchain.config import config_from_dict
from aco_langchain.errors import (
    AllTiersFailedError,
    DeadlineExceededError,
    StreamInterruptedError,
)
from aco_langchain.routing import RuleRouter
from tests.fault_server import Fault, FaultServer

SLACK_S = 0.5


def _models(servers: dict[int, FaultServer]) -> dict[str, dict[str, Any]]:
    return {
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


def _llm(servers: dict[int, FaultServer], *, deadline_s: float | None = 2.0, **kw: Any):
    routing: dict[str, Any] = {"max_retries": 2, "retry_base_delay_s": 0.01}
    if deadline_s is not None:
        routing["max_latency_per_call_s"] = deadline_s
    cfg = config_from_dict({"routing": routing, "models": _models(servers)})
    llm = ACORouterChatModel(config=cfg, router=RuleRouter(), **kw)
    for n in range(1, 6):
        llm.registry.model(n)  # build the clients first: the wall times below are call time
    return llm


@pytest.fixture
def servers() -> Iterator[dict[int, FaultServer]]:
    srvs = {
        n: FaultServer(default=Fault("ok", text=f"tier {n} says hi"), hang_s=8).start()
        for n in range(1, 6)
    }
    yield srvs
    for s in srvs.values():
        s.stop()


def _timed(fn: Any) -> tuple[Any, float]:
    t0 = time.monotonic()
    try:
        out = fn()
    except Exception as exc:  # noqa: BLE001 - returned for the test to check
        out = exc
    return out, time.monotonic() - t0


def test_every_tier_hanging_ends_at_the_deadline(servers) -> None:
    for s in servers.values():
        s.push(*["hang"] * 4)
    llm = _llm(servers, deadline_s=1.0)
    out, wall = _timed(lambda: llm.invoke("hi", force_tier=2))
    assert isinstance(out, DeadlineExceededError), out
    assert wall <= 1.0 + SLACK_S
    assert out.source == "routing.max_latency_per_call_s=1" and out.deadline_s == 1.0
    assert "tier 2" in str(out) and "deadline of 1s" in str(out)


async def test_async_every_tier_hanging_ends_at_the_deadline(servers) -> None:
    for s in servers.values():
        s.push(*["hang"] * 4)
    llm = _llm(servers, deadline_s=1.0)
    t0 = time.monotonic()
    with pytest.raises(DeadlineExceededError):
        await llm.ainvoke("hi", force_tier=2)
    assert time.monotonic() - t0 <= 1.0 + SLACK_S


@pytest.mark.parametrize("mode", ["invoke", "stream"])
def test_trickling_server_is_cut(servers, mode: str) -> None:
    # One byte every 0.4 s: no read is ever idle for long, so only a total bound cuts it:
    # the attempt's slice of the deadline, which leaves time for tier 3 to answer.
    servers[2].push(Fault("trickle", trickle_s=0.4))
    llm = _llm(servers, deadline_s=1.5)
    if mode == "invoke":
        out, wall = _timed(lambda: llm.invoke("hi", force_tier=2).content)
    else:
        out, wall = _timed(lambda: "".join(str(c.content) for c in llm.stream("hi", force_tier=2)))
    assert out == "tier 3 says hi", out
    assert wall <= 1.5 + SLACK_S


def test_model_timeout_argument_sets_the_deadline_setting(servers) -> None:
    # LangChain's standard timeout= argument is a spelling of the one deadline setting.
    for n in (2, 3, 4, 5):
        servers[n].push("hang")
    llm = _llm(servers, deadline_s=None, timeout=1.0)
    assert llm.config.routing.max_latency_per_call_s == 1.0
    out, wall = _timed(lambda: llm.invoke("hi", force_tier=2))
    assert isinstance(out, DeadlineExceededError)
    assert out.source == "routing.max_latency_per_call_s=1"
    assert wall <= 1.0 + SLACK_S


def test_per_call_max_latency_ms_is_the_deadline(servers) -> None:
    for s in servers.values():
        s.push("hang")
    llm = _llm(servers, deadline_s=30.0)
    out, wall = _timed(lambda: llm.invoke("hi", force_tier=2, max_latency_ms=500))
    assert isinstance(out, DeadlineExceededError) and out.source == "max_latency_ms=500"
    assert wall <= 0.5 + SLACK_S


def test_slow_tier_then_fallback_within_the_deadline(servers) -> None:
    # The first tier would answer after the deadline: it gets its slice, then tier 3 answers.
    servers[2].push(Fault("slow", hang_s=5))
    llm = _llm(servers, deadline_s=1.0)
    out, wall = _timed(lambda: llm.invoke("hi", force_tier=2))
    assert not isinstance(out, Exception), out
    meta = out.response_metadata["aco"]
    assert meta["tier"] == 3 and meta["fallback_from"] == 2
    assert "share of the deadline" in meta["failures"]["2"]
    assert wall <= 1.0 + SLACK_S


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_hanging_tier_falls_back_within_the_deadline_on_the_first_call(servers, mode) -> None:
    """Issue 19 item 7: tier 2 hangs, tier 3 is healthy, 3 s deadline: tier 3 answers within
    it, and the deadline's clock includes building the clients on the first call."""
    import asyncio

    servers[2].push(*["hang"] * 4)
    cfg = {"routing": {"max_latency_per_call_s": 3.0}, "models": _models(servers)}
    t0 = time.monotonic()  # the clock starts before the model exists: first use included
    llm = ACORouterChatModel(config=config_from_dict(cfg), router=RuleRouter())
    if mode == "sync":
        out = llm.invoke("hi", force_tier=2)
    else:
        out = asyncio.run(llm.ainvoke("hi", force_tier=2))
    wall = time.monotonic() - t0
    assert out.content == "tier 3 says hi"
    assert out.response_metadata["aco"]["fallback_from"] == 2
    assert wall <= 3.0 + SLACK_S


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_refused_connection_falls_back_fast(servers) -> None:
    llm = _llm(servers, deadline_s=3.0)
    spec = llm.config.tier(2)
    refused = spec.model_copy(update={"base_url": f"http://127.0.0.1:{_closed_port()}/v1"})
    llm.config.models["tier2"] = refused
    llm.registry._instances.pop(2)
    llm.registry.model(2)
    out, wall = _timed(lambda: llm.invoke("hi", force_tier=2))
    assert not isinstance(out, Exception), out
    assert out.content == "tier 3 says hi"
    assert "Connection" in out.response_metadata["aco"]["failures"]["2"]
    assert wall <= 3.0 + SLACK_S


@pytest.mark.parametrize(
    "fault", ["empty_choices", "null_content", "html", "bad_json", "400", "401", "503", "reset"]
)
def test_bad_reply_falls_back_within_the_deadline(servers, fault: str) -> None:
    servers[2].push(*[fault] * 3)
    llm = _llm(servers, deadline_s=3.0)
    out, wall = _timed(lambda: llm.invoke("hi", force_tier=2))
    assert not isinstance(out, Exception), out
    assert out.content == "tier 3 says hi"
    meta = out.response_metadata["aco"]
    assert meta["tier"] == 3 and meta["fallback_from"] == 2 and "2" in meta["failures"]
    assert wall <= 3.0 + SLACK_S


@pytest.mark.parametrize("fault", ["empty_stream", "500"])
def test_stream_without_content_falls_back(servers, fault: str) -> None:
    servers[2].push(*[fault] * 3)
    llm = _llm(servers, deadline_s=3.0)
    out, wall = _timed(lambda: "".join(str(c.content) for c in llm.stream("hi", force_tier=2)))
    assert out == "tier 3 says hi"
    assert wall <= 3.0 + SLACK_S


def test_mid_stream_cut_names_the_tier_and_what_was_delivered(servers) -> None:
    servers[2].push("cut")
    llm = _llm(servers, deadline_s=3.0)
    got: list[str] = []
    with pytest.raises(StreamInterruptedError) as info:
        for chunk in llm.stream("hi", force_tier=2):
            got.append(str(chunk.content))
    err = info.value
    assert err.tier == 2 and err.chars == len("".join(got)) > 0
    assert "tier 2 stream broke" in str(err) and err.__cause__ is not None
    assert servers[3].requests == []  # never answered twice


async def test_async_mid_stream_cut(servers) -> None:
    servers[2].push("cut")
    llm = _llm(servers, deadline_s=3.0)
    with pytest.raises(StreamInterruptedError):
        async for _ in llm.astream("hi", force_tier=2):
            pass


async def test_passed_in_tier_gets_the_deadline_in_async(servers) -> None:
    # A ready-made ChatOpenAI with its own retries on: asyncio.timeout still bounds it.
    servers[2].push(*["hang"] * 10)
    given = ChatOpenAI(
        model="given", base_url=servers[2].base_url, api_key="x", max_retries=2, timeout=30
    )
    llm = _llm(servers, deadline_s=1.0, tier_models={2: given})
    t0 = time.monotonic()
    msg = await llm.ainvoke("hi", force_tier=2)  # cut at its slice: tier 3 answers in time
    assert msg.content == "tier 3 says hi"
    assert time.monotonic() - t0 <= 1.0 + SLACK_S
    for n in (3, 4, 5):
        servers[n].push(*["hang"] * 10)
    t0 = time.monotonic()
    with pytest.raises(DeadlineExceededError):
        await llm.ainvoke("hi", force_tier=2)
    assert time.monotonic() - t0 <= 1.0 + SLACK_S


def test_deadline_error_is_an_all_tiers_failed_error() -> None:
    err = DeadlineExceededError(1.0, "timeout=1", 1.02, {2: "APITimeoutError: Request timed out"})
    assert isinstance(err, AllTiersFailedError) and isinstance(err, TimeoutError)
    assert err.failures == {2: "APITimeoutError: Request timed out"}
