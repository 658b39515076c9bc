"""The spend ledger: budgets that cannot be overspent, and one row per answered call.

Backends behind one interface (:class:`SpendLedger`), chosen by URL (:func:`open_ledger`):

- ``memory://`` — in this process only (tests, scripts): :class:`MemoryLedger`;
- ``sqlite:///path.db`` — the embedded default (``~/.local/share/aco-langchain/ledger.db``),
  shared by the processes of one host: :class:`SQLiteLedger`;
- ``postgresql://user@host:5432/db`` — many processes and hosts: :class:`PostgresLedger`.

The URL comes from ``$ACO_LEDGER_URL``, else the config's ``ledger.url``, else the SQLite
default; a model given a ledger object (``ACORouterChatModel(ledger=open_ledger(url))``) uses
that one.

API for other parts (server, dashboard, CLI)::

    from aco_langchain.spend.ledger import Limit, SpendRecord, open_ledger

    ledger = open_ledger(config=cfg)                 # or open_ledger("postgresql://...")
    # a call: hold its worst case on every budget it counts against, all or nothing
    got = ledger.hold([Limit("run:r1", usd=5.0, tokens=100_000)], usd=0.02, tokens=1500,
                      ttl_s=120)
    if isinstance(got, Refusal):
        print(got.reason)                            # which budget, spent, held
    else:
        ledger.settle(got, SpendRecord(run_key="r1", cost_usd=0.004, tier=2, model="gpt-4o-mini",
                                       input_tokens=900, output_tokens=120, baseline_usd=0.02))
    # reading
    ledger.spent("r1")                               # settled USD of a run
    ledger.usage("run:r1")                           # spent/held USD and tokens, blocked?
    ledger.records(run="r1", since=t0, until=t1)     # rows: ts, run_key, trace_id, tier, model,
                                                     # provider, tokens, cost, latency, outcome,
                                                     # baseline_usd, user, api_key, tags
    ledger.summary(month="2026-12", by="tier")       # totals + groups (tier|model|run|day)
    ledger.summary().to_dict()                       # {"total_usd", "calls", "baseline_usd",
                                                     #  "savings_usd", ...} = aco spend --json

Budget scopes for a call (run, user, key, tag, period totals) come from
:func:`aco_langchain.spend.budgets.budget_limits`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aco_langchain.spend.ledger.base import (
    GROUPS,
    Hold,
    Limit,
    Refusal,
    ReservingLedger,
    ScopeUsage,
    SpendGroup,
    SpendLedger,
    SpendRecord,
    SpendSummary,
    month_bounds,
    summarize,
)
from aco_langchain.spend.ledger.memory import MemoryLedger
from aco_langchain.spend.ledger.url import (
    ENV_VAR,
    default_ledger_path,
    default_ledger_url,
    open_ledger,
    parse_ledger_url,
    resolve_ledger_url,
)

if TYPE_CHECKING:
    from aco_langchain.spend.ledger.postgres import PostgresLedger
    from aco_langchain.spend.ledger.sqlite import SQLiteLedger


def __getattr__(name: str) -> Any:
    if name == "SQLiteLedger":
        from aco_langchain.spend.ledger.sqlite import SQLiteLedger

        return SQLiteLedger
    if name == "PostgresLedger":
        from aco_langchain.spend.ledger.postgres import PostgresLedger

        return PostgresLedger
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ENV_VAR",
    "GROUPS",
    "Hold",
    "Limit",
    "MemoryLedger",
    "PostgresLedger",
    "Refusal",
    "ReservingLedger",
    "SQLiteLedger",
    "ScopeUsage",
    "SpendGroup",
    "SpendLedger",
    "SpendRecord",
    "SpendSummary",
    "default_ledger_path",
    "default_ledger_url",
    "month_bounds",
    "open_ledger",
    "parse_ledger_url",
    "resolve_ledger_url",
    "summarize",
]
