"""Outcomes observed by an ``aco_outcome`` event or a verifier's verdict are written to the
outcome store (not only joined into the trace), sync and async, with their source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks.manager import adispatch_custom_event, dispatch_custom_event
from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableLambda

from aco_langchain.config import ACOConfig
from aco_langchain.integrations.langgraph import create_aco_agent
from aco_langchain.spend.outcomes import OutcomeStore, open_outcomes
from aco_langchain.testing import ScriptedChatModel
from aco_langchain.tracing.callback import (
    EVENT_OUTCOME,
    EVENT_VERDICT,
    ACOTraceCallbackHandler,
    AsyncACOTraceCallbackHandler,
)
from tests.unit_tests.agent_helpers import tiers

CFG = ACOConfig(router="rules")


def _sqlite(tmp_path: Path) -> OutcomeStore:
    return open_outcomes(f"sqlite:///{tmp_path / 'ledger.db'}")


def _emit(name: str, data: dict[str, Any]) -> RunnableLambda:
    def step(x: str) -> str:
        dispatch_custom_event(name, data)
        return x

    return RunnableLambda(step)


def _aemit(name: str, data: dict[str, Any]) -> RunnableLambda:
    async def step(x: str) -> str:
        await adispatch_custom_event(name, data)
        return x

    return RunnableLambda(step)


def test_outcome_event_is_stored_with_its_score(tmp_path: Path) -> None:
    store = _sqlite(tmp_path)
    h = ACOTraceCallbackHandler(config=CFG, outcomes=store)
    chain = _emit(EVENT_OUTCOME, {"task_success": True, "score": 0.75})
    chain.invoke("grade the essay", {"callbacks": [h], "metadata": {"aco_run_id": "ev-1"}})
    got = store.get("ev-1")
    assert got is not None and got.success is True and got.score == 0.75
    assert got.source == "event"
    assert h.traces[0].task_success is True and h.traces[0].run_key == "ev-1"


@pytest.mark.parametrize(
    ("passed", "expected"),
    [(True, True), (False, False), (None, None)],
)
def test_verdict_is_stored_and_a_negative_or_missing_one_is_no_success(
    passed: bool | None, expected: bool | None
) -> None:
    store = OutcomeStore()
    h = ACOTraceCallbackHandler(config=CFG, outcomes=store)
    chain = _emit(EVENT_VERDICT, {"passed": passed, "why": "", "tier": 4, "cost": 0.0})
    chain.invoke("check it", {"callbacks": [h], "metadata": {"aco_run_id": "v-1"}})
    got = store.get("v-1")
    if expected is None:  # the verifier said neither: nothing observed, nothing stored
        assert got is None and h.traces[0].task_success is None
    else:
        assert got is not None and got.success is expected and got.source == "verifier"


def test_unknown_outcome_event_stores_nothing() -> None:
    store = OutcomeStore()
    h = ACOTraceCallbackHandler(config=CFG, outcomes=store)
    chain = _emit(EVENT_OUTCOME, {"final_outcome": "completed"})  # no task_success
    chain.invoke("x", {"callbacks": [h], "metadata": {"aco_run_id": "u-1"}})
    assert store.many() == {}


def test_bad_score_is_refused_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    store = OutcomeStore()
    h = ACOTraceCallbackHandler(config=CFG, outcomes=store)
    chain = _emit(EVENT_OUTCOME, {"task_success": True, "score": 7})
    chain.invoke("x", {"callbacks": [h], "metadata": {"aco_run_id": "b-1"}})
    assert store.many() == {}
    assert "score in [0, 1]" in caplog.text


def test_agent_verifier_pass_is_stored_under_the_run_key() -> None:
    t = tiers(t4=["PASS\nlooks right"])
    t[3] = ScriptedChatModel(model="fake-t3", script=["first"], logprob=-1.0)
    graph = create_aco_agent(CFG, [], tier_models=t, task_risk="high")
    store = OutcomeStore()
    h = ACOTraceCallbackHandler(config=CFG, outcomes=store)
    graph.invoke({"messages": [HumanMessage("Fix the parse bug")]}, {"callbacks": [h]})
    tr = h.traces[0]
    assert tr.verified is True and tr.task_success is True
    got = store.get(str(tr.run_key))
    assert got is not None and got.success is True and got.source == "verifier"


async def test_async_handler_writes_with_native_async(tmp_path: Path) -> None:
    store = _sqlite(tmp_path)
    h = AsyncACOTraceCallbackHandler(config=CFG, outcomes=store)
    ev = _aemit(EVENT_OUTCOME, {"task_success": False})
    await ev.ainvoke("a", {"callbacks": [h], "metadata": {"aco_run_id": "a-ev"}})
    verdict = _aemit(EVENT_VERDICT, {"passed": True, "why": "", "tier": 4, "cost": 0.0})
    await verdict.ainvoke("b", {"callbacks": [h], "metadata": {"aco_run_id": "a-v"}})
    rows = await store.amany(["a-ev", "a-v"])
    assert rows["a-ev"].success is False and rows["a-ev"].source == "event"
    assert rows["a-v"].success is True and rows["a-v"].source == "verifier"


async def test_sync_handler_in_an_async_run_hands_the_write_to_the_loop(
    tmp_path: Path,
) -> None:
    store = _sqlite(tmp_path)
    h = ACOTraceCallbackHandler(config=CFG, outcomes=store)
    chain = _aemit(EVENT_OUTCOME, {"task_success": True, "score": 1.0})
    await chain.ainvoke("a", {"callbacks": [h], "metadata": {"aco_run_id": "s-in-a"}})
    await h.adrain()
    got = await store.aget("s-in-a")
    assert got is not None and got.success is True and got.source == "event"


async def test_async_agent_verifier_pass_is_stored(tmp_path: Path) -> None:
    t = tiers(t4=["PASS\nlooks right"])
    t[3] = ScriptedChatModel(model="fake-t3", script=["first"], logprob=-1.0)
    graph = create_aco_agent(CFG, [], tier_models=t, task_risk="high")
    store = _sqlite(tmp_path)
    h = AsyncACOTraceCallbackHandler(config=CFG, outcomes=store)
    await graph.ainvoke({"messages": [HumanMessage("Fix the parse bug")]}, {"callbacks": [h]})
    got = await store.aget(str(h.traces[0].run_key))
    assert got is not None and got.success is True and got.source == "verifier"


def test_default_store_is_the_one_beside_the_configured_ledger(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cfg-ledger.db'}"
    h = ACOTraceCallbackHandler(config=CFG, outcomes=url)
    _emit(EVENT_OUTCOME, {"task_success": True}).invoke(
        "x", {"callbacks": [h], "metadata": {"aco_run_id": "d-1"}}
    )
    got = open_outcomes(url).get("d-1")
    assert got is not None and got.source == "event"
