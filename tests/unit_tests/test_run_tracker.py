"""The root-run tracker (``chat/runs.py``): opted into by building a router model, never by
importing the package, and what it buys: every call of a nested call tree is one task."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from langchain_core.runnables import RunnableLambda

from aco_langchain import ACORouterChatModel
from aco_langchain.routing import RuleRouter
from aco_langchain.spend.ledger import MemoryLedger
from aco_langchain.testing import ScriptedChatModel

ROOT = Path(__file__).resolve().parents[2]

#: A fresh process: the LangChain handlers a chain carries before any router model is built,
#: after the first, and after a second.
_OPT_IN = """
import json
from langchain_core.runnables import RunnableLambda
import aco_langchain
from aco_langchain import ACORouterChatModel, create_aco_agent  # noqa: F401
from aco_langchain.testing import ScriptedChatModel

def handlers(_x, config):
    return sorted(type(h).__name__ for h in config["callbacks"].handlers)

def build():
    tiers = {n: ScriptedChatModel(script=["ok"], model=f"t{n}") for n in range(1, 6)}
    return ACORouterChatModel(tier_models=tiers, ledger="memory://")

seen = [RunnableLambda(handlers).invoke(0)]
build()
seen.append(RunnableLambda(handlers).invoke(0))
build()
seen.append(RunnableLambda(handlers).invoke(0))
print(json.dumps(seen))
"""


def test_importing_the_package_adds_no_handler_to_langchain_calls() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _OPT_IN],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    before, first, second = json.loads(out.stdout.strip().splitlines()[-1])
    assert "RootRunTracker" not in before  # imported, no router model: LangChain untouched
    assert first.count("RootRunTracker") == 1  # the first router model opts the process in
    assert second == first  # once per process, however many models


def test_every_call_of_a_nested_call_tree_is_one_task() -> None:
    ledger = MemoryLedger()
    tiers = {n: ScriptedChatModel(script=[f"answer {n}"], model=f"t{n}") for n in range(1, 6)}
    llm = ACORouterChatModel(tier_models=tiers, router=RuleRouter(), ledger=ledger)

    def step(q: str) -> str:  # a step two levels below the task's root
        return str(llm.invoke(q, force_tier=2).content)

    inner = RunnableLambda(step)
    task = RunnableLambda(lambda q: [inner.invoke(q), inner.invoke(q + "!")])
    task.invoke("a")
    task.invoke("b")
    rows = ledger.records()
    assert len(rows) == 4
    # each task's calls share one run key (its root run), though their parents differ
    assert rows[0].run_key == rows[1].run_key != rows[2].run_key == rows[3].run_key
    assert [r.trace_id for r in rows] == [r.run_key for r in rows]
