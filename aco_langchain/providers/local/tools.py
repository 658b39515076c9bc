"""Tool calls and structured output for the local tier, by constrained decoding.

llama-server constrains decoding with a JSON schema (its ``json_schema`` request field, turned
into a GBNF grammar by llama.cpp), so even SmolLM2-135M always returns well-formed JSON. The
bound tools become one schema whose branches are "call tool X with arguments matching X's
parameters" and "a final answer"; the model's JSON is parsed back into ``AIMessage.tool_calls``.
Everything here is pure (no I/O): :mod:`aco_langchain.providers.local.chat` sends and parses.

The wire format the model writes (one call per turn)::

    {"tool": "get_weather", "arguments": {"city": "Paris"}}
    {"final_answer": "It is sunny in Paris."}

``tool_choice`` decides the branches: ``None``/``"auto"`` all tools and the final answer;
``"any"``/``"required"``/``True`` the tools only; a tool's name (or
``{"type": "function", "function": {"name": ...}}``) that tool only; ``"none"`` no tools.

To keep every answer finite, the grammar caps strings without a length limit at
``MAX_STRING_CHARS`` and arrays without ``maxItems`` at ``MAX_ARRAY_ITEMS`` (stricter than the
tool's schema, so what comes back is still valid for it); the final answer is not capped.

Usage::

    spec = ToolCallSpec.build([convert_to_openai_tool(get_weather)], tool_choice="auto")
    body = {"json_schema": spec.schema, "messages": ...}  # with spec.render(messages)
    parsed = spec.parse('{"tool": "get_weather", "arguments": {"city": "Paris"}}')
    parsed.tool_calls  # [{"name": "get_weather", "args": {"city": "Paris"}, "id": "call_…"}]
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.messages import ToolMessage as _ToolMessage
from langchain_core.messages.tool import ToolCall, ToolCallChunk, tool_call_chunk

from aco_langchain.errors import LocalToolCallError
from aco_langchain.providers.local.answers import ANSWER_PREFIX as _ANSWER_PREFIX
from aco_langchain.providers.local.answers import (
    FINAL_ANSWER_KEY,
    is_cut_call,
    may_become_envelope,
    unwrap_answer,
)
from aco_langchain.providers.local.answers import decode_partial_string as _decode_partial_string

__all__ = [
    "FINAL_ANSWER_KEY",
    "answered_calls",
    "MAX_ARRAY_ITEMS",
    "MAX_STRING_CHARS",
    "ParsedOutput",
    "StreamParser",
    "ToolCallSpec",
    "normalize_tool_choice",
    "is_cut_call",
    "may_become_envelope",
    "render_history",
    "repeats_answered_call",
    "response_format_schema",
    "unwrap_answer",
]

TOOL_KEY = "tool"
ARGUMENTS_KEY = "arguments"
#: Cap for argument strings that have no maxLength/enum/const/pattern of their own.
MAX_STRING_CHARS = 200
#: Cap for argument arrays that have no maxItems of their own.
MAX_ARRAY_ITEMS = 8

_CALL_PREFIX = re.compile(
    r'^\s*\{\s*"' + TOOL_KEY + r'"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"' + ARGUMENTS_KEY + r'"\s*:\s*'
)


def _tool_name(tool: Mapping[str, Any]) -> str:
    fn = tool.get("function", tool)
    name = fn.get("name") if isinstance(fn, Mapping) else None
    if not isinstance(name, str) or not name:
        raise LocalToolCallError(
            f"a bound tool has no name: {json.dumps(tool)[:120]}; bind tools as functions, "
            "BaseTools, pydantic classes or OpenAI tool dicts"
        )
    return name


def normalize_tool_choice(tool_choice: Any, names: Sequence[str]) -> str:
    """``"auto"``, ``"required"``, ``"none"`` or a tool's name, from any accepted spelling.

    Args:
        tool_choice: ``None``, ``"auto"``, ``"any"``, ``"required"``, ``True``, ``False``,
            ``"none"``, a tool name, or ``{"type": "function", "function": {"name": ...}}``.
        names: The bound tools' names.

    Returns:
        ``"auto"``, ``"required"``, ``"none"`` or one of ``names``.

    Raises:
        LocalToolCallError: the choice names no bound tool, or is not a known spelling.

    Example:
        ```python
        normalize_tool_choice("any", ["search"])  # "required"
        ```
    """
    if tool_choice is None or tool_choice == "auto":
        return "auto"
    if tool_choice is True or tool_choice in ("any", "required"):
        return "required"
    if tool_choice is False or tool_choice == "none":
        return "none"
    name: Any = tool_choice
    if isinstance(tool_choice, Mapping):
        fn = tool_choice.get("function")
        name = fn.get("name") if isinstance(fn, Mapping) else tool_choice.get("name")
    if isinstance(name, str) and name in names:
        return name
    raise LocalToolCallError(
        f"tool_choice={tool_choice!r} names no bound tool: use 'auto', 'any', 'none' or one "
        f"of {sorted(names)}"
    )


def _capped(schema: Any) -> Any:
    """A copy of ``schema`` whose open-ended strings and arrays have an upper bound."""
    if isinstance(schema, list):
        return [_capped(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _capped(v) for k, v in schema.items()}
    types = out.get("type")
    type_set = set(types) if isinstance(types, list) else {types}
    free = not any(k in out for k in ("enum", "const", "pattern", "format"))
    if "string" in type_set and free and "maxLength" not in out:
        out["maxLength"] = max(MAX_STRING_CHARS, int(out.get("minLength", 0)))
    if "array" in type_set and "maxItems" not in out:
        out["maxItems"] = max(MAX_ARRAY_ITEMS, int(out.get("minItems", 0)))
    return out


def _arguments_schema(tool: Mapping[str, Any]) -> dict[str, Any]:
    fn = tool.get("function", tool)
    params = fn.get("parameters") if isinstance(fn, Mapping) else None
    if not isinstance(params, Mapping) or not params:
        return {"type": "object", "properties": {}}
    schema = dict(copy.deepcopy(params))
    schema.setdefault("type", "object")
    if schema.get("type") == "object" and "properties" not in schema:
        schema.setdefault("properties", {})
    return dict(_capped(schema))


def _describe(tool: Mapping[str, Any]) -> str:
    fn = tool.get("function", tool)
    name = _tool_name(tool)
    desc = str(fn.get("description") or "").strip().splitlines()
    props = (fn.get("parameters") or {}).get("properties") or {}
    required = set((fn.get("parameters") or {}).get("required") or [])
    args = []
    for arg, sub in props.items():
        kind = str(sub.get("type") or "")
        if "enum" in sub:
            kind = f"{kind} one of {'/'.join(map(str, sub['enum']))}".strip()
        args.append(f"{arg} ({kind or 'any'}{'' if arg in required else ', optional'})")
    line = f"- {name}: {desc[0] if desc else ''}"
    return line + (f" Arguments: {', '.join(args)}." if args else " No arguments.")


@dataclass(frozen=True)
class ParsedOutput:
    """The model's JSON as LangChain sees it: text content or one tool call.

    ``truncated``: the final answer was cut at ``max_tokens`` (``content`` is the text so far).
    """

    content: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    truncated: bool = False


@dataclass(frozen=True)
class ToolCallSpec:
    """The constrained-output schema of one tool-bound call, and its prompt and parser.

    Attributes:
        tools: The bound tools, OpenAI format (``{"type": "function", "function": {...}}``).
        choice: ``"auto"``, ``"required"``, ``"none"`` or a tool's name.
        schema: The JSON schema llama-server constrains decoding with.
    """

    tools: tuple[dict[str, Any], ...]
    choice: str
    schema: dict[str, Any]

    @classmethod
    def build(cls, tools: Sequence[Mapping[str, Any]], tool_choice: Any = None) -> ToolCallSpec:
        """The spec for ``tools`` under ``tool_choice`` (see the module docstring).

        Args:
            tools: OpenAI-format tool dicts (``convert_to_openai_tool`` output).
            tool_choice: Any spelling :func:`normalize_tool_choice` accepts.

        Returns:
            The spec; its ``schema`` is a single branch or a ``oneOf`` of branches.

        Raises:
            LocalToolCallError: a tool without a name, two tools with one name, or a
                ``tool_choice`` naming no bound tool.

        Example:
            ```python
            ToolCallSpec.build([search_tool], "any").schema["properties"]["tool"]
            # {"const": "search"}
            ```
        """
        names = [_tool_name(t) for t in tools]
        if len(set(names)) != len(names):
            raise LocalToolCallError(f"two bound tools share a name: {sorted(names)}")
        choice = normalize_tool_choice(tool_choice, names)
        branches: list[dict[str, Any]] = []
        if choice != "none":
            for tool, name in zip(tools, names, strict=True):
                if choice in ("auto", "required") or choice == name:
                    branches.append(
                        {
                            "type": "object",
                            "properties": {
                                TOOL_KEY: {"const": name},
                                ARGUMENTS_KEY: _arguments_schema(tool),
                            },
                            "required": [TOOL_KEY, ARGUMENTS_KEY],
                        }
                    )
        if choice in ("auto", "none"):
            branches.append(
                {
                    "type": "object",
                    "properties": {FINAL_ANSWER_KEY: {"type": "string"}},
                    "required": [FINAL_ANSWER_KEY],
                }
            )
        schema = branches[0] if len(branches) == 1 else {"oneOf": branches}
        return cls(tuple(dict(t) for t in tools), choice, schema)

    @property
    def names(self) -> list[str]:
        """The bound tools' names."""
        return [_tool_name(t) for t in self.tools]

    def instructions(self) -> str:
        """The system text that tells the model its tools and the JSON to write."""
        if self.choice == "none":
            return f'Write your reply to the user as the JSON string "{FINAL_ANSWER_KEY}".'
        offered = [
            t
            for t in self.tools
            if self.choice in ("auto", "required") or _tool_name(t) == self.choice
        ]
        lines = ["You can call these tools:", *(_describe(t) for t in offered)]
        call = f'{{"{TOOL_KEY}": "<tool name>", "{ARGUMENTS_KEY}": {{...}}}}'
        if self.choice == "auto":
            lines.append(
                f"To call a tool, answer as JSON: {call}. When you can answer the user "
                f"(for example with a tool's result), write your reply to the user as the JSON "
                f'string "{FINAL_ANSWER_KEY}".'
            )
        else:
            lines.append(f"Call a tool: answer as JSON: {call}.")
        return "\n".join(lines)

    def render(self, messages: Sequence[BaseMessage]) -> list[BaseMessage]:
        """``messages`` as the local model reads them: tool instructions in the system
        message, earlier tool calls and results as text (see :func:`render_history`)."""
        return render_history(messages, self.instructions())

    def parse(self, text: str, *, truncated: bool = False) -> ParsedOutput:
        """The model's constrained JSON as content or one tool call.

        Args:
            text: The model's whole output.
            truncated: The output stopped at ``max_tokens`` (``finish_reason == "length"``);
                a cut final answer is kept as the text so far, a cut tool call is an error.

        Returns:
            The content (final answer) or a tool call with a fresh ``call_…`` id.

        Raises:
            LocalToolCallError: the output is not one of the schema's branches (a tool call
                cut at ``max_tokens``, or a server that ignored the schema).
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            if truncated:
                if _ANSWER_PREFIX.match(text):
                    return ParsedOutput(content=unwrap_answer(text)[0], truncated=True)
                raise LocalToolCallError(
                    "the local tier's tool call was cut at max_tokens before its arguments "
                    "were complete: raise max_tokens for tool-bound calls"
                ) from exc
            raise LocalToolCallError(
                f"the local tier answered {text[:80]!r}, not the constrained JSON: is the "
                "server a llama.cpp llama-server (it must honour the json_schema field)?"
            ) from exc
        return self._from_json(data, text)

    def _from_json(self, data: Any, text: str) -> ParsedOutput:
        if (
            isinstance(data, dict)
            and isinstance(data.get(FINAL_ANSWER_KEY), str)
            and self.choice in ("auto", "none")
        ):
            answer, cut = unwrap_answer(data[FINAL_ANSWER_KEY])
            return ParsedOutput(content=answer, truncated=cut)
        if (
            isinstance(data, dict)
            and data.get(TOOL_KEY) in self.names
            and isinstance(data.get(ARGUMENTS_KEY), dict)
            and self.choice != "none"
        ):
            name = str(data[TOOL_KEY])
            return ParsedOutput(
                content="",
                tool_calls=[
                    ToolCall(
                        name=name, args=data[ARGUMENTS_KEY], id=new_call_id(), type="tool_call"
                    )
                ],
            )
        raise LocalToolCallError(
            f"the local tier answered {text[:80]!r}, which matches none of the bound tools "
            f"{self.names} nor a final answer: is the server honouring the json_schema field?"
        )


def _call_key(name: str, args: Any) -> tuple[str, str]:
    return name, json.dumps(args, sort_keys=True, default=str)


def answered_calls(messages: Sequence[BaseMessage]) -> set[tuple[str, str]]:
    """(name, canonical args) of every tool call in ``messages`` that has a tool result."""
    results = {m.tool_call_id for m in messages if isinstance(m, _ToolMessage)}
    return {
        _call_key(tc["name"], tc["args"])
        for m in messages
        if isinstance(m, AIMessage)
        for tc in m.tool_calls
        if tc.get("id") in results
    }


def repeats_answered_call(messages: Sequence[BaseMessage], call: ToolCall) -> bool:
    """Is ``call`` the same tool with the same arguments as a call already answered?

    A 135M model often repeats the call it just made instead of answering with its result;
    under ``tool_choice="auto"`` the local tier then asks for the final answer instead (the
    result is already in the conversation).

    Example:
        ```python
        repeats_answered_call(history, {"name": "add", "args": {"a": 1, "b": 2}, "id": "x"})
        ```
    """
    return _call_key(call["name"], call["args"]) in answered_calls(messages)


def new_call_id() -> str:
    """A tool-call id in OpenAI's style (``call_`` + 24 hex digits)."""
    return "call_" + uuid.uuid4().hex[:24]


def response_format_schema(response_format: Any) -> dict[str, Any] | None:
    """The JSON schema inside an OpenAI ``response_format`` (None for ``text``/absent).

    Args:
        response_format: ``{"type": "json_schema", "json_schema": {"schema": ...}}``,
            ``{"type": "json_object"}``, ``{"type": "text"}``, or a pydantic class.

    Returns:
        The schema to send as llama-server's ``json_schema`` (``{"type": "object"}`` for JSON
        mode), or None.

    Raises:
        LocalToolCallError: a ``response_format`` of another shape.
    """
    if response_format is None:
        return None
    if isinstance(response_format, type) and hasattr(response_format, "model_json_schema"):
        return dict(response_format.model_json_schema())
    if isinstance(response_format, Mapping):
        kind = response_format.get("type")
        if kind == "json_schema":
            inner = response_format.get("json_schema") or {}
            schema = inner.get("schema") if isinstance(inner, Mapping) else None
            return dict(schema) if isinstance(schema, Mapping) and schema else {"type": "object"}
        if kind == "json_object":
            schema = response_format.get("schema")
            return dict(schema) if isinstance(schema, Mapping) else {"type": "object"}
        if kind in (None, "text"):
            return None
    raise LocalToolCallError(
        f"response_format={response_format!r} is not supported by the local tier: use "
        "{'type': 'json_schema', 'json_schema': {'name': ..., 'schema': {...}}} or "
        "{'type': 'json_object'}"
    )


def _call_json(name: str, args: Any) -> str:
    return json.dumps({TOOL_KEY: name, ARGUMENTS_KEY: args}, ensure_ascii=False)


def render_history(messages: Sequence[BaseMessage], instructions: str | None) -> list[BaseMessage]:
    """Messages as plain chat for the local model (it has no tool-message format).

    ``instructions`` are appended to the first system message (or become one); an assistant
    turn with tool calls becomes the JSON the model writes; a tool result becomes a user turn
    ``Result of <tool>: …``. Other messages pass unchanged.

    Args:
        messages: The conversation, possibly with tool calls and tool results.
        instructions: Text for the system message, or None.

    Returns:
        A new list; the input messages are not modified.
    """
    out: list[BaseMessage] = []
    names: dict[str, str] = {}
    system_done = instructions is None
    for m in messages:
        if isinstance(m, SystemMessage) and not system_done:
            out.append(SystemMessage(f"{_text(m)}\n\n{instructions}".strip()))
            system_done = True
        elif isinstance(m, AIMessage) and m.tool_calls:
            for tc in m.tool_calls:
                names[tc.get("id") or ""] = tc["name"]
            text = "\n".join(_call_json(tc["name"], tc["args"]) for tc in m.tool_calls)
            out.append(AIMessage(text))
        elif isinstance(m, _ToolMessage):
            name = m.name or names.get(m.tool_call_id, "the tool")
            out.append(HumanMessage(f"Result of {name}: {_text(m)}"))
        else:
            out.append(m)
    if not system_done:
        out.insert(0, SystemMessage(str(instructions)))
    return out


def _text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return "\n".join(
        b if isinstance(b, str) else str(b.get("text", ""))
        for b in content
        if isinstance(b, str | dict)
    )


class StreamParser:
    """Turns the model's streamed JSON into content deltas and tool-call chunks.

    Feed it each text delta; it returns what can be said so far. A tool call's name and id
    come in one chunk as soon as the name is complete, its arguments as JSON text pieces
    (the outer object's closing brace is held back until the end). A final answer comes as
    decoded text.

    Usage::

        parser = StreamParser(spec)
        for delta in ['{"tool": "sea', 'rch", "arguments": {"q": "x"}}']:
            text, chunks = parser.feed(delta)
        text, chunks = parser.finish()
    """

    def __init__(self, spec: ToolCallSpec) -> None:
        self.spec = spec
        self.raw = ""
        self._mode: str | None = None  # "call" | "answer"
        self._pos = 0  # raw chars consumed
        self._answer_closed = False
        self._answer = ""  # the outer answer string decoded so far
        self._said = 0  # characters of the unwrapped answer already given out
        self.call_id = new_call_id()

    @property
    def mode(self) -> str | None:
        """``"call"`` or ``"answer"`` once the output's branch is known, else None."""
        return self._mode

    @property
    def truncated(self) -> bool:
        """The final answer ended unclosed (cut at ``max_tokens``), outer or inner envelope."""
        if self._mode != "answer":
            return False
        return not self._answer_closed or unwrap_answer(self._answer)[1]

    def feed(self, delta: str) -> tuple[str, list[ToolCallChunk]]:
        """Add a text delta; return (content delta, tool-call chunks) ready to stream."""
        self.raw += delta
        return self._advance(final=False)

    def finish(self) -> tuple[str, list[ToolCallChunk]]:
        """The end of the stream: release what was held back."""
        return self._advance(final=True)

    def _answer_delta(self, *, final: bool) -> str:
        """What of the answer can be said now: an envelope the model wrote inside its answer
        is held back until known, then left out (see ``unwrap_answer``)."""
        if not final and may_become_envelope(self._answer):
            return ""
        # The inner string decodes monotonically (a cut escape is left for later), so what
        # was said is never taken back.
        text, _cut = unwrap_answer(self._answer)
        delta, self._said = text[self._said :], max(self._said, len(text))
        return delta

    def _advance(self, *, final: bool) -> tuple[str, list[ToolCallChunk]]:
        chunks: list[ToolCallChunk] = []
        if self._mode is None:
            call = _CALL_PREFIX.match(self.raw)
            if call is not None:
                self._mode = "call"
                self._pos = call.end()
                name = json.loads(f'"{call.group(1)}"')
                chunks.append(tool_call_chunk(name=name, args="", id=self.call_id, index=0))
            elif _ANSWER_PREFIX.match(self.raw):
                self._mode = "answer"
                self._pos = _ANSWER_PREFIX.match(self.raw).end()  # type: ignore[union-attr]
            else:
                return "", chunks
        if self._mode == "answer":
            if not self._answer_closed:
                text, used, closed = _decode_partial_string(self.raw[self._pos :])
                self._pos += used
                self._answer_closed = closed
                self._answer += text
            return self._answer_delta(final=final or self._answer_closed), chunks
        rest = self.raw[self._pos :]
        if final:
            body = rest.rstrip()
            body = body[:-1].rstrip() if body.endswith("}") else body
        else:
            # Hold back a trailing run of braces/whitespace: the last "}" is the outer object's.
            body = rest.rstrip("} \t\r\n")
        if body:
            self._pos += len(body)
            chunks.append(tool_call_chunk(name=None, args=body, id=None, index=0))
        return "", chunks
