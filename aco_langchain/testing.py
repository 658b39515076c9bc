"""Scripted chat models for offline tests of routers, agents and graphs.

``ScriptedChatModel`` answers from a script: strings, AIMessages (tool calls included),
callables of the messages, or exceptions to raise (to test fallback). It reports usage,
binds tools, streams word by word and can attach OpenAI-format logprobs.

Usage::

    from aco_langchain.testing import ScriptedChatModel
    tier = ScriptedChatModel(name="fake-t1", script=["4", RuntimeError("boom")])
    ACORouterChatModel(tier_models={1: tier, 2: ScriptedChatModel(script=["fine"])})
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr

from aco_langchain.chat.messages import tool_call_chunks

ScriptItem = str | AIMessage | BaseException | Callable[[list[BaseMessage]], Any]


def _approx_tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4)


class ScriptedChatModel(BaseChatModel):
    """A chat model that plays a script; thread-safe; records what it was sent.

    Example:
        ```python
        m = ScriptedChatModel(script=["hello"], cycle=True, logprob=-0.05)
        m.invoke("hi").content        # 'hello'
        m.calls                       # [[HumanMessage('hi')]]
        ```
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    script: list[Any] = Field(default_factory=lambda: ["ok"])
    cycle: bool = True
    model_name: str = Field(default="scripted", alias="model")
    provider: str = "scripted"
    logprob: float | None = None
    """When set, every answer token gets this logprob (OpenAI format) in generation_info."""
    report_usage: bool = True
    max_tokens: int | None = None
    """Output cap like a provider's: longer answers are cut to it (about 4 chars per token).
    A per-call ``max_tokens`` (what ACORouterChatModel sends) wins."""

    _it: Iterator[Any] = PrivateAttr()
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _calls: list[list[BaseMessage]] = PrivateAttr(default_factory=list)
    _call_kwargs: list[dict[str, Any]] = PrivateAttr(default_factory=list)

    def model_post_init(self, context: Any) -> None:
        super().model_post_init(context)
        self._it = itertools.cycle(self.script) if self.cycle else iter(self.script)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return LangSmithParams(
            ls_provider=self.provider,
            ls_model_name=kwargs.get("model") or self.model_name,
            ls_model_type="chat",
        )

    @property
    def calls(self) -> list[list[BaseMessage]]:
        """The message lists this model was called with, in order."""
        return list(self._calls)

    @property
    def call_kwargs(self) -> list[dict[str, Any]]:
        """The extra kwargs (tools, logprobs, ...) of each call, in order."""
        return list(self._call_kwargs)

    def _next(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> AIMessage:
        with self._lock:
            self._calls.append(list(messages))
            self._call_kwargs.append(dict(kwargs))
            try:
                item = next(self._it)
            except StopIteration:
                raise RuntimeError(f"{self.model_name}: script exhausted") from None
        if callable(item) and not isinstance(item, BaseException):
            item = item(messages)
        if isinstance(item, BaseException):
            raise item
        msg = item.model_copy(deep=True) if isinstance(item, AIMessage) else AIMessage(str(item))
        cap = kwargs.get("max_tokens", self.max_tokens)
        text = msg.content
        if cap and msg.usage_metadata is None and isinstance(text, str) and len(text) > cap * 4:
            msg.content = text[: cap * 4]
            msg.response_metadata["finish_reason"] = "length"
        if self.report_usage and msg.usage_metadata is None:
            i = sum(_approx_tokens(str(m.content)) for m in messages)
            o = _approx_tokens(str(msg.content) or "x")
            msg.usage_metadata = UsageMetadata(input_tokens=i, output_tokens=o, total_tokens=i + o)
        msg.response_metadata.setdefault("model_name", self.model_name)
        return msg

    def _logprobs(self, text: str) -> dict[str, Any] | None:
        if self.logprob is None:
            return None
        tokens = text.split() or [""]
        return {
            "content": [
                {"token": t, "logprob": self.logprob, "bytes": None, "top_logprobs": []}
                for t in tokens
            ]
        }

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        msg = self._next(messages, kwargs)
        info = {}
        if (lp := self._logprobs(str(msg.content))) is not None:
            info["logprobs"] = lp
            msg.response_metadata["logprobs"] = lp
        return ChatResult(generations=[ChatGeneration(message=msg, generation_info=info or None)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        msg = self._next(messages, kwargs)
        text = str(msg.content)
        words = text.split(" ")
        for i, w in enumerate(words):
            piece = w if i == len(words) - 1 else w + " "
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                tool_call_chunks=tool_call_chunks(msg),
                usage_metadata=msg.usage_metadata,
                response_metadata={"model_name": self.model_name},
                chunk_position="last",
            )
        )

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        formatted = [convert_to_openai_tool(t) for t in tools]
        extra: dict[str, Any] = {"tools": formatted}
        if tool_choice is not None:
            extra["tool_choice"] = tool_choice
        return self.bind(**extra, **kwargs)


__all__ = ["ScriptedChatModel"]
