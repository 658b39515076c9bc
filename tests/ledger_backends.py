"""Ledger backends for tests: memory, a temporary SQLite file, and the real local Postgres
(unique table prefix, dropped afterwards; skipped without a server unless CI=true)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from aco_langchain.spend.ledger import MemoryLedger, SpendLedger

PG_URL = os.environ.get("ACO_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def pg_available() -> str | None:
    """None when Postgres answers, else why not."""
    try:
        import psycopg

        psycopg.connect(PG_URL, connect_timeout=3).close()
    except Exception as err:  # noqa: BLE001 - any failure means "not here"
        return f"no PostgreSQL at {PG_URL}: {type(err).__name__}: {err}"
    return None


def pg_prefix() -> str:
    return f"aco_t{uuid.uuid4().hex[:10]}_"


def pg_url(prefix: str) -> str:
    return f"{PG_URL}?table_prefix={prefix}"


def require_pg() -> None:
    why = pg_available()
    if why is not None:
        if in_ci():
            pytest.fail(why)
        pytest.skip(why)


def drop_pg(prefix: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(
            f"DROP TABLE IF EXISTS {prefix}budgets, {prefix}holds, {prefix}spend, "
            f"{prefix}schema_version, {prefix}outcomes, {prefix}learn, {prefix}learn_routes"
        )


def make_ledger(kind: str, tmp_path: Path) -> Iterator[tuple[SpendLedger, str]]:
    """(ledger, url) of a fresh ledger of ``kind``; cleaned up after."""
    if kind == "memory":
        yield MemoryLedger(), "memory://"
        return
    if kind == "sqlite":
        from aco_langchain.spend.ledger import SQLiteLedger

        url = f"sqlite:///{tmp_path / 'ledger.db'}"
        ledger = SQLiteLedger(tmp_path / "ledger.db", url=url)
        yield ledger, url
        ledger.close()
        return
    require_pg()
    from aco_langchain.spend.ledger import PostgresLedger
    from aco_langchain.spend.ledger.url import parse_ledger_url

    prefix = pg_prefix()
    url = pg_url(prefix)
    parsed = parse_ledger_url(url)
    assert parsed.dsn is not None
    ledger = PostgresLedger(parsed.dsn, table_prefix=prefix, url=url)
    try:
        yield ledger, url
    finally:
        ledger.close()
        drop_pg(prefix)


#: The backends every contract test runs on (Postgres marked so it can be deselected).
BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def ledger_and_url(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[SpendLedger, str]]:
    """A fresh ledger of each backend, with its URL."""
    yield from make_ledger(request.param, tmp_path)
