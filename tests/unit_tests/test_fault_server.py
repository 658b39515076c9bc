"""The loopback fault server: every scripted behaviour, through httpx and ChatOpenAI."""

from __future__ import annotations

import time

import httpx
import openai
import pytest
from langchain_openai import ChatOpenAI

from tests.fault_server import Fault, FaultServer

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi there"}]}


def _llm(srv: FaultServer, **kw: object) -> ChatOpenAI:
    return ChatOpenAI(
        base_url=srv.base_url, api_key="not-a-real-key", model="m", max_retries=0, **kw
    )


def test_ok_json_with_usage_and_logprobs() -> None:
    with FaultServer(["ok"], text="Paris it is") as srv:
        msg = _llm(srv, logprobs=True).invoke("Capital of France?")
        assert msg.content == "Paris it is"
        assert msg.usage_metadata and msg.usage_metadata["output_tokens"] == 3
        content = msg.response_metadata["logprobs"]["content"]
        assert [c["token"] for c in content] == ["Paris", " it", " is"]
        (req,) = srv.requests
        assert req.behaviour == "ok" and req.body["messages"][0]["content"] == "Capital of France?"
        assert "api_key" not in str(req) and "not-a-real-key" not in str(req)


def test_streaming_sse_with_usage() -> None:
    with FaultServer(text="one two three") as srv:
        chunks = list(_llm(srv, stream_usage=True).stream("count"))
        full = chunks[0]
        for c in chunks[1:]:
            full = full + c
        assert full.content == "one two three"
        assert full.usage_metadata and full.usage_metadata["output_tokens"] == 3
        assert srv.requests[0].body["stream"] is True


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("429", openai.RateLimitError),
        ("500", openai.InternalServerError),
        ("503", openai.InternalServerError),
        ("close", openai.APIConnectionError),
        ("reset", openai.APIConnectionError),
    ],
)
def test_error_behaviours(kind: str, error: type[Exception]) -> None:
    with FaultServer([kind, "ok"]) as srv:
        llm = _llm(srv)
        with pytest.raises(error):
            llm.invoke("x")
        assert llm.invoke("x").content  # the script moves on
        assert [r.behaviour for r in srv.requests] == [kind, "ok"]


def test_429_body_and_retry_after() -> None:
    with FaultServer([Fault("429", retry_after="7")]) as srv:
        r = httpx.post(f"{srv.base_url}/chat/completions", json=BODY, timeout=5)
        assert r.status_code == 429 and r.headers["retry-after"] == "7"
        assert r.json()["error"]["type"] == "rate_limit_exceeded"


def test_hang_times_out_the_client_and_stop_ends_it_early() -> None:
    srv = FaultServer(["hang"], hang_s=30).start()
    try:
        t0 = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            _llm(srv, timeout=0.5).invoke("x")
        assert time.monotonic() - t0 < 5
    finally:
        t0 = time.monotonic()
        srv.stop()
        assert time.monotonic() - t0 < 5


def test_cut_stream_raises_midway() -> None:
    with (
        FaultServer(["cut"], text="a b c d e f") as srv,
        pytest.raises((openai.APIConnectionError, httpx.HTTPError)),
    ):
        list(_llm(srv).stream("x"))


def test_models_health_and_404() -> None:
    with FaultServer(model="fm") as srv:
        assert httpx.get(f"{srv.base_url}/models").json()["data"][0]["id"] == "fm"
        assert httpx.get(f"http://127.0.0.1:{srv.port}/health").status_code == 200
        assert httpx.post(f"{srv.base_url}/embeddings", json={}).status_code == 404


def test_push_max_requests_and_default() -> None:
    with FaultServer(default="500", max_requests=3) as srv:
        srv.push("ok")
        codes = [
            httpx.post(f"{srv.base_url}/chat/completions", json=BODY).status_code for _ in range(4)
        ]
        assert codes == [200, 500, 500, 503]


def test_stops_itself_after_lifetime() -> None:
    srv = FaultServer(max_lifetime_s=0.3).start()
    port = srv.port
    time.sleep(1.0)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
    srv.stop()  # idempotent


def test_unknown_behaviour_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        FaultServer(["boom"])
