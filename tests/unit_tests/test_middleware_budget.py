"""ACOMiddleware's max_budget goes through ledger holds (issue 19 item 5): concurrent runs on
one run id stay within it in both modes, and a failing tier in direct mode falls back."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from aco_langchain.config import ACOConfig
from aco_langchain.integrations.middleware import ACOMiddleware
from aco_langchain.testing import ScriptedChatModel

TASK = "Fix the parse bug in utils.py"


class _Slow(ScriptedChatModel):
    """Answers after a pause, so concurrent runs overlap in flight."""

    def _generate(self, messages: list[BaseMessage], *args: Any, **kw: Any) -> Any:
        time.sleep(0.05)
        return super()._generate(messages, *args, **kw)


def _tiers() -> dict[int, ScriptedChatModel]:
    answer = "done " * 200  # a long answer: a call costs a good part of its worst case
    return {n: _Slow(model=f"fake-t{n}", script=[answer]) for n in range(1, 6)}


@pytest.mark.parametrize("direct", [False, True], ids=["routed", "direct"])
def test_concurrent_runs_on_one_run_id_stay_within_max_budget(direct: bool) -> None:
    cfg = ACOConfig(router="rules", routing={"max_output_tokens": 300})
    probe = ACOMiddleware(cfg, tier_models=_tiers(), verify_answers=False)
    out = create_agent(probe.model, [], middleware=[probe]).invoke(
        {"messages": [HumanMessage(TASK)]}
    )
    step = next(e for e in out["aco_events"] if e["type"] == "model")
    # Three calls' worth: 8 runs that all pass a "spent < budget" check would pay 8.
    budget = 3 * step["cost"]
    aco = ACOMiddleware(
        cfg, tier_models=_tiers(), max_budget=budget, direct=direct, verify_answers=False
    )
    agent = create_agent(aco.model, [], middleware=[aco])
    start = threading.Barrier(8)

    def run(_: int) -> Any:
        start.wait()
        return agent.invoke({"messages": [HumanMessage(TASK)]}, context={"run_id": "shared"})

    with ThreadPoolExecutor(8) as pool:
        outs = list(pool.map(run, range(8)))
    spent = aco.model.spent("shared")
    paid = [e for o in outs for e in o["aco_events"] if e["type"] == "model" and e["cost"] > 0]
    # With holds, concurrent calls see each other's worst cases: the paid ones fit.
    assert paid
    assert spent <= budget + 1e-12, (spent, budget)
    assert spent == pytest.approx(sum(e["cost"] for e in paid))
    for out in outs:  # the others went on at $0 (on_low_budget: local) or were stopped
        last = out["messages"][-1]
        assert isinstance(last, AIMessage) and str(last.content).strip()
        if last.name == "aco":
            assert "max_budget" in str(last.content) or "budget" in str(last.content)
    assert aco.model.spend_ledger.usage("run:shared").held_usd == pytest.approx(0.0)
    assert aco.model.spend_ledger.usage("agent:shared").held_usd == pytest.approx(0.0)


def test_a_failing_tier_in_direct_mode_falls_back_instead_of_raising() -> None:
    t = {n: ScriptedChatModel(model=f"fake-t{n}", script=[f"answer t{n}"]) for n in range(1, 6)}
    t[3] = ScriptedChatModel(model="fake-t3", script=[RuntimeError("Error code: 500")])
    aco = ACOMiddleware(ACOConfig(router="rules"), tier_models=t, direct=True, verify_answers=False)
    out = create_agent(aco.model, [], middleware=[aco]).invoke({"messages": [HumanMessage(TASK)]})
    last = out["messages"][-1]
    assert isinstance(last, AIMessage) and last.content.startswith("answer t")
    step = next(e for e in out["aco_events"] if e["type"] == "model")
    assert aco.model.spent(step["run_key"]) == pytest.approx(step["cost"])
