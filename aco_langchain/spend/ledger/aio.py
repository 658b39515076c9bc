"""Async helpers shared by the ledgers' native async methods."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from aco_langchain.spend.ledger.base import Hold, Refusal

logger = logging.getLogger(__name__)

#: Releases started for holds whose caller was cancelled (kept so they are not collected).
_PENDING: set[asyncio.Task[Any]] = set()


async def release_if_cancelled(
    hold: Coroutine[Any, Any, Hold | Refusal], release: Callable[[Hold], Awaitable[None]]
) -> Hold | Refusal:
    """Await ``hold``; if the caller is cancelled meanwhile, let it finish and give the hold
    back, so a cancelled request never keeps budget held until the hold's TTL.

    Args:
        hold: the coroutine taking the hold (e.g. ``ledger._arun(...)``).
        release: the ledger's ``arelease``.

    Returns:
        What ``hold`` returned.

    Raises:
        asyncio.CancelledError: the caller was cancelled (the hold is released behind it).
    """
    task = asyncio.ensure_future(hold)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:

        def _undo(done: asyncio.Task[Hold | Refusal]) -> None:
            if done.cancelled() or done.exception() is not None:
                return
            got = done.result()
            if isinstance(got, Hold):
                logger.info("ledger: hold %s released (its caller was cancelled)", got.id)
                undo = asyncio.ensure_future(release(got))
                _PENDING.add(undo)
                undo.add_done_callback(_released)

        task.add_done_callback(_undo)
        raise


def _released(undo: asyncio.Task[None]) -> None:
    _PENDING.discard(undo)
    if not undo.cancelled() and (err := undo.exception()) is not None:
        logger.warning("ledger: releasing a cancelled caller's hold failed (%s): it expires", err)


__all__ = ["release_if_cancelled"]
