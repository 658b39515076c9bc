"""SQLite ledger (``sqlite:///path``): the embedded default, one file shared by the processes
of one host (WAL mode; a hold is one ``BEGIN IMMEDIATE`` transaction).

The async methods (``ahold``, ``asettle``, ...) run the very same transactions on the
ledger's own worker threads (each with its connection), so a ``BEGIN IMMEDIATE`` waiting on
another process's write lock (up to the 30 s busy timeout) never blocks an event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from aco_langchain.errors import LedgerError
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
from aco_langchain.spend.ledger.rows import ROW_COLUMNS, record_from_row, record_params

logger = logging.getLogger(__name__)

#: Schema migrations, applied in order; the index + 1 is the schema version.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE budgets (
        scope TEXT PRIMARY KEY,
        spent_usd REAL NOT NULL DEFAULT 0,
        held_usd REAL NOT NULL DEFAULT 0,
        spent_tokens INTEGER NOT NULL DEFAULT 0,
        held_tokens INTEGER NOT NULL DEFAULT 0,
        blocked TEXT
    );
    CREATE TABLE holds (
        id TEXT PRIMARY KEY,
        scopes TEXT NOT NULL,
        usd REAL NOT NULL,
        tokens INTEGER NOT NULL,
        owner TEXT NOT NULL DEFAULT '',
        expires_at REAL NOT NULL
    );
    CREATE INDEX holds_expires_at ON holds (expires_at);
    CREATE TABLE spend (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts REAL NOT NULL,
        run_key TEXT NOT NULL,
        trace_id TEXT,
        tier INTEGER,
        model TEXT NOT NULL DEFAULT '',
        provider TEXT NOT NULL DEFAULT '',
        input_tokens INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        cost_usd REAL NOT NULL,
        latency_ms REAL NOT NULL DEFAULT 0,
        outcome TEXT NOT NULL DEFAULT 'ok',
        baseline_usd REAL NOT NULL DEFAULT 0,
        user_id TEXT,
        api_key TEXT,
        tags TEXT NOT NULL DEFAULT '[]'
    );
    CREATE INDEX spend_run_key ON spend (run_key);
    CREATE INDEX spend_ts ON spend (ts);
    """,
    # 2: the process that took a hold (reconciling dead owners), and when a budget row was
    # last held or settled on (compacting finished runs; existing rows count as touched now).
    """
    ALTER TABLE holds ADD COLUMN process TEXT NOT NULL DEFAULT '';
    ALTER TABLE budgets ADD COLUMN touched_at REAL NOT NULL DEFAULT 0;
    UPDATE budgets SET touched_at = (julianday('now') - 2440587.5) * 86400.0;
    """,
)

T = TypeVar("T")

#: Worker threads per ledger for the async methods (writers serialise on the file's lock
#: anyway; more threads only help concurrent readers).
ASYNC_THREADS = 4

_HOLD_SQL = (
    "UPDATE budgets SET held_usd = held_usd + ?, held_tokens = held_tokens + ?, touched_at = ? "
    "WHERE scope = ? AND (blocked IS NULL OR ? <= 0) "
    "AND (? IS NULL OR ? <= 0 OR spent_usd + held_usd + ? <= ? + ?) "
    "AND (? IS NULL OR spent_tokens + held_tokens + ? <= ?)"
)


class SQLiteLedger(RecordsSummaryMixin):
    """A ledger in one SQLite file; safe across threads and processes of one host.

    Each thread has its own connection (opened on first use, reopened after ``fork``).
    The file and its parent directory are created on first use.

    Example:
        ```python
        from aco_langchain.spend.ledger import Limit, SQLiteLedger, SpendRecord

        ledger = SQLiteLedger("/tmp/aco-ledger.db")
        got = ledger.hold([Limit("run:r1", usd=0.5)], usd=0.2, ttl_s=60)
        ledger.settle(got, SpendRecord(run_key="r1", cost_usd=0.03, tier=2))
        ledger.summary(run="r1").total_usd   # 0.03
        # async code: the same transactions on the ledger's worker threads
        got = await ledger.ahold([Limit("run:r1", usd=0.5)], usd=0.2, ttl_s=60)
        await ledger.asettle(got, SpendRecord(run_key="r1", cost_usd=0.03, tier=2))
        ```

    Raises:
        LedgerError: the file cannot be created, opened or written (names the URL and fix).
    """

    def __init__(self, path: str | os.PathLike[str], *, url: str | None = None) -> None:
        self.path = Path(path).expanduser()
        self.url = url or f"sqlite:///{self.path}"
        self._local = threading.local()
        self._conns: list[tuple[int, sqlite3.Connection]] = []
        self._conns_lock = threading.Lock()
        self._executor: tuple[int, ThreadPoolExecutor] | None = None
        process_identity()  # read /proc once here, not later on an event loop
        self._create()

    # -- connections and schema ------------------------------------------------------------

    def _fail(self, what: str, err: BaseException) -> LedgerError:
        return LedgerError(
            f"ledger {self.url}: {what} ({err}); fix: point ledger.url / ACO_LEDGER_URL at a "
            "writable file, e.g. sqlite:////tmp/aco-ledger.db"
        )

    def _create(self) -> None:
        existed = self.path.exists()
        created_dirs: list[Path] = []
        parent = self.path.parent
        while not parent.exists():
            created_dirs.append(parent)
            parent = parent.parent
        try:
            for d in reversed(created_dirs):
                d.mkdir()
            conn = self._conn()
            self._migrate(conn)
        except (OSError, sqlite3.Error) as err:
            self.close()
            if not existed:
                for suffix in ("", "-wal", "-shm", "-journal"):
                    # contextlib.suppress: under a path that is not a directory
                    # (/etc/passwd/x.db) unlink raises NotADirectoryError, not "missing".
                    with contextlib.suppress(OSError):
                        Path(f"{self.path}{suffix}").unlink(missing_ok=True)
                for d in created_dirs:
                    try:
                        d.rmdir()
                    except OSError:
                        break
            raise self._fail("cannot create or open the ledger", err) from err

    def _conn(self) -> sqlite3.Connection:
        local = self._local
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is not None and local.pid == os.getpid():
            return conn
        conn = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
        except sqlite3.Error:
            conn.close()
            raise
        local.conn, local.pid = conn, os.getpid()
        with self._conns_lock:
            self._conns.append((os.getpid(), conn))
        return conn

    async def _in_thread(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` (a synchronous method) on the ledger's worker threads."""
        pid = os.getpid()
        if self._executor is None or self._executor[0] != pid:
            with self._conns_lock:
                if self._executor is None or self._executor[0] != pid:
                    # After fork the parent's threads are gone: start this process's own.
                    pool = ThreadPoolExecutor(ASYNC_THREADS, thread_name_prefix="aco-ledger")
                    self._executor = (pid, pool)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor[1], functools.partial(fn, *args, **kwargs))

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
            current = int(row[0] or 0)
            if current > len(MIGRATIONS):
                raise LedgerError(
                    f"ledger {self.url} has schema version {current}, newer than this "
                    f"aco-langchain knows ({len(MIGRATIONS)}): upgrade aco-langchain"
                )
            for version in range(current + 1, len(MIGRATIONS) + 1):
                for stmt in MIGRATIONS[version - 1].split(";"):
                    if stmt.strip():
                        conn.execute(stmt)
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
                logger.info("ledger %s: schema migrated to version %d", self.url, version)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _run(self, what: str, fn: Any) -> Any:
        try:
            return fn(self._conn())
        except sqlite3.Error as err:
            raise self._fail(what, err) from err

    # -- holds -----------------------------------------------------------------------------

    def _scope_usage(self, conn: sqlite3.Connection, scope: str) -> ScopeUsage:
        row = conn.execute(
            "SELECT spent_usd, held_usd, spent_tokens, held_tokens, blocked FROM budgets "
            "WHERE scope = ?",
            (scope,),
        ).fetchone()
        if row is None:
            return ScopeUsage(scope)
        return ScopeUsage(scope, float(row[0]), float(row[1]), int(row[2]), int(row[3]), row[4])

    def _purge(self, conn: sqlite3.Connection, now: float) -> int:
        """Reconcile expired holds (inside the caller's transaction): released when their
        owner lives, settled at their worst case when it is gone (see ``owners``)."""
        rows = conn.execute(
            "DELETE FROM holds WHERE expires_at <= ? RETURNING scopes, usd, tokens, owner, process",
            (now,),
        ).fetchall()
        if not rows:
            return 0
        alive = live_processes(r[4] for r in rows)
        settled = 0
        for scopes_json, usd, tokens, owner, process in rows:
            scopes = json.loads(scopes_json)
            orphan = (
                orphan_record(scopes, usd, tokens, owner)
                if expired_hold_fate(process, alive) == "settle"
                else None
            )
            spent, spent_tok = (usd, tokens) if orphan else (0.0, 0)
            for s in scopes:
                conn.execute(
                    "UPDATE budgets SET held_usd = max(0, held_usd - ?), "
                    "held_tokens = max(0, held_tokens - ?), spent_usd = spent_usd + ?, "
                    "spent_tokens = spent_tokens + ?, touched_at = ? WHERE scope = ?",
                    (usd, tokens, spent, spent_tok, now, s),
                )
            if orphan:
                settled += 1
                conn.execute(
                    f"INSERT INTO spend ({ROW_COLUMNS}) VALUES ({', '.join('?' * 15)})",
                    record_params(orphan),
                )
        logger.info(
            "ledger %s: %d expired hold(s): %d released, %d settled at worst case "
            "(owner process gone)",
            self.url,
            len(rows),
            len(rows) - settled,
            settled,
        )
        return len(rows)

    def _try_hold(
        self,
        conn: sqlite3.Connection,
        limits: Sequence[Limit],
        usd: float,
        tokens: int,
        now: float,
    ) -> Refusal | None:
        for lim in limits:
            conn.execute("INSERT OR IGNORE INTO budgets (scope) VALUES (?)", (lim.scope,))
            cur = conn.execute(
                _HOLD_SQL,
                (
                    usd,
                    tokens,
                    now,
                    lim.scope,
                    usd,
                    lim.usd,
                    usd,
                    usd,
                    lim.usd,
                    MONEY_EPS,
                    lim.tokens,
                    tokens,
                    lim.tokens,
                ),
            )
            if cur.rowcount != 1:
                usage = self._scope_usage(conn, lim.scope)
                return refusal_for(usage, lim, usd, tokens, force=True)
        return None

    def hold(
        self,
        limits: Sequence[Limit],
        usd: float,
        tokens: int = 0,
        *,
        ttl_s: float = 300.0,
        owner: str = "",
    ) -> Hold | Refusal:
        if usd < 0 or tokens < 0:
            raise ValueError(f"a hold must be >= 0, got ${usd} and {tokens} tokens")
        limits = sorted(limits, key=lambda lim: lim.scope)

        def tx(conn: sqlite3.Connection) -> Hold | Refusal:
            now = time.time()
            for attempt in range(2):
                conn.execute("BEGIN IMMEDIATE")
                try:
                    refusal = self._try_hold(conn, limits, usd, tokens, now)
                    if refusal is not None:
                        conn.execute("ROLLBACK")
                        conn.execute("BEGIN IMMEDIATE")
                        purged = self._purge(conn, now)
                        conn.execute("COMMIT")
                        if attempt or not purged:
                            return refusal
                        continue
                    scopes = tuple(lim.scope for lim in limits)
                    h = Hold(uuid.uuid4().hex, scopes, usd, tokens, now + ttl_s)
                    conn.execute(
                        "INSERT INTO holds (id, scopes, usd, tokens, owner, process, expires_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (
                            h.id,
                            json.dumps(h.scopes),
                            usd,
                            tokens,
                            owner,
                            process_identity(),
                            h.expires_at,
                        ),
                    )
                    conn.execute("COMMIT")
                    return h
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            raise AssertionError("unreachable")  # pragma: no cover

        result: Hold | Refusal = self._run("cannot hold", tx)
        return result

    def settle(self, hold: Hold, record: SpendRecord, *, block: str | None = None) -> float:
        if record.cost_usd < 0:
            raise ValueError(f"spend must be >= 0, got {record.cost_usd}")
        tok = record.input_tokens + record.output_tokens

        def tx(conn: sqlite3.Connection) -> float:
            conn.execute("BEGIN IMMEDIATE")
            try:
                live = conn.execute("DELETE FROM holds WHERE id = ?", (hold.id,)).rowcount == 1
                h_usd, h_tok = (hold.usd, hold.tokens) if live else (0.0, 0)
                for s in hold.scopes:
                    conn.execute(
                        "UPDATE budgets SET spent_usd = spent_usd + ?, "
                        "spent_tokens = spent_tokens + ?, held_usd = max(0, held_usd - ?), "
                        "held_tokens = max(0, held_tokens - ?), blocked = coalesce(blocked, ?), "
                        "touched_at = ? WHERE scope = ?",
                        (record.cost_usd, tok, h_usd, h_tok, block, time.time(), s),
                    )
                conn.execute(
                    f"INSERT INTO spend ({ROW_COLUMNS}) VALUES ({', '.join('?' * 15)})",
                    record_params(record),
                )
                # The run's total as this transaction leaves it (no second read after).
                spent = self._scope_usage(conn, f"run:{record.run_key}").spent_usd
                conn.execute("COMMIT")
                return spent
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

        spent: float = self._run("cannot settle", tx)
        return spent

    def release(self, hold: Hold) -> None:
        def tx(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if conn.execute("DELETE FROM holds WHERE id = ?", (hold.id,)).rowcount == 1:
                    for s in hold.scopes:
                        conn.execute(
                            "UPDATE budgets SET held_usd = max(0, held_usd - ?), "
                            "held_tokens = max(0, held_tokens - ?) WHERE scope = ?",
                            (hold.usd, hold.tokens, s),
                        )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

        self._run("cannot release", tx)

    # -- reading and housekeeping ---------------------------------------------------------

    def add(self, run_key: str, usd: float) -> float:
        if usd < 0:
            raise ValueError(f"spend must be >= 0, got {usd}")

        def tx(conn: sqlite3.Connection) -> float:
            scope = f"run:{run_key}"
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("INSERT OR IGNORE INTO budgets (scope) VALUES (?)", (scope,))
                conn.execute(
                    "UPDATE budgets SET spent_usd = spent_usd + ?, touched_at = ? WHERE scope = ?",
                    (usd, time.time(), scope),
                )
                conn.execute(
                    f"INSERT INTO spend ({ROW_COLUMNS}) VALUES ({', '.join('?' * 15)})",
                    record_params(SpendRecord(run_key=run_key, cost_usd=usd, outcome="recorded")),
                )
                total = self._scope_usage(conn, scope).spent_usd
                conn.execute("COMMIT")
                return total
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

        total: float = self._run("cannot record spend", tx)
        return total

    def spent(self, run_key: str) -> float:
        usage: ScopeUsage = self._run(
            "cannot read", lambda c: self._scope_usage(c, f"run:{run_key}")
        )
        return usage.spent_usd

    def usage(self, scope: str) -> ScopeUsage:
        def tx(conn: sqlite3.Connection) -> ScopeUsage:
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._purge(conn, time.time())
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return self._scope_usage(conn, scope)

        result: ScopeUsage = self._run("cannot read", tx)
        return result

    def records(
        self,
        *,
        run: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[SpendRecord]:
        sql = f"SELECT {ROW_COLUMNS} FROM spend WHERE 1=1"
        args: list[Any] = []
        for cond, value in (("run_key = ?", run), ("ts >= ?", since), ("ts < ?", until)):
            if value is not None:
                sql += f" AND {cond}"
                args.append(value)
        rows = self._run("cannot read", lambda c: c.execute(sql + " ORDER BY id", args).fetchall())
        return [record_from_row(r) for r in rows]

    def reset(self, run_key: str | None = None) -> None:
        def tx(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if run_key is None:
                    for table in ("budgets", "holds", "spend"):
                        conn.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed names
                else:
                    scope = f"run:{run_key}"
                    conn.execute("DELETE FROM budgets WHERE scope = ?", (scope,))
                    conn.execute(
                        "DELETE FROM holds WHERE EXISTS "
                        "(SELECT 1 FROM json_each(holds.scopes) WHERE value = ?)",
                        (scope,),
                    )
                    conn.execute("DELETE FROM spend WHERE run_key = ?", (run_key,))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

        self._run("cannot reset", tx)

    def prune(self, before: float) -> PruneReport:
        def tx(conn: sqlite3.Connection) -> PruneReport:
            conn.execute("BEGIN IMMEDIATE")
            try:
                reconciled = self._purge(conn, time.time())
                rows = conn.execute(
                    "SELECT scope, touched_at FROM budgets WHERE held_usd = 0 "
                    "AND held_tokens = 0 AND (touched_at < ? OR scope NOT LIKE 'run:%')",
                    (before,),
                ).fetchall()
                done = [(s,) for s, touched in rows if scope_finished(s, touched, before)]
                conn.executemany("DELETE FROM budgets WHERE scope = ?", done)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            logger.info("ledger %s: pruned %d settled budget row(s)", self.url, len(done))
            return PruneReport(before, len(done), reconciled)

        report: PruneReport = self._run("cannot prune", tx)
        return report

    # -- async: the same transactions on worker threads ------------------------------------

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
            self._in_thread(self.hold, limits, usd, tokens, ttl_s=ttl_s, owner=owner),
            self.arelease,
        )

    async def asettle(self, hold: Hold, record: SpendRecord, *, block: str | None = None) -> float:
        return await self._in_thread(self.settle, hold, record, block=block)

    async def arelease(self, hold: Hold) -> None:
        await self._in_thread(self.release, hold)

    async def aspent(self, run_key: str) -> float:
        return await self._in_thread(self.spent, run_key)

    async def ausage(self, scope: str) -> ScopeUsage:
        return await self._in_thread(self.usage, scope)

    def close(self) -> None:
        if self._executor is not None and self._executor[0] == os.getpid():
            self._executor[1].shutdown(wait=True)
        self._executor = None
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for pid, conn in conns:
            if pid == os.getpid():  # a parent's connection is not ours to close after fork
                conn.close()
        self._local = threading.local()


__all__ = ["MIGRATIONS", "SQLiteLedger", "record_from_row", "record_params"]
