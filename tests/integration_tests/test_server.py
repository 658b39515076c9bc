"""``aco serve`` as a real process, called by real clients.

The server is a real ``aco serve`` subprocess on a free loopback port; its clients are the
official ``openai`` Python client, ``langchain_openai.ChatOpenAI(base_url=...)`` and plain
``httpx``. Its five tiers point at ``tests/fault_server.FaultServer``, a loopback
OpenAI-compatible server: the only fake here (no cloud provider can run offline), which
records every request it gets, so "no tier call" is counted, not assumed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest
import yaml
from langchain_openai import ChatOpenAI

from aco_langchain.server.auth import hash_key
from aco_langchain.spend.ledger import open_ledger, summarize
from tests.fault_server import Fault, FaultServer

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-test-team-a"
BROKE_KEY = "sk-test-broke"
TEXT = "Paris is the capital of France."
PRICES = {1: (0.0, 0.0), 2: (0.05, 0.05), 3: (0.3, 0.3), 4: (1.0, 3.0), 5: (1.5, 1.5)}
MODEL_IDS = {1: "t1-local", 2: "t2-cheap", 3: "t3-medium", 4: "t4-frontier", 5: "t5-expert"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(tmp: Path, upstream: FaultServer, **extra: object) -> Path:
    models = {}
    for n in range(1, 6):
        models[f"tier{n}"] = {
            "model_id": MODEL_IDS[n],
            "provider": "openai-compatible",
            "model": f"up-{n}",
            "base_url": upstream.base_url,
            "cost_per_1k_input": PRICES[n][0],
            "cost_per_1k_output": PRICES[n][1],
            "max_context": 8192,
            "capabilities": ["chat", "tools"],
            "is_local": n == 1,
        }
    data = {
        "routing": {"max_retries": 0, "on_budget_exceeded": "raise"},
        "ledger": {"url": f"sqlite:///{tmp / 'ledger.db'}"},
        "router": "rules",
        "models": models,
        "trace_path": str(tmp / "traces.jsonl"),
        **extra,
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return -9
        return int(self.proc.returncode)


def serve(config: Path, *args: str, env: dict[str, str] | None = None) -> Served:
    port = _free_port()
    log = config.with_suffix(f".{port}.log")
    # The ledger is the config's (tests/conftest.py points ACO_LEDGER_URL at memory://).
    drop = ("ACO_SERVER_API_KEYS", "ACO_CONFIG", "ACO_LEDGER_URL")
    base = {k: v for k, v in os.environ.items() if k not in drop}
    full_env = {**base, "PYTHONPATH": str(ROOT), **(env or {})}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from aco_langchain.cli import main; main()",
            "serve",
            "--config",
            str(config),
            "--port",
            str(port),
            "--no-access-log",
            *args,
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=full_env,
        cwd=str(ROOT),
    )
    served = Served(proc, port, log)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"aco serve exited {proc.returncode}: {log.read_text()}")
        try:
            if httpx.get(f"{served.url}/healthz", timeout=1).status_code == 200:
                return served
        except httpx.HTTPError:
            time.sleep(0.2)
    served.stop()
    raise AssertionError(f"aco serve did not come up: {log.read_text()}")


@pytest.fixture(scope="module")
def upstream() -> Iterator[FaultServer]:
    with FaultServer(text=TEXT, max_requests=5000, max_lifetime_s=900) as srv:
        yield srv


@pytest.fixture(scope="module")
def server(upstream: FaultServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("serve")
    cfg = _config(
        tmp,
        upstream,
        cache={"url": f"sqlite:///{tmp / 'cache.db'}"},
        routing={"max_retries": 0, "on_budget_exceeded": "raise", "max_latency_per_call_s": 2.0},
        budgets={"keys": {"broke": 0.0}},
        server={
            "api_keys": [
                {"name": "team-a", "sha256": hash_key(KEY)},
                {"name": "broke", "sha256": hash_key(BROKE_KEY)},
            ],
            "max_body_bytes": 65536,
        },
    )
    served = serve(cfg)
    yield served
    assert served.stop() == 0, served.log.read_text()  # graceful shutdown on SIGTERM


@pytest.fixture
def client(server: Served) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0)


def _calls(upstream: FaultServer) -> int:
    return len(upstream.requests)


def _aco(resp: object) -> dict:
    return (getattr(resp, "model_extra", None) or {})["aco"]


def test_models_lists_aco_and_tiers(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert ids == ["aco", *MODEL_IDS.values()]


def test_chat_completion_routed(client: openai.OpenAI, upstream: FaultServer) -> None:
    before = _calls(upstream)
    resp = client.chat.completions.create(
        model="aco",
        messages=[
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": [{"type": "text", "text": "Capital of France?"}]},
        ],
        max_tokens=50,
        extra_body={"max_cost_usd": 0.5},
    )
    assert resp.choices[0].message.content == TEXT
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None and resp.usage.completion_tokens > 0
    aco = _aco(resp)
    for key in (
        "tier",
        "model_id",
        "cost_usd",
        "estimated_cost_usd",
        "reason",
        "cache_hit",
        "saved_cost_usd",
        "fallback_from",
    ):
        assert key in aco, key
    assert aco["cache_hit"] is False
    assert aco["model_id"] == MODEL_IDS[aco["tier"]]
    sent = upstream.requests[before:]
    assert len(sent) == 1
    assert sent[0].body["model"] == f"up-{aco['tier']}"
    assert sent[0].body["messages"][0] == {"role": "system", "content": "Answer briefly."}


def test_forced_tier_and_run_key(client: openai.OpenAI, upstream: FaultServer) -> None:
    before = _calls(upstream)
    resp = client.chat.completions.create(
        model="tier-3",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-aco-run-id": "run-42"},
    )
    aco = _aco(resp)
    assert aco["tier"] == 3 and aco["run_key"] == "team-a/run-42"  # the key's namespace
    assert upstream.requests[before].body["model"] == "up-3"
    resp = client.chat.completions.create(
        model=MODEL_IDS[4], messages=[{"role": "user", "content": "hi"}], user="someone"
    )
    assert _aco(resp)["tier"] == 4 and _aco(resp)["run_key"] == "team-a/someone"
    # Tier 4 costs more than the baseline? No: it *is* the baseline, so nothing is saved.
    assert _aco(resp)["saved_cost_usd"] == pytest.approx(0.0, abs=1e-9)


def test_stream_with_usage_and_done(client: openai.OpenAI, server: Served) -> None:
    stream = client.chat.completions.create(
        model="tier-2",
        messages=[{"role": "user", "content": "Capital of France?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == TEXT
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0
    assert _aco(chunks[-1])["tier"] == 2
    # On the wire: SSE events ending with [DONE].
    with httpx.stream(
        "POST",
        f"{server.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {KEY}"},
        json={"model": "tier-2", "messages": [{"role": "user", "content": "x"}], "stream": True},
        timeout=30,
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert all(line.startswith("data: ") for line in lines)


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


def test_tools_reach_the_tier_and_come_back(client: openai.OpenAI, upstream: FaultServer) -> None:
    upstream.push(Fault(tool_call=("get_weather", '{"city": "Paris"}')))
    before = _calls(upstream)
    resp = client.chat.completions.create(
        model="aco",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=TOOLS,  # type: ignore[arg-type]
        tool_choice="required",
    )
    sent = upstream.requests[before].body
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent["tool_choice"] == "required"
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]
    # The tool's result goes back as a tool message and the tier answers.
    resp2 = client.chat.completions.create(
        model="aco",
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            choice.message.model_dump(exclude_none=True),  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
        tools=TOOLS,  # type: ignore[arg-type]
    )
    assert resp2.choices[0].message.content == TEXT
    sent2 = upstream.requests[-1].body["messages"]
    assert sent2[-1]["role"] == "tool" and sent2[-1]["tool_call_id"] == call.id


def test_streamed_tool_call(client: openai.OpenAI, upstream: FaultServer) -> None:
    upstream.push(Fault(tool_call=("get_weather", '{"city": "Lima"}')))
    chunks = list(
        client.chat.completions.create(
            model="tier-3",
            messages=[{"role": "user", "content": "Weather in Lima?"}],
            tools=TOOLS,  # type: ignore[arg-type]
            stream=True,
        )
    )
    args = "".join(
        tc.function.arguments or ""
        for c in chunks
        if c.choices
        for tc in (c.choices[0].delta.tool_calls or [])
        if tc.function
    )
    names = [
        tc.function.name
        for c in chunks
        if c.choices
        for tc in (c.choices[0].delta.tool_calls or [])
        if tc.function and tc.function.name
    ]
    assert names == ["get_weather"]
    assert json.loads(args) == {"city": "Lima"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def test_langchain_chat_openai_as_client(server: Served, upstream: FaultServer) -> None:
    llm = ChatOpenAI(
        base_url=f"{server.url}/v1", api_key=KEY, model="aco", max_retries=0, stream_usage=True
    )  # type: ignore[arg-type]
    msg = llm.invoke("Capital of France?")
    assert msg.content == TEXT
    assert msg.usage_metadata and msg.usage_metadata["output_tokens"] > 0
    streamed = list(llm.stream("Capital of France?"))
    assert "".join(str(c.content) for c in streamed) == TEXT
    assert any(c.usage_metadata for c in streamed)
    upstream.push(Fault(tool_call=("get_weather", '{"city": "Oslo"}')))

    from langchain_core.tools import tool

    @tool
    def get_weather(city: str) -> str:
        """Weather in a city."""
        return "cold"

    out = llm.bind_tools([get_weather], tool_choice="any").invoke("Weather in Oslo?")
    assert out.tool_calls[0]["name"] == "get_weather"  # type: ignore[attr-defined]
    assert out.tool_calls[0]["args"] == {"city": "Oslo"}  # type: ignore[attr-defined]
    assert upstream.requests[-1].body["tool_choice"] == "required"


def test_auth_is_required(server: Served, upstream: FaultServer) -> None:
    before = _calls(upstream)
    c = openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as err:
        c.chat.completions.create(model="aco", messages=[{"role": "user", "content": "hi"}])
    assert err.value.status_code == 401
    assert err.value.code == "invalid_api_key"
    assert "incorrect API key" in err.value.message
    for headers in ({}, {"authorization": "Basic abc"}):
        r = httpx.post(
            f"{server.url}/v1/chat/completions",
            headers=headers,
            json={"model": "aco", "messages": [{"role": "user", "content": "hi"}]},
            timeout=10,
        )
        assert r.status_code == 401
        assert set(r.json()["error"]) == {"message", "type", "param", "code"}
        assert r.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(f"{server.url}/v1/models", timeout=10).status_code == 401
    assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
    assert _calls(upstream) == before


def test_key_budget(server: Served, upstream: FaultServer) -> None:
    c = openai.OpenAI(base_url=f"{server.url}/v1", api_key=BROKE_KEY, max_retries=0)
    before = _calls(upstream)
    with pytest.raises(openai.APIStatusError) as err:
        c.chat.completions.create(model="tier-4", messages=[{"role": "user", "content": "hi"}])
    assert err.value.status_code == 402
    assert err.value.code == "budget_exceeded"
    assert "broke" in err.value.message
    assert _calls(upstream) == before
    # The free tier fits a $0 budget.
    resp = c.chat.completions.create(model="tier-1", messages=[{"role": "user", "content": "hi"}])
    assert resp.choices[0].message.content == TEXT


def test_body_limit_413(server: Served, client: openai.OpenAI) -> None:
    big = "x" * 70_000
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(model="aco", messages=[{"role": "user", "content": big}])
    assert err.value.status_code == 413
    assert err.value.code == "request_too_large"

    def chunked() -> Iterator[bytes]:
        yield b'{"model": "aco", "messages": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"y" * 10_000
        yield b'"}]}'

    r = httpx.post(
        f"{server.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {KEY}", "content-type": "application/json"},
        content=chunked(),
        timeout=30,
    )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "request_too_large"


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]}, 404, "model"),
        ({"model": "aco", "messages": []}, 400, "messages"),
        ({"model": "aco", "messages": [{"role": "wizard", "content": "hi"}]}, 400, None),
        (
            {"model": "aco", "messages": [{"role": "user", "content": "hi"}], "temperature": 7},
            400,
            "temperature",
        ),
        ({"model": "aco", "messages": [{"role": "user", "content": "hi"}], "n": 2}, 400, "n"),
        (
            {"model": "aco", "messages": [{"role": "user", "content": "hi"}], "max_cost": 1},
            400,
            "max_cost",
        ),
        (
            {"model": "aco", "messages": [{"role": "user", "content": "hi"}], "risk": "extreme"},
            400,
            "risk",
        ),
        (
            {"model": "aco", "messages": [{"role": "user", "content": "y" * 40_000}]},
            400,
            "messages",
        ),
    ],
)
def test_user_mistakes_are_4xx_naming_the_field(
    server: Served, upstream: FaultServer, body: dict, status: int, param: str | None
) -> None:
    before = _calls(upstream)
    r = httpx.post(
        f"{server.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {KEY}"},
        json=body,
        timeout=30,
    )
    assert r.status_code == status, r.text
    err = r.json()["error"]
    if param is not None:
        assert err["param"] == param
        assert param in err["message"]
    assert "Traceback" not in r.text and KEY not in r.text
    assert _calls(upstream) == before


def test_not_json_and_unknown_route(server: Served) -> None:
    h = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
    r = httpx.post(f"{server.url}/v1/chat/completions", headers=h, content=b"{nope", timeout=10)
    assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]
    r = httpx.get(f"{server.url}/v1/nothing", headers=h, timeout=10)
    assert r.status_code == 404 and "error" in r.json()


def test_response_cache(client: openai.OpenAI, upstream: FaultServer) -> None:
    msgs = [{"role": "user", "content": "What is the boiling point of water in Celsius?"}]
    first = client.chat.completions.create(model="aco", messages=msgs, temperature=0)  # type: ignore[arg-type]
    assert _aco(first)["cache_hit"] is False
    before = _calls(upstream)
    second = client.chat.completions.create(model="aco", messages=msgs, temperature=0)  # type: ignore[arg-type]
    assert _calls(upstream) == before  # no tier was called
    aco = _aco(second)
    assert aco["cache_hit"] is True and aco["cost_usd"] == 0.0
    assert aco["cached_cost_usd"] == _aco(first)["cost_usd"]
    assert second.choices[0].message.content == first.choices[0].message.content
    # Streamed, the same request is served from the cache too.
    chunks = list(
        client.chat.completions.create(model="aco", messages=msgs, temperature=0, stream=True)  # type: ignore[arg-type]
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == TEXT
    assert _calls(upstream) == before
    # Per-request opt-out.
    client.chat.completions.create(
        model="aco",
        messages=msgs,  # type: ignore[arg-type]
        temperature=0,
        extra_body={"cache": False},
    )
    assert _calls(upstream) == before + 1
    # Above temperature 0 only when the client opts in.
    hot = [{"role": "user", "content": "Write a haiku about rain."}]
    for _ in range(2):
        client.chat.completions.create(model="aco", messages=hot, temperature=0.7)  # type: ignore[arg-type]
    assert _calls(upstream) == before + 3
    for _ in range(2):
        client.chat.completions.create(
            model="aco",
            messages=hot,  # type: ignore[arg-type]
            temperature=0.7,
            extra_body={"cache": True},
        )
    assert _calls(upstream) == before + 4


def test_errors_are_never_cached(client: openai.OpenAI, upstream: FaultServer) -> None:
    msgs = [{"role": "user", "content": "An error first, then an answer."}]
    upstream.push(*["500"] * 5)  # every tier fails once: all tiers failed
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(model="aco", messages=msgs, temperature=0)  # type: ignore[arg-type]
    assert err.value.status_code == 502 and err.value.code == "all_tiers_failed"
    before = _calls(upstream)
    ok = client.chat.completions.create(model="aco", messages=msgs, temperature=0)  # type: ignore[arg-type]
    assert _calls(upstream) == before + 1
    assert _aco(ok)["cache_hit"] is False and ok.choices[0].message.content == TEXT


def test_generate_and_route_fields(server: Served, upstream: FaultServer) -> None:
    h = {"authorization": f"Bearer {KEY}"}
    body = {
        "prompt": "Summarize last week's support tickets into three bullet points.",
        "max_cost_usd": 0.01,
        "max_latency_ms": 1500,
        "min_quality": 0.5,
        "force_model": "t2-cheap",
    }
    r = httpx.post(f"{server.url}/generate", headers=h, json=body, timeout=30)
    assert r.status_code == 200, r.text
    out = r.json()
    assert set(out) == {
        "text",
        "chosen_model",
        "tokens_in",
        "tokens_out",
        "latency_ms",
        "estimated_cost_usd",
        "quality_proxy",
        "route_reason",
        "cache_hit",
        "saved_cost_usd",
    }
    assert out["text"] == TEXT and out["chosen_model"] == "t2-cheap"
    assert out["quality_proxy"] is None  # a forced tier has no predicted success
    routed = {k: v for k, v in body.items() if k != "force_model"}
    routed_out = httpx.post(f"{server.url}/generate", headers=h, json=routed, timeout=30).json()
    assert 0.0 <= routed_out["quality_proxy"] <= 1.0
    assert out["tokens_out"] > 0 and out["saved_cost_usd"] > 0
    again = httpx.post(f"{server.url}/generate", headers=h, json=body, timeout=30).json()
    assert again["cache_hit"] is True
    bad = httpx.post(f"{server.url}/generate", headers=h, json={**body, "model": "x"}, timeout=30)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "model"
    bad = httpx.post(
        f"{server.url}/generate", headers=h, json={**body, "force_model": "nope"}, timeout=30
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "force_model"
    before = _calls(upstream)
    r = httpx.post(
        f"{server.url}/route",
        headers=h,
        json={"prompt": "Design a multi-step rollout plan", "max_cost": 0.01, "max_latency": 1.5},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert set(r.json()) == {
        "chosen_model",
        "tier",
        "estimated_cost_usd",
        "quality_proxy",
        "route_reason",
        "unavailable",
    }
    assert r.json()["chosen_model"] == MODEL_IDS[r.json()["tier"]]
    assert _calls(upstream) == before  # /route calls no model


def test_spend_and_stats_count_cache_hits(server: Served, client: openai.OpenAI) -> None:
    msgs = [{"role": "user", "content": "How many legs has a spider?"}]
    for _ in range(3):
        client.chat.completions.create(model="aco", messages=msgs, temperature=0)  # type: ignore[arg-type]
    spend = httpx.get(
        f"{server.url}/v1/spend", headers={"authorization": f"Bearer {KEY}"}, timeout=10
    ).json()
    # The ledger's figures (aco spend --json) over the key's own rows: one row per answered
    # call and a $0 row per cache hit.
    ledger = open_ledger(f"sqlite:///{server.log.parent / 'ledger.db'}", shared=False)
    try:
        mine = summarize([r for r in ledger.records() if r.api_key == "team-a"])
        assert spend["calls"] == mine.calls > 0
        assert spend["total_usd"] == pytest.approx(mine.total_usd)
    finally:
        ledger.close()
    assert spend["savings_usd"] == pytest.approx(spend["baseline_usd"] - spend["total_usd"])
    assert spend["key"]["name"] == "team-a"
    assert spend["cache"]["hits"] >= 2
    traces = server.log.parent / "traces.jsonl"
    out = subprocess.run(
        [sys.executable, "-c", "from aco_langchain.cli import main; main()", "stats"]
        + [str(traces), "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["model_calls"] >= 3
    assert 0 < report["cache_hit_rate"] < 1


def test_request_deadline_is_504(client: openai.OpenAI, upstream: FaultServer) -> None:
    # A hanging tier with a stronger one after it gets a slice: the next tier answers in time.
    upstream.push(Fault("hang", hang_s=8))
    started = time.monotonic()
    ok = client.chat.completions.create(model="tier-2", messages=[{"role": "user", "content": "?"}])
    assert _aco(ok)["tier"] == 3 and _aco(ok)["fallback_from"] == 2
    assert time.monotonic() - started < 3
    # The top tier forced, hanging: nothing to fall back to, so the deadline ends it.
    upstream.push(Fault("hang", hang_s=8))
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(model="tier-5", messages=[{"role": "user", "content": "?"}])
    assert err.value.status_code == 504
    assert err.value.code == "deadline_exceeded"
    assert "deadline of 2s" in err.value.message
    assert time.monotonic() - started < 5


def test_without_keys_loopback_only(upstream: FaultServer, tmp_path: Path) -> None:
    cfg = _config(tmp_path, upstream)
    env = {k: v for k, v in os.environ.items() if k != "ACO_SERVER_API_KEYS"}
    refused = subprocess.run(
        [sys.executable, "-c", "from aco_langchain.cli import main; main()", "serve"]
        + ["--config", str(cfg), "--host", "0.0.0.0", "--port", str(_free_port())],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert refused.returncode == 1
    assert "without API keys" in refused.stderr and "Traceback" not in refused.stderr
    served = serve(cfg)
    try:
        c = openai.OpenAI(base_url=f"{served.url}/v1", api_key="anything", max_retries=0)
        resp = c.chat.completions.create(model="aco", messages=[{"role": "user", "content": "hi"}])
        assert resp.choices[0].message.content == TEXT
    finally:
        assert served.stop() == 0


def test_workers_share_one_ledger_and_key_budget(upstream: FaultServer, tmp_path: Path) -> None:
    """Two worker processes, one SQLite ledger: every answer is one row, and a key's budget
    is one budget across both workers."""
    budget = 0.05  # tier 3 worst case per call: (18 + 20 tokens) x $0.3/1K = $0.0114
    cfg = _config(
        tmp_path,
        upstream,
        budgets={"keys": {"capped": budget}},
        server={"api_keys": [{"name": "capped", "sha256": hash_key(KEY)}]},
    )
    served = serve(cfg, "--workers", "2")
    try:
        import concurrent.futures

        def one(i: int) -> int:
            r = httpx.post(
                f"{served.url}/v1/chat/completions",
                headers={"authorization": f"Bearer {KEY}"},
                json={
                    "model": "tier-3",
                    "messages": [{"role": "user", "content": f"question {i}"}],
                    "max_tokens": 20,
                },
                timeout=30,
            )
            return r.status_code

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(one, range(40)))
        ok = codes.count(200)
        assert ok > 0 and set(codes) <= {200, 402}
        assert codes.count(402) > 0  # the budget ran out, across both workers
        ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}", shared=False)
        try:
            summary = ledger.summary()
            rows = ledger.records()
        finally:
            ledger.close()
        assert summary.calls == ok
        assert summary.total_usd <= budget + 1e-9
        assert {r.api_key for r in rows} == {"capped"}
        spend = httpx.get(
            f"{served.url}/v1/spend", headers={"authorization": f"Bearer {KEY}"}, timeout=10
        ).json()
        assert spend["calls"] == ok and spend["key"]["budget_usd"] == budget
    finally:
        assert served.stop() == 0
