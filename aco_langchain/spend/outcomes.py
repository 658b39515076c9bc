"""Observed outcomes: did a run succeed? Unknown until something reports it.

One row per run (``run_key, success, score, source, ts``; the last report wins) in the
ledger's database, so every worker sharing a ledger sees the same outcomes: an in-process
dict for ``memory://``, table ``outcomes`` in the SQLite ledger file, table
``<prefix>outcomes`` beside a PostgreSQL ledger. Reported by ``llm.record_outcome`` /
``arecord_outcome``, ``aco outcome RUN_ID --success|--fail``, an ``aco_outcome`` custom
event, a verifier's verdict, or a replay's recorded outcome. Read by ``aco stats``,
``aco spend``, the dashboard and online learning: success rate and cost per successful task
count only runs with an observed outcome.

Usage::

    from aco_langchain.spend.outcomes import open_outcomes
    store = open_outcomes("sqlite:////tmp/aco-ledger.db")
    store.record("run-42", success=True, score=0.9, source="api")
    store.get("run-42")                 # Outcome(run_key='run-42', success=True, ...)
    await store.arecord("run-43", success=False)
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aco_langchain.errors import LedgerError

logger = logging.getLogger(__name__)

#: Where an outcome came from (free text is accepted; these are ours).
SOURCES = ("api", "cli", "event", "verifier", "replay")


@dataclass(frozen=True)
class Outcome:
    """The observed outcome of one run."""

    run_key: str
    success: bool
    score: float | None = None
    source: str = "api"
    ts: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_outcome(
    run_key: str, success: bool, score: float | None, source: str, ts: float | None = None
) -> Outcome:
    """A checked :class:`Outcome` (the one validation every backend shares).

    Raises:
        ValueError: an empty run key, or a score outside [0, 1].
    """
    if not run_key or not str(run_key).strip():
        raise ValueError("the run id is empty: pass the run's id (aco_run_id / run_key)")
    if score is not None and not 0.0 <= float(score) <= 1.0:
        raise ValueError(f"score {score} is outside [0, 1]: pass a score between 0 and 1")
    return Outcome(
        str(run_key),
        bool(success),
        None if score is None else float(score),
        source,
        time.time() if ts is None else ts,
    )


class OutcomeStore:
    """The outcomes of runs (the in-process backend; the others subclass it).

    Example:
        ```python
        store = OutcomeStore()
        store.record("r1", success=True)
        store.many(["r1", "r2"])       # {'r1': Outcome(...)}
        ```
    """

    url = "memory://"

    def __init__(self) -> None:
        self._rows: dict[str, Outcome] = {}
        self._lock = threading.Lock()

    # -- what every backend implements ------------------------------------------------
    def _put(self, outcome: Outcome) -> None:
        with self._lock:
            self._rows[outcome.run_key] = outcome

    def _get_many(self, run_keys: list[str] | None) -> list[Outcome]:
        with self._lock:
            if run_keys is None:
                return list(self._rows.values())
            return [self._rows[k] for k in run_keys if k in self._rows]

    async def _aput(self, outcome: Outcome) -> None:
        self._put(outcome)  # a dict: nothing to wait for

    async def _aget_many(self, run_keys: list[str] | None) -> list[Outcome]:
        return self._get_many(run_keys)

    # -- the API ----------------------------------------------------------------------
    def record(
        self, run_key: str, *, success: bool, score: float | None = None, source: str = "api"
    ) -> Outcome:
        """Store (replace) the outcome of ``run_key``.

        Args:
            run_key: the run's id (``aco_run_id``, the ledger's ``run_key``).
            success: did the run do what was asked.
            score: an optional grade in [0, 1].
            source: who observed it (``api``, ``cli``, ``event``, ``verifier``, ``replay``).

        Returns:
            The stored outcome.

        Raises:
            ValueError: an empty run key or a score outside [0, 1].
            LedgerError: the database cannot be written.
        """
        out = make_outcome(run_key, success, score, source)
        self._put(out)
        logger.debug("outcome of %s: %s (%s)", out.run_key, out.success, out.source)
        return out

    async def arecord(
        self, run_key: str, *, success: bool, score: float | None = None, source: str = "api"
    ) -> Outcome:
        """Async :meth:`record` (native async I/O)."""
        out = make_outcome(run_key, success, score, source)
        await self._aput(out)
        return out

    def get(self, run_key: str) -> Outcome | None:
        """The outcome of ``run_key``, None when none was observed."""
        found = self._get_many([run_key])
        return found[0] if found else None

    async def aget(self, run_key: str) -> Outcome | None:
        """Async :meth:`get`."""
        found = await self._aget_many([run_key])
        return found[0] if found else None

    def many(self, run_keys: Iterable[str] | None = None) -> dict[str, Outcome]:
        """{run_key: outcome} for the given runs that have one (every run when None)."""
        keys = None if run_keys is None else list(dict.fromkeys(run_keys))
        return {o.run_key: o for o in self._get_many(keys)}

    async def amany(self, run_keys: Iterable[str] | None = None) -> dict[str, Outcome]:
        """Async :meth:`many`."""
        keys = None if run_keys is None else list(dict.fromkeys(run_keys))
        return {o.run_key: o for o in await self._aget_many(keys)}

    def close(self) -> None:
        """Release connections (nothing for the in-process store)."""


_SQLITE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS outcomes (run_key TEXT PRIMARY KEY, success INTEGER NOT NULL, "
    "score REAL, source TEXT NOT NULL, ts REAL NOT NULL)"
)
_SQLITE_PUT = (
    "INSERT INTO outcomes (run_key, success, score, source, ts) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT(run_key) DO UPDATE SET success=excluded.success, score=excluded.score, "
    "source=excluded.source, ts=excluded.ts"
)
_SELECT = "SELECT run_key, success, score, source, ts FROM {table}"


def _row(r: Any) -> Outcome:
    return Outcome(str(r[0]), bool(r[1]), None if r[2] is None else float(r[2]), str(r[3]), r[4])


def _params(o: Outcome) -> tuple[Any, ...]:
    return (o.run_key, int(o.success), o.score, o.source, o.ts)


def _pg_params(o: Outcome) -> tuple[Any, ...]:
    return (o.run_key, o.success, o.score, o.source, o.ts)


def _chunks(keys: list[str], size: int = 500) -> Iterable[list[str]]:
    for i in range(0, len(keys), size):
        yield keys[i : i + size]


class SQLiteOutcomes(OutcomeStore):
    """Outcomes in the SQLite ledger file (table ``outcomes``); async through aiosqlite."""

    def __init__(self, path: Path, url: str) -> None:
        super().__init__()
        self.path = path
        self.url = url
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as conn:
                conn.execute(_SQLITE_SCHEMA)
        except (OSError, sqlite3.Error) as err:
            raise LedgerError(
                f"outcomes in {url}: cannot create the table ({err}); fix: point "
                "ledger.url / ACO_LEDGER_URL at a writable file"
            ) from err

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def _put(self, outcome: Outcome) -> None:
        with self._connect() as conn:
            conn.execute(_SQLITE_PUT, _params(outcome))

    def _get_many(self, run_keys: list[str] | None) -> list[Outcome]:
        sql = _SELECT.format(table="outcomes")
        with self._connect() as conn:
            if run_keys is None:
                return [_row(r) for r in conn.execute(sql)]
            out: list[Outcome] = []
            for part in _chunks(run_keys):
                marks = ",".join("?" * len(part))
                out += [_row(r) for r in conn.execute(f"{sql} WHERE run_key IN ({marks})", part)]
            return out

    async def _aput(self, outcome: Outcome) -> None:
        import aiosqlite

        async with aiosqlite.connect(self.path, timeout=30.0) as conn:
            await conn.execute(_SQLITE_PUT, _params(outcome))
            await conn.commit()

    async def _aget_many(self, run_keys: list[str] | None) -> list[Outcome]:
        import aiosqlite

        sql = _SELECT.format(table="outcomes")
        async with aiosqlite.connect(self.path, timeout=30.0) as conn:
            if run_keys is None:
                return [_row(r) async for r in await conn.execute(sql)]
            out: list[Outcome] = []
            for part in _chunks(run_keys):
                marks = ",".join("?" * len(part))
                cur = await conn.execute(f"{sql} WHERE run_key IN ({marks})", part)
                out += [_row(r) async for r in cur]
            return out


class PostgresOutcomes(OutcomeStore):
    """Outcomes in table ``<prefix>outcomes`` of the PostgreSQL ledger; async via psycopg."""

    def __init__(self, dsn: str, table_prefix: str, url: str) -> None:
        super().__init__()
        self.dsn = dsn
        self.url = url
        self.table = f"{table_prefix}outcomes"
        self._put_sql = (
            f"INSERT INTO {self.table} (run_key, success, score, source, ts) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (run_key) DO UPDATE SET "
            "success=EXCLUDED.success, score=EXCLUDED.score, source=EXCLUDED.source, "
            "ts=EXCLUDED.ts"
        )
        try:
            import psycopg

            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {self.table} (run_key TEXT PRIMARY KEY, "
                    "success BOOLEAN NOT NULL, score DOUBLE PRECISION, source TEXT NOT NULL, "
                    "ts DOUBLE PRECISION NOT NULL)"
                )
        except ImportError as err:
            raise LedgerError(
                f"outcomes in {url}: PostgreSQL needs psycopg 3: pip install "
                "'aco-langchain[postgres]'"
            ) from err
        except Exception as err:  # psycopg.Error: the server or the schema
            raise LedgerError(
                f"outcomes in {url}: cannot create {self.table} ({type(err).__name__}); fix: "
                "check the server and the URL"
            ) from err

    def _put(self, outcome: Outcome) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(self._put_sql, _pg_params(outcome))

    def _get_many(self, run_keys: list[str] | None) -> list[Outcome]:
        import psycopg

        sql = _SELECT.format(table=self.table)
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            if run_keys is None:
                return [_row(r) for r in conn.execute(sql)]
            rows = conn.execute(f"{sql} WHERE run_key = ANY(%s)", (run_keys,))
            return [_row(r) for r in rows]

    async def _aput(self, outcome: Outcome) -> None:
        import psycopg

        conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
        async with conn:
            await conn.execute(self._put_sql, _pg_params(outcome))

    async def _aget_many(self, run_keys: list[str] | None) -> list[Outcome]:
        import psycopg

        sql = _SELECT.format(table=self.table)
        conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
        async with conn:
            if run_keys is None:
                cur = await conn.execute(sql)
            else:
                cur = await conn.execute(f"{sql} WHERE run_key = ANY(%s)", (run_keys,))
            return [_row(r) for r in await cur.fetchall()]


_OPEN: dict[str, OutcomeStore] = {}
_OPEN_LOCK = threading.Lock()


def open_outcomes(url: str | None = None, config: Any = None) -> OutcomeStore:
    """The outcome store beside the ledger at ``url`` (resolved as the ledger's is).

    ``memory://`` gives a new private store each time; the others are shared per URL.

    Args:
        url: the ledger URL; None: ``$ACO_LEDGER_URL``, the config's, the SQLite default.
        config: the config whose ``ledger.url`` applies.

    Returns:
        The store, its table created.

    Raises:
        LedgerURLError: a malformed URL.
        LedgerError: the database cannot be opened.

    Example:
        ```python
        open_outcomes("memory://").record("r1", success=False, source="cli")
        ```
    """
    from aco_langchain.spend.ledger.url import parse_ledger_url, resolve_ledger_url

    parsed = parse_ledger_url(resolve_ledger_url(url, config))
    if parsed.kind == "memory":
        return OutcomeStore()
    with _OPEN_LOCK:
        found = _OPEN.get(parsed.url)
        if found is not None:
            return found
        store: OutcomeStore
        if parsed.kind == "sqlite":
            assert parsed.path is not None  # noqa: S101 - parse_ledger_url sets it
            store = SQLiteOutcomes(parsed.path, parsed.url)
        else:
            assert parsed.dsn is not None  # noqa: S101
            store = PostgresOutcomes(parsed.dsn, parsed.table_prefix, parsed.url)
        _OPEN[parsed.url] = store
        return store


def outcome_figures(
    run_costs: Mapping[str, float], outcomes: Mapping[str, Outcome]
) -> dict[str, Any]:
    """Success rate and cost per successful task over the runs with an observed outcome.

    Args:
        run_costs: {run_key: USD} of the runs in scope (the ledger's).
        outcomes: the observed outcomes (any runs; only those in ``run_costs`` count).

    Returns:
        ``{"runs", "runs_with_outcome", "runs_without_outcome", "successes", "success_rate",
        "cost_per_successful_task"}`` (rates None when there is nothing to divide by).

    Example:
        ```python
        outcome_figures({"a": 0.2, "b": 0.1}, {"a": Outcome("a", True)})["success_rate"]  # 1.0
        ```
    """
    seen = [k for k in run_costs if k in outcomes]
    wins = [k for k in seen if outcomes[k].success]
    cost = sum(run_costs[k] for k in seen)
    return {
        "runs": len(run_costs),
        "runs_with_outcome": len(seen),
        "runs_without_outcome": len(run_costs) - len(seen),
        "successes": len(wins),
        "success_rate": round(len(wins) / len(seen), 6) if seen else None,
        "cost_per_successful_task": round(cost / len(wins), 10) if wins else None,
    }


def outcome_store_for(field: Any, ledger: Any, config: Any = None) -> OutcomeStore:
    """The outcome store of a model whose ``ledger`` field is ``field`` (a URL, None or a
    ledger object) and whose open ledger is ``ledger``: the same database; a private
    in-process store beside an in-memory ledger."""
    if field is None or isinstance(field, str):
        return open_outcomes(field, config)
    url = getattr(ledger, "url", None)
    if isinstance(url, str) and url.startswith("sqlite:"):
        return open_outcomes(url)
    dsn = getattr(ledger, "dsn", None)
    if isinstance(dsn, str):
        return open_outcomes(_with_prefix(dsn, getattr(ledger, "prefix", "aco_")))
    return OutcomeStore()


def _with_prefix(dsn: str, prefix: str) -> str:
    sep = "&" if "?" in dsn else "?"
    return f"{dsn}{sep}table_prefix={prefix}" if prefix != "aco_" else dsn


__all__ = [
    "SOURCES",
    "Outcome",
    "OutcomeStore",
    "PostgresOutcomes",
    "SQLiteOutcomes",
    "make_outcome",
    "outcome_figures",
    "outcome_store_for",
    "open_outcomes",
]
