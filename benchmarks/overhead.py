"""Overhead of routing: ACORouterChatModel.invoke vs the tier's own invoke, and `aco route`.

Prints the median ratio (router invoke / tier invoke, same scripted tier, same run,
interleaved) and the wall time of `aco route` as a whole process; writes JSON to
benchmarks/results/overhead.json. Targets: ratio <= 1.3x, `aco route` <= 1.0 s.

Usage::

    .venv/bin/python benchmarks/overhead.py [--rounds 2000] [--cli-runs 7]
        [--local-rounds 20] [--first-invoke-runs 5]

``0`` skips a part (``--rounds 0``: the in-process invoke and forced-step parts); a skipped
part keeps its previous entry in the JSON, and ``measured`` records when and at what load
each part was last measured. Only the CLI part: ``--rounds 0 --local-rounds 0
--first-invoke-runs 0``.
"""

from __future__ import annotations

import argparse
import json
import os
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


def _prompts(n: int) -> list[str]:
    # Distinct prompts, so nothing in either path can profit from seeing the same text twice.
    return [f"{PROMPT} Ticket #{i}: customer {i % 37} on plan {i % 5}." for i in range(n)]


def bench_invoke(rounds: int, router: str) -> dict[str, float]:
    tier = ScriptedChatModel(script=["A short answer."], model="bench-tier")
    tiers = {n: tier for n in range(1, 6)}
    llm = ACORouterChatModel(config=ACOConfig(router=router), tier_models=tiers)
    prompts = _prompts(rounds)
    for p in prompts[:50]:  # warm up both paths (router bundle load, pydantic caches)
        tier.invoke(p)
        llm.invoke(p)
    direct, routed = [], []
    for p in prompts:
        t0 = time.perf_counter()
        tier.invoke(p)
        t1 = time.perf_counter()
        llm.invoke(p)
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


def bench_local(rounds: int) -> dict[str, float] | None:
    """Same comparison with the real local tier (llama.cpp), when it is built."""
    from aco_langchain.providers import local as lm
    from aco_langchain.providers.tiers import TierRegistry

    cfg = ACOConfig()
    if not lm.is_built(cfg.local_model):
        return None
    with lm.serve(cfg.local_model):
        tier = TierRegistry(cfg).model(1)
        llm = ACORouterChatModel(config=cfg, tier_models={1: tier}, max_tokens=8)
        prompts = _prompts(rounds + 3)
        for p in prompts[:3]:
            tier.invoke(p, max_tokens=8)
            llm.invoke(p, force_tier=1)
        direct, routed = [], []
        # llama-server caches the prompt prefix: the second call of a pair is cheaper, so
        # the order alternates and each call gets a prompt the server has not seen.
        for i, p in enumerate(prompts[3:]):
            calls = [
                (direct, lambda p=p: tier.invoke("A " + p, max_tokens=8)),
                (routed, lambda p=p: llm.invoke("B " + p, force_tier=1)),
            ]
            for sink, call in calls if i % 2 == 0 else calls[::-1]:
                t0 = time.perf_counter()
                call()
                sink.append(time.perf_counter() - t0)
    return {
        "rounds": rounds,
        "tier_invoke_median_ms": statistics.median(direct) * 1e3,
        "router_invoke_median_ms": statistics.median(routed) * 1e3,
        "ratio_of_medians": statistics.median(routed) / statistics.median(direct),
    }


def bench_forced_step(rounds: int) -> dict[str, float]:
    """Per-step decision overhead of a forced-tier call (what every agent step is): the
    plan with no assessment (now) against the same plan plus the learned router's
    assessment it used to run (before), and an unforced call's plan for reference."""
    from langchain_core.messages import HumanMessage

    tier = ScriptedChatModel(script=["A short answer."], model="bench-tier")
    llm = ACORouterChatModel(config=ACOConfig(), tier_models={n: tier for n in range(1, 6)})
    rt = llm._rt
    msgs = [[HumanMessage(p)] for p in _prompts(rounds)]
    for m in msgs[:50]:
        llm.plan(m, {"force_tier": 3})
        llm.plan(m, {})
    forced, before, unforced = [], [], []
    for m in msgs:
        t0 = time.perf_counter()
        plan = llm.plan(m, {"force_tier": 3})
        t1 = time.perf_counter()
        rt.router.assess(plan.request, llm.config)  # the assessment a forced call ran before
        t2 = time.perf_counter()
        llm.plan(m, {})
        t3 = time.perf_counter()
        forced.append(t1 - t0)
        before.append(t2 - t0)
        unforced.append(t3 - t2)
    return {
        "rounds": rounds,
        "forced_plan_median_us": statistics.median(forced) * 1e6,
        "forced_plan_with_assessment_median_us": statistics.median(before) * 1e6,
        "unforced_plan_median_us": statistics.median(unforced) * 1e6,
    }


#: One fresh interpreter per sample: the first call after construction, the modules it
#: imported, and whether langchain-openai came along (it should not for scripted tiers).
_FIRST_INVOKE = """
import json, sys, time
from aco_langchain import ACOConfig, ACORouterChatModel
from aco_langchain.config import seed_priced_models
from aco_langchain.testing import ScriptedChatModel
which = sys.argv[1]
tier = ScriptedChatModel(script=["A short answer."], model="bench-tier")
t_build = time.perf_counter()
if which == "tier":
    target = tier
else:
    models = seed_priced_models() if which == "priced" else None
    cfg = ACOConfig(models=models) if models else ACOConfig()
    target = ACORouterChatModel(config=cfg, tier_models={n: tier for n in range(1, 6)})
before = set(sys.modules)
t0 = time.perf_counter()
build_ms = (t0 - t_build) * 1e3
target.invoke("What is 2+2?")
ms = (time.perf_counter() - t0) * 1e3
new = set(sys.modules) - before
print(json.dumps({"ms": ms, "build_ms": build_ms, "modules": len(new),
                  "langchain_openai": "langchain_openai" in sys.modules,
                  "genai_prices": any(m.startswith("genai_prices") for m in new)}))
"""


def bench_first_invoke(runs: int) -> dict[str, dict[str, float | bool]]:
    """First ``invoke`` after construction, each sample in a fresh interpreter: the bare
    scripted tier (LangChain's own first-call imports), the router with the default tiers
    (tiers 2-5 unpriced in config: genai-prices' bundled data loads on the first price),
    and the router with priced tiers (seed prices: no genai-prices)."""
    out: dict[str, dict[str, float | bool]] = {}
    for which in ("tier", "default", "priced"):
        samples = []
        for _ in range(runs):
            done = subprocess.run(
                [sys.executable, "-c", _FIRST_INVOKE, which],
                check=True,
                capture_output=True,
                text=True,
            )
            samples.append(json.loads(done.stdout.strip().splitlines()[-1]))
        out[which] = {
            "runs": runs,
            "median_ms": statistics.median(s["ms"] for s in samples),
            "max_ms": max(s["ms"] for s in samples),
            "construction_median_ms": statistics.median(s["build_ms"] for s in samples),
            "modules_imported": statistics.median(s["modules"] for s in samples),
            "langchain_openai_imported": any(s["langchain_openai"] for s in samples),
            "genai_prices_imported": any(s["genai_prices"] for s in samples),
        }
    return out


def bench_cli(runs: int) -> dict[str, float]:
    aco = Path(sys.executable).with_name("aco")
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([str(aco), "route", "What is 2+2?"], check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return {
        "runs": runs,
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2000, help="0 skips invoke and forced step")
    ap.add_argument("--cli-runs", type=int, default=7, help="0 skips `aco route`")
    ap.add_argument("--local-rounds", type=int, default=20, help="0 skips the local tier")
    ap.add_argument("--first-invoke-runs", type=int, default=5, help="0 skips it")
    args = ap.parse_args()
    dest = Path(__file__).parent / "results" / "overhead.json"
    prev = json.loads(dest.read_text()) if dest.exists() else {}
    stamp = {
        "utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    first = bench_first_invoke(args.first_invoke_runs) if args.first_invoke_runs else None
    runs = {r: bench_invoke(args.rounds, r) for r in ("learned", "rules")} if args.rounds else {}
    step = bench_forced_step(args.rounds) if args.rounds else None
    cli = bench_cli(args.cli_runs) if args.cli_runs else None
    local = bench_local(args.local_rounds) if args.local_rounds else None
    stamp["load_avg_1m_end"] = round(os.getloadavg()[0], 2)
    fresh = {
        "invoke": runs or None,
        "local_tier": local,
        "forced_step": step,
        "aco_route_process": cli,
        "first_invoke": first,
    }
    measured = dict(prev.get("measured", {}))
    out = {}
    for key, value in fresh.items():
        if value is not None:
            out[key] = value
            measured[key] = stamp
        else:  # skipped (or no local tier built): keep what an earlier run measured
            out[key] = prev.get(key)
    out["measured"] = measured
    out["targets"] = {"ratio": 1.3, "cli_s": 1.0, "first_invoke_ms": 50}
    for name, inv in runs.items():
        print(f"router: {name}")
        print(f"  tier.invoke median            {inv['tier_invoke_median_us']:9.1f} us")
        print(f"  ACORouterChatModel.invoke     {inv['router_invoke_median_us']:9.1f} us")
        print(f"  median ratio (router / tier)  {inv['median_of_ratios']:9.3f} x  (target <= 1.3)")
    if step:
        print("per-step decision (plan) of a forced-tier call, learned router configured")
        print(f"  now (no assessment)           {step['forced_plan_median_us']:9.1f} us")
        before = step["forced_plan_with_assessment_median_us"]
        print(f"  before (with the assessment)  {before:9.1f} us")
        print(f"  unforced call, for reference  {step['unforced_plan_median_us']:9.1f} us")
    if cli:
        print(
            f"`aco route` whole process     {cli['median_s']:9.3f} s  median of {cli['runs']}"
            f" (min {cli['min_s']:.3f}, max {cli['max_s']:.3f}; target <= 1.0)"
        )
    if first:
        print("first invoke after construction, fresh interpreter (target <= 50 ms)")
        for which, f in first.items():
            print(
                f"  {which:<8} median {f['median_ms']:7.1f} ms  max {f['max_ms']:7.1f} ms  "
                f"(construction {f['construction_median_ms']:6.1f} ms)  "
                f"{f['modules_imported']:.0f} modules imported  "
                f"langchain_openai={f['langchain_openai_imported']} "
                f"genai_prices={f['genai_prices_imported']}"
            )
    if local:
        print("real local tier (llama.cpp, 8 output tokens)")
        print(f"  tier.invoke median            {local['tier_invoke_median_ms']:9.1f} ms")
        print(f"  ACORouterChatModel.invoke     {local['router_invoke_median_ms']:9.1f} ms")
        print(f"  ratio of medians              {local['ratio_of_medians']:9.3f} x")
    print(
        f"load average (1 min) at start / end: {stamp['load_avg_1m']} / {stamp['load_avg_1m_end']}"
    )
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(out, indent=2))
    print(f"wrote {dest}")


if __name__ == "__main__":
    main()
