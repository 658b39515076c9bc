"""The PostgreSQL ledger's schema and statements (``{p}`` is the table prefix).

One statement per ledger operation; :mod:`aco_langchain.spend.ledger.postgres` runs each of
them from both its synchronous and its asynchronous methods.
"""

from __future__ import annotations

from typing import Any

from aco_langchain.spend.ledger.base import SpendRecord
from aco_langchain.spend.ledger.rows import ROW_COLUMNS

#: Schema migrations; the index + 1 is the schema version.
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
    # 2: the process that took a hold (reconciling dead owners), and when a budget row was
    # last held or settled on (compacting finished runs).
    """
    ALTER TABLE {p}holds ADD COLUMN process TEXT NOT NULL DEFAULT '';
    ALTER TABLE {p}budgets ADD COLUMN touched_at DOUBLE PRECISION NOT NULL
        DEFAULT extract(epoch from clock_timestamp());
    """,
)

NOW = "extract(epoch from clock_timestamp())"

_ROW_VALUES = (
    "%(ts)s, %(run)s, %(trace)s, %(tier)s, %(model)s, %(provider)s, %(in)s, %(out)s, "
    "%(cost)s, %(lat)s, %(outcome)s, %(base)s, %(user)s, %(key)s, %(tags)s::text[]"
)


def record_args(r: SpendRecord) -> dict[str, Any]:
    """A record as the named parameters of ``_ROW_VALUES``."""
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


def expired_holds(p: str) -> str:
    return f"SELECT id, scopes, usd, tokens, owner, process FROM {p}holds WHERE expires_at <= {NOW}"


def reconcile(p: str) -> str:
    """Delete the expired holds ``ids``; give back what they held; settle those of ``sid``
    (dead owners) at their worst case with one ``orphaned`` row each. A hold another
    process reconciled first is not in ``d`` and counts nowhere."""
    return (
        f"WITH d AS (DELETE FROM {p}holds WHERE id = ANY(%(ids)s::text[]) "
        "RETURNING id, scopes, usd, tokens), "
        "o AS (SELECT * FROM unnest(%(sid)s::text[], %(srun)s::text[], %(strace)s::text[]) "
        "AS o(id, run_key, trace_id)), "
        "agg AS (SELECT sc.scope, sum(d.usd) AS u, sum(d.tokens) AS t, "
        "sum(CASE WHEN o.id IS NULL THEN 0 ELSE d.usd END) AS su, "
        "sum(CASE WHEN o.id IS NULL THEN 0 ELSE d.tokens END) AS st "
        "FROM d LEFT JOIN o ON o.id = d.id, unnest(d.scopes) AS sc(scope) GROUP BY sc.scope), "
        f"upd AS (UPDATE {p}budgets b SET held_usd = greatest(0, b.held_usd - agg.u), "
        "held_tokens = greatest(0, b.held_tokens - agg.t), spent_usd = b.spent_usd + agg.su, "
        f"spent_tokens = b.spent_tokens + agg.st, touched_at = {NOW} "
        "FROM agg WHERE b.scope = agg.scope RETURNING 1), "
        f"ins AS (INSERT INTO {p}spend ({ROW_COLUMNS}) SELECT {NOW}, o.run_key, o.trace_id, "
        "NULL, '', '', 0, d.tokens, d.usd, 0, 'orphaned', 0, NULL, NULL, '{}'::text[] "
        "FROM d JOIN o ON o.id = d.id ORDER BY d.id RETURNING 1) "
        "SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM ins), (SELECT count(*) FROM upd)"
    )


def try_hold(p: str) -> str:
    """Hold on every scope of ``s`` or (by the count check) insert no hold; returns the new
    hold's expiry (NULL when refused) and the scopes it did update (to undo).

    A scope with no budget row yet (a new run) gets one holding the amount, in the same
    statement (``new``; ``upd`` sees only rows that existed when the statement began, so
    each scope is in exactly one of them). A row another transaction inserts meanwhile is
    in neither: the hold is refused and the caller tries once more."""
    return (
        "WITH lim AS (SELECT * FROM unnest(%(s)s::text[], %(lu)s::float8[], %(lt)s::int8[]) "
        "AS l(scope, lim_usd, lim_tok)), "
        f"new AS (INSERT INTO {p}budgets (scope, held_usd, held_tokens) "
        "SELECT lim.scope, %(usd)s, %(tok)s FROM lim "
        "WHERE (lim.lim_usd IS NULL OR %(usd)s <= 0 OR %(usd)s <= lim.lim_usd + %(e)s) "
        "AND (lim.lim_tok IS NULL OR %(tok)s <= lim.lim_tok) "
        "ON CONFLICT (scope) DO NOTHING RETURNING scope), "
        f"upd AS (UPDATE {p}budgets b SET held_usd = b.held_usd + %(usd)s, "
        f"held_tokens = b.held_tokens + %(tok)s, touched_at = {NOW} "
        "FROM lim WHERE b.scope = lim.scope "
        "AND (b.blocked IS NULL OR %(usd)s <= 0) "
        "AND (lim.lim_usd IS NULL OR %(usd)s <= 0 "
        "OR b.spent_usd + b.held_usd + %(usd)s <= lim.lim_usd + %(e)s) "
        "AND (lim.lim_tok IS NULL OR b.spent_tokens + b.held_tokens + %(tok)s <= lim.lim_tok) "
        "RETURNING b.scope), "
        "took AS (SELECT scope FROM upd UNION ALL SELECT scope FROM new), "
        f"ins AS (INSERT INTO {p}holds (id, scopes, usd, tokens, owner, process, expires_at) "
        f"SELECT %(id)s, %(s)s::text[], %(usd)s, %(tok)s, %(owner)s, %(proc)s, {NOW} + %(ttl)s "
        "WHERE (SELECT count(*) FROM took) = %(n)s RETURNING expires_at) "
        "SELECT (SELECT expires_at FROM ins), (SELECT array_agg(scope) FROM took)"
    )


def undo_hold(p: str) -> str:
    return (
        f"UPDATE {p}budgets SET held_usd = greatest(0, held_usd - %s), "
        "held_tokens = greatest(0, held_tokens - %s) WHERE scope = ANY(%s::text[])"
    )


def settle(p: str) -> str:
    """Settle a hold and write its row; returns the run scope's ``spent_usd`` as this
    statement leaves it (NULL when the hold does not count against ``%(run_scope)s``: the
    caller then reads it)."""
    return (
        f"WITH h AS (DELETE FROM {p}holds WHERE id = %(id)s RETURNING usd, tokens), "
        f"b AS (UPDATE {p}budgets SET spent_usd = spent_usd + %(cost)s, "
        "spent_tokens = spent_tokens + %(tok)s, "
        "held_usd = greatest(0, held_usd - coalesce((SELECT usd FROM h), 0)), "
        "held_tokens = greatest(0, held_tokens - coalesce((SELECT tokens FROM h), 0)), "
        f"blocked = coalesce(blocked, %(block)s), touched_at = {NOW} "
        "WHERE scope = ANY(%(scopes)s::text[]) RETURNING scope, spent_usd), "
        f"r AS (INSERT INTO {p}spend ({ROW_COLUMNS}) VALUES ({_ROW_VALUES})) "
        "SELECT (SELECT spent_usd FROM b WHERE scope = %(run_scope)s)"
    )


def release(p: str) -> str:
    return (
        f"WITH h AS (DELETE FROM {p}holds WHERE id = %(id)s RETURNING usd, tokens) "
        f"UPDATE {p}budgets SET held_usd = greatest(0, held_usd - h.usd), "
        "held_tokens = greatest(0, held_tokens - h.tokens) FROM h "
        "WHERE scope = ANY(%(scopes)s::text[])"
    )


def scope_usage(p: str) -> str:
    return (
        "SELECT spent_usd, held_usd, spent_tokens, held_tokens, blocked "
        f"FROM {p}budgets WHERE scope = %s"
    )


def add(p: str) -> str:
    return (
        f"WITH b AS (INSERT INTO {p}budgets (scope, spent_usd) VALUES (%(scope)s, %(cost)s) "
        f"ON CONFLICT (scope) DO UPDATE SET spent_usd = {p}budgets.spent_usd + %(cost)s, "
        f"touched_at = {NOW} RETURNING spent_usd), "
        f"r AS (INSERT INTO {p}spend ({ROW_COLUMNS}) VALUES ({_ROW_VALUES})) "
        "SELECT spent_usd FROM b"
    )


def prune_candidates(p: str) -> str:
    return (
        f"SELECT scope, touched_at FROM {p}budgets WHERE held_usd = 0 AND held_tokens = 0 "
        "AND (touched_at < %s OR scope NOT LIKE 'run:%%')"
    )


def prune(p: str) -> str:
    return (
        f"DELETE FROM {p}budgets WHERE scope = ANY(%s::text[]) AND held_usd = 0 "
        "AND held_tokens = 0 AND (touched_at < %s OR scope NOT LIKE 'run:%%')"
    )


__all__ = ["MIGRATIONS", "NOW", "record_args"]
