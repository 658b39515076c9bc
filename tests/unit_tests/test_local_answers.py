"""Answers are text: the local tier's constrained-decoding envelope never reaches the user
(nested by the model, cut at max_tokens, or in the repeated-call guard's second reply)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from aco_langchain.providers.local.chat import ChatLlamaServer
from aco_langchain.providers.local.tools import (
    StreamParser,
    ToolCallSpec,
    is_cut_call,
    unwrap_answer,
)


@tool
def word_count(text: str) -> int:
    """Count the words in a text."""
    return len(text.split())


def test_unwrap_answer_removes_every_envelope_layer() -> None:
    assert unwrap_answer("Paris") == ("Paris", False)
    assert unwrap_answer('{"final_answer": "Paris"}') == ("Paris", False)
    nested = json.dumps({"final_answer": "Paris"})
    assert unwrap_answer(json.dumps({"final_answer": nested})) == ("Paris", False)
    assert unwrap_answer('{"final_answer": "Par') == ("Par", True)
    assert unwrap_answer('{"a": 1}') == ('{"a": 1}', False)  # other JSON is an answer


def test_a_nested_or_cut_envelope_parses_to_its_text_and_a_cut_is_flagged() -> None:
    spec = ToolCallSpec.build([{"type": "function", "function": {"name": "f"}}])
    nested = json.dumps({"final_answer": json.dumps({"final_answer": "A1234 shipped"})})
    out = spec.parse(nested)
    assert out.content == "A1234 shipped" and not out.truncated
    cut = spec.parse(nested[:40], truncated=True)
    assert "final_answer" not in cut.content and cut.truncated


@pytest.mark.parametrize("size", [1, 3, 7])
def test_a_streamed_nested_envelope_streams_only_the_text(size: int) -> None:
    spec = ToolCallSpec.build([], "none")
    raw = json.dumps({"final_answer": json.dumps({"final_answer": 'say "hi" {ok}'})})
    parser, said = StreamParser(spec), ""
    for i in range(0, len(raw), size):
        said += parser.feed(raw[i : i + size])[0]
    said += parser.finish()[0]
    assert said == 'say "hi" {ok}' and not parser.truncated
    cut = StreamParser(spec)
    text = cut.feed(raw[:-8])[0] + cut.finish()[0]
    assert "final_answer" not in text and cut.truncated


def test_is_cut_call() -> None:
    assert is_cut_call('{"tool": "f", "arguments": {"x": "ab', "length")
    assert not is_cut_call('{"tool": "f", "arguments": {"x": "ab', "stop")
    assert not is_cut_call('{"final_answer": "ab', "length")


def _result(text: str, finish: str = "stop") -> ChatResult:
    msg = AIMessage(text, response_metadata={"finish_reason": finish})
    return ChatResult(generations=[ChatGeneration(message=msg)])


@pytest.fixture
def server_says(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Script llama-server's raw replies (what ChatOpenAI would return), recording requests."""
    replies: list[ChatResult] = []
    seen: list[dict[str, Any]] = []

    def fake(self: Any, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any):
        seen.append(kw)
        return replies.pop(0)

    monkeypatch.setattr(ChatOpenAI, "_generate", fake)
    return [replies, seen]


def _llm() -> ChatLlamaServer:
    return ChatLlamaServer(base_url="http://127.0.0.1:9/v1", api_key="local", model="m")


HISTORY = [
    HumanMessage("How many words are in 'the quick brown fox'?"),
    AIMessage("", tool_calls=[{"name": "word_count", "args": {"text": "a b"}, "id": "c1"}]),
    ToolMessage("2", tool_call_id="c1"),
]


def test_the_repeated_call_guards_answer_is_text(server_says: list[Any]) -> None:
    replies, seen = server_says
    replies += [
        _result('{"tool": "word_count", "arguments": {"text": "a b"}}'),  # repeats c1
        _result('{"final_answer": "There are 2 words."}'),
    ]
    out = _llm().bind_tools([word_count]).invoke(HISTORY)
    assert out.content == "There are 2 words." and not out.tool_calls
    assert len(seen) == 2


def test_a_cut_tool_call_is_asked_again_with_room_to_close(server_says: list[Any]) -> None:
    replies, seen = server_says
    replies += [
        _result('{"tool": "word_count", "arguments": {"te', "length"),
        _result('{"tool": "word_count", "arguments": {"text": "x y z"}}'),
    ]
    out = _llm().bind_tools([word_count]).invoke([HumanMessage("count x y z")], max_tokens=8)
    assert out.tool_calls[0]["args"] == {"text": "x y z"}
    assert seen[0]["max_tokens"] == 8 and seen[1]["max_tokens"] >= 384


def test_a_cut_final_answer_is_text_flagged_truncated(server_says: list[Any]) -> None:
    replies, _ = server_says
    replies.append(_result('{"final_answer": "There are', "length"))
    out = _llm().bind_tools([word_count]).invoke([HumanMessage("count x y z")], max_tokens=4)
    assert out.content == "There are" and out.response_metadata["truncated"] is True


def test_a_blank_final_answer_from_the_repeat_guard_keeps_the_tool_call() -> None:
    # The small model can answer the guard's "final answer only" request with blank text:
    # that is no answer, so the first reply (a valid tool call) stands, with both usages.
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, ChatResult

    from aco_langchain.providers.local.chat import _guarded_answer

    def result(msg: AIMessage) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=msg)])

    usage = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
    call = AIMessage(
        "", tool_calls=[{"name": "lookup", "args": {"q": "x"}, "id": "c1"}], usage_metadata=usage
    )
    blank = AIMessage(" ", usage_metadata=usage)
    kept = _guarded_answer(result(call), result(blank)).generations[0].message
    assert kept.tool_calls and kept.tool_calls[0]["name"] == "lookup"
    assert kept.usage_metadata["total_tokens"] == 30
    answer = AIMessage("done", usage_metadata=usage)
    got = _guarded_answer(result(call), result(answer)).generations[0].message
    assert got.content == "done" and not got.tool_calls
