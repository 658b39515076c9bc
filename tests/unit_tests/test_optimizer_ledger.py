"""ACOOptimizer reads and writes the same spend ledger as the chat model and `aco spend`."""

from __future__ import annotations

import pytest

from aco_langchain import ACOConfig, ACORouterChatModel
from aco_langchain.agent.optimizer import ACOOptimizer
from aco_langchain.pricing import cost_usd
from aco_langchain.spend.ledger import MemoryLedger
from aco_langchain.testing import ScriptedChatModel


def test_recorded_calls_are_ledger_rows_under_the_run() -> None:
    ledger = MemoryLedger()
    opt = ACOOptimizer(ACOConfig(agent={"tool_costs": {"web_search": 0.01}}), ledger=ledger)
    run = opt.start_run("Fix the typo in README")["run_id"]
    opt.record_model_call(tier=3, input_tokens=1000, output_tokens=200)
    opt.record_tool_call("web_search")  # $0.01 as configured (an unpriced tool costs $0)
    opt.record_verifier_call(passed=True, cost=0.002)
    rows = ledger.records(run=run)
    assert [r.tier for r in rows] == [3, None, None]
    assert (rows[0].input_tokens, rows[0].output_tokens, rows[0].model) == (
        1000, 200, ACOConfig().tier(3).model_id,
    )  # fmt: skip
    total = cost_usd(ACOConfig().tier(3), 1000, 200) + 0.01 + 0.002
    assert opt.spent() == pytest.approx(total) == pytest.approx(ledger.spent(run))


def test_the_chat_models_spend_under_the_run_counts_for_doom() -> None:
    ledger = MemoryLedger()
    cfg = ACOConfig()
    opt = ACOOptimizer(cfg, ledger=ledger)
    run = opt.start_run("Summarize the report", max_budget=0.5)["run_id"]
    tier = ScriptedChatModel(script=["done"] * 3, model="t")
    llm = ACORouterChatModel(config=cfg, tier_models={n: tier for n in range(1, 6)},
                             ledger=ledger)  # fmt: skip
    msg = llm.invoke("Summarize the report", force_tier=4, aco_run_id=run)
    billed = ledger.spent(run)
    assert billed > 0 and opt.spent() == pytest.approx(billed)
    # the call is on the ledger already: the trace records it without a second row
    opt.record_model_call(tier=4, cost=billed, on_ledger=False, output=str(msg.content))
    assert len(ledger.records(run=run)) == 1 and opt.spent() == pytest.approx(billed)
    ledger.add(run, 1.0)  # spend by another process under the same run
    assert opt.check_doom().doomed
