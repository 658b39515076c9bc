"""Latency of one learned-router decision (features included), one prompt at a time.

Measures ``LearnedRouter.assess`` on a 1,500-character prompt (and a short one) with
the shipped bundle; prints p50/p99 and writes ``benchmarks/results/router_latency.json``.
Budget: p50 <= 100 us, p99 <= 300 us for the 1,500-character prompt.

Usage::

    python benchmarks/router_latency.py [--n 5000]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from aco_langchain.config import ACOConfig
from aco_langchain.routing.base import RouteRequest
from aco_langchain.routing.learned import load_router

OUT = Path(__file__).parent / "results" / "router_latency.json"

PROMPT = (
    "You are reviewing a pull request. The function below parses a CSV export of invoices "
    "and returns the total per customer, but some totals come out wrong when a customer "
    "name contains a comma. Explain the bug, then rewrite the function so it handles quoted "
    "fields, empty lines and a trailing newline. Keep the public signature.\n\n"
    "```python\ndef totals(path):\n    out = {}\n    for line in open(path):\n"
    "        name, amount = line.strip().split(',')\n        out[name] = out.get(name, 0) "
    "+ float(amount)\n    return out\n```\n\nAlso add two unit tests with pytest. "
)


def measure(router, req: RouteRequest, cfg: ACOConfig, n: int) -> dict[str, float]:
    """p50/p99/mean of ``n`` timed calls after a warm-up, in microseconds."""
    for _ in range(200):
        router.assess(req, cfg)
    ts = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        router.assess(req, cfg)
        ts[i] = time.perf_counter() - t0
    us = ts * 1e6
    return {
        "p50_us": float(np.percentile(us, 50)),
        "p99_us": float(np.percentile(us, 99)),
        "mean_us": float(us.mean()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    args = ap.parse_args()
    router = load_router()
    cfg = ACOConfig()
    long_text = (PROMPT * 4)[:1500]
    results = {"python": platform.python_version(), "machine": platform.machine(), "n": args.n}
    for name, text in (("1500_chars", long_text), ("short", "What is 2+2?")):
        results[name] = measure(router, RouteRequest.from_text(text), cfg, args.n)
        r = results[name]
        print(
            f"{name:>10}: p50 {r['p50_us']:.0f} us  p99 {r['p99_us']:.0f} us  "
            f"mean {r['mean_us']:.0f} us"
        )
    ok = results["1500_chars"]["p50_us"] <= 100 and results["1500_chars"]["p99_us"] <= 300
    results["within_budget"] = ok
    print("budget (p50 <= 100 us, p99 <= 300 us):", "met" if ok else "NOT met")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
