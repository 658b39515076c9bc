"""The chat core's typed parts: AcoCallInfo as the one record downstream reads, the budget
gateway (sync and native async), and the run of ``llm.spent()`` under concurrency."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from aco_langchain import AcoCallInfo, ACOConfig, ACORouterChatModel
from aco_langchain.routing import Assessment, RouteRequest, RuleRouter
from aco_langchain.spend.gateway import BudgetGateway, Tab
from aco_langchain.spend.ledger import Limit, MemoryLedger, Refusal, SpendRecord
from aco_langchain.testing import ScriptedChatModel
from aco_langchain.tracing import InMemoryTraceSink
from aco_langchain.tracing.callback import ACOTraceCallbackHandler
from tests.prices import at_seed_prices
from tests.settings import configured

PRICED = at_seed_prices(router="rules")  # the seed's tier table: tiers 2-5 priced


def _tiers() -> dict[int, ScriptedChatModel]:
    return {n: ScriptedChatModel(model=f"fake-t{n}", script=[f"answer {n}"]) for n in range(1, 6)}


class SpyRouter:
    """Suggests tier 4 for everything and counts its assessments."""

    name = "spy"

    def __init__(self) -> None:
        self.calls = 0
        self.suggested: list[int] = []

    def assess(self, request: RouteRequest, config: ACOConfig) -> Assessment:
        self.calls += 1
        out = Assessment(
            task_type="spy-task",
            difficulty=3,
            complexity="moderate",
            suggested_tier=4,
            confidence=0.9,
            p_success={4: 0.9},
            reason="spy",
            router="spy",
        )
        self.suggested.append(out.suggested_tier)
        return out


def test_a_trace_predicted_tier_is_what_the_routing_router_predicted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spy = SpyRouter()
    llm = ACORouterChatModel(config=PRICED, tier_models=_tiers(), router=spy, ledger=MemoryLedger())
    # Tracing must not route again (with the rule router or any other).
    monkeypatch.setattr(
        RuleRouter, "assess", lambda *a, **k: pytest.fail("the trace builder re-routed")
    )
    sink = InMemoryTraceSink()
    handler = ACOTraceCallbackHandler(sink, config=PRICED)
    msg = llm.invoke("What is 2+2?", config={"callbacks": [handler]})
    info = AcoCallInfo.from_message(msg)
    assert info is not None and info.routed_tier == 4 and spy.calls == 1
    trace = sink.traces[0]
    assert trace.predicted_tier == spy.suggested[0] == 4  # the rule router would say 1
    assert trace.task_type == "spy-task" and trace.difficulty == 3
    # The cost is the router's own (not re-priced from usage by the trace).
    assert trace.total_cost == pytest.approx(info.cost_usd) and info.cost_usd > 0


def test_call_info_round_trips_response_metadata() -> None:
    llm = ACORouterChatModel(config=PRICED, tier_models=_tiers(), ledger=MemoryLedger())
    msg = llm.invoke("Summarise the release notes", aco_run_id="job-1")
    meta = msg.response_metadata["aco"]
    info = AcoCallInfo.from_message(msg)
    assert info is not None
    assert info.to_metadata() == meta  # the same keys and values, nothing added
    assert info.tier == meta["tier"] and info.run_key == "job-1"
    assert info.calls[0].tier == info.tier and info.cost_usd == meta["cost_usd"]
    assert info.run_spent_usd == pytest.approx(llm.spent("job-1"))
    assert "confidence" not in meta  # optional keys stay absent when nothing measured them
    assert AcoCallInfo.from_message(AIMessage("plain")) is None


def test_spent_without_a_key_is_each_callers_own_run_on_a_shared_model() -> None:
    llm = ACORouterChatModel(config=PRICED, tier_models=_tiers(), ledger=MemoryLedger())
    first_done, second_done = threading.Event(), threading.Event()
    seen: dict[str, float] = {}

    def caller(name: str, wait: threading.Event | None, done: threading.Event) -> None:
        if wait is not None:
            wait.wait(5)
        llm.invoke(
            "Write a haiku about budgets", aco_run_id=name, force_tier=3 if name == "a" else 5
        )
        done.set()
        if name == "a":
            second_done.wait(5)  # the other caller's call happened after ours
        seen[name] = llm.spent()

    a = threading.Thread(target=caller, args=("a", None, first_done))
    b = threading.Thread(target=caller, args=("b", first_done, second_done))
    a.start(), b.start()
    a.join(10), b.join(10)
    assert seen["a"] == pytest.approx(llm.spent("a")) and seen["a"] > 0
    assert seen["b"] == pytest.approx(llm.spent("b")) and seen["b"] != seen["a"]
    # The single-threaded case keeps its documented behaviour: the latest call's run.
    llm.invoke("hi", aco_run_id="c", force_tier=2)
    assert llm.spent() == pytest.approx(llm.spent("c"))


class AsyncOnlyLedger(MemoryLedger):
    """A memory ledger whose sync methods fail: async paths must not use them."""

    def __init__(self) -> None:
        super().__init__()
        self.async_calls: list[str] = []
        self.sync_allowed = False

    def _sync(self, name: str) -> None:
        if not self.sync_allowed:
            raise AssertionError(f"blocking ledger.{name} on an async path")

    def hold(self, limits: Sequence[Limit], usd: float, tokens: int = 0, **kw: Any) -> Any:
        self._sync("hold")
        return super().hold(limits, usd, tokens, **kw)

    def settle(self, hold: Any, record: SpendRecord, **kw: Any) -> None:
        self._sync("settle")
        super().settle(hold, record, **kw)

    def release(self, hold: Any) -> None:
        self._sync("release")
        super().release(hold)

    def spent(self, run_key: str) -> float:
        self._sync("spent")
        return super().spent(run_key)

    async def ahold(self, limits: Sequence[Limit], usd: float, tokens: int = 0, **kw: Any) -> Any:
        self.async_calls.append("hold")
        return MemoryLedger.hold(self, limits, usd, tokens, **kw)

    async def asettle(self, hold: Any, record: SpendRecord, **kw: Any) -> None:
        self.async_calls.append("settle")
        MemoryLedger.settle(self, hold, record, **kw)

    async def arelease(self, hold: Any) -> None:
        self.async_calls.append("release")
        MemoryLedger.release(self, hold)

    async def aspent(self, run_key: str) -> float:
        self.async_calls.append("spent")
        return MemoryLedger.spent(self, run_key)

    async def ausage(self, scope: str) -> Any:
        return MemoryLedger.usage(self, scope)


async def test_async_paths_use_only_the_ledgers_async_methods() -> None:
    ledger = AsyncOnlyLedger()
    tiers = _tiers()
    tiers[3] = ScriptedChatModel(model="fake-t3", script=[RuntimeError("down"), "late"])
    cfg = configured(PRICED, routing={"max_retries": 0})
    llm = ACORouterChatModel(config=cfg, tier_models=tiers, ledger=ledger)
    msg = await llm.ainvoke("Refactor this function", force_tier=3, aco_run_id="r")
    assert msg.response_metadata["aco"]["fallback_from"] == 3  # a release, then a new hold
    chunks = [c async for c in llm.astream("Tell me a story", aco_run_id="r", force_tier=2)]
    assert chunks[-1].response_metadata["aco"]["tier"] == 2
    assert await llm.aspent("r") > 0
    assert {"hold", "settle", "release", "spent"} <= set(ledger.async_calls)
    ledger.sync_allowed = True
    assert llm.spent("r") == pytest.approx(await llm.aspent("r"))


@pytest.mark.parametrize("use_async", [False, True])
async def test_gateway_holds_settles_releases_the_same_sync_and_async(use_async: bool) -> None:
    gateway = BudgetGateway(MemoryLedger())
    tab = Tab(run_key="r1", limits=[Limit("run:r1", usd=0.05)], in_bound=100, cap=50)

    async def run(name: str, *args: Any) -> Any:
        if use_async:
            return await getattr(gateway, "a" + name)(*args)
        return getattr(gateway, name)(*args)

    assert await run("hold", tab, 2, 0.03) is None and tab.holds(2)
    assert await run("hold", tab, 2, 0.03) is None  # a retry keeps its hold
    assert gateway.ledger.usage("run:r1").held_usd == pytest.approx(0.03)
    refused = await run("hold", tab, 3, 0.06)  # over the budget: the old hold is given back
    assert isinstance(refused, Refusal) and tab.hold is None
    assert gateway.ledger.usage("run:r1").held_usd == 0.0
    assert await run("hold", tab, 3, 0.02) is None
    row = SpendRecord(run_key="r1", cost_usd=0.01, input_tokens=90, output_tokens=80)
    await run("settle", tab, 3, row)  # 80 output tokens over the 50 held: blocked
    assert await run("spent", "r1") == pytest.approx(0.01)
    assert gateway.ledger.records(run="r1")[0].outcome == "over_cap"
    usage = await run("usage", "run:r1")
    assert usage.blocked and usage.held_usd == 0.0


def test_async_gateway_runs_a_sync_only_ledger_in_a_thread() -> None:
    class SyncOnly:  # a third-party ledger with no async methods
        url = "memory://"

        def __init__(self) -> None:
            self.inner = MemoryLedger()
            self.thread: threading.Thread | None = None

        def spent(self, run_key: str) -> float:
            self.thread = threading.current_thread()
            return self.inner.spent(run_key)

    ledger = SyncOnly()
    assert asyncio.run(BudgetGateway(ledger).aspent("x")) == 0.0  # type: ignore[arg-type]
    assert ledger.thread is not None and ledger.thread is not threading.main_thread()


def test_model_plan_and_aplan_agree() -> None:
    llm = ACORouterChatModel(config=PRICED, tier_models=_tiers(), ledger=MemoryLedger())
    msgs = [HumanMessage("Prove that sqrt(2) is irrational")]
    plan = llm.plan(msgs, {"aco_run_id": "p"})
    aplan = asyncio.run(llm.aplan(msgs, {"aco_run_id": "p"}))
    assert (plan.decision.tier, plan.order, plan.cap) == (
        aplan.decision.tier,
        aplan.order,
        aplan.cap,
    )
