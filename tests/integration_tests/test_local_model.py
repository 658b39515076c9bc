"""The real local tier: chat, logprobs, streaming and the cascade through ChatOpenAI."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from aco_langchain.chat import cascade as cs
from aco_langchain.config import LocalModelSettings
from aco_langchain.providers import local as lm

pytestmark = pytest.mark.local_model

QUESTION = [
    SystemMessage("Answer with only the answer."),
    HumanMessage("What is the capital of France?"),
]


def _llm(info: lm.ServerInfo, **kwargs: object):  # type: ignore[no-untyped-def]
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        base_url=info.base_url,
        api_key="local",
        model=lm.MODEL_ALIAS,
        temperature=0.0,
        max_retries=0,
        timeout=60,
        extra_body={"max_tokens": 24},
        **kwargs,
    )


def test_state_points_at_the_server(
    local_server: lm.ServerInfo, local_settings: LocalModelSettings
) -> None:
    assert local_server.base_url.startswith("http://127.0.0.1:")
    assert local_server.base_url.endswith("/v1")
    assert lm.running_base_url(local_settings) == local_server.base_url
    st = lm.status(local_settings)
    assert st.running and st.healthy and st.built and st.pid == local_server.pid
    assert lm.start(local_settings).pid == local_server.pid  # no second server


def test_chat_answers(local_server: lm.ServerInfo) -> None:
    msg = _llm(local_server).invoke(QUESTION)
    assert isinstance(msg.content, str) and msg.content.strip()
    assert "paris" in msg.content.lower()
    assert msg.usage_metadata and msg.usage_metadata["output_tokens"] > 0


def test_logprobs_feed_the_cascade(local_server: lm.ServerInfo) -> None:
    msg = _llm(local_server, logprobs=True, top_logprobs=3).invoke(QUESTION)
    raw = msg.response_metadata["logprobs"]
    tokens = cs.normalize_logprobs(raw, "openai")
    assert tokens and all(t.logprob <= 0.0 for t in tokens)
    assert all(len(t.top) <= 3 for t in tokens) and any(t.top for t in tokens)
    est = cs.confidence_from_logprobs(tokens)
    assert 0.0 < est.value <= 1.0
    res = cs.cascade_step(
        request="What is the capital of France?",
        initial_tier=1,
        cheap_logprobs=raw,
        cheap_response=msg,
    )
    assert res.method == "logprobs" and res.confidence == pytest.approx(est.value)
    assert res.final_tier in (1, 2)


def test_streaming(local_server: lm.ServerInfo) -> None:
    llm = _llm(local_server, stream_usage=True)
    chunks = list(llm.stream(QUESTION))
    assert len(chunks) > 1
    full = chunks[0]
    for c in chunks[1:]:
        full = full + c
    assert "paris" in str(full.content).lower()
    assert full.usage_metadata and full.usage_metadata["output_tokens"] > 0


async def test_async_invoke(local_server: lm.ServerInfo) -> None:
    msg = await _llm(local_server).ainvoke(QUESTION)
    assert str(msg.content).strip()
