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


class MemoryLedger:
    """Thread-safe in-process ledger (the default).

    Usage::

        llm = ACORouterChatModel(ledger=MemoryLedger())
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spent: dict[str, float] = {}

    def add(self, run_key: str, usd: float) -> float:
        if usd < 0:
            raise ValueError(f"spend must be >= 0, got {usd}")
        with self._lock:
            total = self._spent.get(run_key, 0.0) + usd
            self._spent[run_key] = total
            return total

    def spent(self, run_key: str) -> float:
        with self._lock:
            return self._spent.get(run_key, 0.0)

    def reset(self, run_key: str | None = None) -> None:
        with self._lock:
            if run_key is None:
                self._spent.clear()
            else:
                self._spent.pop(run_key, None)


__all__ = ["MemoryLedger", "SpendLedger"]
