"""Tenants of ``aco serve``: an API key spends and reads only its own (issue 19, items 3, 4, 8, 11).

The server is the real FastAPI app (in process, through Starlette's ``TestClient``), called
by the official ``openai`` client and plain HTTP; its five tiers point at
``tests/fault_server.FaultServer``, a loopback OpenAI-compatible server that records every
request (so "no tier call" is counted). The ledger and the cache are real SQLite files.
Each test reproduces an attack from the issue with two keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from aco_langchain.config import config_from_dict  # noqa: E402
from aco_langchain.server import create_app  # noqa: E402
from aco_langchain.server.auth import hash_key  # noqa: E402
from aco_langchain.spend.ledger import open_ledger  # noqa: E402
from tests.fault_server import FaultServer  # noqa: E402

ALICE, BOB, ADMIN = "sk-alice-key", "sk-bob-key", "sk-admin-key"
TEXT = "Paris is the capital of France."
PRICES = {1: (0.0, 0.0), 2: (0.05, 0.05), 3: (0.3, 0.3), 4: (1.0, 3.0), 5: (1.5, 1.5)}


@pytest.fixture
def upstream() -> Iterator[FaultServer]:
    # One per test: each TestClient runs its own event loop, and an async HTTP client cached
    # for a base URL by an earlier test's loop must not be reused (issue 19 item 6).
    with FaultServer(text=TEXT, max_requests=500, max_lifetime_s=300) as srv:
        yield srv


def _config(tmp: Path, upstream: FaultServer, **routing: Any) -> dict[str, Any]:
    models = {
        f"tier{n}": {
            "model_id": f"t{n}-model",
            "provider": "openai-compatible",
            "model": f"up-{n}",
            "base_url": upstream.base_url,
            "cost_per_1k_input": PRICES[n][0],
            "cost_per_1k_output": PRICES[n][1],
            "max_context": 8192,
            "capabilities": ["chat", "tools"],
            "is_local": n == 1,
        }
        for n in range(1, 6)
    }
    return {
        "routing": {"max_retries": 0, "max_output_tokens": 16, **routing},
        "ledger": {"url": f"sqlite:///{tmp / 'ledger.db'}"},
        "cache": {"url": f"sqlite:///{tmp / 'cache.db'}"},
        "router": "rules",
        "models": models,
        "budgets": {"keys": {"bob": 1.0}},
        "server": {
            "api_keys": [
                {"name": "alice", "sha256": hash_key(ALICE)},
                {"name": "bob", "sha256": hash_key(BOB)},
                {"name": "ops", "sha256": hash_key(ADMIN), "admin": True},
            ]
        },
    }


Factory = Callable[..., TestClient]


@pytest.fixture
def make_server(
    upstream: FaultServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Factory]:
    monkeypatch.delenv("ACO_LEDGER_URL", raising=False)
    monkeypatch.delenv("ACO_SERVER_API_KEYS", raising=False)
    made: list[TestClient] = []

    def make(**routing: Any) -> TestClient:
        app = create_app(config_from_dict(_config(tmp_path, upstream, **routing)))
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        made.append(client)
        return client

    yield make
    for c in made:
        c.__exit__(None, None, None)


def _openai(http: TestClient, key: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url="http://testserver/v1", api_key=key, max_retries=0, http_client=http
    )


def _aco(resp: object) -> dict[str, Any]:
    return (getattr(resp, "model_extra", None) or {})["aco"]


def _ask(client: openai.OpenAI, text: str, **kw: Any) -> Any:
    return client.chat.completions.create(
        model=kw.pop("model", "aco"),
        messages=[{"role": "user", "content": text}],
        **kw,
    )


def _bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def test_another_keys_run_id_neither_drains_nor_reveals_its_budget(
    make_server: Factory, tmp_path: Path
) -> None:
    """Issue: key C sending x-aco-run-id: bob-run drained B's run budget and C's responses
    disclosed B's figures. Now C's calls count against C's own run of that name."""
    http = make_server(max_cost_per_task=0.09, on_budget_exceeded="raise")
    alice, bob = _openai(http, ALICE), _openai(http, BOB)
    run = {"x-aco-run-id": "bob-run"}
    first = _ask(bob, "Name a colour.", model="tier-3", extra_headers=run)
    assert _aco(first)["run_key"] == "bob/bob-run"
    refused = None
    for i in range(10):  # alice spends "bob-run" until her budget of that name is gone
        try:
            got = _ask(alice, f"Question {i}?", model="tier-3", extra_headers=run)
        except openai.APIStatusError as err:
            refused = err
            break
        assert _aco(got)["run_key"] == "alice/bob-run"
    assert refused is not None and refused.status_code == 402
    assert "alice/bob-run" in refused.message and "bob/" not in refused.message
    ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}", shared=False)
    try:
        bob_spent = ledger.spent("bob/bob-run")
        assert bob_spent == pytest.approx(_aco(first)["cost_usd"])  # untouched by alice
        assert ledger.spent("bob-run") == 0.0
        # bob's run still has its budget: his next forced call is answered by tier 3
        again = _ask(bob, "Name another colour.", model="tier-3", extra_headers=run)
        assert _aco(again)["tier"] == 3
        assert {r.api_key for r in ledger.records(run="alice/bob-run")} == {"alice"}
    finally:
        ledger.close()


def test_user_is_namespaced_by_the_key(make_server: Factory, tmp_path: Path) -> None:
    http = make_server()
    alice, bob = _openai(http, ALICE), _openai(http, BOB)
    _ask(alice, "Hi there?", user="carol")
    _ask(bob, "Hi there!", user="carol")
    ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}", shared=False)
    try:
        users = {(r.api_key, r.user, r.run_key) for r in ledger.records()}
    finally:
        ledger.close()
    assert users == {("alice", "alice/carol", "alice/carol"), ("bob", "bob/carol", "bob/carol")}


def test_spend_and_dashboard_show_a_key_its_own_only(make_server: Factory) -> None:
    """Issue: any key read every key's spend, budgets and run ids from data.json, and
    /v1/spend returned ledger-wide totals and the ledger URL."""
    http = make_server()
    alice, bob = _openai(http, ALICE), _openai(http, BOB)
    _ask(alice, "One?", extra_headers={"x-aco-run-id": "a-secret-run"})
    _ask(alice, "Two?", extra_headers={"x-aco-run-id": "a-secret-run"})
    _ask(bob, "Three?", extra_headers={"x-aco-run-id": "bob-secret-run-77"})
    a = http.get("/v1/spend", headers=_bearer(ALICE))
    b = http.get("/v1/spend", headers=_bearer(BOB))
    admin = http.get("/v1/spend", headers=_bearer(ADMIN))
    assert a.status_code == b.status_code == admin.status_code == 200
    assert a.json()["calls"] == 2 and b.json()["calls"] == 1 and admin.json()["calls"] == 3
    assert a.json()["key"]["name"] == "alice" and b.json()["key"]["budget_usd"] == 1.0
    for r in (a, b, admin):
        assert "ledger" not in r.json() and "ledger.db" not in r.text
    da = http.get("/dashboard/data.json", headers=_bearer(ALICE)).json()
    assert {r["key"] for r in da["runs"]} == {"alice/a-secret-run"}
    assert [k["key"] for k in da["keys"]] == ["alice"]
    assert "bob" not in str(da) and "ledger.db" not in str(da)
    dall = http.get("/dashboard/data.json", headers=_bearer(ADMIN)).json()
    assert {r["key"] for r in dall["runs"]} == {"alice/a-secret-run", "bob/bob-secret-run-77"}
    assert {k["key"]: k["budget_usd"] for k in dall["keys"]}["bob"] == 1.0


def test_cache_is_partitioned_by_key_and_user(make_server: Factory, upstream: FaultServer) -> None:
    """Issue: key A received key B's cached answer with B's run key (streaming too)."""
    http = make_server()
    alice, bob = _openai(http, ALICE), _openai(http, BOB)
    q = "What is the capital of France, briefly?"
    before = len(upstream.requests)
    b1 = _ask(bob, q, temperature=0, extra_headers={"x-aco-run-id": "bob-secret-run-77"})
    assert _aco(b1)["cache_hit"] is False
    a1 = _ask(alice, q, temperature=0, extra_headers={"x-aco-run-id": "a-1"})
    assert _aco(a1)["cache_hit"] is False  # not bob's entry
    assert len(upstream.requests) == before + 2
    a2 = _ask(alice, q, temperature=0, extra_headers={"x-aco-run-id": "a-2"})
    meta = _aco(a2)
    assert meta["cache_hit"] is True and meta["cost_usd"] == 0.0
    assert meta["run_key"] == "alice/a-2"  # the current call's run, never the maker's
    assert len(upstream.requests) == before + 2
    stream = alice.chat.completions.create(
        model="aco",
        messages=[{"role": "user", "content": q}],
        temperature=0,
        stream=True,
        extra_headers={"x-aco-run-id": "a-3"},
    )
    chunks = list(stream)
    finals = [c.model_extra["aco"] for c in chunks if c.model_extra and "aco" in c.model_extra]
    assert finals and finals[-1]["cache_hit"] is True and finals[-1]["run_key"] == "alice/a-3"
    assert "bob" not in str([c.model_dump() for c in chunks])
    # a user is a partition of its own within a key
    _ask(alice, q, temperature=0, user="u-1")
    assert len(upstream.requests) == before + 3
    assert _aco(_ask(alice, q, temperature=0, user="u-1"))["cache_hit"] is True


def test_budget_forced_and_fallback_answers_are_not_cached(
    make_server: Factory, upstream: FaultServer, tmp_path: Path
) -> None:
    """Issue: a tier-1 answer produced because A's budget was spent (force_local) was cached
    and served to B. Only full-quality answers are stored."""
    http = make_server(on_budget_exceeded="force_local")
    alice = _openai(http, ALICE)
    q = "Design a multi-step rollout plan for a database migration."
    ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}", shared=False)
    try:
        ledger.add("alice/spent-run", 5.0)  # the run's max_cost_per_task is spent
    finally:
        ledger.close()
    forced = _ask(alice, q, temperature=0, extra_headers={"x-aco-run-id": "spent-run"})
    assert _aco(forced)["tier"] == 1 and "budget" in _aco(forced)["reason"]
    n = len(upstream.requests)
    fresh = _ask(alice, q, temperature=0, extra_headers={"x-aco-run-id": "fresh-run"})
    assert _aco(fresh)["cache_hit"] is False and _aco(fresh)["tier"] > 1
    assert len(upstream.requests) == n + 1
    # a fallback answer (the routed tier failed) is not stored either
    q2 = "Another plan, for a cache migration, in steps."
    upstream.push("500")
    fell = _ask(alice, q2, temperature=0)
    assert _aco(fell)["fallback_from"] is not None
    n = len(upstream.requests)
    assert _aco(_ask(alice, q2, temperature=0))["cache_hit"] is False
    assert len(upstream.requests) == n + 1


def test_cache_hits_are_counted_where_the_dashboard_reads_them(make_server: Factory) -> None:
    """Issue: the dashboard's cache-hit rate was always 0% while /v1/spend counted hits."""
    http = make_server()
    alice = _openai(http, ALICE)
    for _ in range(3):
        _ask(alice, "How many legs has a spider?", temperature=0)
    spend = http.get("/v1/spend", headers=_bearer(ALICE)).json()
    dash = http.get("/dashboard/data.json", headers=_bearer(ALICE)).json()
    assert spend["cache"]["hits"] == dash["rates"]["cache_hits"] == 2
    assert spend["cache"]["hit_rate"] == pytest.approx(dash["rates"]["cache_hit_rate"])
    assert dash["rates"]["cache_hit_rate"] == pytest.approx(2 / 3)
    assert spend["total_usd"] == dash["totals"]["total_usd"]  # hits cost nothing


def test_keyless_loopback_server_checks_the_host_header(
    upstream: FaultServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue: the keyless loopback server accepted any Host (DNS rebinding)."""
    monkeypatch.delenv("ACO_SERVER_API_KEYS", raising=False)
    cfg = _config(tmp_path, upstream)
    cfg["server"] = {}
    app = create_app(config_from_dict(cfg))
    with TestClient(app, client=("127.0.0.1", 50000), base_url="http://127.0.0.1:8000") as c:
        assert c.get("/v1/models").status_code == 200
        for host in ("localhost:8000", "[::1]:8000"):
            assert c.get("/v1/models", headers={"host": host}).status_code == 200
        for path in ("/v1/models", "/v1/spend", "/dashboard/data.json"):
            r = c.get(path, headers={"host": "evil.example:8000"})
            assert r.status_code == 403, path
            assert r.json()["error"]["code"] == "host_not_allowed"
        r = c.post(
            "/v1/chat/completions",
            headers={"host": "rebind.attacker.test"},
            json={"model": "aco", "messages": [{"role": "user", "content": "spend"}]},
        )
        assert r.status_code == 403
        # docs and the schema are off by default
        assert c.get("/docs").status_code == 404
        assert c.get("/openapi.json").status_code == 404


def test_docs_when_enabled_are_behind_the_keys(
    upstream: FaultServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ACO_SERVER_API_KEYS", raising=False)
    cfg = _config(tmp_path, upstream)
    cfg["server"]["docs"] = True
    with TestClient(create_app(config_from_dict(cfg))) as c:
        assert c.get("/openapi.json").status_code == 401
        schema = c.get("/openapi.json", headers=_bearer(ALICE))
        assert schema.status_code == 200 and "/v1/chat/completions" in schema.json()["paths"]
        assert c.get("/docs", headers=_bearer(ALICE)).status_code == 200
