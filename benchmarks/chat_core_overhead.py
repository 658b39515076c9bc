"""What the chat core itself adds per ``invoke``: the router's overhead over an instant tier,
split into the policy's ``decide``, the memory ledger's hold/settle/reads, and the rest (the
chat core: options, planner, tier caller, drivers, reporter, LangChain surface).

The router is a constant stand-in (no assessment cost: that is the router's own figure, see
``router_latency.py``); the ledger is ``memory://``. Each figure is the minimum and the median
of ``--rounds`` single calls (the minimum is the least disturbed by a busy host). Writes
``benchmarks/results/chat_core_overhead.json`` (``--out`` to change it).

Usage::

    .venv/bin/python benchmarks/chat_core_overhead.py [--rounds 4000] [--out PATH]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
import timeit
from collections.abc import Callable
from pathlib import Path

from langchain_core.messages import HumanMessage

from aco_langchain import ACOConfig, ACORouterChatModel
from aco_langchain.config import ACOConfig as _Config
from aco_langchain.routing import Assessment, RouteRequest, decide
from aco_langchain.spend.ledger import Limit, MemoryLedger, SpendRecord
from aco_langchain.testing import ScriptedChatModel

PROMPT = "Summarize the following support ticket in two sentences and suggest a priority level."


class ConstantRouter:
    """Assesses every request the same way, at no cost."""

    name = "constant"
    assessment = Assessment(
        task_type="general",
        difficulty=2,
        complexity="simple",
        suggested_tier=2,
        confidence=0.9,
        p_success={2: 0.9},
    )

    def assess(self, request: RouteRequest, config: _Config) -> Assessment:
        return self.assessment


def _time(fn: Callable[[], object], rounds: int) -> tuple[float, float]:
    for _ in range(300):  # warm-up
        fn()
    samples = timeit.repeat(fn, number=1, repeat=rounds)
    return min(samples) * 1e6, statistics.median(samples) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=4000)
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "chat_core_overhead.json"
    )
    args = ap.parse_args()
    keys = itertools.count()
    tier = ScriptedChatModel(script=["A short answer."], model="bench-tier")
    llm = ACORouterChatModel(
        config=ACOConfig(router="rules"),
        tier_models={n: tier for n in range(1, 6)},
        ledger=MemoryLedger(),
        router=ConstantRouter(),
    )
    plan = llm.plan([HumanMessage(PROMPT)], {"aco_run_id": "plan"})
    ledger = MemoryLedger()

    def ledger_ops() -> None:  # what one call does on the ledger: hold, settle, two reads
        key = f"k{next(keys)}"
        got = ledger.hold([Limit(f"run:{key}", usd=5.0, tokens=100_000)], 0.01, 100)
        ledger.settle(got, SpendRecord(run_key=key, cost_usd=0.001))  # type: ignore[arg-type]
        ledger.spent(key)
        ledger.spent(key)

    figures = {
        "tier_invoke": _time(lambda: tier.invoke(PROMPT), args.rounds),
        "router_invoke": _time(lambda: llm.invoke(PROMPT), args.rounds),
        "decide": _time(
            lambda: decide(
                ConstantRouter.assessment, plan.request, llm.config, unavailable={}, spent_usd=0.0
            ),
            args.rounds,
        ),
        "memory_ledger": _time(ledger_ops, args.rounds),
    }
    out: dict[str, object] = {"rounds": args.rounds, "measured_at": time.strftime("%Y-%m-%d")}
    for i, stat in enumerate(("min_us", "median_us")):
        f = {k: v[i] for k, v in figures.items()}
        added = f["router_invoke"] - f["tier_invoke"]
        out[stat] = {
            **f,
            "added": added,
            "chat_core": added - f["decide"] - f["memory_ledger"],
        }
        core = added - f["decide"] - f["memory_ledger"]
        print(
            f"{stat:9s} tier.invoke {f['tier_invoke']:7.1f}  router.invoke "
            f"{f['router_invoke']:7.1f}  added {added:6.1f} = decide {f['decide']:5.1f} + "
            f"memory ledger {f['memory_ledger']:5.1f} + chat core {core:6.1f} us"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
