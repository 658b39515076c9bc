from __future__ import annotations

import asyncio

import openai
import pytest
from langchain_core.callbacks import get_usage_metadata_callback
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.tools import tool
from pydantic import BaseModel

from aco_langchain import ACOConfig, ACORouterChatModel
from aco_langchain.config import config_from_dict
from aco_langchain.errors import AllTiersFailedError, BudgetExceededError, TierUnavailableError
from aco_langchain.routing import RuleRouter
from aco_langchain.testing import ScriptedChatModel
from tests.prices import at_seed_prices, config_at_seed_prices
from tests.settings import NO_WAIT, configured

#: Tier 1 without tool calling (the default local tier has it), so tools go to tier 2.
_TOOLLESS_LOCAL = config_from_dict({"models": {"tier1": {"capabilities": ["chat", "logprobs"]}}})


def _llm(tiers, config=None, **routing) -> ACORouterChatModel:
    # figures at the seed's prices unless the test gives its own config
    cfg = configured(
        config if config is not None else at_seed_prices(), routing={**NO_WAIT, **routing}
    )
    return ACORouterChatModel(tier_models=tiers, router=RuleRouter(), config=cfg)


def test_routes_simple_and_critical_prompts(fake_tiers) -> None:
    llm = _llm(fake_tiers)
    easy = llm.invoke("What is 2+2?")
    assert easy.content == "answer from tier 1"
    meta = easy.response_metadata["aco"]
    assert meta["tier"] == 1 and meta["model_id"] == "tiny-local-3b"
    assert set(meta) >= {
        "tier",
        "model_id",
        "predicted_success",
        "reason",
        "cost_usd",
        "estimated_cost_usd",
        "escalated",
        "fallback_from",
    }
    hard = llm.invoke("Fix the auth bug in production")
    assert hard.content == "answer from tier 5"
    assert hard.response_metadata["aco"]["tier"] == 5


def test_cost_comes_from_usage_and_config_price(fake_tiers) -> None:
    llm = _llm(fake_tiers)
    msg = llm.invoke("hello", force_tier=4)
    u = msg.usage_metadata
    expected = (u["input_tokens"] * 1.0 + u["output_tokens"] * 3.0) / 1000
    assert msg.response_metadata["aco"]["cost_usd"] == pytest.approx(expected)
    assert llm.spent() == pytest.approx(expected)


def test_tier_model_name_and_provider_in_metadata(fake_tiers) -> None:
    msg = _llm(fake_tiers).invoke("hi", force_tier=2)
    assert msg.response_metadata["model_name"] == "fake-t2"
    assert msg.response_metadata["model_provider"] == "scripted"


def test_usage_is_counted_once(fake_tiers) -> None:
    llm = _llm(fake_tiers)
    with get_usage_metadata_callback() as cb:
        msg = llm.invoke("hi", force_tier=2)
    totals = list(cb.usage_metadata.values())
    assert len(totals) == 1
    assert totals[0]["total_tokens"] == msg.usage_metadata["total_tokens"]


class _RunManagerSpy(ScriptedChatModel):
    """Says whether each call came with a run manager (the caller's callbacks)."""

    seen: list[str] = []

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        self.seen.append(f"sync:{run_manager is not None}")
        return super()._generate(messages, stop, run_manager, **kwargs)

    async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs):
        self.seen.append(f"async:{run_manager is not None}")
        return super()._generate(messages, stop, run_manager, **kwargs)


def test_tier_reports_under_the_callers_run_manager() -> None:
    # LangChain passes run_manager only to a _generate whose signature takes one (the
    # router model's signature is precomputed); the tier reports under it.
    spy = _RunManagerSpy(script=["ok", "ok"])
    llm = _llm({n: spy for n in range(1, 6)})
    with get_usage_metadata_callback() as cb:
        llm.invoke("hi", force_tier=2)
        asyncio.run(llm.ainvoke("hi", force_tier=2))
    assert spy.seen == ["sync:True", "async:True"]
    assert len(cb.usage_metadata) == 1  # both calls counted, under the tier's model name


def test_per_call_options_through_runnable_config(fake_tiers) -> None:
    llm = _llm(fake_tiers)
    msg = llm.invoke("What is 2+2?", config={"configurable": {"force_tier": 3}})
    assert msg.response_metadata["aco"]["tier"] == 3
    bound = llm.bind(force_model="frontier-latest")
    assert bound.invoke("hi").response_metadata["aco"]["tier"] == 4


def test_stream_async_and_batch(fake_tiers) -> None:
    llm = _llm(fake_tiers)
    chunks = list(llm.stream("Fix the auth bug in production"))
    full = chunks[0]
    for c in chunks[1:]:
        full = full + c
    assert full.content == "answer from tier 5"
    assert full.response_metadata["aco"]["tier"] == 5
    assert full.usage_metadata["total_tokens"] > 0
    assert [m.content for m in llm.batch(["hi", "What is 2+2?"])] == ["answer from tier 1"] * 2


async def test_async_paths(fake_tiers) -> None:
    llm = _llm(fake_tiers)
    msg = await llm.ainvoke("hi", force_tier=3)
    assert msg.response_metadata["aco"]["tier"] == 3
    parts = [c async for c in llm.astream("hi", force_tier=2)]
    full = parts[0]
    for c in parts[1:]:
        full = full + c
    assert full.content == "answer from tier 2"
    assert full.response_metadata["aco"]["tier"] == 2
    out = await llm.abatch(["a", "b"], config={"configurable": {"force_tier": 4}})
    assert {m.response_metadata["aco"]["tier"] for m in out} == {4}


def _conn_error() -> Exception:
    import httpx

    return openai.APIConnectionError(request=httpx.Request("POST", "http://127.0.0.1:1"))


def test_retries_then_fallback_records_it(fake_tiers) -> None:
    flaky = ScriptedChatModel(script=[_conn_error(), "recovered"], cycle=False, model="flaky")
    tiers = {**fake_tiers, 3: flaky}
    llm = _llm(tiers)
    msg = llm.invoke("hi", force_tier=3)
    assert msg.content == "recovered"  # retried on the same tier
    assert len(flaky.calls) == 2
    dead = ScriptedChatModel(script=[_conn_error()], cycle=True, model="dead")
    llm = _llm({**fake_tiers, 3: dead}, max_retries=1)
    msg = llm.invoke("hi", force_tier=3)
    meta = msg.response_metadata["aco"]
    assert meta["tier"] == 4 and meta["fallback_from"] == 3
    assert "APIConnectionError" in meta["failures"]["3"]
    assert len(dead.calls) == 2  # one try + one retry, then fallback


def test_all_tiers_failing_lists_each(fake_tiers) -> None:
    tiers = {n: ScriptedChatModel(script=[ValueError(f"bad {n}")]) for n in range(1, 6)}
    llm = _llm(tiers)
    with pytest.raises(AllTiersFailedError) as info:
        llm.invoke("hi")
    assert set(info.value.failures) == {1, 2, 3, 4, 5}
    assert "tier 1: ValueError: bad 1" in str(info.value)


def test_failing_tier_cools_down(fake_tiers) -> None:
    dead = ScriptedChatModel(script=[ValueError("down")])
    llm = _llm({**fake_tiers, 2: dead}, cooldown_after=1, cooldown_s=60)
    llm.invoke("hi", force_tier=2)
    before = len(dead.calls)
    msg = llm.invoke("hi", force_tier=2)
    assert len(dead.calls) == before  # skipped while cooling down
    assert "cooling down" in msg.response_metadata["aco"]["reason"]


def test_stream_failure_before_first_chunk_falls_back(fake_tiers) -> None:
    dead = ScriptedChatModel(script=[ValueError("down")])
    llm = _llm({**fake_tiers, 2: dead})
    text = "".join(str(c.content) for c in llm.stream("hi", force_tier=2))
    assert text == "answer from tier 3"


def test_run_budget_forces_local_then_raises_when_configured(fake_tiers) -> None:
    cfg = config_at_seed_prices({"routing": {"max_cost_per_task": 1.0}})
    llm = _llm(fake_tiers, config=cfg)
    first = llm.invoke("hello there", force_tier=4, aco_run_id="r")
    assert first.response_metadata["aco"]["cost_usd"] > 0
    llm.spend_ledger.add("r", 1.0)  # e.g. spend recorded by another worker
    second = llm.invoke("Fix the auth bug in production", aco_run_id="r")
    assert second.response_metadata["aco"]["tier"] == 1
    assert "budget_exceeded" in second.response_metadata["aco"]["reason"]
    raising = config_at_seed_prices(
        {"routing": {"max_cost_per_task": 1.0, "on_budget_exceeded": "raise"}}
    )
    llm = _llm(fake_tiers, config=raising)
    llm.spend_ledger.add("r", 1.0)
    with pytest.raises(BudgetExceededError, match="max_cost_per_task"):
        llm.invoke("again", aco_run_id="r")
    llm.reset_budget("r")
    assert llm.invoke("again", aco_run_id="r").content


def test_call_projected_to_overrun_budget_is_not_started(fake_tiers) -> None:
    cfg = config_at_seed_prices({"routing": {"max_cost_per_task": 0.01}})
    msg = _llm(fake_tiers, config=cfg).invoke("hello there", force_tier=4)
    meta = msg.response_metadata["aco"]
    assert meta["tier"] < 4 and "budget remaining" in meta["reason"]
    assert meta["estimated_cost_usd"] <= 0.01


def test_budget_is_per_run_key(fake_tiers) -> None:
    # Tier 5's worst case (1024 output tokens at the seed's $1.50/1K) is about $1.6.
    cfg = config_at_seed_prices({"routing": {"max_cost_per_task": 2.0}})
    llm = _llm(fake_tiers, config=cfg)
    llm.spend_ledger.add("a", 2.0)
    other = llm.invoke("Fix the auth bug in production", aco_run_id="b")
    assert other.response_metadata["aco"]["tier"] == 5


@tool
def get_weather(city: str) -> str:
    """Weather for a city."""
    return f"sunny in {city}"


def test_bind_tools_binds_to_chosen_tier_and_skips_toolless(fake_tiers) -> None:
    call = AIMessage(
        "", tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": "c1"}]
    )
    tiers = {**fake_tiers, 2: ScriptedChatModel(script=[call], model="tooly")}
    llm = _llm(tiers, config=_TOOLLESS_LOCAL)
    msg = llm.bind_tools([get_weather], tool_choice="any").invoke("Weather in Paris?")
    # tier 1 (no tool calling in this config) is skipped: tier 2 answers with a call
    assert msg.response_metadata["aco"]["tier"] == 2
    assert msg.tool_calls[0]["name"] == "get_weather"
    sent = tiers[2].call_kwargs[-1]
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent["tool_choice"] == "any"


class Answer(BaseModel):
    value: int


def test_with_structured_output_function_calling(fake_tiers) -> None:
    call = AIMessage("", tool_calls=[{"name": "Answer", "args": {"value": 4}, "id": "c1"}])
    tiers = {**fake_tiers, 2: ScriptedChatModel(script=[call])}
    llm = _llm(tiers, config=_TOOLLESS_LOCAL)
    out = llm.with_structured_output(Answer).invoke("What is 2+2?")
    assert out == Answer(value=4)
    raw = llm.with_structured_output(Answer, include_raw=True).invoke("What is 2+2?")
    assert raw["parsed"] == Answer(value=4) and raw["parsing_error"] is None


def test_with_structured_output_json_mode(fake_tiers) -> None:
    tiers = {**fake_tiers, 1: ScriptedChatModel(script=['{"value": 7}'])}
    out = _llm(tiers).with_structured_output(Answer, method="json_mode").invoke("seven?")
    assert out == Answer(value=7)
    assert tiers[1].call_kwargs[-1]["response_format"] == {"type": "json_object"}


def test_messages_route_by_latest_user_turn(fake_tiers) -> None:
    llm = _llm(fake_tiers)
    msg = llm.invoke(
        [
            SystemMessage("You are a production incident assistant."),
            HumanMessage("What is 2+2?"),
        ]
    )
    assert msg.response_metadata["aco"]["tier"] == 1


def test_no_tier_available_is_a_clear_error() -> None:
    llm = ACORouterChatModel(config=ACOConfig(router="rules"))
    with pytest.raises(TierUnavailableError, match="no tier can serve this call") as err:
        llm.invoke("hi")
    assert "tier 1 (tiny-local-3b): local model not running" in str(err.value)
    assert "tier 2 (cheap-cloud-8b): no OPENAI_API_KEY" in str(err.value)
    with pytest.raises(TierUnavailableError, match="no tier can serve this tool-bound call"):
        llm.bind_tools([{"type": "function", "function": {"name": "f", "parameters": {}}}]).invoke(
            "hi"
        )


def test_unavailable_cloud_tier_falls_to_local_and_says_why(caplog) -> None:
    local = ScriptedChatModel(script=["local answer"])
    llm = ACORouterChatModel(config=ACOConfig(router="rules"), tier_models={1: local})
    msg = llm.invoke("Compare the trade-offs of two caching designs")  # rules: tier 4
    meta = msg.response_metadata["aco"]
    assert meta["tier"] == 1 and meta["degraded_from"] == 4
    assert "no OPENAI_API_KEY" in meta["reason"]
    assert any("degraded_from" in r.getMessage() for r in caplog.records)


def test_risk_floor_or_forced_tier_is_never_silently_degraded() -> None:
    local = ScriptedChatModel(script=["local answer"] * 3)
    llm = ACORouterChatModel(config=ACOConfig(router="rules"), tier_models={1: local})
    with pytest.raises(TierUnavailableError, match="allow_degrade"):
        llm.invoke("Fix the auth bug in production")  # inferred critical: floor 5
    with pytest.raises(TierUnavailableError, match="tier 4.*forced"):
        llm.invoke("What is 2+2?", force_tier=4)
    assert local.calls == []  # nothing was sent anywhere
    lenient = ACORouterChatModel(
        config=config_from_dict({"router": "rules", "routing": {"allow_degrade": True}}),
        tier_models={1: ScriptedChatModel(script=["local answer"])},
    )
    meta = lenient.invoke("Fix the auth bug in production").response_metadata["aco"]
    assert meta["tier"] == 1 and meta["degraded_from"] == 5


def test_bad_per_call_option_names_the_field(fake_tiers) -> None:
    llm = _llm(fake_tiers)
    with pytest.raises(ValueError, match="force_tier"):
        llm.invoke("hi", force_tier=9)
    with pytest.raises(ValueError, match="risk"):
        llm.invoke("hi", config={"configurable": {"risk": "extreme"}})
