"""Traces: the seed's Trace Format as pydantic models, a recorder, and sinks.

Usage::

    from aco_langchain.tracing import TraceRecorder, JsonlTraceSink, read_traces
    rec = TraceRecorder(request="Fix the auth bug", task_type="coding", predicted_tier=3)
    rec.record_model_call(model_id="medium-70b", tier=3, input_tokens=900, cost=0.27)
    JsonlTraceSink("traces/aco_traces.jsonl").write(rec.finish(task_success=True))
"""

from __future__ import annotations

from aco_langchain.tracing.sinks import (
    DEFAULT_TRACE_PATH,
    InMemoryTraceSink,
    JsonlTraceSink,
    TraceReadResult,
    TraceSink,
    parse_trace_line,
    read_traces,
)
from aco_langchain.tracing.trace import (
    SCHEMA_VERSION,
    FinalOutcome,
    ModelCall,
    ToolCall,
    Trace,
    TraceRecorder,
    TraceStep,
)

__all__ = [
    "DEFAULT_TRACE_PATH",
    "SCHEMA_VERSION",
    "FinalOutcome",
    "InMemoryTraceSink",
    "JsonlTraceSink",
    "ModelCall",
    "ToolCall",
    "Trace",
    "TraceReadResult",
    "TraceRecorder",
    "TraceSink",
    "TraceStep",
    "parse_trace_line",
    "read_traces",
]
