"""A spend row's columns, shared by the SQLite and Postgres ledgers (same names and order)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aco_langchain.spend.ledger.base import SpendRecord

ROW_COLUMNS = (
    "ts, run_key, trace_id, tier, model, provider, input_tokens, output_tokens, cost_usd, "
    "latency_ms, outcome, baseline_usd, user_id, api_key, tags"
)


def record_params(r: SpendRecord) -> tuple[Any, ...]:
    """A record as the values of ``ROW_COLUMNS`` (tags as JSON text)."""
    return (
        r.ts,
        r.run_key,
        r.trace_id,
        r.tier,
        r.model,
        r.provider,
        r.input_tokens,
        r.output_tokens,
        r.cost_usd,
        r.latency_ms,
        r.outcome,
        r.baseline_usd,
        r.user,
        r.api_key,
        json.dumps(list(r.tags)),
    )


def record_from_row(row: Sequence[Any]) -> SpendRecord:
    """A row of ``ROW_COLUMNS`` back into a record."""
    tags = row[14]
    return SpendRecord(
        ts=float(row[0]),
        run_key=row[1],
        trace_id=row[2],
        tier=row[3],
        model=row[4],
        provider=row[5],
        input_tokens=int(row[6]),
        output_tokens=int(row[7]),
        cost_usd=float(row[8]),
        latency_ms=float(row[9]),
        outcome=row[10],
        baseline_usd=float(row[11]),
        user=row[12],
        api_key=row[13],
        tags=tuple(json.loads(tags) if isinstance(tags, str) else tags or ()),
    )


__all__ = ["ROW_COLUMNS", "record_from_row", "record_params"]
