"""``ACOTraceCallbackHandler``: seed-format traces from the callback events of any chain/graph.

Attach it to any LangChain runnable or LangGraph graph; every **root run** (a run whose
parent this handler has not seen) becomes one ``Trace``:

- **model calls** (``on_llm_end``): tier, model, tokens and cost from
  ``response_metadata["aco"]`` when the ``ACORouterChatModel`` answered; otherwise the tier
  is found from the run's ``aco_tier`` metadata or the model name in the config's tier table,
  and the usage is priced at that tier (genai-prices for models outside the table);
- **tool calls** (``on_tool_end`` / ``on_tool_error``): success (an error ``ToolMessage``
  counts as a failure) and cost (``config.agent.tool_costs`` or the gate's defaults);
- **verifier calls**: model runs tagged ``aco:verifier`` (or with metadata
  ``aco_role="verifier"``) mark the current step as verified; the verdict comes from the
  ``aco_verifier_verdict`` custom event the graph nodes dispatch;
- the ending: the ``aco_stop`` custom event (doom / budget) sets ``final_outcome`` and
  ``doom_reason``; an ``aco_outcome`` custom event (``{"task_success": bool, ...}``) lets any
  chain say how it ended; an exception gives ``error``; otherwise a final answer without tool
  calls is ``completed``. A LangGraph run that stops at an ``interrupt`` stays open and is
  continued by the resumed run of the same ``thread_id``;
- observed outcomes are also WRITTEN to the outcome store (``spend/outcomes.py``, one row
  per run key, source ``event`` or ``verifier``) when the run ends, so ``aco stats``, ``aco
  spend``, the dashboard and online learning count them: an ``aco_outcome`` event with a
  ``task_success`` (and an optional ``score``), or the verifier's verdict on the final answer
  (a failed verdict is a failure; a verifier that said neither observes nothing). The store is
  ``outcomes=`` (a store or a ledger URL), else the one beside the config's ledger. The async
  handler writes with the store's native async methods; the sync handler, called inside a
  running event loop, hands the write to that loop as a task (``await handler.adrain()``
  waits for them): neither blocks the loop.

No double counting: usage is counted once per model call. A model run nested inside another
model run (a wrapper that calls an inner model's ``invoke``) is only counted when the outer
run reported no usage of its own; LangSmith tracing is a separate handler and changes
nothing here.

``ACOTraceCallbackHandler`` (sync) and ``AsyncACOTraceCallbackHandler`` share one
thread-safe implementation (``TraceBuilder``).

Usage::

    from aco_langchain.tracing.callback import ACOTraceCallbackHandler
    handler = ACOTraceCallbackHandler("traces/aco_traces.jsonl")
    graph.invoke({"messages": [("user", "Fix the bug")]}, {"callbacks": [handler]})
    handler.traces[-1].total_cost
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from pathlib import Path
from typing import Any
from uuid import UUID

from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
from langchain_core.outputs import LLMResult

from aco_langchain.config import ACOConfig
from aco_langchain.errors import LedgerError
from aco_langchain.spend.outcomes import Outcome, OutcomeStore, open_outcomes
from aco_langchain.tracing.builder import TraceBuilder
from aco_langchain.tracing.names import EVENT_OUTCOME, EVENT_STOP, EVENT_VERDICT, VERIFIER_TAG
from aco_langchain.tracing.sinks import InMemoryTraceSink, JsonlTraceSink, TraceSink
from aco_langchain.tracing.trace import Trace

logger = logging.getLogger(__name__)


def _make_sink(sink: TraceSink | str | os.PathLike[str] | None, config: ACOConfig) -> TraceSink:
    if sink is None:
        return JsonlTraceSink(config.trace_path) if config.trace_path else InMemoryTraceSink()
    if isinstance(sink, (str, os.PathLike)):
        return JsonlTraceSink(Path(sink))
    return sink


class _HandlerMixin:
    """The construction and public surface both handlers share."""

    raise_error = False
    run_inline = True
    core: TraceBuilder

    def __init__(
        self,
        sink: TraceSink | str | os.PathLike[str] | None = None,
        *,
        config: ACOConfig | None = None,
        outcomes: OutcomeStore | str | None = None,
    ) -> None:
        super().__init__()
        cfg = config or ACOConfig()
        self.core = TraceBuilder(cfg, _make_sink(sink, cfg))
        self._store: OutcomeStore | None = outcomes if isinstance(outcomes, OutcomeStore) else None
        self._store_url = outcomes if isinstance(outcomes, str) else None
        self._store_lock = threading.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def outcomes(self) -> OutcomeStore:
        """Where observed outcomes are written (opened on first use).

        Raises:
            LedgerError: the store's database cannot be opened.
        """
        with self._store_lock:
            if self._store is None:
                self._store = open_outcomes(self._store_url, self.core.config)
            return self._store

    def _write(self, outcome: Outcome) -> None:
        """Write one observed outcome (blocking I/O: never called inside an event loop)."""
        try:
            self.outcomes.record(
                outcome.run_key, success=outcome.success, score=outcome.score, source=outcome.source
            )
        except LedgerError as err:
            logger.warning("run %s: outcome not stored: %s", outcome.run_key, err)

    async def _awrite(self, outcome: Outcome) -> None:
        """Write one observed outcome without blocking the loop (the store's async I/O; its
        first opening, which creates the table, in a worker thread)."""
        try:
            store = self._store
            if store is None:
                store = await asyncio.to_thread(lambda: self.outcomes)
            await store.arecord(
                outcome.run_key, success=outcome.success, score=outcome.score, source=outcome.source
            )
        except LedgerError as err:
            logger.warning("run %s: outcome not stored: %s", outcome.run_key, err)

    async def adrain(self) -> None:
        """Wait for the outcome writes the sync handler handed to the running event loop."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    @property
    def traces(self) -> list[Trace]:
        """Finished traces (the latest ``MAX_KEPT_TRACES``)."""
        return list(self.core.traces)

    @property
    def sink(self) -> TraceSink:
        """Where finished traces are written."""
        return self.core.sink

    def flush_waiting(self) -> list[Trace]:
        """Write runs still waiting at an interrupt as ``in_progress`` traces."""
        return self.core.flush_waiting()


class ACOTraceCallbackHandler(_HandlerMixin, BaseCallbackHandler):
    """Sync callback handler writing one seed-format trace per root run.

    ``sink``: a ``TraceSink``, a JSONL path, or None (``config.trace_path``, else memory).

    Example:
        ```python
        h = ACOTraceCallbackHandler("traces/aco_traces.jsonl")
        chain.invoke(inputs, config={"callbacks": [h]})
        ```
    """

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, **kw: Any) -> None:
        self.core.chain_start(run_id, kw.pop("parent_run_id", None), inputs=inputs, **kw)

    def on_chat_model_start(
        self, serialized: Any, messages: Any, *, run_id: UUID, **kw: Any
    ) -> None:
        self.core.llm_start(run_id, kw.pop("parent_run_id", None), messages, serialized, **kw)

    def on_llm_start(self, serialized: Any, prompts: Any, *, run_id: UUID, **kw: Any) -> None:
        self.core.llm_start(run_id, kw.pop("parent_run_id", None), prompts, serialized, **kw)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kw: Any) -> None:
        self.core.llm_end(run_id, response)
        self._store_observed()

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kw: Any) -> None:
        self.core.llm_error(run_id, error)
        self._store_observed()

    def on_tool_start(self, serialized: Any, input_str: str, *, run_id: UUID, **kw: Any) -> None:
        inputs = kw.pop("inputs", None) or input_str
        self.core.tool_start(run_id, kw.pop("parent_run_id", None), serialized, inputs, **kw)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kw: Any) -> None:
        self.core.tool_end(run_id, output)
        self._store_observed()

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kw: Any) -> None:
        self.core.tool_error(run_id, error)
        self._store_observed()

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kw: Any) -> None:
        self.core.chain_end(run_id, outputs)
        self._store_observed()

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kw: Any) -> None:
        self.core.chain_error(run_id, error)
        self._store_observed()

    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kw: Any) -> None:
        self.core.custom_event(name, data, run_id)

    def _store_observed(self) -> None:
        if not self.core.has_observed:
            return
        observed = self.core.take_observed()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop in this thread: a plain blocking write
            for outcome in observed:
                self._write(outcome)
            return
        # Called inline inside an async run: hand the writes to the loop, never block it.
        for outcome in observed:
            task = loop.create_task(self._awrite(outcome))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)


class AsyncACOTraceCallbackHandler(_HandlerMixin, AsyncCallbackHandler):
    """Async variant of ``ACOTraceCallbackHandler`` (same implementation, same traces).

    Example:
        ```python
        h = AsyncACOTraceCallbackHandler(InMemoryTraceSink())
        await graph.ainvoke(inputs, {"callbacks": [h]})
        ```
    """

    async def on_chain_start(
        self, serialized: Any, inputs: Any, *, run_id: UUID, **kw: Any
    ) -> None:
        self.core.chain_start(run_id, kw.pop("parent_run_id", None), inputs=inputs, **kw)

    async def on_chat_model_start(
        self, serialized: Any, messages: Any, *, run_id: UUID, **kw: Any
    ) -> None:
        self.core.llm_start(run_id, kw.pop("parent_run_id", None), messages, serialized, **kw)

    async def on_llm_start(self, serialized: Any, prompts: Any, *, run_id: UUID, **kw: Any) -> None:
        self.core.llm_start(run_id, kw.pop("parent_run_id", None), prompts, serialized, **kw)

    async def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kw: Any) -> None:
        self.core.llm_end(run_id, response)
        await self._astore_observed()

    async def on_llm_error(self, error: BaseException, *, run_id: UUID, **kw: Any) -> None:
        self.core.llm_error(run_id, error)
        await self._astore_observed()

    async def on_tool_start(
        self, serialized: Any, input_str: str, *, run_id: UUID, **kw: Any
    ) -> None:
        inputs = kw.pop("inputs", None) or input_str
        self.core.tool_start(run_id, kw.pop("parent_run_id", None), serialized, inputs, **kw)

    async def on_tool_end(self, output: Any, *, run_id: UUID, **kw: Any) -> None:
        self.core.tool_end(run_id, output)
        await self._astore_observed()

    async def on_tool_error(self, error: BaseException, *, run_id: UUID, **kw: Any) -> None:
        self.core.tool_error(run_id, error)
        await self._astore_observed()

    async def on_chain_end(self, outputs: Any, *, run_id: UUID, **kw: Any) -> None:
        self.core.chain_end(run_id, outputs)
        await self._astore_observed()

    async def on_chain_error(self, error: BaseException, *, run_id: UUID, **kw: Any) -> None:
        self.core.chain_error(run_id, error)
        await self._astore_observed()

    async def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kw: Any) -> None:
        self.core.custom_event(name, data, run_id)

    async def _astore_observed(self) -> None:
        if self.core.has_observed:
            for outcome in self.core.take_observed():
                await self._awrite(outcome)


__all__ = [
    "EVENT_OUTCOME",
    "EVENT_STOP",
    "EVENT_VERDICT",
    "VERIFIER_TAG",
    "ACOTraceCallbackHandler",
    "AsyncACOTraceCallbackHandler",
    "TraceBuilder",
]
