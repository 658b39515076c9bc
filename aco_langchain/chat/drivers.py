"""The thin I/O under the tier caller's flows: a sync driver and an async one.

A driver runs a flow (``TierCaller.answer``/``stream``): it performs each op the flow yields
(ledger ops through the budget gateway, tier calls, sleeps) and sends the result back; a tier
call's failure is thrown back into the flow, which decides (retry, fall back, give up). When
the flow ends, however it ends (answer, error, an abandoned stream), the driver performs its
closing op (release the hold of a tier that did not answer). The async driver uses only
awaitable I/O: the ledger's native async methods, ``asyncio.sleep``, the tier's ``_agenerate``
and ``_astream``.

Example:
    ```python
    driver = SyncDriver(gateway, messages, stop, run_manager)
    result = driver.run(caller.answer(plan, tab), lambda: caller.closing(plan, tab))
    ```
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Callable, Generator, Iterator
from typing import Any, TypeVar

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk

from aco_langchain.chat.fallback import stream_deadline_error
from aco_langchain.chat.ops import (
    CallOp,
    HoldOp,
    NoteOp,
    Op,
    ReleaseOp,
    SettleOp,
    SleepOp,
    SpentOp,
    StreamOp,
)
from aco_langchain.errors import LedgerError
from aco_langchain.spend.gateway import BudgetGateway

logger = logging.getLogger(__name__)

T = TypeVar("T")
#: The op that ends a call, given whether a stream handed out part of an answer.
Closing = Callable[[bool], Op | None]


def _note_failed(op: NoteOp, err: LedgerError) -> None:
    # Learning is optional: the answer stands, the run just teaches nothing.
    logger.warning("online learning: run %s not noted (%s)", op.run_key, err)


class SyncDriver:
    """Performs a flow's ops with blocking I/O (``invoke``, ``stream``).

    Args:
        gateway: the budget gateway (ledger ops).
        messages: the call's messages.
        stop: stop sequences for the tier.
        run_manager: the LangChain run manager the tier reports under (None for a buffered
            stream's inner answer).
    """

    def __init__(
        self,
        gateway: BudgetGateway,
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_manager: CallbackManagerForLLMRun | None,
    ) -> None:
        self.gateway = gateway
        self.messages = messages
        self.stop = stop
        self.run_manager = run_manager

    def perform(self, op: Op) -> Any:
        """Do one op and return what the flow expects back."""
        if isinstance(op, CallOp):
            model = op.model
            if model.rate_limiter:
                model.rate_limiter.acquire(blocking=True)
            return model._generate(
                self.messages, stop=self.stop, run_manager=self.run_manager, **op.kwargs
            )
        if isinstance(op, HoldOp):
            return self.gateway.hold(op.tab, op.tier, op.usd)
        if isinstance(op, SettleOp):
            return self.gateway.settle(op.tab, op.tier, op.record)
        if isinstance(op, SpentOp):
            return self.gateway.spent(op.run_key)
        if isinstance(op, ReleaseOp):
            return self.gateway.release(op.tab)
        if isinstance(op, SleepOp):
            time.sleep(op.seconds)
            return None
        if isinstance(op, NoteOp):
            try:
                op.notes.note(op.run_key, op.cluster, op.tier)
            except LedgerError as err:
                _note_failed(op, err)
            return None
        raise TypeError(f"op {type(op).__name__} cannot be performed here")

    def run(self, flow: Generator[Op, Any, T], closing: Closing) -> T:
        """Drive ``flow`` to its value; perform its closing op whatever happens."""
        try:
            op = next(flow)
            while True:
                try:
                    value = self.perform(op)
                except Exception as exc:  # noqa: BLE001 - the flow classifies tier faults
                    op = flow.throw(exc)
                    continue
                op = flow.send(value)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        finally:
            self._close(closing(False))

    def stream(
        self, flow: Generator[Op, Any, ChatGenerationChunk], closing: Closing
    ) -> Iterator[ChatGenerationChunk]:
        """Drive a stream flow: the tier's chunks go out as they come, then the last chunk.
        A stream abandoned or failed after part of an answer is charged its worst case."""
        partial: StreamOp | None = None
        try:
            op = next(flow)
            while True:
                try:
                    if isinstance(op, StreamOp):
                        partial = op
                        yield from self._relay(op)
                        value = None
                    else:
                        value = self.perform(op)
                except Exception as exc:  # noqa: BLE001 - the flow classifies tier faults
                    op = flow.throw(exc)
                    continue
                op = flow.send(value)
        except StopIteration as done:
            yield done.value
        finally:
            self._close(closing(partial is not None and partial.delivered.answered))

    def _relay(self, op: StreamOp) -> Iterator[ChatGenerationChunk]:
        model = op.model
        if model.rate_limiter:
            model.rate_limiter.acquire(blocking=True)
        chunks = model._stream(self.messages, stop=self.stop, **op.kwargs)
        try:
            # Sync tiers we did not build cannot be cut mid-read: stop between chunks.
            for chunk in chunks:
                op.delivered.add(chunk)
                yield chunk
                if op.deadline.remaining() <= 0:
                    raise stream_deadline_error(op.deadline)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    def _close(self, op: Op | None) -> None:
        if op is not None:
            self.perform(op)


class AsyncDriver:
    """Performs a flow's ops with awaitable I/O only (``ainvoke``, ``astream``): nothing
    blocks the event loop.

    Args:
        gateway: the budget gateway (its ``a*`` methods).
        messages: the call's messages.
        stop: stop sequences for the tier.
        run_manager: the LangChain async run manager the tier reports under.
    """

    def __init__(
        self,
        gateway: BudgetGateway,
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_manager: AsyncCallbackManagerForLLMRun | None,
    ) -> None:
        self.gateway = gateway
        self.messages = messages
        self.stop = stop
        self.run_manager = run_manager

    async def perform(self, op: Op) -> Any:
        """Do one op and return what the flow expects back."""
        if isinstance(op, CallOp):
            model = op.model
            # The attempt's slice of the deadline around any tier, built or passed in.
            async with asyncio.timeout(op.time_left()):
                if model.rate_limiter:
                    await model.rate_limiter.aacquire(blocking=True)
                return await model._agenerate(
                    self.messages, stop=self.stop, run_manager=self.run_manager, **op.kwargs
                )
        if isinstance(op, HoldOp):
            return await self.gateway.ahold(op.tab, op.tier, op.usd)
        if isinstance(op, SettleOp):
            return await self.gateway.asettle(op.tab, op.tier, op.record)
        if isinstance(op, SpentOp):
            return await self.gateway.aspent(op.run_key)
        if isinstance(op, ReleaseOp):
            return await self.gateway.arelease(op.tab)
        if isinstance(op, SleepOp):
            await asyncio.sleep(op.seconds)
            return None
        if isinstance(op, NoteOp):
            try:
                await op.notes.anote(op.run_key, op.cluster, op.tier)
            except LedgerError as err:
                _note_failed(op, err)
            return None
        raise TypeError(f"op {type(op).__name__} cannot be performed here")

    async def run(self, flow: Generator[Op, Any, T], closing: Closing) -> T:
        """Drive ``flow`` to its value; perform its closing op whatever happens."""
        try:
            op = next(flow)
            while True:
                try:
                    value = await self.perform(op)
                except Exception as exc:  # noqa: BLE001 - the flow classifies tier faults
                    op = flow.throw(exc)
                    continue
                op = flow.send(value)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        finally:
            await self._close(closing(False))

    async def stream(
        self, flow: Generator[Op, Any, ChatGenerationChunk], closing: Closing
    ) -> AsyncGenerator[ChatGenerationChunk, None]:
        """Drive a stream flow (see :meth:`SyncDriver.stream`)."""
        partial: StreamOp | None = None
        try:
            op = next(flow)
            while True:
                try:
                    if isinstance(op, StreamOp):
                        partial = op
                        relay = self._relay(op)
                        try:
                            async for chunk in relay:
                                yield chunk
                        finally:
                            await relay.aclose()
                        value = None
                    else:
                        value = await self.perform(op)
                except Exception as exc:  # noqa: BLE001 - the flow classifies tier faults
                    op = flow.throw(exc)
                    continue
                op = flow.send(value)
        except StopIteration as done:
            yield done.value
        finally:
            await self._close(closing(partial is not None and partial.delivered.answered))

    async def _relay(self, op: StreamOp) -> AsyncGenerator[ChatGenerationChunk, None]:
        model = op.model
        chunks = model._astream(self.messages, stop=self.stop, **op.kwargs)
        try:
            async with asyncio.timeout(op.deadline.remaining()):
                if model.rate_limiter:
                    await model.rate_limiter.aacquire(blocking=True)
            while True:
                # Each chunk under what is left of the deadline (never across a yield).
                try:
                    async with asyncio.timeout(op.deadline.remaining()):
                        chunk = await anext(chunks)
                except StopAsyncIteration:
                    break
                op.delivered.add(chunk)
                yield chunk
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]  # the tier's async generator

    async def _close(self, op: Op | None) -> None:
        if op is not None:
            await self.perform(op)


__all__ = ["AsyncDriver", "Closing", "SyncDriver"]
