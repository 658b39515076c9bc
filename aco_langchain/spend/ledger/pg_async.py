"""The async Postgres connections of one event loop, with no background tasks.

psycopg_pool's ``AsyncConnectionPool`` runs worker and scheduler tasks on the loop; its
scheduler catches ``CancelledError`` while a maintenance task runs, so ``asyncio.run``'s
shutdown (which cancels every task and waits for them) can wait forever when the pool was
not closed first. A script that calls ``ainvoke`` under ``asyncio.run`` must never hang at
exit, so each loop keeps a few idle connections itself: taken under a semaphore, given back
when they are clean, closed when they are not. Nothing runs between calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any


class LoopConnections:
    """At most ``max_size`` connections of the running loop, reused while idle.

    Example:
        ```python
        conns = LoopConnections(dsn, {"autocommit": True}, max_size=4)
        async with conns.connection() as conn:
            await conn.execute("SELECT 1")
        await conns.close()
        ```
    """

    def __init__(self, dsn: str, kwargs: dict[str, Any], max_size: int) -> None:
        self.dsn = dsn
        self.kwargs = kwargs
        self._idle: list[Any] = []
        self._slots = asyncio.Semaphore(max(1, max_size))

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        """A connection for one statement or transaction; back to the idle set when clean.

        Raises:
            psycopg.OperationalError: the database cannot be reached.
        """
        import psycopg
        from psycopg.pq import TransactionStatus

        async with self._slots:
            conn = self._idle.pop() if self._idle else None
            if conn is None or conn.closed:
                conn = await psycopg.AsyncConnection.connect(self.dsn, **self.kwargs)
            clean = False
            try:
                yield conn
                clean = not conn.closed and conn.info.transaction_status == TransactionStatus.IDLE
            finally:
                if clean:
                    self._idle.append(conn)
                else:
                    # A failed or cancelled statement may leave the connection mid-transaction.
                    await conn.close()

    async def close(self) -> None:
        """Close the idle connections (the ones in use close when given back broken)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()


__all__ = ["LoopConnections"]
