"""A run's budget holds when its calls run concurrently and answer longer than estimated.

Each tier call holds its worst case (input bound + the output cap it is sent) before it
starts, and the scripted tiers honour that cap the way providers honour ``max_tokens``.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from aco_langchain import ACORouterChatModel
from aco_langchain.errors import LedgerError
from aco_langchain.routing import RuleRouter
from aco_langchain.spend.ledger import MemoryLedger
from aco_langchain.testing import ScriptedChatModel
from tests.prices import config_at_seed_prices

BUDGET = 5.0
LONG_ANSWER = "word " * 2000  # ~2,500 tokens: far past the 256-token estimate


def _slow(_messages):
    time.sleep(0.02)  # the calls overlap, as concurrent provider calls do
    return LONG_ANSWER


def _tiers() -> dict[int, ScriptedChatModel]:
    return {n: ScriptedChatModel(script=[_slow], model=f"t{n}") for n in range(1, 6)}


def test_concurrent_long_answers_never_overspend_the_run_budget() -> None:
    cfg = config_at_seed_prices(
        {
            "routing": {
                "max_cost_per_task": BUDGET,
                "max_output_tokens": 300,
                "max_tokens_per_task": 10**7,
            }
        }
    )
    ledger = MemoryLedger()
    llm = ACORouterChatModel(config=cfg, tier_models=_tiers(), router=RuleRouter(), ledger=ledger)

    def call(i: int):
        return llm.invoke(f"question {i}", force_tier=4, aco_run_id="r")

    with ThreadPoolExecutor(32) as pool:
        msgs = list(pool.map(call, range(32 * 20)))
    total = llm.spent("r")
    assert total <= BUDGET
    assert total >= 0.9 * BUDGET  # the budget is used, not refused wholesale
    rows = ledger.records(run="r")
    assert sum(r.cost_usd for r in rows) == pytest.approx(total)
    assert len(rows) == len(msgs)  # one row per answered call
    assert max(r.output_tokens for r in rows) <= 300  # the cap was sent and honoured
    tiers = {m.response_metadata["aco"]["tier"] for m in msgs}
    assert 4 in tiers and 1 in tiers  # once tier 4 no longer fits, the free tier answers


def test_a_ledger_without_holds_is_refused() -> None:
    class PlainLedger:
        def add(self, run_key: str, usd: float) -> float:
            return usd

    with pytest.raises(LedgerError, match="not a SpendLedger"):
        ACORouterChatModel(tier_models=_tiers(), router=RuleRouter(), ledger=PlainLedger())
