"""The response cache: SQLite and Redis stores, LangChain's BaseCache API, and
``ACORouterChatModel(cache=...)`` answering a repeated call without calling a tier.

Tiers are ``ScriptedChatModel`` s (offline); Redis is the real local server at
127.0.0.1:6379 (skipped without it, failing under CI=true), with a unique key prefix.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration

from aco_langchain import ACORouterChatModel
from aco_langchain.errors import ConfigError
from aco_langchain.spend.cache import (
    RedisStore,
    ResponseCache,
    SQLiteStore,
    cache_from_url,
)
from aco_langchain.testing import ScriptedChatModel
from aco_langchain.tracing.callback import ACOTraceCallbackHandler
from aco_langchain.tracing.sinks import InMemoryTraceSink
from aco_langchain.tracing.stats import compute_stats


def _answer() -> list[ChatGeneration]:
    msg = AIMessage(
        content="",
        tool_calls=[{"name": "search", "args": {"q": "aco"}, "id": "call_1"}],
        usage_metadata={"input_tokens": 10, "output_tokens": 4, "total_tokens": 14},
        response_metadata={"aco": {"tier": 3, "cost_usd": 0.0042, "cache_hit": False}},
    )
    return [ChatGeneration(message=msg)]


def _roundtrip(cache: ResponseCache) -> None:
    assert cache.lookup("prompt", "llm") is None
    cache.update("prompt", "llm", _answer())
    got = cache.lookup("prompt", "llm")
    assert got is not None
    msg = got[0].message  # type: ignore[attr-defined]
    assert msg.tool_calls[0]["args"] == {"q": "aco"}
    assert msg.usage_metadata["output_tokens"] == 4
    meta = msg.response_metadata["aco"]
    assert meta["cache_hit"] is True and meta["cost_usd"] == 0.0
    assert meta["cached_cost_usd"] == 0.0042
    assert cache.lookup("prompt", "other llm") is None  # the model/params are in the key
    assert cache.stats().hits == 1 and cache.stats().misses == 2
    cache.clear()
    assert cache.lookup("prompt", "llm") is None


def test_sqlite_store_roundtrip_and_shared_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "cache.db"
    cache = cache_from_url(f"sqlite:///{path}")
    _roundtrip(cache)
    # Another process (here: another connection) sees the same entries.
    cache.update("p", "l", _answer())
    other = ResponseCache(SQLiteStore(path))
    assert other.lookup("p", "l") is not None


def test_sqlite_ttl_expires(tmp_path: Path) -> None:
    cache = ResponseCache(SQLiteStore(tmp_path / "c.db"), ttl_s=0.05)
    cache.update("p", "l", _answer())
    assert cache.lookup("p", "l") is not None
    time.sleep(0.1)
    assert cache.lookup("p", "l") is None


@pytest.fixture
def redis_url() -> Iterator[str]:
    import redis

    url = "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError as err:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            raise
        pytest.skip(f"no Redis at {url}: {err}")
    yield url


def test_redis_store_roundtrip(redis_url: str) -> None:
    prefix = f"aco:test:{uuid.uuid4().hex}:"
    store = RedisStore(redis_url, prefix=prefix)
    cache = ResponseCache(store, ttl_s=60)
    try:
        _roundtrip(cache)
    finally:
        store.clear()
        store.close()


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("memcached://x", "unknown scheme"),
        ("sqlite:///", "has no path"),
        ("sqlite:////proc/no/such/dir/cache.db", "cannot open"),
        ("redis://127.0.0.1:1/0", "does not answer"),
    ],
)
def test_bad_cache_urls_are_clear_errors(url: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        cache_from_url(url)


def test_broken_store_is_a_miss_not_a_failure(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "c.db")
    cache = ResponseCache(store)
    cache.update("p", "l", _answer())
    store.close()  # every later operation fails
    assert cache.lookup("p", "l") is None
    cache.update("p", "l", _answer())  # logged, not raised


def _router(cache: object) -> tuple[ACORouterChatModel, ScriptedChatModel]:
    """A model over one scripted tier; ``cache`` a URL (its config's cache.url) or a cache."""
    tier = ScriptedChatModel(script=["Lima."], cycle=True)
    given = {"config": {"cache": {"url": cache}}} if isinstance(cache, str) else {"cache": cache}
    llm = ACORouterChatModel(tier_models={n: tier for n in range(1, 6)}, temperature=0, **given)
    return llm, tier


def test_router_model_answers_repeats_from_cache(tmp_path: Path) -> None:
    llm, tier = _router(f"sqlite:///{tmp_path / 'c.db'}")
    first = llm.invoke("Capital of Peru?", aco_run_id="run-a", force_tier=2)
    spent = llm.spent("run-a")
    assert spent > 0 and first.response_metadata["aco"].get("cache_hit") is not True
    second = llm.invoke("Capital of Peru?", aco_run_id="run-b", force_tier=2)
    assert len(tier.calls) == 1  # no tier call for the repeat, even from another run
    meta = second.response_metadata["aco"]
    assert meta["cache_hit"] is True and meta["cost_usd"] == 0.0
    assert second.content == "Lima."
    assert llm.spent("run-b") == 0.0
    llm.invoke("Capital of Chile?", aco_run_id="run-a", force_tier=2)
    assert len(tier.calls) == 2


def test_trace_counts_cache_hits(tmp_path: Path) -> None:
    llm, _ = _router(ResponseCache(SQLiteStore(tmp_path / "c.db")))
    sink = InMemoryTraceSink()
    handler = ACOTraceCallbackHandler(sink=sink)
    for _ in range(2):
        llm.invoke("Capital of Peru?", config={"callbacks": [handler]})
    report = compute_stats(sink.traces)
    assert report.model_calls == 2
    assert report.cache_hit_rate == 0.5


def test_cache_hit_never_carries_another_runs_identity(tmp_path: Path) -> None:
    """Issue 19 item 4: a hit repeated the making run's run_key and spend."""
    llm, tier = _router(f"sqlite:///{tmp_path / 'c.db'}")
    llm.invoke("Capital of Peru?", aco_run_id="bob-secret-run-77", force_tier=2)
    hit = llm.invoke("Capital of Peru?", aco_run_id="alice-run", force_tier=2)
    assert len(tier.calls) == 1
    meta = hit.response_metadata["aco"]
    assert meta["cache_hit"] is True and meta["cost_usd"] == 0.0
    assert "bob-secret-run-77" not in str(meta)
    assert "run_spent_usd" not in meta and not meta.get("calls")


def test_cache_is_partitioned_by_api_key_and_user(tmp_path: Path) -> None:
    llm, tier = _router(f"sqlite:///{tmp_path / 'c.db'}")
    q = "Capital of Peru?"
    llm.invoke(q, force_tier=2, aco_api_key="key-b")
    llm.invoke(q, force_tier=2, aco_api_key="key-a")  # another key: its own entry
    assert len(tier.calls) == 2
    llm.invoke(q, force_tier=2, aco_api_key="key-a", aco_user="u1")
    assert len(tier.calls) == 3
    again = llm.invoke(q, force_tier=2, aco_api_key="key-a", aco_user="u1")
    assert len(tier.calls) == 3 and again.response_metadata["aco"]["cache_hit"] is True


def test_only_full_quality_answers_are_stored(tmp_path: Path) -> None:
    """A fallback answer (the routed tier failed) and a budget-forced one are not cached."""
    cache = ResponseCache(SQLiteStore(tmp_path / "c.db"))
    for meta, stored in (
        ({"tier": 3, "routed_tier": 3, "reason": "routed"}, True),
        ({"tier": 4, "routed_tier": 3, "fallback_from": 3, "reason": "routed"}, False),
        ({"tier": 1, "routed_tier": 3, "degraded_from": 3, "reason": "routed"}, False),
        ({"tier": 1, "reason": "budget_exceeded ($5 >= $5): forced local"}, False),
        ({"tier": 2, "reason": "budget remaining $0.01 -> tier 2"}, False),
    ):
        msg = AIMessage("Lima.", response_metadata={"aco": meta})
        key = str(uuid.uuid4())
        cache.update(key, "l", [ChatGeneration(message=msg)])
        assert (cache.lookup(key, "l") is not None) is stored, meta
