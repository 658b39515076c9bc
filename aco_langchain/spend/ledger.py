"""Spend ledger: where the cost of every call is recorded and budgets are read from.

One small interface so a shared ledger (SQLite, Postgres) can plug in later; the default
keeps spend in memory for one ``ACORouterChatModel`` instance.

Usage::

    ledger = MemoryLedger()
    ledger.add("run-1", 0.002)
    ledger.spent("run-1")   # 0.002
"""

from __future__ import annotations

import threading
from typing import Protocol, runtime_checkable


@runtime_checkable
class SpendLedger(Protocol):
    """Records spend per run key and answers how much a run has spent."""

    def add(self, run_key: str, usd: float) -> float:
        """Record ``usd`` against ``run_key``; returns the run's new total."""
        ...

    def spent(self, run_key: str) -> float:
        """USD recorded against ``run_key`` so far (0.0 for an unknown key)."""
        ...

    def reset(self, run_key: str | None = None) -> None:
        """Forget one run's spend, or every run's when ``run_key`` is None."""
        ...


@runtime_checkable
class ReservingLedger(SpendLedger, Protocol):
    """A ledger that can hold a call's estimated cost before the call (atomic check-and-hold).

    Without it, concurrent calls of one run can all pass the budget check and overspend
    together; with it, each call holds its estimate first and the others see it.
    """

    def reserve(self, run_key: str, usd: float, limit: float) -> bool:
        """Hold ``usd`` if spent + held + usd stays within ``limit``; False leaves all as is."""
        ...

    def settle(self, run_key: str, held: float, actual: float) -> float:
        """Release ``held`` and record ``actual``; returns the run's new total."""
        ...


class MemoryLedger:
    """Thread-safe in-process ledger (the default).

    Usage::

        llm = ACORouterChatModel(ledger=MemoryLedger())
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spent: dict[str, float] = {}
        self._held: dict[str, float] = {}

    def add(self, run_key: str, usd: float) -> float:
        if usd < 0:
            raise ValueError(f"spend must be >= 0, got {usd}")
        with self._lock:
            total = self._spent.get(run_key, 0.0) + usd
            self._spent[run_key] = total
            return total

    def spent(self, run_key: str) -> float:
        """Recorded spend plus what calls in flight hold (what a new call must fit beside)."""
        with self._lock:
            return self._spent.get(run_key, 0.0) + self._held.get(run_key, 0.0)

    def reserve(self, run_key: str, usd: float, limit: float) -> bool:
        if usd < 0:
            raise ValueError(f"a reservation must be >= 0, got {usd}")
        with self._lock:
            current = self._spent.get(run_key, 0.0) + self._held.get(run_key, 0.0)
            if usd > 0 and current + usd > limit + 1e-12:
                return False
            self._held[run_key] = self._held.get(run_key, 0.0) + usd
            return True

    def settle(self, run_key: str, held: float, actual: float) -> float:
        if actual < 0:
            raise ValueError(f"spend must be >= 0, got {actual}")
        with self._lock:
            self._held[run_key] = max(0.0, self._held.get(run_key, 0.0) - held)
            total = self._spent.get(run_key, 0.0) + actual
            self._spent[run_key] = total
            return total

    def reset(self, run_key: str | None = None) -> None:
        with self._lock:
            if run_key is None:
                self._spent.clear()
                self._held.clear()
            else:
                self._spent.pop(run_key, None)
                self._held.pop(run_key, None)


__all__ = ["MemoryLedger", "ReservingLedger", "SpendLedger"]
