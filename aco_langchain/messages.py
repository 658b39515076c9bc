"""Small helpers on LangChain messages shared by the chat model, graphs and middleware.

Usage::

    message_text(AIMessage([{"type": "text", "text": "hi"}]))   # 'hi'
"""

from __future__ import annotations

from typing import Any


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


__all__ = ["message_text"]
