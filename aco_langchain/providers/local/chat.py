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
- Earlier tool calls and tool results in the conversation are sent as plain text turns.

Usage::

    llm = ChatLlamaServer(base_url=info.base_url, api_key="local", model=MODEL_ALIAS)
    msg = llm.bind_tools([get_weather], tool_choice="any").invoke("Weather in Paris?")
    msg.tool_calls   # [{"name": "get_weather", "args": {"city": "Paris"}, "id": "call_…", ...}]
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_openai import ChatOpenAI
from pydantic import Field

from aco_langchain.providers.local.tools import (
    StreamParser,
    ToolCallSpec,
    normalize_tool_choice,
    render_history,
    response_format_schema,
)

logger = logging.getLogger(__name__)

__all__ = ["ChatLlamaServer"]


class _Prepared:
    """One call's wire form: the messages and kwargs to send, and the spec to parse with."""

    __slots__ = ("kwargs", "messages", "spec")

    def __init__(
        self, messages: list[BaseMessage], kwargs: dict[str, Any], spec: ToolCallSpec | None
    ) -> None:
        self.messages = messages
        self.kwargs = kwargs
        self.spec = spec


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
        if spec is not None and spec.choice == "none" and schema is None:
            spec = None  # tools bound but not to be used: a plain answer
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
        return _Prepared(wire, kw, spec)

    @staticmethod
    def _parsed_message(spec: ToolCallSpec, msg: BaseMessage, finish: Any) -> AIMessage:
        parsed = spec.parse(str(msg.content), truncated=finish == "length")
        return AIMessage(
            content=parsed.content,
            tool_calls=parsed.tool_calls,
            additional_kwargs=dict(msg.additional_kwargs),
            response_metadata=dict(msg.response_metadata),
            usage_metadata=getattr(msg, "usage_metadata", None),
            id=msg.id,
        )

    def _parsed_result(self, prep: _Prepared, result: ChatResult) -> ChatResult:
        if prep.spec is None:
            return result
        gen = result.generations[0]
        finish = (gen.generation_info or {}).get(
            "finish_reason"
        ) or gen.message.response_metadata.get("finish_reason")
        msg = self._parsed_message(prep.spec, gen.message, finish)
        if msg.tool_calls:
            msg.response_metadata["finish_reason"] = "tool_calls"
        return ChatResult(
            generations=[ChatGeneration(message=msg, generation_info=gen.generation_info)],
            llm_output=result.llm_output,
        )

    @staticmethod
    def _translate(
        parser: StreamParser, chunk: ChatGenerationChunk, *, last: bool = False
    ) -> ChatGenerationChunk:
        msg = chunk.message
        text, calls = parser.feed(str(msg.content or ""))
        if last:
            more, tail = parser.finish()
            text, calls = text + more, calls + tail
        rm = dict(msg.response_metadata)
        if last and parser.mode == "call":
            rm["finish_reason"] = "tool_calls"
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

    # -- sync ---------------------------------------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        prep = self._prepare(messages, kwargs)
        result = super()._generate(prep.messages, stop=stop, run_manager=run_manager, **prep.kwargs)
        return self._parsed_result(prep, result)

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
        parser = StreamParser(prep.spec)
        pending: ChatGenerationChunk | None = None
        # One chunk of look-ahead, so the last one can release what the parser held back.
        for chunk in super()._stream(prep.messages, stop=stop, run_manager=None, **prep.kwargs):
            if pending is not None:
                yield self._emit(self._translate(parser, pending), run_manager)
            pending = chunk
        if pending is not None:
            yield self._emit(self._translate(parser, pending, last=True), run_manager)
        self._check_stream(prep.spec, parser)

    @staticmethod
    def _emit(
        chunk: ChatGenerationChunk, run_manager: CallbackManagerForLLMRun | None
    ) -> ChatGenerationChunk:
        if run_manager:
            run_manager.on_llm_new_token(chunk.text, chunk=chunk)
        return chunk

    @staticmethod
    def _check_stream(spec: ToolCallSpec, parser: StreamParser) -> None:
        """A streamed tool call must still parse as a whole (raises like ``_generate``)."""
        if parser.mode == "call":
            spec.parse(parser.raw)

    # -- async --------------------------------------------------------------------------

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        prep = self._prepare(messages, kwargs)
        result = await super()._agenerate(
            prep.messages, stop=stop, run_manager=run_manager, **prep.kwargs
        )
        return self._parsed_result(prep, result)

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
        parser = StreamParser(prep.spec)
        pending: ChatGenerationChunk | None = None
        async for chunk in super()._astream(
            prep.messages, stop=stop, run_manager=None, **prep.kwargs
        ):
            if pending is not None:
                out = self._translate(parser, pending)
                if run_manager:
                    await run_manager.on_llm_new_token(out.text, chunk=out)
                yield out
            pending = chunk
        if pending is not None:
            out = self._translate(parser, pending, last=True)
            if run_manager:
                await run_manager.on_llm_new_token(out.text, chunk=out)
            yield out
        self._check_stream(prep.spec, parser)
