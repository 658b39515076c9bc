"""Every billed reply is settled, parsed or not (issue 19, items 1, 2, 12-adjacent).

The tiers are real ``ChatOpenAI`` clients built from the config against
``tests/billing_server.BillingServer``, a loopback OpenAI fake that bills every answered
request (prompt words + 3, completion words, cut at the cap sent) so the ledger can be
compared with the bill.
"""

from __future__ import annotations

import logging

import httpx
import openai
import pytest
from langchain_core.messages import AIMessage
from pydantic import BaseModel

from aco_langchain import ACORouterChatModel
from aco_langchain.config import config_from_dict
from aco_langchain.errors import DegradedAnswerWarning, InvalidRequestError, UnparsedReplyError
from aco_langchain.providers.faults import caller_mistake, unparsed_reply
from aco_langchain.providers.tiers import input_token_bound
from aco_langchain.routing import RuleRouter
from aco_langchain.spend.gateway import over_cap_blocks
from aco_langchain.spend.ledger import Hold, MemoryLedger, SpendRecord
from aco_langchain.testing import ScriptedChatModel
from tests.billing_server import BillingServer

PRICE = {2: 0.5, 3: 1.0, 4: 2.0, 5: 4.0}  # USD per 1K tokens, in and out


class Answer(BaseModel):
    answer: str


def _llm(url: str, **routing: object) -> tuple[ACORouterChatModel, MemoryLedger]:
    models = {
        f"tier{n}": {
            "model_id": f"t{n}",
            "provider": "openai-compatible",
            "base_url": url,
            "cost_per_1k_input": p,
            "cost_per_1k_output": p,
            "capabilities": ["chat", "structured_output"],
        }
        for n, p in PRICE.items()
    }
    cfg = config_from_dict({"routing": {"max_retries": 1, **routing}, "models": models})
    ledger = MemoryLedger()
    return ACORouterChatModel(config=cfg, router=RuleRouter(), ledger=ledger), ledger


def _billed_usd(srv: BillingServer) -> float:
    return sum((i + o) * PRICE[int(m.split("t")[-1])] / 1000 for m, i, o in srv.billed())


def test_a_reply_cut_by_the_cap_is_settled_with_its_usage_and_not_retried() -> None:
    """Issue: a json_schema answer cut by max_tokens released its hold and the next, pricier
    tier was tried: billed 2.4x with 0 ledger rows."""
    with BillingServer(words=200) as srv:
        llm, ledger = _llm(srv.base_url)
        for i in range(3):
            with pytest.raises(UnparsedReplyError) as err:
                llm.invoke(f"Q{i}", response_format=Answer, max_tokens=10, force_tier=2)
            assert err.value.recorded_usage and "max_tokens" in str(err.value)
        rows = ledger.records()
        assert len(srv.billed()) == 3 and {m for m, _, _ in srv.billed()} == {"t2"}  # no 3-5
        assert [r.outcome for r in rows] == ["unparsed"] * 3
        assert [(r.input_tokens, r.output_tokens) for r in rows] == [
            (i, o) for _, i, o in srv.billed()
        ]
        assert sum(r.cost_usd for r in rows) == pytest.approx(_billed_usd(srv))
        assert llm.registry and not llm._rt.health.cooling()  # not the tier's fault
        ok = llm.invoke("plain question", force_tier=2, max_tokens=20)
        assert ok.response_metadata["aco"]["tier"] == 2


def test_an_unparsable_reply_without_usage_is_settled_at_the_holds_worst_case() -> None:
    with BillingServer(words=30) as srv:
        llm, ledger = _llm(srv.base_url)
        with pytest.raises(UnparsedReplyError) as err:
            llm.invoke("Q", response_format=Answer, max_tokens=100, force_tier=3, aco_run_id="r")
        assert not err.value.recorded_usage
        (row,) = ledger.records(run="r")
        assert row.outcome == "unparsed" and row.tier == 3
        assert row.cost_usd >= _billed_usd(srv) > 0  # never less than what was billed
        assert ledger.usage("run:r").held_usd == 0.0


def test_the_callers_response_format_is_its_own_error_not_a_fallback() -> None:
    request = httpx.Request("POST", "http://x/v1/chat/completions")
    body = {"error": {"message": "Invalid value: 'nonsense'.", "param": "response_format"}}
    bad = openai.BadRequestError(
        "Invalid value", response=httpx.Response(400, request=request), body=body["error"]
    )
    assert caller_mistake(bad) == "response_format"
    assert caller_mistake(TimeoutError()) is None and unparsed_reply(TimeoutError()) is None
    tiers = {n: ScriptedChatModel(script=[bad], model=f"t{n}") for n in range(1, 6)}
    llm = ACORouterChatModel(tier_models=tiers, router=RuleRouter(), ledger=MemoryLedger())
    with pytest.raises(InvalidRequestError, match="response_format"):
        llm.invoke("hi", force_tier=2, response_format={"type": "nonsense"})
    assert all(len(tiers[n].calls) == 0 for n in (1, 3, 4, 5))  # nothing else was tried
    assert not llm._rt.health.cooling()


def test_the_input_bound_covers_the_chat_template() -> None:
    """Issue: "Hi" was held as 10 input tokens and billed 31 by the local tier."""
    assert input_token_bound("Hi", 1) >= 31
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    assert input_token_bound("Hi", 1, tools) > input_token_bound("Hi", 1) + 16


def test_over_the_bound_blocks_only_paid_overage_beyond_the_hold() -> None:
    hold = Hold("h", ("run:r",), usd=0.01, tokens=100, expires_at=0.0)
    free = SpendRecord("r", 0.0, input_tokens=31, output_tokens=500)
    assert not over_cap_blocks(free, hold, cap=64)  # a free tier never blocks a run
    input_only = SpendRecord("r", 0.008, input_tokens=60, output_tokens=10)
    assert not over_cap_blocks(input_only, hold, cap=64)  # fits what was held
    ignored_cap = SpendRecord("r", 0.009, input_tokens=10, output_tokens=500)
    assert over_cap_blocks(ignored_cap, hold, cap=64)
    beyond = SpendRecord("r", 0.02, input_tokens=400, output_tokens=10)
    assert over_cap_blocks(beyond, hold, cap=64)


def test_a_free_tier_over_its_bounds_never_blocks_the_runs_paid_calls() -> None:
    """Issue: an ordinary free local call was recorded over_cap and blocked the run."""
    # The local tier bills its chat template (31 input for "Hi") and ignores the cap.
    reply = AIMessage(
        "word " * 40,
        usage_metadata={"input_tokens": 90, "output_tokens": 40, "total_tokens": 130},
    )
    chatty = ScriptedChatModel(script=[reply], model="t1")
    tiers = {1: chatty, **{n: ScriptedChatModel(script=["ok"], model=f"t{n}") for n in (2, 3)}}
    ledger = MemoryLedger()
    llm = ACORouterChatModel(tier_models=tiers, router=RuleRouter(), ledger=ledger)
    llm.invoke("Hi", force_tier=1, aco_run_id="run", max_tokens=16)
    (row,) = ledger.records(run="run")
    assert row.outcome == "over_cap" and row.cost_usd == 0.0
    paid = llm.invoke("Now a paid question", force_tier=2, aco_run_id="run")
    assert paid.response_metadata["aco"]["tier"] == 2


def test_a_forced_tier_served_cheaper_says_so(caplog: pytest.LogCaptureFixture) -> None:
    """Issue: force_tier=2 on a spent run was answered by tier 1 with only a log line."""
    tiers = {n: ScriptedChatModel(script=[f"tier {n}"], model=f"t{n}") for n in range(1, 6)}
    cfg = config_from_dict({"routing": {"on_budget_exceeded": "force_local"}})
    ledger = MemoryLedger()
    llm = ACORouterChatModel(config=cfg, tier_models=tiers, router=RuleRouter(), ledger=ledger)
    ledger.add("spent-run", cfg.routing.max_cost_per_task)
    with (
        caplog.at_level(logging.WARNING, logger="aco_langchain"),
        pytest.warns(DegradedAnswerWarning, match="below the decided tier 2"),
    ):
        msg = llm.invoke("hi", force_tier=2, aco_run_id="spent-run")
    meta = msg.response_metadata["aco"]
    assert meta["tier"] == 1 and meta["degraded_from"] == 2
    assert "below the decided tier 2" in caplog.text and "budget" in caplog.text


def test_through_the_server_a_billed_unparsed_reply_is_on_the_keys_spend(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue: through aco serve, 8 billed upstream calls left the key's spend at $0.0004."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from aco_langchain.server import create_app
    from aco_langchain.server.auth import hash_key

    monkeypatch.delenv("ACO_SERVER_API_KEYS", raising=False)
    schema = {
        "type": "json_schema",
        "json_schema": {"name": "Answer", "schema": Answer.model_json_schema(), "strict": True},
    }
    with BillingServer(words=200) as srv:
        models = {
            f"tier{n}": {
                "model_id": f"t{n}",
                "provider": "openai-compatible",
                "base_url": srv.base_url,
                "cost_per_1k_input": p,
                "cost_per_1k_output": p,
            }
            for n, p in PRICE.items()
        }
        cfg = config_from_dict(
            {
                "models": models,
                "router": "rules",
                "ledger": {"url": "memory://"},
                "server": {"api_keys": [{"name": "team", "sha256": hash_key("sk-team")}]},
            }
        )
        headers = {"authorization": "Bearer sk-team"}
        with TestClient(create_app(cfg)) as client:
            for i in range(4):
                r = client.post(
                    "/v1/chat/completions",
                    headers=headers,
                    json={
                        "model": "tier-2",
                        "messages": [{"role": "user", "content": f"Q{i}"}],
                        "response_format": schema,
                        "max_tokens": 10,
                    },
                )
                assert r.status_code == 502 and r.json()["error"]["code"] == "unparsed_reply"
            bad = client.post(
                "/v1/chat/completions",
                headers=headers,
                json={
                    "model": "aco",
                    "messages": [{"role": "user", "content": "x"}],
                    "response_format": {"type": "nonsense"},
                },
            )
            assert bad.status_code == 400 and bad.json()["error"]["param"] == "response_format"
            spend = client.get("/v1/spend", headers=headers).json()
        assert len(srv.billed()) == 4  # one billed call each, no fallback, none for the 400
        assert spend["calls"] == 4
        assert spend["total_usd"] == pytest.approx(_billed_usd(srv))


def test_a_cost_cap_lowers_the_output_cap_before_refusing() -> None:
    """Issue 19 item 12: max_cost_usd 0.01 was refused although the cheapest tier fits with
    a shorter output cap."""
    from aco_langchain.errors import RoutingError

    priced = {
        f"tier{n}": {
            "model_id": f"t{n}",
            "provider": "openai-compatible",
            "base_url": "http://127.0.0.1:9/v1",
            "cost_per_1k_input": 0.1 * n,
            "cost_per_1k_output": 0.1 * n,
        }
        for n in range(1, 6)
    }
    cfg = config_from_dict({"models": priced})
    tiers = {n: ScriptedChatModel(script=["short"], model=f"t{n}") for n in range(1, 6)}
    llm = ACORouterChatModel(
        config=cfg, tier_models=tiers, router=RuleRouter(), ledger=MemoryLedger()
    )
    msg = llm.invoke("What is the capital of France?", max_cost_usd=0.01)
    meta = msg.response_metadata["aco"]
    assert meta["tier"] == 1 and "output cap lowered to" in meta["reason"]
    sent = tiers[1].call_kwargs[-1]["max_tokens"]
    assert 32 <= sent < 256 and meta["estimated_cost_usd"] <= 0.01
    assert meta["cost_usd"] <= 0.01
    with pytest.raises(RoutingError, match="minimum output cap of 32 tokens"):
        llm.invoke("What is the capital of France?", max_cost_usd=0.001)
