"""Tier errors: typed classification, raise-from, bugs are not tier failures, replies checked."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import ollama
import pytest
from langchain_core.exceptions import (
    ModelAuthenticationError,
    ModelConnectionError,
    ModelRateLimitError,
)
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatResult

from aco_langchain import ACORouterChatModel
from aco_langchain.errors import AllTiersFailedError, TierReplyError
from aco_langchain.providers.faults import classify_error
from aco_langchain.routing import RuleRouter
from aco_langchain.testing import ScriptedChatModel
from tests.settings import NO_WAIT, configured


def _llm(tiers: dict[int, Any], routing: Any = None, **settings: Any) -> ACORouterChatModel:
    cfg = configured(routing={**NO_WAIT, "max_retries": 1, **(routing or {})}, **settings)
    return ACORouterChatModel(tier_models=tiers, router=RuleRouter(), config=cfg)


class _BadBinding(ScriptedChatModel):
    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        raise TypeError("bug in tool binding")


class _NoChoices(ScriptedChatModel):
    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any):
        self._next(messages, kw)
        return ChatResult(generations=[])  # what ChatOpenAI returns for `"choices": []`


def test_typed_classification() -> None:
    req = httpx.Request("POST", "http://x")
    assert classify_error(ModelRateLimitError("429")) == "retry"
    assert classify_error(ModelConnectionError("down")) == "retry"
    assert classify_error(ModelAuthenticationError("401")) == "fallback"
    assert classify_error(httpx.ReadTimeout("slow", request=req)) == "retry"
    assert classify_error(httpx.RemoteProtocolError("cut", request=req)) == "retry"
    resp = httpx.Response(503, request=req)
    assert classify_error(httpx.HTTPStatusError("503", request=req, response=resp)) == "retry"
    assert classify_error(ollama.ResponseError("overloaded", 503)) == "retry"
    assert classify_error(ollama.ResponseError("no such model", 404)) == "fallback"

    class APITimeoutError(Exception):  # a look-alike name is not a timeout
        pass

    assert classify_error(APITimeoutError()) == "fallback"


def test_tool_binding_bug_surfaces_as_itself() -> None:
    tiers = {n: ScriptedChatModel(script=[f"t{n}"]) for n in range(1, 6)}
    tiers[3] = _BadBinding(script=["never"])
    llm = _llm(tiers).bind_tools([{"type": "function", "function": {"name": "f"}}])
    with pytest.raises(TypeError, match="bug in tool binding"):
        llm.invoke("hi", force_tier=3)


def test_all_failed_keeps_exceptions_and_is_raised_from_the_last() -> None:
    boom = {n: RuntimeError(f"tier {n} down") for n in range(1, 6)}
    tiers = {n: ScriptedChatModel(script=[boom[n]]) for n in range(1, 6)}
    with pytest.raises(AllTiersFailedError) as info:
        _llm(tiers).invoke("hi", force_tier=2)
    err = info.value
    # a forced tier falls back up, never below itself (routing.allow_degrade)
    assert list(err.failures) == [2, 3, 4, 5]
    assert err.exceptions == {n: boom[n] for n in range(2, 6)}
    assert err.__cause__ is boom[5]
    assert "tier 2: RuntimeError: tier 2 down" in str(err)


@pytest.mark.parametrize(
    "bad",
    [AIMessage(""), AIMessage("   "), AIMessage(content=[])],
    ids=["empty", "blank", "no-blocks"],
)
def test_reply_without_content_or_tool_calls_falls_back(bad: AIMessage) -> None:
    tiers = {n: ScriptedChatModel(script=[f"answer {n}"]) for n in range(1, 6)}
    tiers[2] = ScriptedChatModel(script=[bad])
    msg = _llm(tiers).invoke("hi", force_tier=2)
    assert msg.content == "answer 3"
    meta = msg.response_metadata["aco"]
    assert meta["fallback_from"] == 2 and "no content" in meta["failures"]["2"]


def test_empty_choices_falls_back_and_marks_the_tier_unhealthy() -> None:
    tiers = {n: ScriptedChatModel(script=[f"answer {n}"]) for n in range(1, 6)}
    tiers[2] = _NoChoices(script=["x"])
    llm = _llm(tiers, routing={"cooldown_after": 1})
    msg = llm.invoke("hi", force_tier=2)
    assert msg.content == "answer 3"
    assert "TierReplyError" in msg.response_metadata["aco"]["failures"]["2"]
    assert 2 in llm._rt.health.cooling()  # the tier is not marked healthy


def test_tool_call_without_content_is_an_answer() -> None:
    call = AIMessage("", tool_calls=[{"name": "f", "args": {}, "id": "c1"}])
    tiers = {n: ScriptedChatModel(script=[call]) for n in range(1, 6)}
    msg = _llm(tiers).invoke("hi", force_tier=2)
    assert msg.tool_calls and msg.response_metadata["aco"]["tier"] == 2


def test_stream_without_content_falls_back() -> None:
    tiers = {n: ScriptedChatModel(script=[f"answer {n}"]) for n in range(1, 6)}
    tiers[2] = ScriptedChatModel(script=[""])
    text = "".join(str(c.content) for c in _llm(tiers).stream("hi", force_tier=2))
    assert text == "answer 3"


def test_fallback_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    tiers = {n: ScriptedChatModel(script=[f"answer {n}"]) for n in range(1, 6)}
    tiers[2] = ScriptedChatModel(script=[ValueError("rejected")])
    with caplog.at_level(logging.INFO, logger="aco_langchain"):
        _llm(tiers).invoke("hi", force_tier=2)
    assert any(
        "tier 2 failed" in r.getMessage() and "falling back to tier 3" in r.getMessage()
        for r in caplog.records
    )


def test_tier_reply_error_names_the_tier() -> None:
    assert "tier 4" in str(TierReplyError(4, "the reply had no choices"))


def test_a_retry_wait_that_does_not_fit_the_deadline_falls_back_now(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aco_langchain.chat import fallback as execute
    from aco_langchain.chat.fallback import FallbackRun
    from aco_langchain.providers.deadline import Deadline
    from aco_langchain.providers.faults import TierHealth

    monkeypatch.setattr(execute, "backoff_delay", lambda attempt, base: 5.0)
    run = FallbackRun([2, 3], 3, TierHealth(), 0.5, Deadline.start(1.0, "timeout=1"))
    assert run.next_attempt() == (2, 0.0)
    run.failed(TimeoutError("slow"))  # worth a retry, but not after a 5 s wait
    assert run.next_attempt() == (3, 0.0)
    run.failed(ValueError("rejected"))
    assert run.next_attempt() is None and not run.deadline_spent
    assert type(run.exhausted_error()) is AllTiersFailedError


@pytest.mark.parametrize("use_async", [False, True])
async def test_no_time_to_escalate_keeps_the_cheap_answer(use_async: bool) -> None:
    import time as _time

    def slow_fault(_messages: Any) -> Any:
        _time.sleep(0.7)  # past the 0.5 s deadline, then a retryable fault
        raise TimeoutError("escalation tier too slow")

    tiers = {n: ScriptedChatModel(script=[slow_fault]) for n in range(1, 6)}
    tiers[1] = ScriptedChatModel(script=["Paris"], logprob=-3.0)  # doubtful: escalates
    llm = _llm(tiers, routing={"max_latency_per_call_s": 0.5}, cascade={"enabled": True})
    q = "What is the capital of France?"
    msg = await llm.ainvoke(q) if use_async else llm.invoke(q)
    meta = msg.response_metadata["aco"]
    assert msg.content == "Paris" and meta["tier"] == 1 and not meta["escalated"]
    assert meta["escalation_skipped"] == (
        "deadline 0.5s (routing.max_latency_per_call_s=0.5) spent"
    )
