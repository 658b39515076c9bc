"""Response cache: an identical request is answered from storage, at no cost and no tier call.

One store serves both faces: ``aco serve`` (which keys each request on its whole body) and
an ``ACORouterChatModel`` whose config sets ``cache.url`` or that is given ``cache=`` a
:class:`ResponseCache` (LangChain's ``BaseCache`` API: LangChain keys the call
on its messages and parameters, looks it up before ``_generate`` and stores the answer after
a success, so errors are never cached). Backends: a SQLite file (WAL, safe for several
processes) or Redis. Entries are JSON (``message_to_dict``), never pickle.

A hit is marked in ``response_metadata["aco"]``: ``cache_hit: true``, ``cost_usd: 0`` and
``cached_cost_usd`` (what the stored answer cost when it was made). The ledger is not
charged, because no tier is called.

Example:
    ```python
    from aco_langchain import ACORouterChatModel
    from aco_langchain.spend.cache import cache_from_url

    cache = cache_from_url("sqlite:///tmp/aco-cache.db")
    llm = ACORouterChatModel(cache=cache, temperature=0)
    llm.invoke("What is 2+2?")      # a tier answers; the answer is stored
    llm.invoke("What is 2+2?")      # from the cache: cache_hit True, cost_usd 0
    cache.stats()                   # CacheStats(hits=1, misses=1)
    ```
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.messages import AIMessage, message_to_dict, messages_from_dict
from langchain_core.outputs import ChatGeneration, Generation

from aco_langchain.call_info import AcoCallInfo
from aco_langchain.errors import ConfigError
from aco_langchain.spend.ledger.postgres import mask_url

logger = logging.getLogger(__name__)

_FORMAT = 1
_REDIS_PREFIX = "aco:cache:"


@dataclass(frozen=True)
class CacheStats:
    """Lookups of one cache object since it was made (one process)."""

    hits: int = 0
    misses: int = 0

    @property
    def hit_rate(self) -> float | None:
        """hits / lookups, None before the first lookup."""
        n = self.hits + self.misses
        return round(self.hits / n, 4) if n else None


class CacheStore(Protocol):
    """Where entries live: text values under text keys, with an optional lifetime."""

    def get(self, key: str) -> str | None:
        """The value under ``key``, None when absent or expired."""
        ...

    def set(self, key: str, value: str, ttl_s: float | None) -> None:
        """Store ``value`` under ``key`` (replacing an older one)."""
        ...

    def clear(self) -> None:
        """Forget every entry."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class SQLiteStore:
    """Entries in one SQLite file (WAL): several processes may share it.

    Args:
        path: the database file; its directory is created when missing.

    Raises:
        ConfigError: the file cannot be opened or created (names the path and the fix).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=5.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS aco_response_cache ("
                "key TEXT PRIMARY KEY, value TEXT NOT NULL, created_at REAL NOT NULL, "
                "expires_at REAL)"
            )
            conn.commit()
        except (OSError, sqlite3.Error) as err:
            raise ConfigError(
                f"cache.url sqlite:///{self.path}: cannot open the cache file ({err}): "
                "use a writable path"
            ) from err
        self._conn = conn

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT value, expires_at FROM aco_response_cache WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        value, expires_at = row
        if expires_at is not None and expires_at < time.time():
            return None
        return str(value)

    def set(self, key: str, value: str, ttl_s: float | None) -> None:
        now = time.time()
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO aco_response_cache (key, value, created_at, expires_at) "
                "VALUES (?, ?, ?, ?)",
                (key, value, now, now + ttl_s if ttl_s else None),
            )
            self._conn.commit()

    def clear(self) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM aco_response_cache")
            self._conn.commit()

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class RedisStore:
    """Entries in Redis under ``aco:cache:<sha256>`` (expiry by Redis itself).

    Args:
        url: a ``redis://`` or ``rediss://`` URL.
        prefix: the key prefix (one per cache sharing a Redis database).

    Raises:
        ConfigError: the ``redis`` package is missing or the server does not answer.
    """

    def __init__(self, url: str, *, prefix: str = _REDIS_PREFIX) -> None:
        try:
            import redis
        except ImportError as err:
            raise ConfigError(
                f"cache.url {url}: the redis client is not installed: "
                "pip install 'aco-langchain[server]'"
            ) from err
        self.url = url
        self.prefix = prefix
        self._client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        try:
            self._client.ping()
        except redis.RedisError as err:
            raise ConfigError(
                f"cache.url {mask_url(url)}: Redis does not answer ({err}): start it, "
                "or fix or remove cache.url"
            ) from err

    def get(self, key: str) -> str | None:
        value = self._client.get(self.prefix + key)
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    def set(self, key: str, value: str, ttl_s: float | None) -> None:
        px = int(ttl_s * 1000) if ttl_s else None
        self._client.set(self.prefix + key, value, px=px)

    def clear(self) -> None:
        batch: list[Any] = []
        for k in self._client.scan_iter(match=self.prefix + "*", count=500):
            batch.append(k)
            if len(batch) >= 500:
                self._client.delete(*batch)
                batch = []
        if batch:
            self._client.delete(*batch)

    def close(self) -> None:
        self._client.close()


def entry_key(prompt: str, llm_string: str) -> str:
    """The storage key of a (prompt, llm_string) pair: a SHA-256, so keys stay short."""
    h = hashlib.sha256(prompt.encode())
    h.update(b"\x00")
    h.update(llm_string.encode())
    return h.hexdigest()


def _encode(generations: Sequence[Generation]) -> str:
    out: list[dict[str, Any]] = []
    for g in generations:
        if isinstance(g, ChatGeneration):
            out.append({"message": message_to_dict(g.message), "info": g.generation_info})
        else:
            out.append({"text": g.text, "info": g.generation_info})
    return json.dumps({"v": _FORMAT, "generations": out}, separators=(",", ":"))


def _decode(value: str) -> list[Generation]:
    data = json.loads(value)
    if not isinstance(data, dict) or data.get("v") != _FORMAT:
        raise ValueError(
            f"unknown cache entry format {data.get('v') if isinstance(data, dict) else data!r}"
        )
    gens: list[Generation] = []
    for g in data["generations"]:
        if "message" in g:
            (msg,) = messages_from_dict([g["message"]])
            gens.append(ChatGeneration(message=msg, generation_info=g.get("info")))
        else:
            gens.append(Generation(text=g["text"], generation_info=g.get("info")))
    return gens


def hit_record(made: AcoCallInfo, run_key: str | None) -> AcoCallInfo:
    """The record of a cache hit of an answer whose record is ``made`` (pure).

    It says ``cache_hit: true``, ``cost_usd: 0`` and ``cached_cost_usd`` (what the answer
    cost when made), and carries ``run_key`` (the run it now serves; None when unknown).
    Nothing that described the making call (its run and that run's spend, its tier calls,
    failures, fallback, latency) is kept: no other run's identity or spend is disclosed.

    Example:
        ```python
        hit_record(AcoCallInfo(tier=2, cost_usd=0.01, run_key="bob/r1"), "alice/r9").run_key
        # 'alice/r9'
        ```
    """
    return AcoCallInfo(
        tier=made.tier,
        model_id=made.model_id,
        reason=made.reason,
        cost_usd=0.0,
        estimated_cost_usd=made.estimated_cost_usd,
        routed_tier=made.routed_tier,
        task_type=made.task_type,
        difficulty=made.difficulty,
        predicted_success=made.predicted_success,
        confidence=made.confidence,
        run_key=run_key,
        cache_hit=True,
        cached_cost_usd=made.cached_cost_usd if made.cache_hit else made.cost_usd,
    )


def mark_hit(generations: list[Generation], run_key: str | None = None) -> list[Generation]:
    """Mark each stored answer as a cache hit (:func:`hit_record`), in place."""
    for g in generations:
        if isinstance(g, ChatGeneration) and isinstance(g.message, AIMessage):
            made = AcoCallInfo.from_message(g.message) or AcoCallInfo()
            g.message.response_metadata["aco"] = hit_record(made, run_key).to_metadata()
    return generations


def as_hit_of(msg: AIMessage, run_key: str) -> AIMessage:
    """A copy of a cached answer as the answer of the call it now serves: its record is
    :func:`hit_record` with that call's ``run_key``.

    Example:
        ```python
        hit = as_hit_of(stored, "team-a/run-9")
        AcoCallInfo.from_message(hit).run_key      # 'team-a/run-9'
        ```
    """
    copy = msg.model_copy(deep=True)
    mark_hit([ChatGeneration(message=copy)], run_key)
    return copy


def full_quality(info: AcoCallInfo | None) -> str | None:
    """Why an answer must not be cached (pure), or None when it may be.

    Only answers of the tier the router decided on the request's own merits are stored: a
    fallback or degraded answer (a tier failed) and a budget-forced one (a run's spent
    budget pushed it down) would be served to callers with money left as if it were the
    right answer.

    Example:
        ```python
        full_quality(AcoCallInfo(tier=1, degraded_from=3))   # 'degraded from tier 3 ...'
        ```
    """
    if info is None:
        return "it carries no routing record"
    if info.degraded_from:
        return f"degraded from tier {info.degraded_from} to tier {info.tier}"
    if info.fallback_from:
        return f"a fallback from tier {info.fallback_from} to tier {info.tier}"
    if info.cache_hit:
        return "it is a cache hit already"
    # The router's reason names its budget steps ("budget_exceeded ...: forced local",
    # "budget remaining $x -> tier n"): the decision was the budget's, not the request's.
    if "budget" in info.reason:
        return "its tier was chosen by the run's remaining budget"
    return None


class ResponseCache(BaseCache):
    """LangChain ``BaseCache`` over a :class:`CacheStore`, with hit/miss counts.

    A store that fails during a lookup or update (Redis restarting, a locked file) costs a
    miss and a logged warning, never the call.

    Args:
        store: where entries live (:class:`SQLiteStore`, :class:`RedisStore`).
        ttl_s: entry lifetime in seconds; None keeps entries until ``clear()``.

    Example:
        ```python
        cache = ResponseCache(SQLiteStore("/tmp/aco-cache.db"), ttl_s=3600)
        llm = ACORouterChatModel(cache=cache)
        ```
    """

    def __init__(self, store: CacheStore, *, ttl_s: float | None = None) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        """The stored answer for (prompt, llm_string), marked as a hit; None on a miss.

        Args:
            prompt: the serialized request (LangChain: the messages).
            llm_string: the serialized model and call parameters.

        Returns:
            The generations, their ``aco`` metadata marked ``cache_hit``; None if absent.
        """
        key = entry_key(prompt, llm_string)
        try:
            raw = self.store.get(key)
            found = _decode(raw) if raw is not None else None
        except Exception as err:  # noqa: BLE001 - a broken cache must not break the call
            logger.warning("response cache lookup failed, answering without it: %s", err)
            found = None
        with self._lock:
            if found is None:
                self._misses += 1
            else:
                self._hits += 1
        return mark_hit(found) if found is not None else None

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        """Store a successful, full-quality answer (LangChain calls this only after a
        success; a degraded, fallback or budget-forced answer is not stored:
        :func:`full_quality`).

        Args:
            prompt: the serialized request.
            llm_string: the serialized model and call parameters.
            return_val: the answer's generations.
        """
        for g in return_val:
            if isinstance(g, ChatGeneration):
                why = full_quality(AcoCallInfo.from_message(g.message))
                if why is not None:
                    logger.info("answer not cached: %s", why)
                    return
        try:
            self.store.set(entry_key(prompt, llm_string), _encode(return_val), self.ttl_s)
        except Exception as err:  # noqa: BLE001
            logger.warning("response cache update failed, answer not stored: %s", err)

    def clear(self, **kwargs: Any) -> None:
        """Forget every entry."""
        self.store.clear()

    def close(self) -> None:
        """Release the store's connections."""
        self.store.close()

    def stats(self) -> CacheStats:
        """Hits and misses of this object so far."""
        with self._lock:
            return CacheStats(hits=self._hits, misses=self._misses)


#: URL schemes a cache may live at.
CACHE_SCHEMES = ("sqlite:///", "redis://", "rediss://", "unix://")


def cache_url_problem(url: str) -> str | None:
    """What is wrong with a ``cache.url`` before anything is opened (pure), or None.

    Example:
        ```python
        cache_url_problem("ftp://x")     # 'cache.url 'ftp://x': unknown scheme: use ...'
        ```
    """
    if not url.startswith(CACHE_SCHEMES):
        return (
            f"cache.url {mask_url(url)!r}: unknown scheme: use sqlite:///path/to/cache.db "
            "or redis://host:6379/0"
        )
    if url == "sqlite:///":
        return f"cache.url {url!r} has no path: use sqlite:///path/to/cache.db"
    return None


def cache_from_url(url: str, *, ttl_s: float | None = None) -> ResponseCache:
    """A response cache for ``sqlite:///path`` or ``redis://host:port/db``.

    Args:
        url: where the entries live (config ``cache.url``).
        ttl_s: entry lifetime in seconds (config ``cache.ttl_s``).

    Returns:
        The cache, its store opened (a SQLite file created, Redis pinged).

    Raises:
        ConfigError: an unknown scheme, an unwritable path, an unreachable Redis.

    Example:
        ```python
        cache = cache_from_url("redis://127.0.0.1:6379/0", ttl_s=600)
        ```
    """
    problem = cache_url_problem(url)
    if problem:
        raise ConfigError(problem)
    if url.startswith("sqlite:///"):
        return ResponseCache(SQLiteStore(url[len("sqlite:///") :]), ttl_s=ttl_s)
    return ResponseCache(RedisStore(url), ttl_s=ttl_s)


__all__ = [
    "CACHE_SCHEMES",
    "CacheStats",
    "CacheStore",
    "RedisStore",
    "ResponseCache",
    "SQLiteStore",
    "as_hit_of",
    "cache_from_url",
    "cache_url_problem",
    "full_quality",
    "hit_record",
    "entry_key",
    "mark_hit",
]
