"""Run-level agent policies on recorded agent runs (CodeRouterBench): held-out figures.

Procedure, for each verifier quality (oracle, recall/false_reject 0.9/0.05, 0.8/0.1,
0.6/0.2) and each split seed (``--seeds``, default 20):

1. Split the tasks 50/50 with the seed (``runs_calibrate.split_tasks``).
2. Calibrate on the training half (``runs_calibrate.calibrate``, target 0.99 of the best
   single model's resolved rate, safety margin 1 SE): ladder, step caps.
3. On the held-out half: the policy's resolved rate and total cost with the seeded verifier
   (and in expectation), beside every single model, the best single model on those tasks
   (highest resolved rate, then cheapest) and the hindsight oracle, with 95% bootstrap
   intervals.
4. Summarise over seeds: mean held-out cost as a share of the best single model's, mean
   resolved-rate difference, and how many seeds meet "cost <= 50% at <= 1 point lower".
5. Generalisation to other models: the same with each of the two strongest models left out
   of the data (the policy never saw a table with them missing).

Seed 0's full report (per verifier) and the summaries go to
``benchmarks/results/agent_replay.json``.

Usage::

    python benchmarks/agent_replay.py
    python benchmarks/agent_replay.py --runs my_runs.csv --seeds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from aco_langchain.replay.runs import load_runs, parse_verifier
from aco_langchain.replay.runs_cli import replay_runs_report

DEFAULT_RUNS = Path("/work/shared/data/agent_runs/coderouterbench/ood176_results_long.csv")
VERIFIERS = (
    "oracle",
    "recall=0.9,false_reject=0.05",
    "recall=0.8,false_reject=0.1",
    "recall=0.6,false_reject=0.2",
)
OUT = Path(__file__).parent / "results" / "agent_replay.json"


def summarise(runs: Path, models: list[str] | None, verifier: str, seeds: int) -> dict:
    """Seed 0's report and the over-seeds summary for one verifier (and model set)."""
    table = load_runs(runs, models=models)
    spec = parse_verifier(verifier)
    shares, diffs, met, first = [], [], 0, None
    for seed in range(seeds):
        rep = replay_runs_report(
            table, spec, models=None, calibrate=True, target=0.99, train_split=0.5, seed=seed
        )
        share = rep["heldout"]["cost_share_of_best_single"]
        diff = rep["heldout"]["resolved_rate_minus_best_single"]
        shares.append(share)
        diffs.append(diff)
        met += share <= 0.5 and diff >= -0.01
        if first is None:
            first = rep
    assert first is not None
    return {
        "verifier": verifier,
        "models": list(table.models),
        "seeds": seeds,
        "mean_cost_share_of_best_single": round(statistics.mean(shares), 4),
        "median_cost_share_of_best_single": round(statistics.median(shares), 4),
        "mean_resolved_rate_minus_best_single": round(statistics.mean(diffs), 4),
        "seeds_meeting_target": met,
        "seed0": {k: v for k, v in first.items() if k != "heldout_tasks"},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=DEFAULT_RUNS)
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args(argv)
    if not args.runs.exists():
        print(f"no runs file at {args.runs}; give --runs", file=sys.stderr)
        return 1
    table = load_runs(args.runs)
    rates = {
        m: sum(table.run(t, m).resolved for t in table.tasks) / len(table.tasks)
        for m in table.models
    }
    strongest = sorted(rates, key=rates.__getitem__, reverse=True)[:2]
    results = {"runs": str(args.runs), "tasks": len(table.tasks), "verifiers": [], "left_out": []}
    for verifier in VERIFIERS:
        s = summarise(args.runs, None, verifier, args.seeds)
        results["verifiers"].append(s)
        h, b, o = s["seed0"]["heldout"], s["seed0"]["best_single"], s["seed0"]["oracle"]
        print(f"\n== verifier {verifier}: policy {s['seed0']['policy']['label']} (seed 0)")
        print(
            f"  policy      resolved {h['resolved_rate']:.3f} "
            f"[{h['resolved_rate_ci95'][0]:.3f}, {h['resolved_rate_ci95'][1]:.3f}]  "
            f"cost ${h['cost_usd']:.2f} [{h['cost_usd_ci95'][0]:.2f}, {h['cost_usd_ci95'][1]:.2f}]"
            f"  expected {h['expected_resolved_rate']:.3f} / ${h['expected_cost_usd']:.2f}"
        )
        print(f"  best single {b['model']}: {b['resolved_rate']:.3f}  ${b['cost_usd']:.2f}")
        print(f"  oracle      {o['resolved_rate']:.3f}  ${o['cost_usd']:.2f}")
        for model, f in s["seed0"]["singles"].items():
            print(f"  {model:<18} {f['resolved_rate']:.3f}  ${f['cost_usd']:.2f}")
        print(
            f"  over {s['seeds']} seeds: cost share of best single mean "
            f"{s['mean_cost_share_of_best_single']:.2f} (median "
            f"{s['median_cost_share_of_best_single']:.2f}), resolved rate minus best single "
            f"mean {s['mean_resolved_rate_minus_best_single']:+.3f}; target met on "
            f"{s['seeds_meeting_target']}/{s['seeds']}"
        )
    for left in strongest:
        models = [m for m in table.models if m != left]
        s = summarise(args.runs, models, "recall=0.8,false_reject=0.1", args.seeds)
        s["left_out"] = left
        results["left_out"].append(s)
        print(
            f"\n== without {left}, verifier 0.8/0.1 over {s['seeds']} seeds: cost share mean "
            f"{s['mean_cost_share_of_best_single']:.2f}, resolved minus best single mean "
            f"{s['mean_resolved_rate_minus_best_single']:+.3f}, target met on "
            f"{s['seeds_meeting_target']}/{s['seeds']}"
        )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
