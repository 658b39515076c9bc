"""OpenAI's wire format <-> LangChain messages: pure functions, no I/O.

- :func:`to_messages`: request messages (string or content-part content, tool calls, tool
  results) as LangChain messages;
- :func:`completion`: an answered ``AIMessage`` as a ``chat.completion`` with our ``aco``
  object;
- :class:`ChunkWriter`: streamed ``AIMessageChunk`` s as ``chat.completion.chunk`` SSE events,
  a finish chunk, the usage chunk (``stream_options.include_usage``) and ``[DONE]``.

Example:
    ```python
    msgs = to_messages(request.messages)
    body = completion(answer, model="aco", aco=aco_object(answer, saved_cost_usd=0.01))
    ```
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, convert_to_messages

from aco_langchain.call_info import AcoCallInfo
from aco_langchain.chat.messages import message_text
from aco_langchain.server.schemas import ChatMessage

#: The fields of the response's ``aco`` object, in order (from ``response_metadata["aco"]``).
ACO_FIELDS = (
    "tier",
    "model_id",
    "cost_usd",
    "estimated_cost_usd",
    "reason",
    "cache_hit",
    "saved_cost_usd",
    "fallback_from",
    "routed_tier",
    "escalated",
    "predicted_success",
    "confidence",
    "task_type",
    "run_key",
    "latency_ms",
    "failures",
    "cached_cost_usd",
)


def to_messages(messages: Sequence[ChatMessage]) -> list[BaseMessage]:
    """Request messages as LangChain messages (``developer`` becomes a system message).

    Args:
        messages: the validated request messages.

    Returns:
        The LangChain messages, tool calls parsed from their JSON arguments.
    """
    dicts = []
    for m in messages:
        d = m.model_dump(exclude_none=True)
        d.setdefault("content", "")  # an assistant turn that only calls tools
        dicts.append(d)
    return convert_to_messages(dicts)


def usage_of(msg: BaseMessage) -> dict[str, int]:
    """OpenAI's ``usage`` object of an answer (zeros when the tier sent none)."""
    u = getattr(msg, "usage_metadata", None) or {}
    i = int(u.get("input_tokens") or 0)
    o = int(u.get("output_tokens") or 0)
    return {"prompt_tokens": i, "completion_tokens": o, "total_tokens": i + o}


def aco_object(msg: BaseMessage, **overrides: Any) -> dict[str, Any]:
    """The response's ``aco`` object from the answer's record (:class:`AcoCallInfo`)."""
    info = AcoCallInfo.from_message(msg)
    meta = info.to_metadata() if info is not None else {}
    out = {k: meta[k] for k in ACO_FIELDS if k in meta}
    out.setdefault("cache_hit", False)
    out.update(overrides)
    return out


def _tool_calls(msg: BaseMessage) -> list[dict[str, Any]]:
    return [
        {
            "id": tc.get("id") or f"call_{uuid.uuid4().hex[:24]}",
            "type": "function",
            "function": {"name": tc["name"], "arguments": json.dumps(tc["args"])},
        }
        for tc in getattr(msg, "tool_calls", None) or []
    ]


def finish_reason(msg: BaseMessage) -> str:
    """``tool_calls`` when the answer calls tools, else the tier's reason (``stop``)."""
    if getattr(msg, "tool_calls", None):
        return "tool_calls"
    return str((msg.response_metadata or {}).get("finish_reason") or "stop")


def completion_id() -> str:
    """A new ``chatcmpl-...`` id."""
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def completion(msg: AIMessage, *, model: str, aco: dict[str, Any]) -> dict[str, Any]:
    """An answer as OpenAI's ``chat.completion`` plus the ``aco`` object.

    Args:
        msg: the router's answer.
        model: the ``model`` to report when the tier named none.
        aco: the ``aco`` object (:func:`aco_object`).

    Returns:
        The response body.
    """
    tool_calls = _tool_calls(msg)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": message_text(msg) if (msg.content or not tool_calls) else None,
        "refusal": None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": str((msg.response_metadata or {}).get("model_name") or model),
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason(msg),
                "logprobs": None,
            }
        ],
        "usage": usage_of(msg),
        "system_fingerprint": None,
        "aco": aco,
    }


def sse(payload: dict[str, Any] | str) -> bytes:
    """One server-sent event (``data: ...``)."""
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


class ChunkWriter:
    """Turns a stream of ``AIMessageChunk`` s into ``chat.completion.chunk`` events.

    Args:
        model: the ``model`` to report until a tier names its own.
        include_usage: send the final usage chunk (``stream_options.include_usage``).

    Example:
        ```python
        w = ChunkWriter("aco", include_usage=True)
        events = [w.first()] + [e for c in chunks for e in w.chunk(c)] + w.end(aco)
        ```
    """

    def __init__(self, model: str, *, include_usage: bool) -> None:
        self.id = completion_id()
        self.created = int(time.time())
        self.model = model
        self.include_usage = include_usage
        self.merged: AIMessageChunk | None = None
        self._tool_index: dict[int, int] = {}

    def _event(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        return sse(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "system_fingerprint": None,
                "choices": choices,
                **extra,
            }
        )

    def first(self) -> bytes:
        """The opening chunk (``role: assistant``)."""
        return self._event(
            [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]
        )

    def chunk(self, chunk: AIMessageChunk) -> list[bytes]:
        """The events of one streamed chunk (content and tool-call deltas)."""
        self.merged = chunk if self.merged is None else self.merged + chunk  # type: ignore[assignment]
        name = (chunk.response_metadata or {}).get("model_name")
        if name:
            self.model = str(name)
        delta: dict[str, Any] = {}
        text = message_text(chunk)
        if text:
            delta["content"] = text
        calls = []
        for tc in chunk.tool_call_chunks or []:
            index = tc.get("index")
            index = index if isinstance(index, int) else len(self._tool_index)
            out: dict[str, Any] = {"index": index, "function": {}}
            if index not in self._tool_index:
                self._tool_index[index] = index
                out["id"] = tc.get("id") or f"call_{uuid.uuid4().hex[:24]}"
                out["type"] = "function"
                out["function"]["name"] = tc.get("name") or ""
            out["function"]["arguments"] = tc.get("args") or ""
            calls.append(out)
        if calls:
            delta["tool_calls"] = calls
        if not delta:
            return []
        return [self._event([{"index": 0, "delta": delta, "finish_reason": None}])]

    def replay(self, msg: AIMessage) -> list[bytes]:
        """A finished answer (from the cache) as content and tool-call deltas."""
        from aco_langchain.chat.messages import tool_call_chunks

        chunk = AIMessageChunk(
            content=msg.content,
            response_metadata=dict(msg.response_metadata),
            usage_metadata=msg.usage_metadata,
            tool_call_chunks=tool_call_chunks(msg),
        )
        return self.chunk(chunk)

    def answer(self) -> AIMessage:
        """Everything streamed so far as one message (for the cache and the usage)."""
        m = self.merged or AIMessageChunk(content="")
        return AIMessage(
            content=m.content,
            tool_calls=m.tool_calls,
            response_metadata=dict(m.response_metadata),
            usage_metadata=m.usage_metadata,
        )

    def end(self, aco: dict[str, Any]) -> list[bytes]:
        """The finish chunk, the usage chunk when asked for, and ``[DONE]``."""
        msg = self.answer()
        events = [
            self._event([{"index": 0, "delta": {}, "finish_reason": finish_reason(msg)}], aco=aco)
        ]
        if self.include_usage:
            events.append(self._event([], usage=usage_of(msg), aco=aco))
        events.append(sse("[DONE]"))
        return events


__all__ = [
    "ACO_FIELDS",
    "ChunkWriter",
    "aco_object",
    "completion",
    "finish_reason",
    "sse",
    "to_messages",
    "usage_of",
]
