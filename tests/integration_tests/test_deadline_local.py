"""The real local tier keeps a call's deadline (the llama.cpp server, built tier, sync and
async): a long answer is cut when the time is spent, never later than the deadline + 0.5 s."""

from __future__ import annotations

import time

import pytest

from aco_langchain import ACOConfig, ACORouterChatModel
from aco_langchain.errors import DeadlineExceededError
from aco_langchain.providers import local as lm

pytestmark = pytest.mark.local_model

LONG = "Count from 1 to 2000, one number per line, and do not stop early."


def _llm(deadline_s: float) -> ACORouterChatModel:
    cfg = ACOConfig(
        router="rules",
        routing={"max_latency_per_call_s": deadline_s, "allow_cloud_fallback": False},
    )
    llm = ACORouterChatModel(config=cfg, max_tokens=1500, temperature=0.0)
    llm.registry.model(1)  # build the client first
    return llm


@pytest.mark.parametrize("mode", ["invoke", "stream", "ainvoke"])
async def test_local_tier_keeps_the_deadline(local_server: lm.ServerInfo, mode: str) -> None:
    llm = _llm(1.0)
    t0 = time.monotonic()
    try:
        if mode == "invoke":
            llm.invoke(LONG, force_tier=1)
        elif mode == "stream":
            for _ in llm.stream(LONG, force_tier=1):
                pass
        else:
            await llm.ainvoke(LONG, force_tier=1)
    except DeadlineExceededError as exc:
        assert exc.source == "routing.max_latency_per_call_s=1"
    except Exception as exc:  # noqa: BLE001 - a stream cut after its first chunk
        assert mode == "stream" and "deadline" in str(exc), exc
    assert time.monotonic() - t0 <= 1.0 + 0.5
