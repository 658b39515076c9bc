"""Budgets on the chat model: a hold per tier call, the output cap sent, rows, run keys."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.runnables import RunnableLambda

from aco_langchain import ACORouterChatModel
from aco_langchain.errors import BudgetExceededError
from aco_langchain.providers.tiers import output_cap_kwargs
from aco_langchain.routing import RuleRouter
from aco_langchain.spend.ledger import MemoryLedger
from aco_langchain.testing import ScriptedChatModel
from tests.prices import config_at_seed_prices
from tests.settings import NO_WAIT


def _tiers(**override) -> dict[int, ScriptedChatModel]:
    tiers = {
        n: ScriptedChatModel(script=[f"answer from tier {n}"], model=f"t{n}")
        for n in (1, 2, 3, 4, 5)
    }
    tiers.update(override)
    return tiers


def _llm(tiers, routing=None, **kw) -> tuple[ACORouterChatModel, MemoryLedger]:
    ledger = MemoryLedger()
    cfg = config_at_seed_prices({"routing": {**NO_WAIT, **(routing or {})}, **kw.pop("cfg", {})})
    llm = ACORouterChatModel(
        config=cfg, tier_models=tiers, router=RuleRouter(), ledger=ledger, **kw
    )  # fmt: skip
    return llm, ledger


def test_fallback_re_holds_and_skips_tiers_whose_worst_case_does_not_fit() -> None:
    # The case: $0.05 budget, tier 2 forced, tiers 2 and 3 failing. The fallback used
    # to spend $0.79 at tier 4; now tier 4 and 5 are skipped (their worst case does not fit)
    # and the local tier answers.
    down = ScriptedChatModel(script=[RuntimeError("503 down")])
    llm, ledger = _llm(_tiers() | {2: down, 3: down}, {"max_cost_per_task": 0.05})
    msg = llm.invoke("Summarise the incident report", force_tier=2, aco_run_id="r")
    meta = msg.response_metadata["aco"]
    assert meta["tier"] == 1
    assert "skipped, over budget" in meta["failures"]["4"]
    assert "run:r: worst case" in meta["failures"]["5"]
    assert ledger.spent("r") <= 0.05
    assert ledger.usage("run:r").held_usd == 0.0  # failed tiers gave their holds back


def test_the_output_cap_is_sent_to_the_tier_and_bounds_the_hold() -> None:
    tiers = _tiers()
    llm, ledger = _llm(tiers, {"max_output_tokens": 300})
    llm.invoke("hi", force_tier=2, aco_run_id="a")
    assert tiers[2].call_kwargs[-1]["max_tokens"] == 300
    llm.invoke("hi", force_tier=2, aco_run_id="a", max_tokens=40)
    assert tiers[2].call_kwargs[-1]["max_tokens"] == 40  # the call's own cap wins


def test_cap_fields_per_provider() -> None:
    from langchain_ollama import ChatOllama
    from langchain_openai import ChatOpenAI

    openai = ChatOpenAI(model="gpt-4.1", api_key="x")  # type: ignore[arg-type]
    assert output_cap_kwargs(openai, 256) == {"max_tokens": 256}
    ollama = ChatOllama(model="qwen3:1.7b", temperature=0.2)
    assert output_cap_kwargs(ollama, 256) == {"options": {"temperature": 0.2, "num_predict": 256}}


def test_over_cap_usage_is_recorded_and_blocks_further_spend() -> None:
    liar = AIMessage(
        "x" * 40,
        usage_metadata=UsageMetadata(input_tokens=5, output_tokens=5000, total_tokens=5005),
    )
    tiers = _tiers()
    tiers[2] = ScriptedChatModel(script=[liar], model="liar")
    llm, ledger = _llm(tiers, {"max_cost_per_task": 100.0, "max_output_tokens": 100})
    llm.invoke("hi", force_tier=2, aco_run_id="r")
    (row,) = ledger.records(run="r")
    assert row.outcome == "over_cap" and row.output_tokens == 5000  # recorded as billed
    assert "5000 output tokens" in (ledger.usage("run:r").blocked or "")
    after = llm.invoke("hi", force_tier=3, aco_run_id="r")
    assert after.response_metadata["aco"]["tier"] == 1  # paid tiers refuse; free still answers
    assert "blocked" in after.response_metadata["aco"]["failures"]["3"]


def test_raise_never_steps_a_forced_tier_down() -> None:
    tiers = _tiers()
    routing = {"max_cost_per_task": 0.5, "on_budget_exceeded": "raise"}
    llm, ledger = _llm(tiers, routing)
    with pytest.raises(BudgetExceededError, match=r"run 'r'.*forced tier") as info:
        llm.invoke("hello", force_tier=4, aco_run_id="r")  # worst case ~$3.1 at seed prices
    err = info.value
    assert err.scope == "run:r" and err.limit_usd == 0.5 and err.spent_usd == 0.0
    assert all(not t.calls for t in tiers.values())  # no tier was called instead
    assert ledger.records() == []


def test_unforced_calls_step_down_to_a_tier_that_fits() -> None:
    llm, ledger = _llm(_tiers(), {"max_cost_per_task": 0.5, "on_budget_exceeded": "raise"})
    msg = llm.invoke("Fix the auth bug in production", aco_run_id="r")
    assert msg.response_metadata["aco"]["tier"] < 4
    assert ledger.spent("r") <= 0.5


def test_every_answered_call_is_one_row_with_its_figures() -> None:
    llm, ledger = _llm(_tiers())
    msg = llm.invoke("hi", force_tier=2, aco_run_id="r", aco_user="alice", aco_tags=["t1"])
    (row,) = ledger.records()
    u = msg.usage_metadata
    assert (row.run_key, row.tier, row.model, row.provider) == ("r", 2, "t2", "scripted")
    assert (row.input_tokens, row.output_tokens) == (u["input_tokens"], u["output_tokens"])
    assert row.cost_usd == pytest.approx(msg.response_metadata["aco"]["cost_usd"])
    # the baseline is tier 4 (seed's gpt-4-class) for the same tokens
    assert row.baseline_usd == pytest.approx(
        (u["input_tokens"] * 1.0 + u["output_tokens"] * 3.0) / 1000
    )
    assert row.outcome == "ok" and row.user == "alice" and row.tags == ("t1",)
    assert row.trace_id and row.latency_ms >= 0


def test_cascade_escalation_takes_its_own_hold_and_row() -> None:
    tiers = _tiers()
    tiers[1] = ScriptedChatModel(script=["Paris"], model="t1", logprob=-3.0)
    llm, ledger = _llm(tiers, cfg={"cascade": {"enabled": True}})
    msg = llm.invoke("What is the capital of France?", aco_run_id="r")
    assert msg.response_metadata["aco"]["escalated"]
    assert [r.tier for r in ledger.records()] == [1, 2]
    assert ledger.usage("run:r").held_usd == 0.0


def test_stream_settles_from_its_usage() -> None:
    llm, ledger = _llm(_tiers())
    chunks = list(llm.stream("hi", force_tier=2, aco_run_id="s"))
    meta = chunks[-1].response_metadata["aco"]
    (row,) = ledger.records(run="s")
    assert row.tier == 2 and row.outcome == "ok"
    assert row.cost_usd == pytest.approx(meta["cost_usd"]) and row.cost_usd > 0


def test_an_abandoned_stream_is_charged_its_worst_case() -> None:
    tiers = _tiers()
    tiers[2] = ScriptedChatModel(script=["one two three four five"], model="t2")
    llm, ledger = _llm(tiers, {"max_output_tokens": 100})
    stream = llm.stream("hi", force_tier=2, aco_run_id="s")
    next(stream)
    stream.close()  # the caller stopped reading: the provider has billed what it sent
    (row,) = ledger.records(run="s")
    assert row.outcome == "partial" and row.output_tokens == 100
    assert ledger.usage("run:s").held_usd == 0.0


def test_user_and_tag_budgets_refuse_once_spent() -> None:
    # Worst case at tier 4 ($1/$3 per 1K): input bound 58 ("hi" + template) + 50 out = $0.208.
    cfg = {"budgets": {"users": {"bob": 0.215}, "budget_duration": "month"}}
    llm, ledger = _llm(_tiers(), {"max_output_tokens": 50}, cfg=cfg)
    first = llm.invoke("hi", force_tier=4, aco_user="bob")
    assert first.response_metadata["aco"]["tier"] == 4  # worst case $0.208 fits $0.215
    second = llm.invoke("hi", force_tier=4, aco_user="bob")  # a new run, same user
    meta = second.response_metadata["aco"]
    assert meta["tier"] != 4 and "user:bob@" in meta["failures"]["4"]


def test_the_run_key_is_the_root_of_the_call_tree() -> None:
    llm, ledger = _llm(_tiers())

    def two_calls(q: str) -> str:
        llm.invoke(q, force_tier=2)
        return str(llm.invoke(q, force_tier=2).content)

    RunnableLambda(two_calls).invoke("hi")
    RunnableLambda(two_calls).invoke("hi")
    runs = [r.run_key for r in ledger.records()]
    assert runs[0] == runs[1] and runs[2] == runs[3] and runs[0] != runs[2]
    assert ledger.records()[0].trace_id == runs[0]
    llm.invoke("hi", force_tier=2)
    llm.invoke("hi", force_tier=2)
    assert len({r.run_key for r in ledger.records()}) == 4  # bare calls: one task each
    llm.invoke("hi", force_tier=2, config={"configurable": {"thread_id": "t-1"}})
    assert ledger.records()[-1].run_key == "t-1"
    assert llm.spent() == ledger.spent("t-1")  # llm.spent(): the latest call's run


def test_instance_run_key_still_pins_every_call() -> None:
    llm, ledger = _llm(_tiers(), run_key="pinned")
    llm.invoke("a", force_tier=2)
    RunnableLambda(lambda q: llm.invoke(q, force_tier=2)).invoke("b")
    assert {r.run_key for r in ledger.records()} == {"pinned"}


def test_token_budget_per_task_is_held_like_money() -> None:
    long = {n: ScriptedChatModel(script=["word " * 400], model=f"t{n}") for n in (1, 2, 3, 4, 5)}
    llm, ledger = _llm(long, {"max_tokens_per_task": 500, "max_output_tokens": 200})
    with pytest.raises(BudgetExceededError, match="token budget 500"):
        for _ in range(5):
            llm.invoke("hi", aco_run_id="r")
    assert ledger.usage("run:r").spent_tokens <= 500


async def test_async_calls_and_streams_hold_and_settle_the_same_way() -> None:
    llm, ledger = _llm(_tiers(), {"max_output_tokens": 100})
    await llm.ainvoke("hi", force_tier=2, aco_run_id="a")
    chunks = [c async for c in llm.astream("hi", force_tier=3, aco_run_id="a")]
    assert chunks[-1].response_metadata["aco"]["tier"] == 3
    assert [(r.tier, r.outcome) for r in ledger.records(run="a")] == [(2, "ok"), (3, "ok")]
    assert ledger.usage("run:a").held_usd == 0.0
    assert llm._rt.registry.model(2).call_kwargs[-1]["max_tokens"] == 100  # type: ignore[attr-defined]
