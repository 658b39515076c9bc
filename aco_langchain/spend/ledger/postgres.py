"""PostgreSQL ledger (``postgresql://...``): one budget for many processes and hosts.

psycopg 3 with a connection pool; every hold and every settle is ONE statement (the
conditional ``UPDATE ... WHERE spent + held + x <= limit`` takes the row lock, so concurrent
holds on one scope serialise in the database, never in a read-then-write).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import uuid
from collections.abc import Sequence
from typing import Any

from aco_langchain.errors import LedgerError
from aco_langchain.spend.ledger.base import (
    MONEY_EPS,
    Hold,
    Limit,
    RecordsSummaryMixin,
    Refusal,
    ScopeUsage,
    SpendRecord,
    refusal_for,
)
from aco_langchain.spend.ledger.sqlite import _ROW_COLUMNS, record_from_row

logger = logging.getLogger(__name__)

_PREFIX_RE = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")

#: Schema migrations (``{p}`` is the table prefix); the index + 1 is the schema version.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE {p}budgets (
        scope TEXT PRIMARY KEY,
        spent_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
        held_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
        spent_tokens BIGINT NOT NULL DEFAULT 0,
        held_tokens BIGINT NOT NULL DEFAULT 0,
        blocked TEXT
    );
    CREATE TABLE {p}holds (
        id TEXT PRIMARY KEY,
        scopes TEXT[] NOT NULL,
        usd DOUBLE PRECISION NOT NULL,
        tokens BIGINT NOT NULL,
        owner TEXT NOT NULL DEFAULT '',
        expires_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX {p}holds_expires_at ON {p}holds (expires_at);
    CREATE TABLE {p}spend (
        id BIGSERIAL PRIMARY KEY,
        ts DOUBLE PRECISION NOT NULL,
        run_key TEXT NOT NULL,
        trace_id TEXT,
        tier INTEGER,
        model TEXT NOT NULL DEFAULT '',
        provider TEXT NOT NULL DEFAULT '',
        input_tokens BIGINT NOT NULL DEFAULT 0,
        output_tokens BIGINT NOT NULL DEFAULT 0,
        cost_usd DOUBLE PRECISION NOT NULL,
        latency_ms DOUBLE PRECISION NOT NULL DEFAULT 0,
        outcome TEXT NOT NULL DEFAULT 'ok',
        baseline_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
        user_id TEXT,
        api_key TEXT,
        tags TEXT[] NOT NULL DEFAULT '{{}}'
    );
    CREATE INDEX {p}spend_run_key ON {p}spend (run_key);
    CREATE INDEX {p}spend_ts ON {p}spend (ts);
    """,
)

_NOW = "extract(epoch from clock_timestamp())"


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (safe to print)."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


class PostgresLedger(RecordsSummaryMixin):
    """A ledger in PostgreSQL tables ``<prefix>budgets``, ``holds``, ``spend``.

    Example:
        ```python
        from aco_langchain.spend.ledger import Limit, PostgresLedger, SpendRecord

        ledger = PostgresLedger("postgresql://postgres@127.0.0.1:5432/test")
        got = ledger.hold([Limit("run:r1", usd=0.5)], usd=0.2, ttl_s=60)
        ledger.settle(got, SpendRecord(run_key="r1", cost_usd=0.03, tier=2))
        ```

    Args:
        dsn: a libpq connection string / URL.
        table_prefix: prefix of the table names (default ``aco_``; tests use unique ones).
        pool_size: most connections this process keeps open.
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
        #: Scopes whose budget row this process created or saw (a new run's first hold
        #: creates its row first, instead of failing once and retrying).
        self._known: set[str] = set()
        try:
            import psycopg  # noqa: F401
            import psycopg_pool  # noqa: F401
        except ImportError as err:
            raise LedgerError(
                f"ledger {self.url}: PostgreSQL needs psycopg 3 and psycopg-pool: "
                "pip install 'aco-langchain[postgres]'"
            ) from err
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

    def _get_pool(self) -> Any:
        if self._pool is not None and self._pid == os.getpid():
            return self._pool
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                from psycopg_pool import ConnectionPool

                # After fork the parent's sockets are not ours: open a fresh pool.
                self._pool = ConnectionPool(
                    self.dsn,
                    min_size=1,
                    max_size=self.pool_size,
                    kwargs={"autocommit": True, **self._session_options()},
                    open=True,
                    name="aco-ledger",
                )
                self._pid = os.getpid()
        return self._pool

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

    def _exec(self, what: str, sql: str, params: Any = None, *, fetch: str = "none") -> Any:
        import psycopg

        for attempt in range(3):
            try:
                with self._get_pool().connection() as conn:
                    cur = conn.execute(sql, params)
                    if fetch == "one":
                        return cur.fetchone()
                    if fetch == "all":
                        return cur.fetchall()
                    return cur.rowcount
            except psycopg.errors.DeadlockDetected:
                # Multi-scope holds may lock budget rows in different orders: retry.
                logger.warning("ledger %s: deadlock on %s, retrying", self.url, what)
                if attempt == 2:
                    raise
            except psycopg.Error as err:
                raise self._fail(f"cannot {what}", err) from err
        raise AssertionError("unreachable")  # pragma: no cover

    # -- holds -----------------------------------------------------------------------------

    def _ensure_scopes(self, scopes: Sequence[str]) -> None:
        self._exec(
            "create budgets",
            f"INSERT INTO {self.prefix}budgets (scope) SELECT unnest(%s::text[]) "
            "ON CONFLICT DO NOTHING",
            (list(scopes),),
        )

    def _purge(self) -> int:
        p = self.prefix
        n: int = self._exec(
            "release expired holds",
            f"WITH d AS (DELETE FROM {p}holds WHERE expires_at <= {_NOW} "
            "RETURNING scopes, usd, tokens), "
            "agg AS (SELECT s.scope, sum(d.usd) AS u, sum(d.tokens) AS t "
            "FROM d, unnest(d.scopes) AS s(scope) GROUP BY s.scope) "
            f"UPDATE {p}budgets b SET held_usd = greatest(0, b.held_usd - agg.u), "
            "held_tokens = greatest(0, b.held_tokens - agg.t) FROM agg WHERE b.scope = agg.scope",
        )
        if n:
            logger.info("ledger %s: released expired holds on %d budget(s)", self.url, n)
        return n

    def _try_hold(
        self, limits: Sequence[Limit], usd: float, tokens: int, ttl_s: float, owner: str
    ) -> Hold | None:
        p = self.prefix
        scopes = [lim.scope for lim in limits]
        hold_id = uuid.uuid4().hex
        row = self._exec(
            "hold",
            "WITH lim AS (SELECT * FROM unnest(%(s)s::text[], %(lu)s::float8[], %(lt)s::int8[]) "
            "AS l(scope, lim_usd, lim_tok)), "
            f"upd AS (UPDATE {p}budgets b SET held_usd = b.held_usd + %(usd)s, "
            "held_tokens = b.held_tokens + %(tok)s FROM lim WHERE b.scope = lim.scope "
            "AND (b.blocked IS NULL OR %(usd)s <= 0) "
            "AND (lim.lim_usd IS NULL OR %(usd)s <= 0 "
            "OR b.spent_usd + b.held_usd + %(usd)s <= lim.lim_usd + %(e)s) "
            "AND (lim.lim_tok IS NULL OR b.spent_tokens + b.held_tokens + %(tok)s <= lim.lim_tok) "
            "RETURNING b.scope), "
            f"ins AS (INSERT INTO {p}holds (id, scopes, usd, tokens, owner, expires_at) "
            f"SELECT %(id)s, %(s)s::text[], %(usd)s, %(tok)s, %(owner)s, {_NOW} + %(ttl)s "
            "WHERE (SELECT count(*) FROM upd) = %(n)s RETURNING expires_at) "
            "SELECT (SELECT expires_at FROM ins), (SELECT array_agg(scope) FROM upd)",
            {
                "s": scopes,
                "lu": [lim.usd for lim in limits],
                "lt": [lim.tokens for lim in limits],
                "usd": usd,
                "tok": tokens,
                "e": MONEY_EPS,
                "id": hold_id,
                "owner": owner,
                "ttl": ttl_s,
                "n": len(limits),
            },
            fetch="one",
        )
        expires_at, updated = row
        if expires_at is not None:
            return Hold(hold_id, tuple(scopes), usd, tokens, float(expires_at))
        if updated:
            # Some scopes fit and one did not: give back what was taken (over-counting held
            # for a moment only refuses more, it never lets more through).
            self._exec(
                "undo a partial hold",
                f"UPDATE {p}budgets SET held_usd = greatest(0, held_usd - %s), "
                "held_tokens = greatest(0, held_tokens - %s) WHERE scope = ANY(%s::text[])",
                (usd, tokens, list(updated)),
            )
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
        new = [lim.scope for lim in limits if lim.scope not in self._known]
        if new:
            self._ensure_scopes(new)
            if len(self._known) > 100_000:
                self._known.clear()
            self._known.update(new)
        got = self._try_hold(limits, usd, tokens, ttl_s, owner)
        if got is None:
            # A budget row may have been reset meanwhile, and expired holds may free room:
            # recreate, release, then once more.
            self._ensure_scopes([lim.scope for lim in limits])
            self._purge()
            got = self._try_hold(limits, usd, tokens, ttl_s, owner)
        if got is not None:
            return got
        for lim in limits:
            refusal = refusal_for(self._scope_usage(lim.scope), lim, usd, tokens)
            if refusal is not None:
                return refusal
        # Concurrent calls freed room since the refusal: report the first scope as it is now.
        first = limits[0]
        forced = refusal_for(self._scope_usage(first.scope), first, usd, tokens, force=True)
        assert forced is not None  # noqa: S101 - force always refuses
        return forced

    def settle(self, hold: Hold, record: SpendRecord, *, block: str | None = None) -> None:
        if record.cost_usd < 0:
            raise ValueError(f"spend must be >= 0, got {record.cost_usd}")
        p = self.prefix
        self._exec(
            "settle",
            f"WITH h AS (DELETE FROM {p}holds WHERE id = %(id)s RETURNING usd, tokens), "
            f"b AS (UPDATE {p}budgets SET spent_usd = spent_usd + %(cost)s, "
            "spent_tokens = spent_tokens + %(tok)s, "
            "held_usd = greatest(0, held_usd - coalesce((SELECT usd FROM h), 0)), "
            "held_tokens = greatest(0, held_tokens - coalesce((SELECT tokens FROM h), 0)), "
            "blocked = coalesce(blocked, %(block)s) WHERE scope = ANY(%(scopes)s::text[]) "
            "RETURNING 1) "
            f"INSERT INTO {p}spend ({_ROW_COLUMNS}) VALUES (%(ts)s, %(run)s, %(trace)s, "
            "%(tier)s, %(model)s, %(provider)s, %(in)s, %(out)s, %(cost)s, %(lat)s, %(outcome)s, "
            "%(base)s, %(user)s, %(key)s, %(tags)s::text[])",
            {
                "id": hold.id,
                "cost": record.cost_usd,
                "tok": record.input_tokens + record.output_tokens,
                "block": block,
                "scopes": list(hold.scopes),
                **_record_args(record),
            },
        )

    def release(self, hold: Hold) -> None:
        p = self.prefix
        self._exec(
            "release",
            f"WITH h AS (DELETE FROM {p}holds WHERE id = %(id)s RETURNING usd, tokens) "
            f"UPDATE {p}budgets SET held_usd = greatest(0, held_usd - h.usd), "
            "held_tokens = greatest(0, held_tokens - h.tokens) FROM h "
            "WHERE scope = ANY(%(scopes)s::text[])",
            {"id": hold.id, "scopes": list(hold.scopes)},
        )

    # -- reading and housekeeping ---------------------------------------------------------

    def _scope_usage(self, scope: str) -> ScopeUsage:
        row = self._exec(
            "read",
            "SELECT spent_usd, held_usd, spent_tokens, held_tokens, blocked "
            f"FROM {self.prefix}budgets WHERE scope = %s",
            (scope,),
            fetch="one",
        )
        if row is None:
            return ScopeUsage(scope)
        return ScopeUsage(scope, float(row[0]), float(row[1]), int(row[2]), int(row[3]), row[4])

    def add(self, run_key: str, usd: float) -> float:
        if usd < 0:
            raise ValueError(f"spend must be >= 0, got {usd}")
        p = self.prefix
        scope = f"run:{run_key}"
        row = self._exec(
            "record spend",
            f"WITH b AS (INSERT INTO {p}budgets (scope, spent_usd) VALUES (%(scope)s, %(cost)s) "
            f"ON CONFLICT (scope) DO UPDATE SET spent_usd = {p}budgets.spent_usd + %(cost)s "
            "RETURNING spent_usd), "
            f"r AS (INSERT INTO {p}spend ({_ROW_COLUMNS}) VALUES (%(ts)s, %(run)s, %(trace)s, "
            "%(tier)s, %(model)s, %(provider)s, %(in)s, %(out)s, %(cost)s, %(lat)s, "
            "%(outcome)s, %(base)s, %(user)s, %(key)s, %(tags)s::text[])) "
            "SELECT spent_usd FROM b",
            {
                "scope": scope,
                **_record_args(SpendRecord(run_key=run_key, cost_usd=usd, outcome="recorded")),
            },
            fetch="one",
        )
        return float(row[0])

    def spent(self, run_key: str) -> float:
        return self._scope_usage(f"run:{run_key}").spent_usd

    def usage(self, scope: str) -> ScopeUsage:
        self._purge()
        return self._scope_usage(scope)

    def records(
        self,
        *,
        run: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[SpendRecord]:
        sql = f"SELECT {_ROW_COLUMNS} FROM {self.prefix}spend WHERE true"
        args: list[Any] = []
        for cond, value in (("run_key = %s", run), ("ts >= %s", since), ("ts < %s", until)):
            if value is not None:
                sql += f" AND {cond}"
                args.append(value)
        rows = self._exec("read", sql + " ORDER BY id", args, fetch="all")
        return [record_from_row(r) for r in rows]

    def reset(self, run_key: str | None = None) -> None:
        p = self.prefix
        if run_key is None:
            self._known.clear()
            self._exec("reset", f"TRUNCATE {p}budgets, {p}holds, {p}spend")
            return
        scope = f"run:{run_key}"
        self._known.discard(scope)
        self._exec("reset", f"DELETE FROM {p}budgets WHERE scope = %s", (scope,))
        self._exec("reset", f"DELETE FROM {p}holds WHERE %s = ANY(scopes)", (scope,))
        self._exec("reset", f"DELETE FROM {p}spend WHERE run_key = %s", (run_key,))

    def drop_tables(self) -> None:
        """Drop this prefix's tables (tests clean up with it)."""
        p = self.prefix
        self._exec(
            "drop tables",
            f"DROP TABLE IF EXISTS {p}budgets, {p}holds, {p}spend, {p}schema_version",
        )

    def close(self) -> None:
        with self._lock:
            if self._pool is not None and self._pid == os.getpid():
                self._pool.close()
            self._pool = None


def _record_args(r: SpendRecord) -> dict[str, Any]:
    return {
        "ts": r.ts,
        "run": r.run_key,
        "trace": r.trace_id,
        "tier": r.tier,
        "model": r.model,
        "provider": r.provider,
        "in": r.input_tokens,
        "out": r.output_tokens,
        "cost": r.cost_usd,
        "lat": r.latency_ms,
        "outcome": r.outcome,
        "base": r.baseline_usd,
        "user": r.user,
        "key": r.api_key,
        "tags": list(r.tags),
    }


__all__ = ["MIGRATIONS", "PostgresLedger", "mask_url"]
