"""PostgreSQL ledger (``postgresql://...``): one budget for many processes and hosts.

psycopg 3 with connection pools; every hold and every settle is ONE statement (the
conditional ``UPDATE ... WHERE spent + held + x <= limit`` takes the row lock, so concurrent
holds on one scope serialise in the database, never in a read-then-write).

Synchronous and asynchronous methods share everything but the I/O: each operation is written
once as a generator of steps (:class:`Query`: a statement to run; :class:`Probe`: which
hold owners are alive), and two small drivers run the steps — on a ``ConnectionPool`` for
``hold``/``settle``/..., on the running event loop's own connections (``pg_async``) for
``ahold``/``asettle``/... . One async pool per event loop: a pool is bound to the loop that
opened it, and scripts call ``asyncio.run`` more than once, so a pool whose loop has closed is
dropped, never reused.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
import uuid
import weakref
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from aco_langchain.errors import LedgerError
from aco_langchain.spend.ledger import postgres_sql as sql
from aco_langchain.spend.ledger.aio import release_if_cancelled
from aco_langchain.spend.ledger.base import (
    MONEY_EPS,
    Hold,
    Limit,
    PruneReport,
    RecordsSummaryMixin,
    Refusal,
    ScopeUsage,
    SpendRecord,
    refusal_for,
    scope_finished,
)
from aco_langchain.spend.ledger.owners import (
    expired_hold_fate,
    live_processes,
    orphan_record,
    process_identity,
)
from aco_langchain.spend.ledger.postgres_sql import MIGRATIONS, record_args
from aco_langchain.spend.ledger.rows import ROW_COLUMNS, record_from_row

logger = logging.getLogger(__name__)

_PREFIX_RE = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")

T = TypeVar("T")


@dataclass(frozen=True)
class Query:
    """One statement of an operation, and what to fetch from it."""

    what: str
    sql: str
    params: Any = None
    fetch: Literal["none", "one", "all"] = "none"


@dataclass(frozen=True)
class Probe:
    """Ask which of these hold owners (``host:pid:start``) are alive (reads ``/proc``)."""

    processes: tuple[str, ...]


Steps = Generator[Query | Probe, Any, T]


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (safe to print)."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def _usage(scope: str, row: Sequence[Any] | None) -> ScopeUsage:
    if row is None:
        return ScopeUsage(scope)
    return ScopeUsage(scope, float(row[0]), float(row[1]), int(row[2]), int(row[3]), row[4])


class PostgresLedger(RecordsSummaryMixin):
    """A ledger in PostgreSQL tables ``<prefix>budgets``, ``holds``, ``spend``.

    Example:
        ```python
        from aco_langchain.spend.ledger import Limit, PostgresLedger, SpendRecord

        ledger = PostgresLedger("postgresql://postgres@127.0.0.1:5432/test")
        got = ledger.hold([Limit("run:r1", usd=0.5)], usd=0.2, ttl_s=60)
        ledger.settle(got, SpendRecord(run_key="r1", cost_usd=0.03, tier=2))
        # async code: the same, awaited, on a pool of the running event loop
        got = await ledger.ahold([Limit("run:r1", usd=0.5)], usd=0.2, ttl_s=60)
        await ledger.asettle(got, SpendRecord(run_key="r1", cost_usd=0.03, tier=2))
        ```

    Args:
        dsn: a libpq connection string / URL.
        table_prefix: prefix of the table names (default ``aco_``; tests use unique ones).
        pool_size: most connections this process keeps open (per pool: one synchronous pool,
            one asynchronous pool per event loop).
        url: the URL to name in messages (defaults to ``dsn`` with the password masked).

    Raises:
        LedgerError: psycopg is missing, the server cannot be reached, or the schema
            cannot be created.
    """

    def __init__(
        self,
        dsn: str,
        *,
        table_prefix: str = "aco_",
        pool_size: int = 8,
        url: str | None = None,
    ) -> None:
        self.dsn = dsn
        self.url = mask_url(url or dsn)
        if not _PREFIX_RE.match(table_prefix):
            raise LedgerError(
                f"ledger {self.url}: table_prefix {table_prefix!r} is not a plain SQL name: "
                "use lowercase letters, digits and _"
            )
        self.prefix = table_prefix
        self.pool_size = pool_size
        self._lock = threading.Lock()
        self._pool: Any = None
        self._pid = -1
        #: Async pools by event loop (weak: a collected loop drops its entry).
        self._apools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )
        try:
            import psycopg  # noqa: F401
            import psycopg_pool  # noqa: F401
        except ImportError as err:
            raise LedgerError(
                f"ledger {self.url}: PostgreSQL needs psycopg 3 and psycopg-pool: "
                "pip install 'aco-langchain[postgres]'"
            ) from err
        process_identity()  # read /proc once here, not later on an event loop
        self._check_connect()
        self._migrate()

    # -- connections and schema ------------------------------------------------------------

    def _fail(self, what: str, err: BaseException) -> LedgerError:
        return LedgerError(
            f"ledger {self.url}: {what} ({str(err).strip().splitlines()[0] if str(err) else err!r})"
            "; fix: check the server is running and the URL's host, port, user and database "
            "(e.g. postgresql://postgres@127.0.0.1:5432/test)"
        )

    def _check_connect(self) -> None:
        import psycopg

        try:
            psycopg.connect(self.dsn, connect_timeout=5, autocommit=True).close()
        except psycopg.Error as err:
            raise self._fail("cannot connect", err) from err

    def _session_options(self) -> dict[str, Any]:
        """``synchronous_commit=off`` unless the URL sets ``options`` itself.

        A commit then returns before its WAL is flushed (5 ms per commit on this machine's
        disk, 0.7 ms without): a worker killed mid-call loses nothing, a crash of the Postgres
        server or its host can lose the last fraction of a second of settles. Put
        ``?options=-c%20synchronous_commit%3Don`` in the URL to wait for the flush.
        """
        if "options=" in self.dsn:
            return {}
        return {"options": "-c synchronous_commit=off"}

    def _pool_args(self) -> dict[str, Any]:
        return {
            "min_size": 1,
            "max_size": self.pool_size,
            "kwargs": {"autocommit": True, **self._session_options()},
            "name": "aco-ledger",
        }

    def _get_pool(self) -> Any:
        if self._pool is not None and self._pid == os.getpid():
            return self._pool
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                from psycopg_pool import ConnectionPool

                # After fork the parent's sockets are not ours: open a fresh pool.
                self._pool = ConnectionPool(self.dsn, open=True, **self._pool_args())
                self._pid = os.getpid()
        return self._pool

    async def _get_apool(self) -> Any:
        """The running loop's async pool, opened on first use in that loop."""
        loop = asyncio.get_running_loop()
        pool = self._apools.get(loop)
        if pool is None:
            from aco_langchain.spend.ledger.pg_async import LoopConnections

            # A closed loop's connections are dead (their sockets belong to it): drop them.
            for old in [lp for lp in list(self._apools) if lp.is_closed()]:
                self._apools.pop(old, None)
            # No await between the lookup and the insert: one connection set per loop.
            args = self._pool_args()
            pool = LoopConnections(self.dsn, args["kwargs"], args["max_size"])
            self._apools[loop] = pool
        return pool

    def _migrate(self) -> None:
        import psycopg

        p = self.prefix
        try:
            with psycopg.connect(self.dsn, connect_timeout=5) as conn, conn.transaction():
                # One migrator at a time across processes (hash of the prefix as lock key).
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"aco-ledger:{p}",))
                conn.execute(f"CREATE TABLE IF NOT EXISTS {p}schema_version (version INTEGER)")
                row = conn.execute(f"SELECT max(version) FROM {p}schema_version").fetchone()
                current = int(row[0] or 0) if row else 0
                if current > len(MIGRATIONS):
                    raise LedgerError(
                        f"ledger {self.url} has schema version {current}, newer than this "
                        f"aco-langchain knows ({len(MIGRATIONS)}): upgrade aco-langchain"
                    )
                for version in range(current + 1, len(MIGRATIONS) + 1):
                    conn.execute(MIGRATIONS[version - 1].format(p=p))
                    conn.execute(f"INSERT INTO {p}schema_version (version) VALUES (%s)", (version,))
                    logger.info("ledger %s: schema migrated to version %d", self.url, version)
        except psycopg.Error as err:
            raise self._fail("cannot create the ledger tables", err) from err

    # -- the two drivers: the only code that differs between sync and async ----------------

    def _deadlock_retry(self, err: Exception, q: Query, attempt: int) -> None:
        """Re-raise ``err`` unless it is a deadlock worth another attempt."""
        import psycopg

        if isinstance(err, psycopg.errors.DeadlockDetected) and attempt < 2:
            # Multi-scope holds may lock budget rows in different orders: retry.
            logger.warning("ledger %s: deadlock on %s, retrying", self.url, q.what)
            return
        if isinstance(err, psycopg.errors.DeadlockDetected):
            raise err
        if isinstance(err, psycopg.Error):
            raise self._fail(f"cannot {q.what}", err) from err
        raise err

    def _exec(self, q: Query) -> Any:
        for attempt in range(3):
            try:
                with self._get_pool().connection() as conn:
                    cur = conn.execute(q.sql, q.params)
                    if q.fetch == "one":
                        return cur.fetchone()
                    if q.fetch == "all":
                        return cur.fetchall()
                    return cur.rowcount
            except Exception as err:  # noqa: BLE001 - _deadlock_retry re-raises the rest
                self._deadlock_retry(err, q, attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _aexec(self, q: Query) -> Any:
        for attempt in range(3):
            try:
                pool = await self._get_apool()
                async with pool.connection() as conn:
                    cur = await conn.execute(q.sql, q.params)
                    if q.fetch == "one":
                        return await cur.fetchone()
                    if q.fetch == "all":
                        return await cur.fetchall()
                    return cur.rowcount
            except Exception as err:  # noqa: BLE001 - _deadlock_retry re-raises the rest
                self._deadlock_retry(err, q, attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _run(self, steps: Steps[T]) -> T:
        try:
            step = next(steps)
            while True:
                if isinstance(step, Probe):
                    step = steps.send(live_processes(step.processes))
                else:
                    step = steps.send(self._exec(step))
        except StopIteration as stop:
            result: T = stop.value
            return result

    async def _arun(self, steps: Steps[T]) -> T:
        try:
            step = next(steps)
            while True:
                if isinstance(step, Probe):
                    alive = await asyncio.to_thread(live_processes, step.processes)
                    step = steps.send(alive)
                else:
                    step = steps.send(await self._aexec(step))
        except StopIteration as stop:
            result: T = stop.value
            return result

    # -- operations, each written once as steps ---------------------------------------------

    def _purge(self) -> Steps[int]:
        """Reconcile expired holds: released when their owner lives, settled at their worst
        case when it is gone (see :mod:`aco_langchain.spend.ledger.owners`)."""
        p = self.prefix
        rows = yield Query("find expired holds", sql.expired_holds(p), fetch="all")
        if not rows:
            return 0
        alive = yield Probe(tuple(r[5] for r in rows))
        orphans = {
            r[0]: orphan_record(r[1], r[2], r[3], r[4])
            for r in rows
            if expired_hold_fate(r[5], alive) == "settle"
        }
        row = yield Query(
            "reconcile expired holds",
            sql.reconcile(p),
            {
                "ids": [r[0] for r in rows],
                "sid": list(orphans),
                "srun": [o.run_key for o in orphans.values()],
                "strace": [o.trace_id for o in orphans.values()],
            },
            fetch="one",
        )
        n, settled = int(row[0]), int(row[1])
        if n:
            logger.info(
                "ledger %s: %d expired hold(s): %d released, %d settled at worst case "
                "(owner process gone)",
                self.url,
                n,
                n - settled,
                settled,
            )
        return n

    def _try_hold(
        self, limits: Sequence[Limit], usd: float, tokens: int, ttl_s: float, owner: str
    ) -> Steps[Hold | None]:
        p = self.prefix
        scopes = [lim.scope for lim in limits]
        hold_id = uuid.uuid4().hex
        expires_at, updated = yield Query(
            "hold",
            sql.try_hold(p),
            {
                "s": scopes,
                "lu": [lim.usd for lim in limits],
                "lt": [lim.tokens for lim in limits],
                "usd": usd,
                "tok": tokens,
                "e": MONEY_EPS,
                "id": hold_id,
                "owner": owner,
                "proc": process_identity(),
                "ttl": ttl_s,
                "n": len(limits),
            },
            fetch="one",
        )
        if expires_at is not None:
            return Hold(hold_id, tuple(scopes), usd, tokens, float(expires_at))
        if updated:
            # Some scopes fit and one did not: give back what was taken (over-counting held
            # for a moment only refuses more, it never lets more through).
            yield Query("undo a partial hold", sql.undo_hold(p), (usd, tokens, list(updated)))
        return None

    def _usage_of(self, scope: str) -> Steps[ScopeUsage]:
        row = yield Query("read", sql.scope_usage(self.prefix), (scope,), fetch="one")
        return _usage(scope, row)

    def _hold(
        self, limits: Sequence[Limit], usd: float, tokens: int, ttl_s: float, owner: str
    ) -> Steps[Hold | Refusal]:
        if usd < 0 or tokens < 0:
            raise ValueError(f"a hold must be >= 0, got ${usd} and {tokens} tokens")
        limits = sorted(limits, key=lambda lim: lim.scope)
        # One round trip: the statement also creates the budget rows of new scopes.
        got = yield from self._try_hold(limits, usd, tokens, ttl_s, owner)
        if got is None:
            # Another call may have created a row meanwhile (invisible to the statement),
            # and expired holds may free room: reconcile, then once more.
            yield from self._purge()
            got = yield from self._try_hold(limits, usd, tokens, ttl_s, owner)
        if got is not None:
            return got
        for lim in limits:
            usage = yield from self._usage_of(lim.scope)
            refusal = refusal_for(usage, lim, usd, tokens)
            if refusal is not None:
                return refusal
        # Concurrent calls freed room since the refusal: report the first scope as it is now.
        first = limits[0]
        usage = yield from self._usage_of(first.scope)
        forced = refusal_for(usage, first, usd, tokens, force=True)
        assert forced is not None  # noqa: S101 - force always refuses
        return forced

    def _settle(self, hold: Hold, record: SpendRecord, block: str | None) -> Steps[float]:
        if record.cost_usd < 0:
            raise ValueError(f"spend must be >= 0, got {record.cost_usd}")
        run_scope = f"run:{record.run_key}"
        params = {
            **record_args(record),
            "id": hold.id,
            "tok": record.input_tokens + record.output_tokens,
            "block": block,
            "scopes": list(hold.scopes),
            "run_scope": run_scope,
        }
        row = yield Query("settle", sql.settle(self.prefix), params, fetch="one")
        if row is not None and row[0] is not None:
            return float(row[0])
        # The hold does not count against the record's run: read the run as it is.
        return (yield from self._spent(record.run_key))

    def _release(self, hold: Hold) -> Steps[None]:
        params = {"id": hold.id, "scopes": list(hold.scopes)}
        yield Query("release", sql.release(self.prefix), params)

    def _spent(self, run_key: str) -> Steps[float]:
        usage = yield from self._usage_of(f"run:{run_key}")
        return usage.spent_usd

    def _usage_now(self, scope: str) -> Steps[ScopeUsage]:
        yield from self._purge()
        return (yield from self._usage_of(scope))

    # -- the public surface: sync and async over the same steps -----------------------------

    def hold(
        self,
        limits: Sequence[Limit],
        usd: float,
        tokens: int = 0,
        *,
        ttl_s: float = 300.0,
        owner: str = "",
    ) -> Hold | Refusal:
        return self._run(self._hold(limits, usd, tokens, ttl_s, owner))

    async def ahold(
        self,
        limits: Sequence[Limit],
        usd: float,
        tokens: int = 0,
        *,
        ttl_s: float = 300.0,
        owner: str = "",
    ) -> Hold | Refusal:
        return await release_if_cancelled(
            self._arun(self._hold(limits, usd, tokens, ttl_s, owner)), self.arelease
        )

    def settle(self, hold: Hold, record: SpendRecord, *, block: str | None = None) -> float:
        return self._run(self._settle(hold, record, block))

    async def asettle(self, hold: Hold, record: SpendRecord, *, block: str | None = None) -> float:
        return await self._arun(self._settle(hold, record, block))

    def release(self, hold: Hold) -> None:
        self._run(self._release(hold))

    async def arelease(self, hold: Hold) -> None:
        await self._arun(self._release(hold))

    def spent(self, run_key: str) -> float:
        return self._run(self._spent(run_key))

    async def aspent(self, run_key: str) -> float:
        return await self._arun(self._spent(run_key))

    def usage(self, scope: str) -> ScopeUsage:
        return self._run(self._usage_now(scope))

    async def ausage(self, scope: str) -> ScopeUsage:
        return await self._arun(self._usage_now(scope))

    # -- reading and housekeeping (synchronous only: CLI, dashboard, tests) ------------------

    def add(self, run_key: str, usd: float) -> float:
        if usd < 0:
            raise ValueError(f"spend must be >= 0, got {usd}")
        rec = SpendRecord(run_key=run_key, cost_usd=usd, outcome="recorded")
        params = {"scope": f"run:{run_key}", **record_args(rec)}
        row = self._exec(Query("record spend", sql.add(self.prefix), params, fetch="one"))
        return float(row[0])

    def records(
        self,
        *,
        run: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[SpendRecord]:
        text = f"SELECT {ROW_COLUMNS} FROM {self.prefix}spend WHERE true"
        args: list[Any] = []
        for cond, value in (("run_key = %s", run), ("ts >= %s", since), ("ts < %s", until)):
            if value is not None:
                text += f" AND {cond}"
                args.append(value)
        rows = self._exec(Query("read", text + " ORDER BY id", args, fetch="all"))
        return [record_from_row(r) for r in rows]

    def prune(self, before: float) -> PruneReport:
        p = self.prefix
        reconciled = self._run(self._purge())
        rows = self._exec(Query("find prunable budgets", sql.prune_candidates(p), (before,), "all"))
        done = [scope for scope, touched in rows if scope_finished(scope, touched, before)]
        n = self._exec(Query("prune budgets", sql.prune(p), (done, before))) if done else 0
        logger.info("ledger %s: pruned %d settled budget row(s) before %s", self.url, n, before)
        return PruneReport(before=before, budgets_deleted=int(n), holds_reconciled=reconciled)

    def reset(self, run_key: str | None = None) -> None:
        p = self.prefix
        if run_key is None:
            self._exec(Query("reset", f"TRUNCATE {p}budgets, {p}holds, {p}spend"))
            return
        scope = f"run:{run_key}"
        self._exec(Query("reset", f"DELETE FROM {p}budgets WHERE scope = %s", (scope,)))
        self._exec(Query("reset", f"DELETE FROM {p}holds WHERE %s = ANY(scopes)", (scope,)))
        self._exec(Query("reset", f"DELETE FROM {p}spend WHERE run_key = %s", (run_key,)))

    async def aclose(self) -> None:
        """Close the running event loop's async pool (``close`` closes the others it can)."""
        pool = self._apools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.close()

    def close(self) -> None:
        with self._lock:
            if self._pool is not None and self._pid == os.getpid():
                self._pool.close()
            self._pool = None
        apools, self._apools = list(self._apools.items()), weakref.WeakKeyDictionary()
        for loop, pool in apools:
            # A live loop closes its pool itself (the pool's tasks belong to it); a closed
            # loop's pool is dead already: dropping it lets its sockets be collected.
            if not loop.is_closed():
                loop.call_soon_threadsafe(_close_later, pool)


#: Async pool closes scheduled by ``close`` (kept so they are not collected mid-way).
_CLOSING: set[asyncio.Task[None]] = set()


def _close_later(pool: Any) -> None:
    task = asyncio.ensure_future(pool.close())
    _CLOSING.add(task)
    task.add_done_callback(_CLOSING.discard)


__all__ = ["MIGRATIONS", "PostgresLedger", "Probe", "Query", "mask_url"]
