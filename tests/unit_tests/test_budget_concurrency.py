"""A run's budget holds when its calls run concurrently (no check-then-spend leak)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from aco_langchain import ACORouterChatModel
from aco_langchain.config import config_from_dict
from aco_langchain.routing import RuleRouter
from aco_langchain.spend.ledger import MemoryLedger
from aco_langchain.testing import ScriptedChatModel

BUDGET = 0.2
ANSWER = "x" * 188  # 47 tokens: never more than the 50 the estimate assumes


class PlainLedger:
    """A ledger without holds: read the spend, call, then add (the leaky pattern)."""

    def __init__(self) -> None:
        self.inner = MemoryLedger()

    def add(self, run_key: str, usd: float) -> float:
        return self.inner.add(run_key, usd)

    def spent(self, run_key: str) -> float:
        return self.inner.spent(run_key)

    def reset(self, run_key: str | None = None) -> None:
        self.inner.reset(run_key)


def _slow(_messages):
    time.sleep(0.1)  # the calls overlap, as concurrent provider calls do
    return ANSWER


def _run(ledger) -> tuple[ACORouterChatModel, list]:
    tiers = {n: ScriptedChatModel(script=[_slow], model=f"t{n}") for n in range(1, 6)}
    cfg = config_from_dict({"routing": {"max_cost_per_task": BUDGET}})
    llm = ACORouterChatModel(
        config=cfg, tier_models=tiers, router=RuleRouter(), ledger=ledger, max_tokens=50
    )
    with ThreadPoolExecutor(8) as pool:
        msgs = list(
            pool.map(lambda i: llm.invoke(f"question {i}", force_tier=4, aco_run_id="r"), range(8))
        )
    return llm, msgs


def test_concurrent_calls_stay_within_the_run_budget() -> None:
    llm, msgs = _run(MemoryLedger())
    total = llm.spent("r")
    assert total <= BUDGET
    assert total == pytest.approx(sum(m.response_metadata["aco"]["cost_usd"] for m in msgs))
    tiers = sorted(m.response_metadata["aco"]["tier"] for m in msgs)
    assert tiers[-1] == 4 and tiers[0] < 4  # the rest stepped down to what still fit


def test_a_ledger_without_holds_leaks_under_concurrency() -> None:
    llm, _ = _run(PlainLedger())
    assert llm.spent("r") > BUDGET  # why ReservingLedger exists
