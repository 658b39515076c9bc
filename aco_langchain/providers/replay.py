"""Replay tiers: a chat model that answers with a real model's recorded answer.

A tier ``{provider: replay, recording: PATH | [PATH, ...], model: NAME}`` answers each prompt
with NAME's recorded text, usage and cost (``aco_langchain.replay.recording``), so the router,
policy, holds, settlement, ledger rows, traces and the cache all run for real on it. The
recorded cost is what the ledger records (:func:`recorded_cost`, read by
``TierRegistry.call_cost``). A prompt with no recorded answer makes the tier unavailable for
that call (:func:`miss_reason`, asked by ``TierRegistry.unavailable``); called anyway, the
model raises :class:`~aco_langchain.errors.ReplayMissError` (a tier fault: the usual
fallback applies).

Usage::

    from aco_langchain.providers.replay import ReplayChatModel
    llm = ReplayChatModel(recording=["routerbench_sample.csv"], model="gpt-4-1106-preview")
    msg = llm.invoke(prompt)
    msg.response_metadata["replay"]   # {"id": ..., "cost_usd": ..., "score": 1.0, ...}
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field

from aco_langchain.errors import ReplayMissError
from aco_langchain.replay.recording import RecordedAnswer, Recording, open_recording

if TYPE_CHECKING:
    from aco_langchain.config import TierSpec

logger = logging.getLogger(__name__)

#: Where a bare recording file name is looked for when it is not beside the working
#: directory: the replay sample shipped in the package.
SAMPLE_DIR = Path(__file__).resolve().parent.parent / "data" / "replay"
#: The shipped sample (RouterBench, MIT): see ``aco_langchain/data/replay/README.md``.
SAMPLE_RECORDING = SAMPLE_DIR / "routerbench_sample.csv"

_METADATA_KEY = "replay"


def resolve_recording(path: str | Path) -> Path:
    """A recording path as given when it exists, else the shipped sample's file of that name.

    Example:
        ```python
        resolve_recording("routerbench_sample.csv")   # .../aco_langchain/data/replay/...
        ```
    """
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return p
    shipped = SAMPLE_DIR / p
    return shipped if shipped.exists() else p


def spec_recording(spec: TierSpec) -> list[Path]:
    """The resolved recording files of a replay tier."""
    raw = spec.recording or []
    return [resolve_recording(p) for p in ([raw] if isinstance(raw, str) else raw)]


def replay_availability(spec: TierSpec) -> str | None:
    """Why a replay tier cannot answer at all (a recording file is missing), or None."""
    for p in spec_recording(spec):
        if not p.is_file():
            return f"replay recording {p} not found"
    return None


def last_human_text(messages: Sequence[BaseMessage]) -> str:
    """The text of the last human message (else of the last message): the lookup key."""
    chosen = next((m for m in reversed(messages) if m.type == "human"), None)
    if chosen is None and messages:
        chosen = messages[-1]
    return "" if chosen is None else chosen.text


def recorded_cost(message: BaseMessage) -> float | None:
    """The recorded USD of a replayed answer, None for any other message."""
    info = message.response_metadata.get(_METADATA_KEY)
    if isinstance(info, dict) and isinstance(info.get("cost_usd"), int | float):
        return float(info["cost_usd"])
    return None


class ReplayChatModel(BaseChatModel):
    """A chat model whose answers are one model's recorded answers.

    Example:
        ```python
        llm = ReplayChatModel(recording=["answers.jsonl"], model="gpt-4o")
        llm.invoke("What is 2+2?").content     # the recorded answer
        ```
    """

    recording: list[str] = Field(..., min_length=1, description="Recording files.")
    model: str = Field(..., min_length=1, description="The recorded model it plays.")
    stream_chunk_chars: int = Field(24, gt=0, description="Characters per streamed chunk.")

    @property
    def _llm_type(self) -> str:
        return "replay"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model, "recording": list(self.recording)}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "replay"
        params["ls_model_name"] = self.model
        return params

    @property
    def store(self) -> Recording:
        """The shared recording this model answers from (read on first lookup)."""
        return open_recording([resolve_recording(p) for p in self.recording])

    def miss_reason(self, text: str) -> str | None:
        """Why this model has no recorded answer to ``text``, or None."""
        return self.store.miss_reason(text, self.model)

    def _answer(self, messages: Sequence[BaseMessage]) -> RecordedAnswer:
        text = last_human_text(messages)
        found = self.store.lookup(text, self.model)
        if found is None:
            why = self.store.miss_reason(text, self.model) or "no recorded answer"
            raise ReplayMissError(
                f"replay tier {self.model}: {why}: record the prompt (aco collect) or send "
                "one from the recording"
            )
        return found

    async def _aanswer(self, messages: Sequence[BaseMessage]) -> RecordedAnswer:
        store = self.store
        if not store.loaded:
            await asyncio.to_thread(store.load)  # the first read is file I/O: off the loop
        return self._answer(messages)

    def _message(self, ans: RecordedAnswer) -> AIMessage:
        return AIMessage(
            content=ans.response,
            usage_metadata=_usage(ans),
            response_metadata=_response_metadata(ans),
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        ans = self._answer(messages)
        return ChatResult(generations=[ChatGeneration(message=self._message(ans))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        ans = await self._aanswer(messages)
        return ChatResult(generations=[ChatGeneration(message=self._message(ans))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in _chunks(self._answer(messages), self.stream_chunk_chars):
            if run_manager and chunk.text:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in _chunks(await self._aanswer(messages), self.stream_chunk_chars):
            if run_manager and chunk.text:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk


def _usage(ans: RecordedAnswer) -> UsageMetadata:
    return UsageMetadata(
        input_tokens=ans.input_tokens,
        output_tokens=ans.output_tokens,
        total_tokens=ans.input_tokens + ans.output_tokens,
    )


def _response_metadata(ans: RecordedAnswer) -> dict[str, Any]:
    return {
        "model_name": ans.model,
        "model_provider": "replay",
        "finish_reason": "stop",
        _METADATA_KEY: {
            "id": ans.id,
            "model": ans.model,
            "cost_usd": ans.cost_usd,
            "score": ans.score,
            "recording": ans.source,
        },
    }


def _chunks(ans: RecordedAnswer, size: int) -> Iterator[ChatGenerationChunk]:
    """The recorded text in pieces; usage and metadata ride on the last one (merged once)."""
    text = ans.response
    pieces = [text[i : i + size] for i in range(0, len(text), size)] or [""]
    for piece in pieces[:-1]:
        yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
    yield ChatGenerationChunk(
        message=AIMessageChunk(
            content=pieces[-1],
            usage_metadata=_usage(ans),
            response_metadata=_response_metadata(ans),
            chunk_position="last",
        )
    )


def build_replay_model(spec: TierSpec) -> ReplayChatModel:
    """The chat model of a ``provider: replay`` tier."""
    return ReplayChatModel(
        recording=[str(p) for p in spec_recording(spec)], model=spec.provider_model
    )
