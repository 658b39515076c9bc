"""cascade.enabled: the cheap tier answers first; doubt escalates."""

from __future__ import annotations

import pytest

from aco_langchain import ACOConfig, ACORouterChatModel
from aco_langchain.config import config_from_dict
from aco_langchain.providers.tiers import TierRegistry
from aco_langchain.routing import RuleRouter
from aco_langchain.testing import ScriptedChatModel
from tests.settings import configured


def _llm(cheap_logprob: float | None, **kw) -> tuple[ACORouterChatModel, dict]:
    tiers = {n: ScriptedChatModel(script=[f"tier {n} answer"], model=f"t{n}") for n in range(1, 6)}
    tiers[1] = ScriptedChatModel(script=["Paris"], model="t1", logprob=cheap_logprob)
    cfg = configured(kw.pop("config", None), cascade={"enabled": kw.pop("cascade", True)})
    llm = ACORouterChatModel(tier_models=tiers, router=RuleRouter(), config=cfg, **kw)
    return llm, tiers


def test_confident_cheap_answer_is_kept() -> None:
    llm, tiers = _llm(-0.01)
    msg = llm.invoke("What is the capital of France?")
    meta = msg.response_metadata["aco"]
    assert msg.content == "Paris" and meta["tier"] == 1 and not meta["escalated"]
    assert "cascade" in meta["reason"] and "keep" in meta["reason"]
    assert len(tiers[2].calls) == 0


def test_doubtful_cheap_answer_escalates_and_reports_both_calls() -> None:
    llm, tiers = _llm(-3.0)
    msg = llm.invoke("What is the capital of France?")
    meta = msg.response_metadata["aco"]
    assert msg.content == "tier 2 answer"
    assert meta["escalated"] and meta["tier"] == 2 and meta["first_tier"] == 1
    assert [c["tier"] for c in meta["calls"]] == [1, 2]
    assert meta["cost_usd"] == pytest.approx(sum(c["cost_usd"] for c in meta["calls"]))
    assert meta["first_confidence"] < 0.5 and "confidence" not in meta  # tier 2: unmeasured
    # both calls' tokens are reported: they were really spent through this model
    cheap_usage = meta["calls"][0]["usage"]["total_tokens"]
    assert msg.usage_metadata["total_tokens"] > cheap_usage
    # the ledger says which row was the escalation (the dashboard's escalation rate reads it)
    rows = llm.spend_ledger.records(run=meta["run_key"])
    assert [(r.tier, r.outcome) for r in rows] == [(1, "ok"), (2, "escalated")]


def test_missing_logprobs_fall_back_to_format_check_not_silent_pass() -> None:
    llm, _ = _llm(None)
    meta = llm.invoke("What is the capital of France?").response_metadata["aco"]
    assert "format" in meta["reason"]


def test_stream_is_buffered_until_the_decision() -> None:
    llm, tiers = _llm(-3.0)
    chunks = list(llm.stream("What is the capital of France?"))
    text = "".join(str(c.content) for c in chunks)
    assert text == "tier 2 answer"  # the cheap answer never reached the caller
    full = chunks[0]
    for c in chunks[1:]:
        full = full + c
    assert full.response_metadata["aco"]["escalated"]


def test_unbuffered_stream_skips_the_cascade() -> None:
    cfg = config_from_dict({"cascade": {"buffer_stream": False}})
    llm, tiers = _llm(-3.0, config=cfg)
    text = "".join(str(c.content) for c in llm.stream("What is the capital of France?"))
    assert text == "Paris" and len(tiers[2].calls) == 0


async def test_async_cascade() -> None:
    llm, _ = _llm(-3.0)
    msg = await llm.ainvoke("What is the capital of France?")
    assert msg.response_metadata["aco"]["escalated"]


def test_config_built_tiers_keep_config_semantics() -> None:
    reg = TierRegistry(ACOConfig(), {2: ScriptedChatModel()})
    assert reg.has_instance(2) and not reg.has_instance(1)
    assert 1 in reg.unavailable()  # the local server is not running in unit tests


def test_calls_is_always_in_the_metadata() -> None:
    """README: ``msg.response_metadata["aco"]["calls"]`` works whether or not it escalated."""
    kept, _ = _llm(-0.01)
    escalated, _ = _llm(-3.0)
    plain, _ = _llm(-0.01, cascade=False)
    metas = {
        "kept": kept.invoke("What is the capital of France?").response_metadata["aco"],
        "escalated": escalated.invoke("What is the capital of France?").response_metadata["aco"],
        "no cascade": plain.invoke("What is the capital of France?").response_metadata["aco"],
    }
    chunks = list(plain.stream("What is the capital of France?"))
    merged = chunks[0]
    for c in chunks[1:]:
        merged = merged + c
    metas["stream"] = merged.response_metadata["aco"]
    for path, meta in metas.items():
        want = 2 if path == "escalated" else 1
        assert len(meta["calls"]) == want, path
        assert meta["calls"][-1]["tier"] == meta["tier"], path
        assert meta["first_tier"] == meta["calls"][0]["tier"], path
        assert meta["cost_usd"] == pytest.approx(sum(c["cost_usd"] for c in meta["calls"]))
    common = {"tier", "model_id", "calls", "first_tier", "cost_usd", "reason", "escalated"}
    assert all(common <= set(m) for m in metas.values())
