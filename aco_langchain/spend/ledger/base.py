"""The ledger contract: budgets (scopes), holds, spend rows, and the pure summaries over rows.

Every backend (memory, SQLite, Postgres) implements :class:`SpendLedger`; everything else in
the package (the chat model, ``aco spend``, the server, the dashboard) only uses this file's
types.

Money is USD as float; tokens are ints. A *scope* is one budget: ``run:<key>`` for a task,
``user:<id>@<period>``, ``key:<id>@<period>``, ``tag:<t>@<period>``, ``total@<period>``
(see :mod:`aco_langchain.spend.budgets`). A hold is taken on several scopes at once, all or
nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

#: Tolerance when comparing money against a limit (float sums of many small costs).
MONEY_EPS = 1e-9

#: Outcomes a spend row may carry.
#: ``orphaned``: a hold whose owner process died, settled at its worst case (see ``owners``).
Outcome = Literal["ok", "over_cap", "partial", "recorded", "escalated", "orphaned"]

#: Groupings ``summarize`` and ``aco spend --by`` know.
GroupBy = Literal["tier", "model", "run", "day"]
GROUPS: tuple[str, ...] = ("tier", "model", "run", "day")


@dataclass(frozen=True)
class Limit:
    """One budget a hold must fit in. ``None`` means that dimension is not limited."""

    scope: str
    usd: float | None = None
    tokens: int | None = None


@dataclass(frozen=True)
class Hold:
    """What a call holds while in flight; settle or release it exactly once."""

    id: str
    scopes: tuple[str, ...]
    usd: float
    tokens: int
    expires_at: float


@dataclass(frozen=True)
class Refusal:
    """Why a hold did not fit: the first scope that refused and its figures."""

    scope: str
    limit_usd: float | None
    limit_tokens: int | None
    spent_usd: float
    held_usd: float
    spent_tokens: int
    held_tokens: int
    wanted_usd: float
    wanted_tokens: int
    blocked: str | None = None

    @property
    def reason(self) -> str:
        """One line naming the scope, what it allows, and what was spent and held."""
        if self.blocked:
            return f"{self.scope} is blocked: {self.blocked}"
        if self.limit_usd is not None and (
            self.spent_usd + self.held_usd + self.wanted_usd > self.limit_usd + MONEY_EPS
        ):
            return (
                f"{self.scope}: worst case ${self.wanted_usd:.6f} does not fit the budget "
                f"${self.limit_usd:.6f} (spent ${self.spent_usd:.6f}, held ${self.held_usd:.6f})"
            )
        return (
            f"{self.scope}: worst case {self.wanted_tokens} tokens does not fit the token "
            f"budget {self.limit_tokens} (spent {self.spent_tokens}, held {self.held_tokens})"
        )


@dataclass(frozen=True)
class ScopeUsage:
    """A scope's figures right now."""

    scope: str
    spent_usd: float = 0.0
    held_usd: float = 0.0
    spent_tokens: int = 0
    held_tokens: int = 0
    blocked: str | None = None


@dataclass
class SpendRecord:
    """One ledger row: a call that was answered (or spend recorded by hand).

    ``baseline_usd`` is what the configured baseline tier would have cost for the same tokens;
    savings are ``baseline_usd - cost_usd``.
    """

    run_key: str
    cost_usd: float
    input_tokens: int = 0
    output_tokens: int = 0
    tier: int | None = None
    model: str = ""
    provider: str = ""
    latency_ms: float = 0.0
    outcome: str = "ok"
    baseline_usd: float = 0.0
    trace_id: str | None = None
    user: str | None = None
    api_key: str | None = None
    tags: tuple[str, ...] = ()
    ts: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        """The row as JSON-ready data (tags as a list)."""
        d = asdict(self)
        d["tags"] = list(self.tags)
        return d


@dataclass(frozen=True)
class SpendGroup:
    """Totals of one group of rows (one tier, model, run or day)."""

    key: str
    calls: int
    cost_usd: float
    baseline_usd: float
    input_tokens: int
    output_tokens: int

    @property
    def savings_usd(self) -> float:
        return self.baseline_usd - self.cost_usd


@dataclass(frozen=True)
class SpendSummary:
    """What ``aco spend`` prints: totals, savings vs the baseline, and optional groups."""

    total_usd: float
    calls: int
    baseline_usd: float
    input_tokens: int
    output_tokens: int
    by: str | None = None
    groups: tuple[SpendGroup, ...] = ()

    @property
    def savings_usd(self) -> float:
        return self.baseline_usd - self.total_usd

    def to_dict(self) -> dict[str, Any]:
        """JSON shape of ``aco spend --json`` (and the server's ``/v1/spend``)."""
        out: dict[str, Any] = {
            "total_usd": round(self.total_usd, 10),
            "calls": self.calls,
            "baseline_usd": round(self.baseline_usd, 10),
            "savings_usd": round(self.savings_usd, 10),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
        }
        if self.by:
            out["by"] = self.by
            out["groups"] = [
                {
                    "key": g.key,
                    "calls": g.calls,
                    "cost_usd": round(g.cost_usd, 10),
                    "baseline_usd": round(g.baseline_usd, 10),
                    "savings_usd": round(g.savings_usd, 10),
                    "input_tokens": g.input_tokens,
                    "output_tokens": g.output_tokens,
                }
                for g in self.groups
            ]
        return out


def group_key(record: SpendRecord, by: str) -> str:
    """The group a row falls in for ``by`` (tier, model, run, or UTC day)."""
    if by == "tier":
        return str(record.tier) if record.tier is not None else "-"
    if by == "model":
        return record.model or "-"
    if by == "run":
        return record.run_key
    if by == "day":
        return time.strftime("%Y-%m-%d", time.gmtime(record.ts))
    raise ValueError(f"unknown grouping {by!r}: use one of {', '.join(GROUPS)}")


def summarize(records: Iterable[SpendRecord], by: str | None = None) -> SpendSummary:
    """Totals (and per-group totals when ``by`` is given) over spend rows; pure.

    Example:
        ```python
        s = summarize(ledger.records(run="r1"), by="tier")
        s.total_usd, s.calls, s.savings_usd, [g.key for g in s.groups]
        ```
    """
    total = base = 0.0
    calls = tin = tout = 0
    groups: dict[str, list[float]] = {}
    for r in records:
        total += r.cost_usd
        base += r.baseline_usd
        calls += 1
        tin += r.input_tokens
        tout += r.output_tokens
        if by:
            g = groups.setdefault(group_key(r, by), [0, 0.0, 0.0, 0, 0])
            g[0] += 1
            g[1] += r.cost_usd
            g[2] += r.baseline_usd
            g[3] += r.input_tokens
            g[4] += r.output_tokens
    return SpendSummary(
        total_usd=total,
        calls=calls,
        baseline_usd=base,
        input_tokens=tin,
        output_tokens=tout,
        by=by,
        groups=tuple(
            SpendGroup(k, int(v[0]), v[1], v[2], int(v[3]), int(v[4]))
            for k, v in sorted(groups.items())
        ),
    )


def month_bounds(month: str) -> tuple[float, float]:
    """UTC epoch seconds [start, end) of a ``YYYY-MM`` month.

    Raises:
        ValueError: the month is not ``YYYY-MM``.
    """
    import calendar

    try:
        year_s, mon_s = month.split("-")
        year, mon = int(year_s), int(mon_s)
        if len(year_s) != 4 or not 1 <= mon <= 12:
            raise ValueError
    except ValueError:
        raise ValueError(f"month {month!r} is not YYYY-MM (e.g. 2026-12)") from None
    start = calendar.timegm((year, mon, 1, 0, 0, 0))
    end = calendar.timegm((year + mon // 12, mon % 12 + 1, 1, 0, 0, 0))
    return float(start), float(end)


def period_end(label: str) -> float | None:
    """UTC epoch end of a budget period label (``2026-12`` or ``2026-12-05``); None for
    ``all`` or anything else (such a period never ends)."""
    import calendar

    parts = label.split("-")
    try:
        if len(parts) == 2:
            return month_bounds(label)[1]
        if len(parts) == 3 and len(parts[0]) == 4:
            y, m, d = (int(x) for x in parts)
            return float(calendar.timegm((y, m, d, 0, 0, 0))) + 86400.0
    except ValueError:
        return None
    return None


def scope_finished(scope: str, touched_at: float, before: float) -> bool:
    """May a settled budget row be compacted by a prune at ``before``? Pure.

    A period scope (``user:alice@2026-11``, ``total@2026-11-30``) is finished when its period
    ended by ``before``; a run scope (``run:<key>``) when nothing held or settled on it since
    ``before``; other scopes (``...@all``, unknown shapes) never.
    """
    if scope.startswith("run:"):
        return touched_at < before
    if "@" not in scope:
        return False
    end = period_end(scope.rsplit("@", 1)[1])
    return end is not None and end <= before


@dataclass(frozen=True)
class PruneReport:
    """What ``prune`` compacted: budget rows deleted (spend rows always stay)."""

    before: float
    budgets_deleted: int
    holds_reconciled: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def refusal_for(
    usage: ScopeUsage, limit: Limit, usd: float, tokens: int, *, force: bool = False
) -> Refusal | None:
    """The refusal when ``usd``/``tokens`` do not fit ``limit`` beside ``usage``; pure.

    With ``force`` a refusal is returned even when the figures now fit (the database said
    no a moment ago; concurrent calls moved the figures since).
    """
    blocked = usage.blocked if (usage.blocked and usd > 0) else None
    # A free call ($0, e.g. the local tier) never overspends a money budget.
    over_usd = (
        usd > 0
        and limit.usd is not None
        and usage.spent_usd + usage.held_usd + usd > limit.usd + MONEY_EPS
    )
    over_tok = limit.tokens is not None and (
        usage.spent_tokens + usage.held_tokens + tokens > limit.tokens
    )
    if not (blocked or over_usd or over_tok or force):
        return None
    return Refusal(
        scope=limit.scope,
        limit_usd=limit.usd,
        limit_tokens=limit.tokens,
        spent_usd=usage.spent_usd,
        held_usd=usage.held_usd,
        spent_tokens=usage.spent_tokens,
        held_tokens=usage.held_tokens,
        wanted_usd=usd,
        wanted_tokens=tokens,
        blocked=blocked,
    )


@runtime_checkable
class SpendLedger(Protocol):
    """Where budgets are held and spend is recorded; shared by every process on one URL.

    The flow of one tier call::

        got = ledger.hold(limits, usd=worst_case, tokens=input + cap, ttl_s=120)
        if isinstance(got, Refusal):
            ...  # skip the tier: got.reason says why
        else:
            ...  # call the tier, then exactly one of:
            ledger.settle(got, SpendRecord(run_key="r1", cost_usd=0.0021, ...))
            ledger.release(got)           # the call failed: nothing was spent

    Readers: ``spent(run_key)``, ``usage(scope)``, ``records(...)``, ``summary(...)``.

    Example:
        ```python
        ledger = open_ledger("sqlite:///ledger.db")
        llm = ACORouterChatModel(ledger=ledger)
        llm.invoke("hi", aco_run_id="job-7")
        ledger.spent("job-7")
        # in async code (the server, astream): the same flow, awaited
        got = await ledger.ahold(limits, usd=0.02, tokens=1500, ttl_s=120)
        await ledger.asettle(got, record)       # or: await ledger.arelease(got)
        ```
    """

    url: str
    """Where the ledger lives (``memory://``, ``sqlite:///...``, ``postgresql://...``)."""

    def hold(
        self,
        limits: Sequence[Limit],
        usd: float,
        tokens: int = 0,
        *,
        ttl_s: float = 300.0,
        owner: str = "",
    ) -> Hold | Refusal:
        """Atomically hold ``usd``/``tokens`` on every scope of ``limits``, or on none.

        A scope refuses when spent + held + the new hold would pass its limit, or when it is
        blocked (then only holds of $0 pass). Expired holds are released before refusing.
        """
        ...

    def settle(self, hold: Hold, record: SpendRecord, *, block: str | None = None) -> float | None:
        """Release ``hold``, add the record's real cost and tokens to its scopes, and write
        the row, in one transaction. ``block`` marks the scopes blocked (over-cap usage).
        Settling a hold that already expired still records the spend (it is never lost).

        Returns the run's settled USD after this settlement (``spent(record.run_key)``, read
        in the same transaction: the caller needs no second round trip), or None when the
        ledger does not read it (a ledger written against the earlier protocol)."""
        ...

    def release(self, hold: Hold) -> None:
        """Give the hold back (the call failed before anything was billed)."""
        ...

    def add(self, run_key: str, usd: float) -> float:
        """Record ``usd`` spent by ``run_key`` outside a call (a row with outcome
        ``recorded``); returns the run's settled total."""
        ...

    def spent(self, run_key: str) -> float:
        """USD settled by ``run_key`` (0.0 for an unknown run)."""
        ...

    def usage(self, scope: str) -> ScopeUsage:
        """A scope's spent/held USD and tokens and its block, after releasing expired holds."""
        ...

    def records(
        self,
        *,
        run: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[SpendRecord]:
        """Spend rows, oldest first, filtered by run key and ``[since, until)`` epoch time."""
        ...

    def summary(
        self, *, run: str | None = None, month: str | None = None, by: str | None = None
    ) -> SpendSummary:
        """Totals over the rows of ``run`` / ``month`` (``YYYY-MM``), grouped by ``by``."""
        ...

    def reset(self, run_key: str | None = None) -> None:
        """Forget a run's budget and rows (every scope and row when None)."""
        ...

    def prune(self, before: float) -> PruneReport:
        """Reconcile expired holds, then delete settled budget rows that are finished at
        ``before`` (epoch seconds; see :func:`scope_finished`). Spend rows stay.

        A pruned run's budget starts again from $0 if the run key is used again."""
        ...

    def close(self) -> None:
        """Close connections (the ledger cannot be used afterwards)."""
        ...

    # -- native async twins: the same SQL and decisions, only the I/O is awaited ----------

    async def ahold(
        self,
        limits: Sequence[Limit],
        usd: float,
        tokens: int = 0,
        *,
        ttl_s: float = 300.0,
        owner: str = "",
    ) -> Hold | Refusal:
        """:meth:`hold` without blocking the event loop."""
        ...

    async def asettle(
        self, hold: Hold, record: SpendRecord, *, block: str | None = None
    ) -> float | None:
        """:meth:`settle` without blocking the event loop."""
        ...

    async def arelease(self, hold: Hold) -> None:
        """:meth:`release` without blocking the event loop."""
        ...

    async def aspent(self, run_key: str) -> float:
        """:meth:`spent` without blocking the event loop."""
        ...

    async def ausage(self, scope: str) -> ScopeUsage:
        """:meth:`usage` without blocking the event loop."""
        ...


#: Kept for code written against the earlier name: every ledger now holds.
ReservingLedger = SpendLedger


class RecordsSummaryMixin:
    """``summary`` from ``records`` for backends that do not group in SQL."""

    def records(
        self,
        *,
        run: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[SpendRecord]:
        raise NotImplementedError

    def summary(
        self, *, run: str | None = None, month: str | None = None, by: str | None = None
    ) -> SpendSummary:
        if by is not None and by not in GROUPS:
            raise ValueError(f"unknown grouping {by!r}: use one of {', '.join(GROUPS)}")
        since = until = None
        if month:
            since, until = month_bounds(month)
        return summarize(self.records(run=run, since=since, until=until), by)


__all__ = [
    "GROUPS",
    "MONEY_EPS",
    "GroupBy",
    "Hold",
    "Limit",
    "Outcome",
    "PruneReport",
    "RecordsSummaryMixin",
    "Refusal",
    "ReservingLedger",
    "ScopeUsage",
    "SpendGroup",
    "SpendLedger",
    "SpendRecord",
    "SpendSummary",
    "group_key",
    "month_bounds",
    "period_end",
    "refusal_for",
    "scope_finished",
    "summarize",
]
