"""In-process ledger (``memory://``): one lock, dicts; for tests and single-process scripts.

The async methods call the synchronous ones directly: they only take a lock held for
microseconds and do no I/O. Every hold's owner is this process, which is alive while the
ledger exists, so expired holds are always released.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Sequence

from aco_langchain.spend.ledger.base import (
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


class MemoryLedger(RecordsSummaryMixin):
    """Thread-safe ledger in this process's memory; gone when the process ends.

    Example:
        ```python
        from aco_langchain.spend.ledger import Limit, MemoryLedger, SpendRecord

        ledger = MemoryLedger()
        hold = ledger.hold([Limit("run:r1", usd=1.0)], usd=0.4)
        ledger.settle(hold, SpendRecord(run_key="r1", cost_usd=0.1))
        ledger.spent("r1")   # 0.1
        ```
    """

    url = "memory://"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scopes: dict[str, ScopeUsage] = {}
        self._holds: dict[str, Hold] = {}
        self._rows: list[SpendRecord] = []
        self._touched: dict[str, float] = {}
        self._hold_ids = itertools.count(1)

    def _usage(self, scope: str) -> ScopeUsage:
        return self._scopes.get(scope) or ScopeUsage(scope)

    def _bump(
        self,
        scope: str,
        *,
        spent: float = 0.0,
        held: float = 0.0,
        spent_tok: int = 0,
        held_tok: int = 0,
        block: str | None = None,
    ) -> None:
        u = self._usage(scope)
        self._touched[scope] = time.time()
        self._scopes[scope] = ScopeUsage(
            scope,
            spent_usd=u.spent_usd + spent,
            held_usd=max(0.0, u.held_usd + held),
            spent_tokens=u.spent_tokens + spent_tok,
            held_tokens=max(0, u.held_tokens + held_tok),
            blocked=u.blocked or block,
        )

    def _purge_expired(self, now: float) -> int:
        expired = [h for h in self._holds.values() if h.expires_at <= now]
        for h in expired:
            del self._holds[h.id]
            for s in h.scopes:
                self._bump(s, held=-h.usd, held_tok=-h.tokens)
        return len(expired)

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
        now = time.time()
        with self._lock:
            for attempt in range(2):
                refusal = next(
                    (
                        r
                        for lim in limits
                        if (r := refusal_for(self._usage(lim.scope), lim, usd, tokens))
                    ),
                    None,
                )
                if refusal is None:
                    break
                if attempt or not self._purge_expired(now):
                    return refusal
            # an id unique in this ledger (its holds live only here): no urandom syscall
            hid = f"h{next(self._hold_ids)}"
            h = Hold(hid, tuple(lim.scope for lim in limits), usd, tokens, now + ttl_s)
            self._holds[h.id] = h
            for s in h.scopes:
                self._bump(s, held=usd, held_tok=tokens)
            return h

    def settle(self, hold: Hold, record: SpendRecord, *, block: str | None = None) -> float:
        if record.cost_usd < 0:
            raise ValueError(f"spend must be >= 0, got {record.cost_usd}")
        tok = record.input_tokens + record.output_tokens
        with self._lock:
            live = self._holds.pop(hold.id, None) is not None
            for s in hold.scopes:
                self._bump(
                    s,
                    spent=record.cost_usd,
                    held=-hold.usd if live else 0.0,
                    spent_tok=tok,
                    held_tok=-hold.tokens if live else 0,
                    block=block,
                )
            self._rows.append(record)
            return self._usage(f"run:{record.run_key}").spent_usd

    def release(self, hold: Hold) -> None:
        with self._lock:
            if self._holds.pop(hold.id, None) is not None:
                for s in hold.scopes:
                    self._bump(s, held=-hold.usd, held_tok=-hold.tokens)

    def add(self, run_key: str, usd: float) -> float:
        if usd < 0:
            raise ValueError(f"spend must be >= 0, got {usd}")
        with self._lock:
            self._bump(f"run:{run_key}", spent=usd)
            self._rows.append(SpendRecord(run_key=run_key, cost_usd=usd, outcome="recorded"))
            return self._usage(f"run:{run_key}").spent_usd

    def spent(self, run_key: str) -> float:
        with self._lock:
            return self._usage(f"run:{run_key}").spent_usd

    def usage(self, scope: str) -> ScopeUsage:
        with self._lock:
            self._purge_expired(time.time())
            return self._usage(scope)

    def records(
        self,
        *,
        run: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[SpendRecord]:
        with self._lock:
            return [
                r
                for r in self._rows
                if (run is None or r.run_key == run)
                and (since is None or r.ts >= since)
                and (until is None or r.ts < until)
            ]

    def reset(self, run_key: str | None = None) -> None:
        with self._lock:
            if run_key is None:
                self._scopes.clear()
                self._touched.clear()
                self._holds.clear()
                self._rows.clear()
                return
            scope = f"run:{run_key}"
            self._scopes.pop(scope, None)
            self._touched.pop(scope, None)
            self._holds = {k: h for k, h in self._holds.items() if scope not in h.scopes}
            self._rows = [r for r in self._rows if r.run_key != run_key]

    def prune(self, before: float) -> PruneReport:
        with self._lock:
            reconciled = self._purge_expired(time.time())
            done = [
                s
                for s, u in self._scopes.items()
                if u.held_usd == 0
                and u.held_tokens == 0
                and scope_finished(s, self._touched.get(s, 0.0), before)
            ]
            for s in done:
                del self._scopes[s]
                self._touched.pop(s, None)
        return PruneReport(before, len(done), reconciled)

    def close(self) -> None:
        return None

    async def ahold(
        self,
        limits: Sequence[Limit],
        usd: float,
        tokens: int = 0,
        *,
        ttl_s: float = 300.0,
        owner: str = "",
    ) -> Hold | Refusal:
        return self.hold(limits, usd, tokens, ttl_s=ttl_s, owner=owner)

    async def asettle(self, hold: Hold, record: SpendRecord, *, block: str | None = None) -> float:
        return self.settle(hold, record, block=block)

    async def arelease(self, hold: Hold) -> None:
        self.release(hold)

    async def aspent(self, run_key: str) -> float:
        return self.spent(run_key)

    async def ausage(self, scope: str) -> ScopeUsage:
        return self.usage(scope)


__all__ = ["MemoryLedger"]
