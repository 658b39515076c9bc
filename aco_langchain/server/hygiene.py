"""Input hygiene at the server's edge: text every later part can store, send and print.

JSON may carry strings Python accepts but nothing downstream can use: a lone surrogate
(``"\\ud800"``) cannot be encoded to UTF-8 (the provider call, the trace and the ledger
would fail mid-request), and a NUL byte cannot be stored in a Postgres text column. Caller-
chosen identifiers (``model``, ``user``, the run header) become ledger keys and are echoed
in errors, so they are bounded too. Each problem is a 400 naming the field; these checks are
pure functions over the parsed body, run before any I/O.

Example:
    ```python
    check_text({"messages": [{"content": "\\ud800"}]})
    # APIError 400: messages.0.content: contains an invalid character (a lone surrogate ...)
    ```
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aco_langchain.server.errors import APIError

#: The longest ``model``, ``user``, run key or tool name the server accepts.
MAX_IDENTIFIER_CHARS = 256


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be used as text (pure), or None.

    Example:
        ```python
        text_problem("a\\x00b")    # 'contains a NUL byte (\\\\u0000): remove it'
        ```
    """
    if "\x00" in value:
        return "contains a NUL byte (\\u0000): remove it"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        bad = value[err.start]
        return (
            f"contains an invalid character (a lone surrogate \\u{ord(bad):04x} at position "
            f"{err.start}): send valid UTF-16 pairs or UTF-8 text"
        )
    return None


def _first_bad(value: Any, path: tuple[str, ...]) -> tuple[str, str] | None:
    if isinstance(value, str):
        problem = text_problem(value)
        return (".".join(path), problem) if problem else None
    if isinstance(value, Mapping):
        for k, v in value.items():
            key = str(k)
            problem = text_problem(key)
            if problem:
                return (".".join((*path, key.encode("utf-8", "replace").decode())), problem)
            found = _first_bad(v, (*path, key))
            if found:
                return found
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        for i, v in enumerate(value):
            found = _first_bad(v, (*path, str(i)))
            if found:
                return found
    return None


def check_text(body: Any) -> None:
    """Refuse a request body holding a string that is not clean text (any depth).

    Args:
        body: the parsed JSON body (dicts, lists, strings, numbers).

    Raises:
        APIError: 400 naming the first bad field (``messages.0.content``).
    """
    found = _first_bad(body, ())
    if found:
        param, problem = found
        raise APIError(400, f"{param or 'body'}: {problem}", param=param or None)


def check_identifier(value: str | None, param: str) -> None:
    """Refuse an identifier the server would store or echo that is too long or not text.

    Args:
        value: the identifier (None: absent, fine).
        param: the field or header it came from, named in the error.

    Raises:
        APIError: 400 naming ``param`` and the limit.
    """
    if value is None:
        return
    problem = text_problem(value)
    if problem is None and len(value) > MAX_IDENTIFIER_CHARS:
        problem = (
            f"is {len(value)} characters long, more than {MAX_IDENTIFIER_CHARS}: send a shorter id"
        )
    if problem is None and not value.strip():
        problem = "is blank: send an id, or leave it out"
    if problem:
        raise APIError(400, f"{param}: {problem}", param=param, code="invalid_value")


__all__ = ["MAX_IDENTIFIER_CHARS", "check_identifier", "check_text", "text_problem"]
