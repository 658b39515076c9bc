"""``TraceBuilder``: the callback events of a handler turned into seed-format traces.

The thread-safe core both trace handlers (``tracing/callback.py``) drive: it keeps the open
runs, groups them by root run, prices model calls, records tool calls, verifier calls and the
ending, and writes each finished trace to the sink.

Example:
    ```python
    from aco_langchain.tracing.builder import TraceBuilder
    from aco_langchain.tracing.sinks import InMemoryTraceSink

    core = TraceBuilder(ACOConfig(), InMemoryTraceSink())
    core.chain_start(run_id, None, inputs={"messages": [("user", "Fix it")]})
    ```
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from langchain_core.outputs import LLMResult

from aco_langchain.call_info import AcoCallInfo
from aco_langchain.chat.messages import message_text
from aco_langchain.config import ACOConfig
from aco_langchain.errors import ConfigError
from aco_langchain.redact import mask
from aco_langchain.tracing.names import (
    EVENT_OUTCOME,
    EVENT_STOP,
    EVENT_TOOL,
    EVENT_VERDICT,
    VERIFIER_TAG,
)
from aco_langchain.tracing.sinks import TraceSink
from aco_langchain.tracing.trace import FinalOutcome, Trace, TraceRecorder

logger = logging.getLogger(__name__)
#: Models already warned about as unpriced (one warning per model, not per call).
_UNPRICED: set[str] = set()

#: Finished traces kept on the handler (``.traces``).
MAX_KEPT_TRACES = 1000
_BUDGET_KINDS = {"budget_exhausted", "budget_projected", "budget_low"}


@dataclass
class _Run:
    kind: str  # "chain" | "llm" | "tool"
    parent: UUID | None
    root: UUID
    tags: list[str]
    metadata: dict[str, Any]
    name: str | None = None
    started: float = field(default_factory=time.perf_counter)
    model_hint: str | None = None
    call_id: str | None = None
    nested: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Open:
    """One trace being built (a root run, or an interrupted thread waiting to resume)."""

    recorder: TraceRecorder
    thread_id: str | None
    meta_seen: bool = False
    stop: dict[str, Any] | None = None
    outcome: dict[str, Any] | None = None
    last_verdict: bool | None = None
    verified: bool | None = None
    interrupted: bool = False


def _request_from(inputs: Any) -> str:
    """The task text of a root run's inputs (first human message, or a text field)."""
    if isinstance(inputs, str):
        return inputs
    if isinstance(inputs, Sequence) and not isinstance(inputs, str):
        for m in inputs:
            if isinstance(m, Sequence) and not isinstance(m, str) and m:
                got = _request_from(list(m)) if not isinstance(m[0], str) else None
                if got:
                    return got
            mtype = getattr(m, "type", None)
            if mtype == "human":
                return message_text(m.content)
            if isinstance(m, tuple) and len(m) == 2 and m[0] in ("user", "human"):
                return str(m[1])
            if isinstance(m, Mapping) and m.get("role") in ("user", "human"):
                return message_text(m.get("content"))
        return ""
    if isinstance(inputs, Mapping):
        for key in ("messages", "task", "input", "question", "query", "request", "prompt"):
            if key in inputs:
                got = _request_from(inputs[key])
                if got:
                    return got
    return ""


def _is_interrupt(error: BaseException) -> bool:
    return any(c.__name__ in ("GraphInterrupt", "NodeInterrupt") for c in type(error).__mro__)


def _usage_of(response: LLMResult) -> tuple[dict[str, Any] | None, Any]:
    """(usage dict, the generation's message) of a model run's result."""
    gens = response.generations[0] if response.generations else []
    msg = getattr(gens[0], "message", None) if gens else None
    usage = getattr(msg, "usage_metadata", None)
    if usage:
        return dict(usage), msg
    token_usage = (response.llm_output or {}).get("token_usage") or {}
    if token_usage:
        return {
            "input_tokens": int(token_usage.get("prompt_tokens") or 0),
            "output_tokens": int(token_usage.get("completion_tokens") or 0),
        }, msg
    return None, msg


class TraceBuilder:
    """The shared, thread-safe core of the sync and async trace handlers.

    Usage::

        core = TraceBuilder(ACOConfig(), InMemoryTraceSink())
    """

    def __init__(self, config: ACOConfig | None, sink: TraceSink) -> None:
        self.config = config or ACOConfig()
        self.sink = sink
        self.traces: deque[Trace] = deque(maxlen=MAX_KEPT_TRACES)
        self._lock = threading.RLock()
        self._runs: dict[UUID, _Run] = {}
        self._open: dict[UUID, _Open] = {}
        self._waiting: dict[str, _Open] = {}

    # ------------------------------------------------------------------ run tree
    def _register(
        self,
        kind: str,
        run_id: UUID,
        parent_run_id: UUID | None,
        tags: list[str] | None,
        metadata: dict[str, Any] | None,
        name: str | None,
        inputs: Any,
    ) -> _Run:
        parent = self._runs.get(parent_run_id) if parent_run_id is not None else None
        root = parent.root if parent is not None else run_id
        run = _Run(
            kind=kind,
            parent=parent_run_id if parent is not None else None,
            root=root,
            tags=list(tags or []),
            metadata=dict(metadata or {}),
            name=name,
        )
        self._runs[run_id] = run
        if parent is None:
            self._open_trace(run_id, run, inputs)
        return run

    def _open_trace(self, run_id: UUID, run: _Run, inputs: Any) -> None:
        thread = run.metadata.get("thread_id")
        thread_id = str(thread) if thread is not None else None
        if thread_id is not None and thread_id in self._waiting:
            opened = self._waiting.pop(thread_id)
            opened.interrupted = False
            self._open[run_id] = opened
            return
        request = _request_from(inputs) or (run.name or "run")
        # Task type, difficulty and predicted tier come from the first routed call's record
        # (AcoCallInfo): what the router that routed predicted, never a second routing here.
        rec = TraceRecorder(request=request)
        # The ledger's run key (chat/runs.py): outcomes reported later join on it.
        rec.trace.run_key = str(run.metadata.get("aco_run_id") or thread_id or run_id)
        self._open[run_id] = _Open(recorder=rec, thread_id=thread_id)

    def _trace_of(self, run_id: UUID) -> tuple[_Run, _Open] | None:
        run = self._runs.get(run_id)
        if run is None:
            return None
        opened = self._open.get(run.root)
        return None if opened is None else (run, opened)

    def _llm_ancestor(self, run: _Run) -> _Run | None:
        parent = self._runs.get(run.parent) if run.parent else None
        while parent is not None:
            if parent.kind == "llm":
                return parent
            parent = self._runs.get(parent.parent) if parent.parent else None
        return None

    # ------------------------------------------------------------------ starts
    def chain_start(self, run_id: UUID, parent_run_id: UUID | None, **kw: Any) -> None:
        with self._lock:
            self._register(
                "chain",
                run_id,
                parent_run_id,
                kw.get("tags"),
                kw.get("metadata"),
                kw.get("name"),
                kw.get("inputs"),
            )

    def llm_start(
        self, run_id: UUID, parent_run_id: UUID | None, inputs: Any, serialized: Any, **kw: Any
    ) -> None:
        with self._lock:
            run = self._register(
                "llm",
                run_id,
                parent_run_id,
                kw.get("tags"),
                kw.get("metadata"),
                kw.get("name"),
                inputs,
            )
            params = kw.get("invocation_params") or {}
            run.model_hint = (
                params.get("model")
                or params.get("model_name")
                or run.metadata.get("ls_model_name")
                or (serialized or {}).get("kwargs", {}).get("model_name")
            )

    def tool_start(
        self, run_id: UUID, parent_run_id: UUID | None, serialized: Any, inputs: Any, **kw: Any
    ) -> None:
        with self._lock:
            name = kw.get("name") or (serialized or {}).get("name") or "tool"
            run = self._register(
                "tool", run_id, parent_run_id, kw.get("tags"), kw.get("metadata"), name, inputs
            )
            run.call_id = kw.get("tool_call_id")

    # ------------------------------------------------------------------ model calls
    def _model_record(self, run: _Run, response: LLMResult) -> dict[str, Any]:
        usage, msg = _usage_of(response)
        info = AcoCallInfo.from_message(msg) or AcoCallInfo.from_metadata(
            (response.llm_output or {}).get("aco")
        )
        given = info.model_fields_set if info is not None else set()
        i = int((usage or {}).get("input_tokens") or 0)
        o = int((usage or {}).get("output_tokens") or 0)
        rm = getattr(msg, "response_metadata", None) or {}
        name = (
            (info.model_id if info is not None else None)
            or rm.get("model_name")
            or (response.llm_output or {}).get("model_name")
            or run.model_hint
            or "unknown"
        )
        tier = info.tier if info is not None and "tier" in given else None
        tier = tier or run.metadata.get("aco_tier")
        if tier is None:
            tier = self.config.tier_of_model(str(name)) or (
                self.config.tier_of_model(str(run.model_hint)) if run.model_hint else None
            )
        if info is not None and "cost_usd" in given:
            cost = info.cost_usd  # priced by the router that made the call: not re-priced
        else:
            cost = self._price(tier, str(name), run.metadata.get("ls_provider"), i, o)
        tier_n = int(tier) if tier in (1, 2, 3, 4, 5) else 1
        model_id = (info.model_id if info is not None else None) or (
            self.config.tier(tier_n).model_id if tier is not None else str(name)
        )
        return {
            "has_usage": usage is not None or "cost_usd" in given,
            "model_id": str(model_id),
            "tier": tier_n,
            "input_tokens": i,
            "output_tokens": o,
            "cost": cost,
            "escalated": bool(
                (info is not None and info.escalated) or run.metadata.get("aco_escalated")
            ),
            "cache_hit": bool(info is not None and info.cache_hit),
            "fallback_from": info.fallback_from if info is not None else None,
            "latency_ms": round((time.perf_counter() - run.started) * 1000, 2),
            "action": run.metadata.get("aco_action"),
            "info": info,
            "verifier": VERIFIER_TAG in run.tags or run.metadata.get("aco_role") == "verifier",
        }

    def _price(self, tier: Any, name: str, provider: Any, i: int, o: int) -> float:
        from aco_langchain.pricing import cost_usd, genai_price_per_1k

        if tier in (1, 2, 3, 4, 5):
            try:
                return cost_usd(self.config.tier(int(tier)), i, o)
            except ConfigError as err:  # no configured price: genai-prices below
                logger.debug("tier %s has no configured price (%s): trying genai-prices", tier, err)
        found = genai_price_per_1k(str(provider or "openai"), name)
        if found is None:
            # Recorded at $0, but said: a trace with a silently free cloud call would mislead.
            if name in _UNPRICED:
                return 0.0
            _UNPRICED.add(name)
            logger.warning(
                "no price known for model %r (provider %s): its %d+%d tokens are traced at $0; "
                "set the tier's cost_per_1k_input/output",
                name,
                provider,
                i,
                o,
            )
            return 0.0
        return (i * found[0] + o * found[1]) / 1000.0

    def _apply_model(self, opened: _Open, rec: dict[str, Any]) -> None:
        recorder = opened.recorder
        if rec["verifier"]:
            recorder.record_verifier_call(cost=rec["cost"])
            return
        info: AcoCallInfo | None = rec["info"]
        if info is not None and not opened.meta_seen:
            opened.meta_seen = True
            t = recorder.trace
            if info.task_type:
                t.task_type = str(info.task_type)
            if info.difficulty in (1, 2, 3, 4, 5):
                t.difficulty = int(info.difficulty)
            routed = info.routed_tier or (info.tier if "tier" in info.model_fields_set else None)
            if routed in (1, 2, 3, 4, 5):
                t.predicted_tier = int(routed)
        fb = rec["fallback_from"]
        recorder.record_model_call(
            model_id=rec["model_id"],
            tier=rec["tier"],
            input_tokens=rec["input_tokens"],
            output_tokens=rec["output_tokens"],
            cost=rec["cost"],
            escalated=rec["escalated"],
            cache_hit=rec["cache_hit"],
            fallback_from=int(fb) if fb in (1, 2, 3, 4, 5) else None,
            latency_ms=rec["latency_ms"],
            action=rec["action"],
        )
        opened.last_verdict = None

    def llm_end(self, run_id: UUID, response: LLMResult) -> None:
        with self._lock:
            found = self._trace_of(run_id)
            if found is None:
                return
            run, opened = found
            rec = self._model_record(run, response)
            outer = self._llm_ancestor(run)
            if outer is not None:
                outer.nested.append(rec)  # counted only if the outer run has no usage
                return
            if not rec["has_usage"] and run.nested:
                for inner in run.nested:
                    self._apply_model(opened, inner)
            else:
                self._apply_model(opened, rec)
            if run.parent is None:
                self._finish(run_id, opened, output=response, error=None)

    def llm_error(self, run_id: UUID, error: BaseException) -> None:
        self._end_run(run_id, None, error)

    # ------------------------------------------------------------------ tools
    def tool_end(self, run_id: UUID, output: Any) -> None:
        with self._lock:
            found = self._trace_of(run_id)
            if found is not None:
                run, opened = found
                ok = getattr(output, "status", "success") != "error"
                err = None if ok else message_text(getattr(output, "content", ""))[:300]
                self._tool(opened, run, ok, err)
        self._end_run(run_id, output, None)

    def tool_error(self, run_id: UUID, error: BaseException) -> None:
        with self._lock:
            found = self._trace_of(run_id)
            if found is not None and not _is_interrupt(error):
                run, opened = found
                self._tool(opened, run, False, f"{type(error).__name__}: {error}"[:300])
        self._end_run(run_id, None, error)

    def _tool(self, opened: _Open, run: _Run, ok: bool, error: str | None) -> None:
        from aco_langchain.pricing import tool_cost

        name = run.name or "tool"
        opened.recorder.record_tool_call(
            name,
            success=ok,
            cost=tool_cost(name, self.config),
            error=mask(error) if error else error,  # a tool error may quote a key
            latency_ms=round((time.perf_counter() - run.started) * 1000, 3),
            call_id=run.call_id,
        )

    def _agent_tool(self, opened: _Open, data: Mapping[str, Any]) -> None:
        """The agent's record of a tool call: its cost (the agent's config wins over the
        handler's), or the whole call when it never ran (declined)."""
        call_id = data.get("id")
        step = opened.recorder.current_step()
        ran = next(
            (c for c in (step.tool_calls if step else []) if call_id and c.call_id == call_id),
            None,
        )
        if ran is not None:
            ran.cost = float(data.get("cost") or 0.0)
            return
        reason = data.get("reason") or data.get("error")
        opened.recorder.record_tool_call(
            str(data.get("name") or "tool"),
            success=bool(data.get("success")),
            cost=float(data.get("cost") or 0.0),
            error=mask(str(reason)) if reason else None,
            skipped=bool(data.get("skipped")),
            call_id=call_id,
        )

    # ------------------------------------------------------------------ custom events
    def custom_event(self, name: str, data: Any, run_id: UUID) -> None:
        with self._lock:
            found = self._trace_of(run_id)
            if found is None:
                return
            _run, opened = found
            data = dict(data) if isinstance(data, Mapping) else {"value": data}
            if name == EVENT_VERDICT:
                passed = data.get("passed")
                step = opened.recorder.current_step()
                if step is not None and step.verifier_called:
                    step.verifier_passed = passed
                    step.verifier_verdicts.append(passed)
                opened.last_verdict = passed
                opened.verified = passed
            elif name == EVENT_STOP:
                opened.stop = data
            elif name == EVENT_OUTCOME:
                opened.outcome = data
            elif name == EVENT_TOOL:
                self._agent_tool(opened, data)

    # ------------------------------------------------------------------ ends
    def chain_end(self, run_id: UUID, outputs: Any) -> None:
        self._end_run(run_id, outputs, None)

    def chain_error(self, run_id: UUID, error: BaseException) -> None:
        self._end_run(run_id, None, error)

    def _end_run(self, run_id: UUID, output: Any, error: BaseException | None) -> None:
        with self._lock:
            found = self._trace_of(run_id)
            if found is None:
                self._runs.pop(run_id, None)
                return
            run, opened = found
            if error is not None and _is_interrupt(error):
                opened.interrupted = True
            if run.parent is None:
                self._finish(run_id, opened, output=output, error=error)

    def _finish(
        self, root: UUID, opened: _Open, *, output: Any, error: BaseException | None
    ) -> None:
        self._open.pop(root, None)
        for rid in [r for r, info in self._runs.items() if info.root == root]:
            del self._runs[rid]
        paused = opened.interrupted if error is None else _is_interrupt(error)
        if paused and opened.thread_id is not None:
            self._waiting[opened.thread_id] = opened
            return
        trace = self._close(opened, output, error)
        self.traces.append(trace)
        self.sink.write(trace)

    def _close(self, opened: _Open, output: Any, error: BaseException | None) -> Trace:
        claimed = _claimed_done(output)
        kw: dict[str, Any] = {"claimed_done": claimed, "verified": opened.verified}
        if error is not None and not _is_interrupt(error):
            return opened.recorder.finish(task_success=False, final_outcome="error", **kw)
        if opened.interrupted:
            return opened.recorder.finish(task_success=False, final_outcome="in_progress", **kw)
        if opened.outcome is not None:
            reported = opened.outcome.get("task_success")  # no default: unknown stays unknown
            success = None if reported is None else bool(reported)
            outcome: FinalOutcome | None = opened.outcome.get("final_outcome")
            return opened.recorder.finish(
                task_success=success,
                final_outcome=outcome,
                doom_reason=opened.outcome.get("doom_reason"),
                **kw,
            )
        if opened.stop is not None:
            kind = str(opened.stop.get("kind") or "doomed")
            return opened.recorder.finish(
                task_success=False,
                final_outcome="budget_exceeded" if kind in _BUDGET_KINDS else "doomed",
                doom_reason=str(opened.stop.get("reason") or kind),
                claimed_done=False,
                verified=opened.verified,
            )
        if opened.last_verdict is False:
            return opened.recorder.finish(task_success=False, final_outcome="failed", **kw)
        if claimed is False:  # the run ended without a final answer: observed, failed
            return opened.recorder.finish(task_success=False, **kw)
        # A verifier's verdict is an observed outcome; a final answer alone is not.
        return opened.recorder.finish(
            task_success=True if opened.last_verdict is True else None, **kw
        )

    def flush_waiting(self) -> list[Trace]:
        """Write the traces of runs still waiting at an interrupt (as ``in_progress``)."""
        with self._lock:
            waiting = list(self._waiting.values())
            self._waiting.clear()
            out = []
            for opened in waiting:
                trace = opened.recorder.finish(task_success=False, final_outcome="in_progress")
                self.traces.append(trace)
                self.sink.write(trace)
                out.append(trace)
            return out


def _claimed_done(output: Any) -> bool | None:
    """Did the run end with a final answer (an AI message without tool calls)?"""
    if isinstance(output, LLMResult):
        return True
    messages = output.get("messages") if isinstance(output, Mapping) else None
    if not messages:
        return None
    last = messages[-1]
    if getattr(last, "type", None) != "ai":
        return False
    return not (getattr(last, "name", None) == "aco" or getattr(last, "tool_calls", None))


__all__ = ["MAX_KEPT_TRACES", "TraceBuilder"]
