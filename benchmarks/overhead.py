"""Overhead of routing: ACORouterChatModel.invoke vs the tier's own invoke, and `aco route`.

Prints the median ratio (router invoke / tier invoke, same scripted tier, same run,
interleaved) and the wall time of `aco route` as a whole process; writes JSON to
benchmarks/results/overhead.json. Targets: ratio <= 1.3x, `aco route` <= 1.0 s.

Usage::

    .venv/bin/python benchmarks/overhead.py [--rounds 2000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from aco_langchain import ACOConfig, ACORouterChatModel
from aco_langchain.testing import ScriptedChatModel

PROMPT = (
    "Summarize the following support ticket in two sentences and suggest a priority level. "
    "The customer reports that the export button on the billing page does nothing in Firefox, "
    "but works in Chrome; they need the CSV for their month-end close tomorrow."
)


def bench_invoke(rounds: int) -> dict[str, float]:
    tier = ScriptedChatModel(script=["A short answer."], model="bench-tier")
    tiers = {n: tier for n in range(1, 6)}
    llm = ACORouterChatModel(config=ACOConfig(), tier_models=tiers)
    for _ in range(50):  # warm up both paths (router bundle load, pydantic caches)
        tier.invoke(PROMPT)
        llm.invoke(PROMPT)
    direct, routed = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        tier.invoke(PROMPT)
        t1 = time.perf_counter()
        llm.invoke(PROMPT)
        t2 = time.perf_counter()
        direct.append(t1 - t0)
        routed.append(t2 - t1)
    ratios = [r / d for r, d in zip(routed, direct, strict=True)]
    return {
        "rounds": rounds,
        "router": llm._identifying_params["router"],
        "tier_invoke_median_us": statistics.median(direct) * 1e6,
        "router_invoke_median_us": statistics.median(routed) * 1e6,
        "ratio_of_medians": statistics.median(routed) / statistics.median(direct),
        "median_of_ratios": statistics.median(ratios),
    }


def bench_cli(runs: int) -> dict[str, float]:
    aco = Path(sys.executable).with_name("aco")
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([str(aco), "route", "What is 2+2?"], check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return {"runs": runs, "median_s": statistics.median(times), "max_s": max(times)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2000)
    ap.add_argument("--cli-runs", type=int, default=7)
    args = ap.parse_args()
    inv = bench_invoke(args.rounds)
    cli = bench_cli(args.cli_runs)
    out = {"invoke": inv, "aco_route_process": cli, "targets": {"ratio": 1.3, "cli_s": 1.0}}
    print(f"router: {inv['router']}")
    print(f"tier.invoke median            {inv['tier_invoke_median_us']:9.1f} us")
    print(f"ACORouterChatModel.invoke     {inv['router_invoke_median_us']:9.1f} us")
    print(f"median ratio (router / tier)  {inv['median_of_ratios']:9.3f} x  (target <= 1.3)")
    print(
        f"`aco route` whole process     {cli['median_s']:9.3f} s  median of {cli['runs']}"
        f" (max {cli['max_s']:.3f}; target <= 1.0)"
    )
    dest = Path(__file__).parent / "results" / "overhead.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(out, indent=2))
    print(f"wrote {dest}")


if __name__ == "__main__":
    main()
