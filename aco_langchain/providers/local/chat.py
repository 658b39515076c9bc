"""``ChatLlamaServer``: ChatOpenAI for the local llama-server, with tools and structured output.

llama-server speaks the OpenAI chat API but SmolLM2-135M has no tool-calling format. This
subclass keeps everything ChatOpenAI does (usage, logprobs, streaming, response metadata) and
adds what the local tier lacks, through constrained decoding (see ``tools.py``):

- ``bind_tools(tools, tool_choice=...)``: each call sends one JSON schema ("call tool X with
  its arguments" | "final answer") as llama-server's ``json_schema`` field; the answer is
  parsed into ``AIMessage.tool_calls`` (ids, args as dicts) or the answer's text, and streams
  as tool-call chunks.
- ``response_format`` (``json_schema`` / ``json_object``, as ``with_structured_output`` and
  ``create_agent`` send it) becomes the same ``json_schema`` field, so the output is valid JSON
  of that schema.
- Earlier tool calls and tool results in the conversation are sent as plain text turns; a
  reply to such a conversation without tools bound is constrained to a final answer (the
  history would otherwise teach the model to answer in its JSON call format).
- Under ``tool_choice="auto"``, a call that repeats one already answered in the conversation
  (same tool, same arguments: a 135M model's habit) is replaced by a second request for the
  final answer; both requests' tokens are counted. Streams hold such a call until complete.

Usage::

    llm = ChatLlamaServer(base_url=info.base_url, api_key="local", model=MODEL_ALIAS)
    msg = llm.bind_tools([get_weather], tool_choice="any").invoke("Weather in Paris?")
    msg.tool_calls   # [{"name": "get_weather", "args": {"city": "Paris"}, "id": "call_…", ...}]
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage
from langchain_core.messages.ai import add_usage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_openai import ChatOpenAI
from pydantic import Field

from aco_langchain.providers.local.tools import (
    StreamParser,
    ToolCallSpec,
    answered_calls,
    is_cut_call,
    normalize_tool_choice,
    render_history,
    repeats_answered_call,
    response_format_schema,
)

logger = logging.getLogger(__name__)

__all__ = ["ChatLlamaServer"]


class _Prepared:
    """One call's wire form: the messages and kwargs to send, and the spec to parse with."""

    __slots__ = ("json_out", "kwargs", "messages", "spec")

    def __init__(
        self,
        messages: list[BaseMessage],
        kwargs: dict[str, Any],
        spec: ToolCallSpec | None,
        json_out: bool,
    ) -> None:
        self.messages = messages
        self.kwargs = kwargs
        self.spec = spec
        self.json_out = json_out


class ChatLlamaServer(ChatOpenAI):
    """ChatOpenAI pointed at llama-server, with tool calls and JSON output by constrained decoding.

    Example:
        ```python
        from aco_langchain.providers.local.chat import ChatLlamaServer

        llm = ChatLlamaServer(base_url="http://127.0.0.1:8080/v1", api_key="local",
                              model="smollm2-135m-instruct", max_retries=0)
        llm.bind_tools([search], tool_choice="search").invoke("Find the release notes")
        ```
    """

    tool_max_tokens: int = Field(default=384, gt=0)
    """``max_tokens`` for a tool-bound call when none is set (the call's JSON must close)."""

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: dict[str, Any] | str | bool | None = None,
        strict: bool | None = None,
        parallel_tool_calls: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools; each call constrains the model to one call of them or a final answer.

        Args:
            tools: Functions, ``BaseTool``s, pydantic classes or OpenAI tool dicts.
            tool_choice: ``None``/``"auto"``: a tool call or a final answer; ``"any"``/
                ``"required"``/``True``: a tool call; a tool's name (or
                ``{"type": "function", "function": {"name": ...}}``): that tool; ``"none"``:
                a final answer.
            strict: Passed to ``convert_to_openai_tool`` (the grammar is always strict).
            parallel_tool_calls: Accepted for compatibility; the local tier makes one call
                per turn.
            **kwargs: Bound with the tools.

        Returns:
            A ``RunnableBinding`` whose calls carry ``tools`` and ``tool_choice``.

        Raises:
            LocalToolCallError: ``tool_choice`` names no bound tool, or two tools share a name.
        """
        formatted = [convert_to_openai_tool(t, strict=strict) for t in tools]
        names = [t["function"]["name"] for t in formatted]
        ToolCallSpec.build(formatted, tool_choice)  # checks names and tool_choice now
        if parallel_tool_calls:
            logger.debug("local tier: parallel_tool_calls ignored (one call per turn)")
        choice = normalize_tool_choice(tool_choice, names)
        return self.bind(tools=formatted, tool_choice=choice, **kwargs)

    # -- one call's wire form ---------------------------------------------------------------

    def _prepare(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> _Prepared:
        kw = dict(kwargs)
        tools = kw.pop("tools", None)
        tool_choice = kw.pop("tool_choice", None)
        kw.pop("parallel_tool_calls", None)
        schema = response_format_schema(kw.pop("response_format", None))
        spec = ToolCallSpec.build(tools, tool_choice) if tools else None
        if spec is None and schema is None and _has_tool_turns(messages):
            # The history shows the model its JSON call format; without a constraint it tends
            # to answer in it. Constrain the reply to a final answer instead.
            spec = ToolCallSpec.build([], "none")
        if spec is not None:
            schema = spec.schema
            wire = spec.render(messages)
            if kw.get("max_tokens") is None and self.max_tokens is None:
                kw["max_tokens"] = self.tool_max_tokens
        else:
            wire = render_history(messages, None)
        if schema is not None:
            kw["extra_body"] = {
                **(self.extra_body or {}),
                **(kw.get("extra_body") or {}),
                "json_schema": schema,
            }
        return _Prepared(wire, kw, spec, json_out=spec is None and schema is not None)

    @staticmethod
    def _parsed_message(spec: ToolCallSpec, msg: BaseMessage, finish: Any) -> AIMessage:
        parsed = spec.parse(str(msg.content), truncated=finish == "length")
        meta = dict(msg.response_metadata)
        if parsed.truncated:
            meta["truncated"] = True  # the answer's text so far, cut at max_tokens
        return AIMessage(
            content=parsed.content,
            tool_calls=parsed.tool_calls,
            additional_kwargs=dict(msg.additional_kwargs),
            response_metadata=meta,
            usage_metadata=getattr(msg, "usage_metadata", None),
            id=msg.id,
        )

    def _parsed_result(self, prep: _Prepared, result: ChatResult) -> ChatResult:
        if prep.json_out:
            # What OpenAI's structured-output path gives: the parsed JSON beside the text.
            msg = result.generations[0].message
            try:
                msg.additional_kwargs["parsed"] = json.loads(str(msg.content))
            except json.JSONDecodeError:
                logger.warning("local tier: JSON output did not parse (cut at max_tokens?)")
            return result
        if prep.spec is None:
            return result
        gen = result.generations[0]
        msg = self._parsed_message(prep.spec, gen.message, _finish_reason(gen))
        if msg.tool_calls:
            msg.response_metadata["finish_reason"] = "tool_calls"
        return ChatResult(
            generations=[ChatGeneration(message=msg, generation_info=gen.generation_info)],
            llm_output=result.llm_output,
        )

    def _cut_call_retry(
        self, prep: _Prepared, messages: list[BaseMessage], kwargs: dict[str, Any], raw: ChatResult
    ) -> _Prepared | None:
        """A roomier request when ``raw`` is a tool call cut at ``max_tokens`` (else None).

        The grammar bounds a call (strings <= MAX_STRING_CHARS, arrays <= MAX_ARRAY_ITEMS), so
        ``tool_max_tokens`` (or twice the cap) lets it close; asked once, so a call never
        costs more than two bounded requests.
        """
        if prep.spec is None:
            return None
        gen = raw.generations[0]
        if not is_cut_call(str(gen.message.content), _finish_reason(gen)):
            return None
        cap = prep.kwargs.get("max_tokens") or self.max_tokens or self.tool_max_tokens
        roomier = max(self.tool_max_tokens, 2 * int(cap))
        logger.info(
            "local tier: tool call cut at max_tokens=%s before its arguments closed; asking "
            "once more with max_tokens=%s",
            cap,
            roomier,
        )
        return self._prepare(messages, {**kwargs, "max_tokens": roomier})

    def _repeat_guard(
        self, prep: _Prepared, messages: list[BaseMessage], kwargs: dict[str, Any], msg: Any
    ) -> _Prepared | None:
        """The final-answer-only request when ``msg`` repeats an answered call (else None)."""
        calls = getattr(msg, "tool_calls", None) or []
        if prep.spec is None or prep.spec.choice != "auto" or not calls:
            return None
        if not repeats_answered_call(messages, calls[0]):
            return None
        logger.info(
            "local tier: %s repeats a tool call already answered in the conversation; "
            "asking for the final answer instead",
            calls[0]["name"],
        )
        return self._prepare(messages, {**kwargs, "tool_choice": "none"})

    # -- sync ---------------------------------------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        prep = self._prepare(messages, kwargs)
        raw = super()._generate(prep.messages, stop=stop, run_manager=run_manager, **prep.kwargs)
        roomier = self._cut_call_retry(prep, messages, kwargs, raw)
        if roomier is not None:
            prep, first = roomier, raw
            raw = super()._generate(
                prep.messages, stop=stop, run_manager=run_manager, **prep.kwargs
            )
            raw = _with_both_usages(first, raw)
        result = self._parsed_result(prep, raw)
        again = self._repeat_guard(prep, messages, kwargs, result.generations[0].message)
        if again is None:
            return result
        # The final-answer-only reply is constrained JSON too: parsed like the first.
        second = self._parsed_result(
            again,
            super()._generate(again.messages, stop=stop, run_manager=run_manager, **again.kwargs),
        )
        return _guarded_answer(result, second)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        prep = self._prepare(messages, kwargs)
        if prep.spec is None:
            yield from super()._stream(
                prep.messages, stop=stop, run_manager=run_manager, **prep.kwargs
            )
            return
        run = _StreamRun(prep.spec, messages)
        for chunk in super()._stream(prep.messages, stop=stop, run_manager=None, **prep.kwargs):
            for out in run.feed(chunk):
                yield _notify(out, run_manager)
        done = run.finish()
        for out in done:
            yield _notify(out, run_manager)
        again = self._repeat_guard(prep, messages, kwargs, run.message)
        if again is None:
            for out in run.release():
                yield _notify(out, run_manager)
            return
        yield run.usage_chunk()  # the discarded call's tokens were spent
        answer = _StreamRun(again.spec or ToolCallSpec.build([], "none"), [])
        for chunk in super()._stream(again.messages, stop=stop, run_manager=None, **again.kwargs):
            for out in answer.feed(chunk):
                yield _notify(out, run_manager)
        for out in answer.finish():
            yield _notify(out, run_manager)

    # -- async --------------------------------------------------------------------------

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        prep = self._prepare(messages, kwargs)
        raw = await super()._agenerate(
            prep.messages, stop=stop, run_manager=run_manager, **prep.kwargs
        )
        roomier = self._cut_call_retry(prep, messages, kwargs, raw)
        if roomier is not None:
            prep, first = roomier, raw
            raw = await super()._agenerate(
                prep.messages, stop=stop, run_manager=run_manager, **prep.kwargs
            )
            raw = _with_both_usages(first, raw)
        result = self._parsed_result(prep, raw)
        again = self._repeat_guard(prep, messages, kwargs, result.generations[0].message)
        if again is None:
            return result
        second = self._parsed_result(
            again,
            await super()._agenerate(
                again.messages, stop=stop, run_manager=run_manager, **again.kwargs
            ),
        )
        return _guarded_answer(result, second)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        prep = self._prepare(messages, kwargs)
        if prep.spec is None:
            async for chunk in super()._astream(
                prep.messages, stop=stop, run_manager=run_manager, **prep.kwargs
            ):
                yield chunk
            return
        run = _StreamRun(prep.spec, messages)
        async for chunk in super()._astream(
            prep.messages, stop=stop, run_manager=None, **prep.kwargs
        ):
            for out in run.feed(chunk):
                yield await _anotify(out, run_manager)
        for out in run.finish():
            yield await _anotify(out, run_manager)
        again = self._repeat_guard(prep, messages, kwargs, run.message)
        if again is None:
            for out in run.release():
                yield await _anotify(out, run_manager)
            return
        yield run.usage_chunk()
        answer = _StreamRun(again.spec or ToolCallSpec.build([], "none"), [])
        async for chunk in super()._astream(
            again.messages, stop=stop, run_manager=None, **again.kwargs
        ):
            for out in answer.feed(chunk):
                yield await _anotify(out, run_manager)
        for out in answer.finish():
            yield await _anotify(out, run_manager)


class _StreamRun:
    """One streamed tool-bound answer: raw chunks in, translated chunks out (no I/O).

    Text and tool-call chunks stream as they parse, with one chunk of look-ahead so the last
    one can release what the parser held back. When the conversation already has answered
    calls, a tool call is held until complete (it may repeat one and be replaced by a final
    answer; see ``repeats_answered_call``): ``release()`` gives it out.
    """

    def __init__(self, spec: ToolCallSpec, messages: list[BaseMessage]) -> None:
        self.spec = spec
        self.parser = StreamParser(spec)
        self.hold_calls = spec.choice == "auto" and bool(answered_calls(messages))
        self.pending: ChatGenerationChunk | None = None
        self.held: list[ChatGenerationChunk] = []
        self.message: AIMessage | None = None

    def feed(self, chunk: ChatGenerationChunk) -> list[ChatGenerationChunk]:
        prev, self.pending = self.pending, chunk
        return [] if prev is None else self._out(self._translate(prev, last=False))

    def finish(self) -> list[ChatGenerationChunk]:
        """Translate the last chunk and check the whole output parses (raises like invoke)."""
        out = [] if self.pending is None else self._out(self._translate(self.pending, last=True))
        parsed = self.spec.parse(self.parser.raw) if self.parser.mode == "call" else None
        self.message = AIMessage(
            content="", tool_calls=parsed.tool_calls if parsed is not None else []
        )
        return out

    def release(self) -> list[ChatGenerationChunk]:
        held, self.held = self.held, []
        return held

    def usage_chunk(self) -> ChatGenerationChunk:
        """The held (discarded) call's usage, so its tokens are still counted."""
        usage = None
        for c in self.held:
            u = getattr(c.message, "usage_metadata", None)
            if u:
                usage = u if usage is None else add_usage(usage, u)
        self.held = []
        return ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata=usage))

    def _out(self, chunk: ChatGenerationChunk) -> list[ChatGenerationChunk]:
        if self.hold_calls and self.parser.mode == "call":
            self.held.append(chunk)
            return []
        return [chunk]

    def _translate(self, chunk: ChatGenerationChunk, *, last: bool) -> ChatGenerationChunk:
        msg = chunk.message
        text, calls = self.parser.feed(str(msg.content or ""))
        if last:
            more, tail = self.parser.finish()
            text, calls = text + more, calls + tail
        rm = dict(msg.response_metadata)
        if last and self.parser.mode == "call":
            rm["finish_reason"] = "tool_calls"
        if last and self.parser.truncated:
            rm["truncated"] = True
        return ChatGenerationChunk(
            message=AIMessageChunk(
                content=text,
                tool_call_chunks=calls,
                response_metadata=rm,
                usage_metadata=getattr(msg, "usage_metadata", None),
                id=msg.id,
                chunk_position=getattr(msg, "chunk_position", None),
            ),
            generation_info=chunk.generation_info,
        )


def _finish_reason(gen: ChatGeneration) -> Any:
    """Why the server stopped (``stop``, ``length``...), wherever the client put it."""
    return (gen.generation_info or {}).get("finish_reason") or gen.message.response_metadata.get(
        "finish_reason"
    )


def _has_tool_turns(messages: list[BaseMessage]) -> bool:
    return any(
        isinstance(m, ToolMessage) or (isinstance(m, AIMessage) and m.tool_calls) for m in messages
    )


def _notify(
    chunk: ChatGenerationChunk, run_manager: CallbackManagerForLLMRun | None
) -> ChatGenerationChunk:
    if run_manager:
        run_manager.on_llm_new_token(chunk.text, chunk=chunk)
    return chunk


async def _anotify(
    chunk: ChatGenerationChunk, run_manager: AsyncCallbackManagerForLLMRun | None
) -> ChatGenerationChunk:
    if run_manager:
        await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
    return chunk


def _guarded_answer(first: ChatResult, second: ChatResult) -> ChatResult:
    """The repeat guard's final-answer reply, unless it is blank: a reply with neither text
    nor a tool call is no answer at all (the small model can write ``{"final_answer": " "}``),
    so the first reply, a valid tool call, stands; the tool gate and doom handle the repeat."""
    msg = second.generations[0].message
    if getattr(msg, "tool_calls", None) or str(msg.content).strip():
        return _with_both_usages(first, second)
    logger.warning(
        "local tier: the final answer asked for by the repeat guard was blank; "
        "keeping the repeated tool call"
    )
    return _with_both_usages(second, first)


def _with_both_usages(first: ChatResult, second: ChatResult) -> ChatResult:
    """``second``'s answer, carrying both calls' token usage (both were really spent)."""
    msg = second.generations[0].message
    u1 = getattr(first.generations[0].message, "usage_metadata", None)
    u2 = getattr(msg, "usage_metadata", None)
    if isinstance(msg, AIMessage) and u1 and u2:
        msg.usage_metadata = add_usage(u1, u2)
    return second
