"""The budget gateway: the one place a chat call holds, settles, releases and reads spend.

A call keeps its budget state in a :class:`Tab` (the scopes it counts against, its bounds, the
hold of the tier in flight). The gateway moves that state against the ledger, synchronously
(``hold``, ``settle``, ``release``, ``spent``, ``usage``) or with the ledger's native async
methods (``ahold``, ``asettle``, ``arelease``, ``aspent``, ``ausage``), so an async caller never
blocks its event loop on a database round trip. The rules (one hold per tier call, a retry
keeps its hold, usage over what was held blocks the budgets) are pure functions here and the
same for both sides; only the ledger call differs.

Example:
    ```python
    from aco_langchain.spend.gateway import BudgetGateway, Tab
    from aco_langchain.spend.ledger import Limit, MemoryLedger, SpendRecord

    gateway = BudgetGateway(MemoryLedger())
    tab = Tab(run_key="r1", limits=[Limit("run:r1", usd=1.0)], in_bound=100, cap=50)
    refused = gateway.hold(tab, tier=2, usd=0.01)        # None: held
    gateway.settle(tab, 2, SpendRecord(run_key="r1", cost_usd=0.002,
                                       input_tokens=40, output_tokens=12))
    gateway.spent("r1")                                   # 0.002
    # async code: await gateway.ahold(...), asettle(...), arelease(...), aspent(...)
    ```
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from aco_langchain.spend.ledger.base import (
    MONEY_EPS,
    Hold,
    Limit,
    Refusal,
    ScopeUsage,
    SpendLedger,
    SpendRecord,
)

logger = logging.getLogger(__name__)


@dataclass
class Tab:
    """One call's budget state: the budgets it counts against and the hold in flight.

    Args:
        run_key: the run (task) the call is charged to.
        limits: every budget a hold must fit in (``budget_limits``), run first.
        in_bound: upper bound on the call's input tokens.
        cap: output tokens the tier is told to stop at.
        ttl_s: how long a hold lives if nobody settles or releases it.
        owner: who holds (the call's trace id), for the ledger's expiry bookkeeping.
    """

    run_key: str
    limits: list[Limit]
    in_bound: int
    cap: int
    ttl_s: float = 300.0
    owner: str = ""
    hold: Hold | None = None
    """The hold of the tier being called, while it is in flight."""
    hold_tier: int | None = None
    hold_started: float = 0.0
    escalating: bool = False
    """A cascade's escalated call is in flight: its row says ``escalated``."""
    run_spent: float | None = None
    """The run's settled USD as the latest settlement left it (read in its transaction);
    None before one, or when the ledger does not return it."""

    @property
    def tokens(self) -> int:
        """Tokens a hold counts: the input bound and the output cap."""
        return self.in_bound + self.cap

    def holds(self, tier: int) -> bool:
        """Does the tab already hold ``tier`` (a retry on the same tier keeps its hold)?"""
        return self.hold is not None and self.hold_tier == tier

    def take_hold(self) -> Hold | None:
        """Detach the hold in flight (to release or settle it exactly once)."""
        hold, self.hold, self.hold_tier = self.hold, None, None
        return hold

    def took(self, got: Hold | Refusal, tier: int) -> Refusal | None:
        """Record the ledger's answer to a hold; the refusal, or None when held."""
        if isinstance(got, Refusal):
            return got
        self.hold, self.hold_tier, self.hold_started = got, tier, time.perf_counter()
        self.run_spent = None  # a new call on the run: the last settlement's total is old
        return None


@dataclass(frozen=True)
class Settlement:
    """What settling one tier call writes: the hold, the row, and a block if over the bounds."""

    hold: Hold
    record: SpendRecord
    block: str | None = None


def over_cap_blocks(record: SpendRecord, hold: Hold, cap: int) -> bool:
    """Does usage over a hold's bounds block the call's budgets (pure)?

    Only when it cost something beyond what was held or came from a provider that ignored
    the output cap: a free tier's overage costs nothing, and an input-only overage whose cost
    still fits the hold (a chat template the bound missed) is recorded (``over_cap``) without
    stopping the run.

    Example:
        ```python
        over_cap_blocks(SpendRecord("r", 0.0, 31, 24), hold, cap=64)    # False: free
        ```
    """
    if record.cost_usd <= 0.0:
        return False
    return record.output_tokens > cap or record.cost_usd > hold.usd + MONEY_EPS


def settlement(tab: Tab, tier: int, record: SpendRecord) -> Settlement | None:
    """Pure: the settlement of ``tier``'s answered call, or None when the tab holds no such tier.

    Usage over what was held (more output than the cap sent, more input than the bound) is
    recorded as ``over_cap`` and blocks the call's budgets: never absorbed silently. The row's
    latency is the time since the hold was taken.

    Args:
        tab: the call's tab (its hold is detached).
        tier: the tier that answered.
        record: the row to write (cost, tokens, model...); its outcome and latency are set.

    Returns:
        The settlement to hand to the ledger, or None.
    """
    if not tab.holds(tier):
        return None
    started = tab.hold_started
    hold = tab.take_hold()
    assert hold is not None  # noqa: S101 - holds(tier) said so
    block = None
    outcome = "escalated" if tab.escalating and record.outcome == "ok" else record.outcome
    if record.output_tokens > tab.cap or record.input_tokens > tab.in_bound:
        outcome = "over_cap"
        what = (
            f"tier {tier} reported {record.input_tokens} input / {record.output_tokens} output "
            f"tokens, over the {tab.in_bound} / {tab.cap} held"
        )
        if over_cap_blocks(record, hold, tab.cap):
            block = f"{what} (its provider ignores the output cap?); reset the budget to go on"
            logger.warning("run %s: %s", tab.run_key, block)
        else:
            logger.info(
                "run %s: %s; recorded, not blocking (within what was held)", tab.run_key, what
            )
    # The record is the caller's own, made for this settlement: filled in place (no copy).
    record.outcome = outcome
    record.latency_ms = round((time.perf_counter() - started) * 1000, 3)
    return Settlement(hold, record, block)


def _total(settled: Any) -> float | None:
    """What a ledger's ``settle`` returned, as the run's total (None: it did not say)."""
    return float(settled) if isinstance(settled, int | float) else None


@dataclass
class BudgetGateway:
    """Holds, settlements, releases and spend reads of chat calls, sync and async.

    Args:
        ledger: the spend ledger (memory, SQLite, Postgres, or any ``SpendLedger``). Its
            native async methods are used on the async side; a ledger without them is called
            in a worker thread, never on the event loop.

    Example:
        ```python
        gateway = BudgetGateway(open_ledger("sqlite:///ledger.db"))
        await gateway.aspent("job-7")
        ```
    """

    ledger: SpendLedger
    _native_async: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self._native_async = all(
            callable(getattr(self.ledger, m, None))
            for m in ("ahold", "asettle", "arelease", "aspent", "ausage")
        )
        if not self._native_async:
            logger.debug(
                "ledger %s has no native async methods: async calls use a worker thread",
                type(self.ledger).__name__,
            )

    # -- sync ---------------------------------------------------------------------------

    def hold(self, tab: Tab, tier: int, usd: float) -> Refusal | None:
        """Hold ``tier``'s worst case ``usd`` on every budget of the tab, or refuse.

        A retry on the tier already held keeps its hold; a hold of another tier is released
        first (one hold per tier call).

        Args:
            tab: the call's tab.
            tier: the tier about to be called.
            usd: its worst case (input bound and output cap at its price).

        Returns:
            None when held, else the ledger's refusal (which budget, spent, held).
        """
        if tab.holds(tier):
            return None
        self.release(tab)
        got = self.ledger.hold(tab.limits, usd, tab.tokens, ttl_s=tab.ttl_s, owner=tab.owner)
        return tab.took(got, tier)

    def settle(self, tab: Tab, tier: int, record: SpendRecord) -> None:
        """Write ``tier``'s row and move its hold to spent, in one ledger transaction; the
        run's total as it leaves it goes to ``tab.run_spent``.

        Args:
            tab: the call's tab (nothing happens when it holds no such tier).
            tier: the tier that answered.
            record: the row (its outcome becomes ``over_cap``/``escalated`` as the tab says).
        """
        if (s := settlement(tab, tier, record)) is not None:
            tab.run_spent = _total(self.ledger.settle(s.hold, s.record, block=s.block))

    def release(self, tab: Tab) -> None:
        """Give back the hold of a tier call that did not answer (no-op without one)."""
        if (hold := tab.take_hold()) is not None:
            self.ledger.release(hold)

    def spent(self, run_key: str) -> float:
        """USD settled by ``run_key``."""
        return self.ledger.spent(run_key)

    def usage(self, scope: str) -> ScopeUsage:
        """A scope's spent/held figures."""
        return self.ledger.usage(scope)

    # -- async: the same rules, the ledger's native async I/O ----------------------------

    async def ahold(self, tab: Tab, tier: int, usd: float) -> Refusal | None:
        """Async :meth:`hold` (the ledger's ``ahold``)."""
        if tab.holds(tier):
            return None
        await self.arelease(tab)
        got = await self._acall(
            "hold", tab.limits, usd, tab.tokens, ttl_s=tab.ttl_s, owner=tab.owner
        )
        return tab.took(got, tier)

    async def asettle(self, tab: Tab, tier: int, record: SpendRecord) -> None:
        """Async :meth:`settle` (the ledger's ``asettle``)."""
        if (s := settlement(tab, tier, record)) is not None:
            tab.run_spent = _total(await self._acall("settle", s.hold, s.record, block=s.block))

    async def arelease(self, tab: Tab) -> None:
        """Async :meth:`release` (the ledger's ``arelease``)."""
        if (hold := tab.take_hold()) is not None:
            await self._acall("release", hold)

    async def aspent(self, run_key: str) -> float:
        """Async :meth:`spent` (the ledger's ``aspent``)."""
        spent: float = await self._acall("spent", run_key)
        return spent

    async def ausage(self, scope: str) -> ScopeUsage:
        """Async :meth:`usage` (the ledger's ``ausage``)."""
        usage: ScopeUsage = await self._acall("usage", scope)
        return usage

    async def _acall(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if self._native_async:
            return await getattr(self.ledger, "a" + name)(*args, **kwargs)
        return await asyncio.to_thread(getattr(self.ledger, name), *args, **kwargs)


__all__ = ["BudgetGateway", "Settlement", "Tab", "over_cap_blocks", "settlement"]
