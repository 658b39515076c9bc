"""Where traces go: an append-only JSONL file, or memory (tests, notebooks).

The JSONL sink never leaves a half-written line for a reader: each trace is serialised
first and then written with a single ``os.write`` on an ``O_APPEND`` descriptor (one
``write(2)`` per line, so concurrent appenders on a local filesystem do not interleave).
If a process is killed mid-write anyway (or the disk fills), ``read_traces`` skips the
broken line and reports it instead of failing the whole file.

Usage::

    sink = JsonlTraceSink("traces/aco_traces.jsonl")
    sink.write(trace)
    result = read_traces("traces/aco_traces.jsonl")
    result.traces, result.problems      # parsed traces, [(line_no, why), ...]
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, Field, ValidationError

from aco_langchain.redact import mask
from aco_langchain.tracing.trace import Trace

#: The trace file ``aco stats`` reads when neither arguments nor ``trace_path`` say otherwise.
DEFAULT_TRACE_PATH = "traces/aco_traces.jsonl"


@runtime_checkable
class TraceSink(Protocol):
    """Anything that accepts finished traces."""

    def write(self, trace: Trace) -> None:
        """Persist one trace."""
        ...


class InMemoryTraceSink:
    """Keeps traces in a list (``.traces``).

    Usage::

        sink = InMemoryTraceSink(); opt = ACOOptimizer(sink=sink); ...; sink.traces[-1]
    """

    def __init__(self) -> None:
        self.traces: list[Trace] = []

    def write(self, trace: Trace) -> None:
        """Store a deep copy, so later edits to the live trace do not change it."""
        self.traces.append(trace.model_copy(deep=True))


class JsonlTraceSink:
    """Appends one JSON line per trace to ``path`` (parent directories are created).

    Usage::

        JsonlTraceSink("traces/aco_traces.jsonl").write(trace)
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def write(self, trace: Trace) -> None:
        """Append ``trace`` as one complete line, in one ``os.write``."""
        # Tool errors and prompts may hold a key: nothing secret reaches the file.
        data = (mask(trace.model_dump_json()) + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, data)
            if written != len(data):
                # A short write on a regular file means the disk is full or a quota hit:
                # cut the partial line back off so readers never see half a trace.
                # Only when nobody appended after us (else the reader flags the line).
                ours_end = os.lseek(fd, 0, os.SEEK_CUR)
                if ours_end == os.fstat(fd).st_size:
                    os.ftruncate(fd, max(0, ours_end - written))
                raise OSError(f"{self.path}: short write ({written} of {len(data)} bytes)")
        finally:
            os.close(fd)


class TraceReadResult(BaseModel):
    """Traces parsed from files, and the lines that could not be parsed."""

    traces: list[Trace] = Field(default_factory=list)
    problems: list[str] = Field(
        default_factory=list, description="'file:line: why' for each skipped line."
    )


def parse_trace_line(line: str) -> Trace:
    """One JSONL line to a Trace (raises ValueError with a short reason).

    Usage::

        parse_trace_line('{"request": "hi", "trace_id": "t1"}')
    """
    try:
        data = json.loads(line)
    except json.JSONDecodeError as err:
        raise ValueError(f"not valid JSON ({err.msg})") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    try:
        return Trace.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ValueError(f"not a trace: {loc}: {first['msg']}") from None


def read_traces(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
) -> TraceReadResult:
    """Read every trace from one or more JSONL files, skipping (and reporting) bad lines.

    A last line without its newline is reported as truncated (an interrupted write).
    Missing files raise FileNotFoundError.

    Usage::

        res = read_traces(["a.jsonl", "b.jsonl"]); len(res.traces)
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    result = TraceReadResult()
    for p in paths:
        path = Path(p)
        raw = path.read_bytes()
        lines = raw.split(b"\n")
        truncated_tail = bool(lines) and lines[-1] != b""
        for i, chunk in enumerate(lines, start=1):
            if not chunk.strip():
                continue
            try:
                result.traces.append(parse_trace_line(chunk.decode("utf-8")))
            except (ValueError, UnicodeDecodeError) as err:
                why = str(err)
                if truncated_tail and i == len(lines):
                    why = f"truncated last line (interrupted write?): {why}"
                result.problems.append(f"{path}:{i}: {why}")
    return result
