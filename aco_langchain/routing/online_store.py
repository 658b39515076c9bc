"""Where online learning keeps its Beta posteriors: the ledger's database.

Two tables beside the ledger's (``memory://``: in-process; SQLite: the ledger file;
PostgreSQL: ``<prefix>learn`` beside the ledger's tables), so every worker sharing a
ledger shares what was learned:

* ``learn``: (cluster, tier) -> successes, failures; an observation is one atomic upsert;
* ``learn_routes``: run_key -> (cluster, tier, applied): which cluster and tier answered a
  run (``note``), so an outcome observed later for that run (``OutcomeStore``, ``aco
  outcome``) is applied once (``sync``).

Usage::

    from aco_langchain.routing.online_store import open_learning
    store = open_learning(config)                    # the config's ledger URL
    store.observe("coding:d3", 2, 1.0)               # tier 2 answered a coding prompt well
    store.observe_message(ai_message, 1.0)           # an answer judged good, directly
    store.note_message(ai_message)                   # or: remember the run's cluster/tier
    await store.anote("run-7", "coding:d3", 2)       # the same, native async (async calls)
    await store.aall_posteriors()                    # every cluster's, native async
    store.sync(outcome_store)                        # apply observed outcomes once
    store.posteriors("coding:d3")                    # {2: Posterior(successes=1.0, ...)}
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from aco_langchain.errors import LedgerError
from aco_langchain.routing.online import Posterior, cluster_key

if TYPE_CHECKING:
    from aco_langchain.config import ACOConfig


class ObservedOutcome(Protocol):
    """What an observed outcome carries (``spend.outcomes.Outcome`` fits)."""

    success: bool
    score: float | None


class OutcomeSource(Protocol):
    """Where observed outcomes are read (``spend.outcomes.OutcomeStore`` fits)."""

    def many(self, run_keys: Iterable[str]) -> Mapping[str, ObservedOutcome]:
        """The outcomes known for ``run_keys``."""
        ...


@dataclass(frozen=True)
class Row:
    """One (cluster, tier) posterior, as ``aco learn status`` lists it."""

    cluster: str
    tier: int
    successes: float
    failures: float


class _Sql:
    """The two backends' shared SQL; subclasses give a connection and placeholders."""

    ph = "?"
    prefix = ""

    def _run(self, sql: str, params: tuple[Any, ...] = (), fetch: bool = False) -> list[Any]:
        raise NotImplementedError

    async def _arun(self, sql: str, params: tuple[Any, ...] = (), fetch: bool = False) -> list[Any]:
        raise NotImplementedError

    def _schema(self) -> list[str]:
        p = self.prefix
        return [
            f"CREATE TABLE IF NOT EXISTS {p}learn (cluster TEXT NOT NULL, tier INTEGER NOT "
            "NULL, successes DOUBLE PRECISION NOT NULL DEFAULT 0, failures DOUBLE PRECISION "
            "NOT NULL DEFAULT 0, PRIMARY KEY (cluster, tier))",
            f"CREATE TABLE IF NOT EXISTS {p}learn_routes (run_key TEXT PRIMARY KEY, cluster "
            "TEXT NOT NULL, tier INTEGER NOT NULL, applied INTEGER NOT NULL DEFAULT 0)",
        ]

    def observe(self, cluster: str, tier: int, score: float) -> None:
        """Add one outcome (score in [0, 1]) to ``cluster``'s posterior of ``tier``."""
        s = min(1.0, max(0.0, float(score)))
        q = self.ph
        self._run(
            f"INSERT INTO {self.prefix}learn (cluster, tier, successes, failures) VALUES "
            f"({q}, {q}, {q}, {q}) ON CONFLICT (cluster, tier) DO UPDATE SET successes = "
            f"{self.prefix}learn.successes + excluded.successes, failures = "
            f"{self.prefix}learn.failures + excluded.failures",
            (cluster, int(tier), s, 1.0 - s),
        )

    def posteriors(self, cluster: str) -> dict[int, Posterior]:
        """Tier -> observed outcomes on ``cluster``."""
        rows = self._run(
            f"SELECT tier, successes, failures FROM {self.prefix}learn WHERE cluster = {self.ph}",
            (cluster,),
            fetch=True,
        )
        return {int(t): Posterior(float(s), float(f)) for t, s, f in rows}

    def _rows_sql(self) -> str:
        return (
            f"SELECT cluster, tier, successes, failures FROM {self.prefix}learn "
            "ORDER BY cluster, tier"
        )

    def rows(self) -> list[Row]:
        """Every posterior (``aco learn status``)."""
        return [
            Row(str(c), int(t), float(s), float(f))
            for c, t, s, f in self._run(self._rows_sql(), fetch=True)
        ]

    def all_posteriors(self) -> dict[str, dict[int, Posterior]]:
        """Cluster -> tier -> observed outcomes, every cluster in one read.

        Example:
            ```python
            store.all_posteriors()   # {"coding:d3": {2: Posterior(successes=1.0, ...)}}
            ```
        """
        return _by_cluster(self._run(self._rows_sql(), fetch=True))

    async def aall_posteriors(self) -> dict[str, dict[int, Posterior]]:
        """Async :meth:`all_posteriors` (native async I/O: nothing blocks the event loop).

        Example:
            ```python
            snapshot = await store.aall_posteriors()
            ```
        """
        return _by_cluster(await self._arun(self._rows_sql(), fetch=True))

    def _note_sql(self) -> str:
        q = self.ph
        return (
            f"INSERT INTO {self.prefix}learn_routes (run_key, cluster, tier) VALUES ({q}, {q}, "
            f"{q}) ON CONFLICT (run_key) DO UPDATE SET cluster = excluded.cluster, tier = "
            "excluded.tier"
        )

    def note(self, run_key: str, cluster: str, tier: int) -> None:
        """Remember which cluster and tier answered ``run_key`` (the last call wins)."""
        self._run(self._note_sql(), (run_key, cluster, int(tier)))

    async def anote(self, run_key: str, cluster: str, tier: int) -> None:
        """Async :meth:`note` (native async I/O: nothing blocks the event loop)."""
        await self._arun(self._note_sql(), (run_key, cluster, int(tier)))

    def note_message(self, message: Any) -> bool:
        """``note`` from an answer's ``response_metadata["aco"]``; False without one."""
        aco = (getattr(message, "response_metadata", None) or {}).get("aco") or {}
        if not aco.get("run_key") or aco.get("tier") is None or not aco.get("task_type"):
            return False
        cluster = cluster_key(str(aco["task_type"]), aco.get("difficulty"))
        self.note(str(aco["run_key"]), cluster, int(aco["tier"]))
        return True

    def observe_message(self, message: Any, score: float) -> bool:
        """``observe`` the outcome of an answer directly (its ``response_metadata["aco"]``
        names the cluster and tier); False when the message carries no routing metadata."""
        aco = (getattr(message, "response_metadata", None) or {}).get("aco") or {}
        if aco.get("tier") is None or not aco.get("task_type"):
            return False
        self.observe(
            cluster_key(str(aco["task_type"]), aco.get("difficulty")), int(aco["tier"]), score
        )
        return True

    def sync(self, outcomes: OutcomeSource) -> int:
        """Apply observed outcomes of noted runs not applied yet; returns how many.

        Each run is claimed (``applied`` 0 -> 1) before its outcome is added, so two
        workers syncing at once apply it once.
        """
        pending = self._run(
            f"SELECT run_key, cluster, tier FROM {self.prefix}learn_routes WHERE applied = 0",
            fetch=True,
        )
        if not pending:
            return 0
        found = outcomes.many([str(r[0]) for r in pending])
        applied = 0
        q = self.ph
        for run_key, cluster, tier in pending:
            got = found.get(str(run_key))
            if got is None:
                continue
            claimed = self._run(
                f"UPDATE {self.prefix}learn_routes SET applied = 1 WHERE run_key = {q} AND "
                "applied = 0 RETURNING run_key",
                (run_key,),
                fetch=True,
            )
            if claimed:
                score = got.score if got.score is not None else float(got.success)
                self.observe(str(cluster), int(tier), score)
                applied += 1
        return applied

    def reset(self) -> None:
        """Forget everything learned (``aco learn reset``)."""
        self._run(f"DELETE FROM {self.prefix}learn")
        self._run(f"DELETE FROM {self.prefix}learn_routes")


class SqliteLearning(_Sql):
    """Posteriors in a SQLite file (the ledger's); safe across threads and processes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, timeout=30.0, check_same_thread=False)
        self._conn.execute("PRAGMA busy_timeout = 30000")
        for stmt in self._schema():
            self._run(stmt)

    def _run(self, sql: str, params: tuple[Any, ...] = (), fetch: bool = False) -> list[Any]:
        try:
            with self._lock, self._conn:
                cur = self._conn.execute(sql, params)
                return cur.fetchall() if fetch else []
        except sqlite3.Error as err:
            raise LedgerError(f"learning store {self.path}: {err}") from err

    async def _arun(self, sql: str, params: tuple[Any, ...] = (), fetch: bool = False) -> list[Any]:
        if self.path == ":memory:":
            # One shared in-process connection (no file to open asynchronously): its lock may
            # be held by another thread, so the statement runs off the loop.
            return await asyncio.to_thread(self._run, sql, params, fetch)
        import aiosqlite

        try:
            async with aiosqlite.connect(self.path, timeout=30.0) as conn:
                cur = await conn.execute(sql, params)
                rows = list(await cur.fetchall()) if fetch else []
                await conn.commit()
                return rows
        except sqlite3.Error as err:
            raise LedgerError(f"learning store {self.path}: {err}") from err


class PostgresLearning(_Sql):
    """Posteriors in PostgreSQL beside the ledger's tables (``<prefix>learn``)."""

    ph = "%s"

    def __init__(self, dsn: str, prefix: str = "aco_") -> None:
        try:
            import psycopg
        except ImportError as err:  # pragma: no cover - depends on the extras
            raise LedgerError(
                "a postgres ledger needs psycopg: pip install 'aco-langchain[postgres]'"
            ) from err
        self._psycopg = psycopg
        self.dsn = dsn
        self.prefix = prefix
        self._lock = threading.Lock()
        self._conn: Any = None
        # concurrent CREATE TABLE IF NOT EXISTS races in PostgreSQL: one creator at a time
        self._run(
            "BEGIN; SELECT pg_advisory_xact_lock(hashtext('aco-learn-schema')); "
            + "; ".join(self._schema())
            + "; COMMIT"
        )

    def _run(self, sql: str, params: tuple[Any, ...] = (), fetch: bool = False) -> list[Any]:
        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = self._psycopg.connect(self.dsn, autocommit=True)
                with self._conn.cursor() as cur:
                    cur.execute(sql, params)
                    return list(cur.fetchall()) if fetch else []
            except self._psycopg.Error as err:
                self._conn = None
                raise LedgerError(f"learning store (postgres): {type(err).__name__}") from err

    async def _arun(self, sql: str, params: tuple[Any, ...] = (), fetch: bool = False) -> list[Any]:
        try:
            conn = await self._psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
            async with conn:
                cur = await conn.execute(sql, params)
                return list(await cur.fetchall()) if fetch else []
        except self._psycopg.Error as err:
            raise LedgerError(f"learning store (postgres): {type(err).__name__}") from err

    def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            self._conn.close()


def _by_cluster(rows: Iterable[Any]) -> dict[str, dict[int, Posterior]]:
    out: dict[str, dict[int, Posterior]] = {}
    for c, t, s, f in rows:
        out.setdefault(str(c), {})[int(t)] = Posterior(float(s), float(f))
    return out


_MEMORY: dict[str, SqliteLearning] = {}


def open_learning(config: ACOConfig | None = None, url: str | None = None) -> _Sql:
    """The learning store of the ledger the config (or ``url``) names.

    ``memory://`` gives one in-process store (shared within the process).

    Raises:
        LedgerError: the database cannot be opened.

    Example:
        ```python
        store = open_learning(url="sqlite:////tmp/ledger.db")
        ```
    """
    from aco_langchain.spend.ledger.url import parse_ledger_url, resolve_ledger_url

    parsed = parse_ledger_url(resolve_ledger_url(url, config))
    if parsed.kind == "postgres":
        assert parsed.dsn is not None
        return PostgresLearning(parsed.dsn, parsed.table_prefix)
    if parsed.kind == "sqlite":
        assert parsed.path is not None
        parsed.path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteLearning(str(parsed.path))
    if "memory" not in _MEMORY:
        _MEMORY["memory"] = SqliteLearning(":memory:")
    return _MEMORY["memory"]
