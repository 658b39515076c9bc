"""Who owns a hold, and what happens to a hold whose time ran out.

Every hold records the process that took it as ``host:pid:start`` (``start`` is the process's
start time in clock ticks since boot, from ``/proc/<pid>/stat``, so a recycled pid is not
mistaken for the owner). When a hold expires, the ledger decides its fate with
:func:`expired_hold_fate`:

- its owner is alive on this host -> **release** (the owner outlived the hold's TTL, which is
  at least the call's deadline, so the call is over and the owner lost track of the hold);
- its owner is gone (same host, pid gone or started at another time) -> **settle at the hold's
  worst case**: the process may have died after the provider billed the call, and a ledger
  must never record less than was billed;
- its owner ran on another host -> **settle at the worst case** too: liveness cannot be
  checked from here, and the conservative reading for money is that the call was billed;
- no owner recorded (holds from before schema 2) -> release, as before.

The liveness probe reads ``/proc``: call :func:`live_processes` off the event loop.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterable
from functools import lru_cache
from typing import Literal

from aco_langchain.spend.ledger.base import SpendRecord

logger = logging.getLogger(__name__)

Fate = Literal["release", "settle"]


def _start_ticks(pid: int) -> str | None:
    """The start time of ``pid`` (clock ticks after boot), or None when it does not run."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ")".
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


@lru_cache(maxsize=1)
def _host() -> str:
    return socket.gethostname()


_IDENTITY: tuple[int, str] | None = None


def process_identity() -> str:
    """This process as ``host:pid:start`` (recomputed after ``fork``).

    Example:
        ```python
        process_identity()   # 'box-1:4242:1234567'
        ```
    """
    global _IDENTITY
    pid = os.getpid()
    if _IDENTITY is None or _IDENTITY[0] != pid:
        _IDENTITY = (pid, f"{_host()}:{pid}:{_start_ticks(pid) or '?'}")
    return _IDENTITY[1]


def live_processes(identities: Iterable[str]) -> frozenset[str]:
    """Those of ``identities`` that run now on this host (reads ``/proc``; blocking).

    Other hosts' identities are never in the result: they cannot be checked from here.
    """
    host = _host()
    alive = set()
    for ident in set(identities):
        parts = ident.rsplit(":", 2)
        if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
            continue
        if _start_ticks(int(parts[1])) == parts[2]:
            alive.add(ident)
    return frozenset(alive)


def expired_hold_fate(process: str, alive: frozenset[str]) -> Fate:
    """What to do with an expired hold taken by ``process``; pure (see the module doc).

    Args:
        process: the hold's ``host:pid:start`` ('' when unknown).
        alive: the result of :func:`live_processes` over the expired holds' owners.

    Returns:
        ``"release"`` or ``"settle"`` (at the hold's worst case).
    """
    if not process or process in alive:
        return "release"
    return "settle"


def orphan_record(scopes: Iterable[str], usd: float, tokens: int, label: str) -> SpendRecord:
    """The spend row of a hold settled at its worst case because its owner is gone.

    The row is charged to the hold's ``run:`` scope ('' if it had none), carries the hold's
    owner label (the call's trace id) as ``trace_id``, its worst-case USD as the cost and its
    worst-case tokens as output tokens, with outcome ``orphaned``.
    """
    run_key = next((s[len("run:") :] for s in scopes if s.startswith("run:")), "")
    return SpendRecord(
        run_key=run_key,
        cost_usd=float(usd),
        output_tokens=int(tokens),
        outcome="orphaned",
        trace_id=label or None,
    )


__all__ = [
    "Fate",
    "expired_hold_fate",
    "live_processes",
    "orphan_record",
    "process_identity",
]
