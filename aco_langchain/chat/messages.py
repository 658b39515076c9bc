"""Small helpers on LangChain messages shared by the chat model, graphs and middleware.

Usage::

    message_text(AIMessage([{"type": "text", "text": "hi"}]))   # 'hi'
    tool_call_chunks(ai_message)                                  # for a re-chunked answer
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.messages.tool import ToolCallChunk, tool_call_chunk


def message_text(message: Any) -> str:
    """The text of a message (string content or the text blocks of a list)."""
    content = getattr(message, "content", message)
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and isinstance(block.get("text"), str):
            parts.append(block["text"])
    return "\n".join(parts)


def tool_call_chunks(message: Any) -> list[ToolCallChunk]:
    """A finished message's tool calls as stream chunks (arguments as JSON text).

    Usage::

        AIMessageChunk(content="", tool_call_chunks=tool_call_chunks(ai_message))
    """
    return [
        tool_call_chunk(name=tc["name"], args=json.dumps(tc["args"]), id=tc["id"], index=i)
        for i, tc in enumerate(getattr(message, "tool_calls", None) or [])
    ]


__all__ = ["message_text", "tool_call_chunks"]
