"""The I/O a call's decisions ask for, as small typed requests (the tier caller yields them; the
sync and async drivers perform them).

Each op says what it returns to the flow (``driver.perform(op)`` → value sent back); a tier
call's failure is thrown back into the flow, which classifies it.

Example:
    ```python
    op = HoldOp(tab, tier=2, usd=0.004)      # → Refusal | None
    ```
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from langchain_core.language_models import BaseChatModel

from aco_langchain.chat.fallback import Delivered
from aco_langchain.providers.deadline import Deadline
from aco_langchain.spend.gateway import Tab
from aco_langchain.spend.ledger.base import SpendRecord

# Not frozen: a frozen dataclass's __init__ goes through object.__setattr__ per field, and
# five ops are made per call. Nobody mutates an op after it is yielded.


@dataclass(slots=True)
class HoldOp:
    """Hold ``tier``'s worst case on the tab's budgets → ``Refusal | None``."""

    tab: Tab
    tier: int
    usd: float


@dataclass(slots=True)
class SettleOp:
    """Settle ``tier``'s answered call with ``record`` → None."""

    tab: Tab
    tier: int
    record: SpendRecord


@dataclass(slots=True)
class ReleaseOp:
    """Release the tab's hold (its tier did not answer) → None."""

    tab: Tab


@dataclass(slots=True)
class SpentOp:
    """Read the run's settled spend → float."""

    run_key: str


@dataclass(slots=True)
class SleepOp:
    """Wait before a retry → None."""

    seconds: float


@dataclass(slots=True)
class CallOp:
    """Call the tier's ``_generate``/``_agenerate`` under the call's deadline → ChatResult."""

    tier: int
    model: BaseChatModel
    kwargs: dict[str, Any]
    deadline: Deadline
    slice_s: float | None = None
    """This attempt's share of the deadline (room left to fall back); None: all of it."""

    def time_left(self) -> float:
        """Seconds this attempt may still run: its slice, within the deadline."""
        left = self.deadline.remaining()
        return left if self.slice_s is None else min(left, self.slice_s)


@dataclass(slots=True)
class StreamOp:
    """Stream the tier's answer to the caller chunk by chunk → None; the chunks handed out are
    in ``delivered``."""

    tier: int
    model: BaseChatModel
    kwargs: dict[str, Any]
    deadline: Deadline
    delivered: Delivered


class RunNotes(Protocol):
    """Where online learning remembers which cluster and tier answered a run
    (``routing.online_store``'s stores fit)."""

    def note(self, run_key: str, cluster: str, tier: int) -> None:
        """Remember it (blocking I/O)."""
        ...

    async def anote(self, run_key: str, cluster: str, tier: int) -> None:
        """Remember it (native async I/O)."""
        ...


@dataclass(slots=True)
class NoteOp:
    """Note that ``tier`` answered ``run_key`` on prompt cluster ``cluster`` (online
    learning: a later observed outcome of the run updates that posterior) → None."""

    notes: RunNotes
    run_key: str
    cluster: str
    tier: int


#: Every op a flow may yield.
Op = HoldOp | SettleOp | ReleaseOp | SpentOp | SleepOp | CallOp | StreamOp | NoteOp

__all__ = [
    "CallOp",
    "HoldOp",
    "NoteOp",
    "Op",
    "ReleaseOp",
    "RunNotes",
    "SettleOp",
    "SleepOp",
    "SpentOp",
    "StreamOp",
]
