"""What a routed call did and cost, typed: ``AcoCallInfo``, and the async budget readers.

Runs offline: the tiers are scripted chat models and the ledger is in memory. One sync call,
one async call on the same model (its ledger calls are the ledger's async methods, so the
event loop never blocks), and the typed record each answer carries.

Run::

    python examples/call_info.py
"""

from __future__ import annotations

import asyncio

from aco_langchain import AcoCallInfo, ACOConfig, ACORouterChatModel
from aco_langchain.spend.ledger import MemoryLedger
from aco_langchain.testing import ScriptedChatModel


def main() -> None:
    tiers = {
        n: ScriptedChatModel(model=f"scripted-t{n}", script=[f"tier {n} says hi"])
        for n in range(1, 6)
    }
    llm = ACORouterChatModel(
        config=ACOConfig(router="rules"), tier_models=tiers, ledger=MemoryLedger()
    )

    msg = llm.invoke("Summarise this ticket: the export button does nothing", aco_run_id="job-1")
    info = AcoCallInfo.from_message(msg)
    assert info is not None
    print(f"tier {info.tier} (routed {info.routed_tier}), ${info.cost_usd:.6f}: {info.reason}")
    print(f"run {info.run_key} spent ${llm.spent('job-1'):.6f}")

    async def later() -> None:
        msg = await llm.ainvoke("Now prove that sqrt(2) is irrational", aco_run_id="job-1")
        info = AcoCallInfo.from_message(msg)
        assert info is not None
        print(f"async: tier {info.tier}, run spent ${await llm.aspent('job-1'):.6f}")

    asyncio.run(later())


if __name__ == "__main__":
    main()
