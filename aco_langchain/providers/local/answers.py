"""The local tier's final answer as text: the constrained-decoding envelope taken off.

The local tier writes ``{"final_answer": "..."}`` (see ``tools.py``). Here: decoding a JSON
string that may be cut short, taking the envelope off (also when the model nests it inside
its own answer or the output stops at ``max_tokens``), and telling a cut tool call from a
cut answer. Pure functions, no I/O.

Example:
    ```python
    from aco_langchain.providers.local.answers import unwrap_answer

    unwrap_answer('{"final_answer": "Paris"}')   # ('Paris', False)
    ```
"""

from __future__ import annotations

import json
import re
from typing import Any

FINAL_ANSWER_KEY = "final_answer"
#: The opening of an answer envelope, whitespace allowed.
ANSWER_PREFIX = re.compile(r'^\s*\{\s*"' + FINAL_ANSWER_KEY + r'"\s*:\s*"')


#: How many envelopes deep an answer is unwrapped (the model copies the format it was shown).
MAX_ENVELOPES = 4
_ENVELOPE_OPENING = '{"' + FINAL_ANSWER_KEY + '":"'


def unwrap_answer(text: str) -> tuple[str, bool]:
    """The answer's text without the ``{"final_answer": "..."}`` envelope(s) around it.

    The small model, shown the JSON format in its instructions, sometimes writes the envelope
    again *inside* the final answer's string; and an answer cut at ``max_tokens`` is an
    unclosed envelope. Neither may reach the user: the text inside is the answer.

    Args:
        text: A final answer's text (already decoded from the outer JSON, or the raw output).

    Returns:
        ``(text, cut)``: ``cut`` is True when an envelope was never closed (truncated).

    Example:
        ```python
        unwrap_answer('{"final_answer": "Paris"}')   # ('Paris', False)
        unwrap_answer('{"final_answer": "Par')        # ('Par', True)
        unwrap_answer("Paris")                        # ('Paris', False)
        ```
    """
    cut = False
    for _ in range(MAX_ENVELOPES):
        m = ANSWER_PREFIX.match(text)
        if m is None:
            break
        body, _used, closed = decode_partial_string(text[m.end() :])
        cut = cut or not closed
        text = body
    if cut and may_become_envelope(text):
        text = ""  # cut while opening yet another envelope: no answer text yet
    return text, cut


def is_cut_call(text: str, finish_reason: Any) -> bool:
    """Was this output a tool call cut at ``max_tokens`` (its JSON never closed)?"""
    if finish_reason != "length" or ANSWER_PREFIX.match(text):
        return False
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return True
    return False


def may_become_envelope(text: str) -> bool:
    """Could ``text`` (a streamed answer's start) still turn out to open an envelope?"""
    compact = re.sub(r"\s+", "", text)
    return (
        bool(compact)
        and _ENVELOPE_OPENING.startswith(compact[: len(_ENVELOPE_OPENING)])
        and (len(compact) < len(_ENVELOPE_OPENING))
    )


_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def decode_partial_string(raw: str) -> tuple[str, int, bool]:
    """Decode the body of a JSON string that may be incomplete.

    Returns (decoded text, raw characters consumed, closed): an escape cut in the middle is
    left unconsumed; ``closed`` is True when the closing quote was reached.
    """
    out: list[str] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == '"':
            return "".join(out), i + 1, True
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        if i + 1 >= len(raw):
            break
        esc = raw[i + 1]
        if esc == "u":
            if i + 6 > len(raw):
                break
            out.append(chr(int(raw[i + 2 : i + 6], 16)))
            i += 6
        else:
            out.append(_ESCAPES.get(esc, esc))
            i += 2
    return "".join(out), i, False


__all__ = [
    "ANSWER_PREFIX",
    "FINAL_ANSWER_KEY",
    "MAX_ENVELOPES",
    "decode_partial_string",
    "is_cut_call",
    "may_become_envelope",
    "unwrap_answer",
]
