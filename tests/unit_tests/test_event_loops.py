"""``ainvoke`` from a second event loop (issue 19, item 6): ``asyncio.run`` twice, as scripts
and notebooks do, must reach the same tier both times, never "Event loop is closed" counted
as a tier fault and answered by a pricier tier.

The tiers are real ``ChatOpenAI`` clients (built from the config) against
``tests/fault_server.FaultServer`` on loopback.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from aco_langchain import ACORouterChatModel
from aco_langchain.config import config_from_dict
from aco_langchain.routing import RuleRouter
from tests.fault_server import FaultServer


def _llm(url: str) -> ACORouterChatModel:
    models = {
        f"tier{n}": {
            "model_id": f"t{n}",
            "provider": "openai-compatible",
            "base_url": url,
            "cost_per_1k_input": 0.1 * n,
            "cost_per_1k_output": 0.1 * n,
        }
        for n in range(2, 6)
    }
    cfg = config_from_dict({"routing": {"max_retries": 0}, "models": models})
    return ACORouterChatModel(config=cfg, router=RuleRouter())


def test_ainvoke_from_two_event_loops_stays_on_its_tier(caplog: pytest.LogCaptureFixture) -> None:
    with FaultServer(text="answer") as srv:
        llm = _llm(srv.base_url)

        async def ask() -> dict:
            msg = await llm.ainvoke("hi", force_tier=2)
            return dict(msg.response_metadata["aco"])

        with caplog.at_level(logging.WARNING, logger="aco_langchain"):
            first = asyncio.run(ask())
            second = asyncio.run(ask())  # a new loop: the first one is closed
            third = asyncio.run(ask())
        sync = llm.invoke("hi", force_tier=2).response_metadata["aco"]
    for meta in (first, second, third, sync):
        assert meta["tier"] == 2 and not meta.get("fallback_from"), meta
        assert not meta.get("failures"), meta
    assert "Event loop is closed" not in caplog.text
    assert len(srv.requests) == 4 and {r.body["model"] for r in srv.requests} == {"t2"}


def test_streams_from_two_event_loops() -> None:
    with FaultServer(text="streamed answer") as srv:
        llm = _llm(srv.base_url)

        async def stream() -> str:
            return "".join([str(c.content) async for c in llm.astream("hi", force_tier=3)])

        assert asyncio.run(stream()) == "streamed answer"
        assert asyncio.run(stream()) == "streamed answer"
    assert {r.body["model"] for r in srv.requests} == {"t3"}
