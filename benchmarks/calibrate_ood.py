"""``aco calibrate --target 0.95`` on data of a kind the shipped bundle never saw.

For each set: the data is split (seeded, stratified by task) into the user's training
portion (70%) and a held-out portion (30%) calibrate never sees. A bundle is trained on the
training portion (``aco train``), ``calibrate`` chooses the thresholds on that portion
alone (its own internal split), and the written setting is measured on the held-out
portion (``aco eval --config``'s ``operating_point``): quality share of the best single
model and cost share of it. Target (issue 23): quality share >= 0.93 at <= 40% cost.

Sets: llmrouter (9 open models, 14 tasks), RouteLLM MMLU (2 models), and RouterBench
leave-one-task-out (bundle trained on two tasks, the user's data is the third: the
router never saw that kind of prompt).

Run: PYTHONPATH=$PWD .venv/bin/python benchmarks/calibrate_ood.py [--quick]
Writes benchmarks/results/calibrate_ood.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from aco_langchain.config import ACOConfig
from aco_langchain.routing.training import calibrate as cb
from aco_langchain.routing.training.datasets import OutcomeSet, load_outcomes
from aco_langchain.routing.training.train import train_bundle

DATA = Path("/work/shared/data/routing")
OUT = Path(__file__).parent / "results" / "calibrate_ood.json"


def run_case(name: str, user: OutcomeSet, base: OutcomeSet | None, seed: int) -> dict:
    """Train on base (or the user's training portion), calibrate, measure held-out."""
    t0 = time.perf_counter()
    train_rows, hold_rows = cb.split(user.tasks, 0.3, seed + 100)
    portion, heldout = user.subset(train_rows), user.subset(hold_rows)
    bundle = train_bundle(base if base is not None else portion, seed=seed)
    cal = cb.calibrate(bundle, portion, 0.95, ACOConfig(), seed=seed)
    cfg = cb.apply(ACOConfig(), cal)
    op = cb.operating_point(bundle, heldout, cfg)
    op_default = cb.operating_point(bundle, heldout, ACOConfig())
    res = {
        "case": name,
        "n_portion": len(portion),
        "n_heldout": len(heldout),
        "routed_models": op["routed_models"],
        "chosen": cal.to_dict()["chosen"],
        "refused": cal.refused,
        "calibrate_internal_heldout": cal.after.to_dict(),
        "heldout_quality_share": round(op["quality_share"], 4),
        "heldout_cost_share": round(op["cost_share"], 4),
        "heldout_ci95": [round(v, 4) for v in op["ci95"]],
        "default_config_quality_share": round(op_default["quality_share"], 4),
        "default_config_cost_share": round(op_default["cost_share"], 4),
        "meets_issue_target": bool(op["quality_share"] >= 0.93 and op["cost_share"] <= 0.40),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(
        f"{name:28s} seed {seed}: held-out quality share {res['heldout_quality_share']:.3f} "
        f"{res['heldout_ci95']} at cost share {res['heldout_cost_share']:.3f} "
        f"(n={len(heldout)}; default config {res['default_config_quality_share']:.3f} @ "
        f"{res['default_config_cost_share']:.3f}) target met: {res['meets_issue_target']}",
        flush=True,
    )
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    rb = {
        t: load_outcomes([DATA / "routerbench" / f"{t}_train.csv"])
        for t in ("arc_challenge", "mbpp", "winograde")
    }
    cases: list[tuple[str, OutcomeSet, OutcomeSet | None]] = [
        ("llmrouter", load_outcomes([DATA / "llmrouter" / "dcrouter_train.json"]), None),
        ("routellm_mmlu", load_outcomes([DATA / "routellm_mmlu" / "mmlu_train.csv"]), None),
    ]
    for t in rb:
        others = [rb[o] for o in rb if o != t]
        from aco_langchain.routing.training.datasets import concat

        cases.append((f"routerbench_unseen_{t}", rb[t], concat(others)))
    results = []
    for name, user, base in cases:
        if args.only and args.only not in name:
            continue
        for seed in range(args.seeds):
            results.append(run_case(name, user, base, seed))
    summary = {
        "protocol": "user data split 70/30 (seeded, by task); bundle trained on the 70% "
        "(RouterBench cases: on the two other tasks); calibrate --target 0.95 on the 70%; "
        "the chosen setting measured on the 30%",
        "target": {"quality_share_min": 0.93, "cost_share_max": 0.40},
        "results": results,
        "mean": {
            name: {
                "quality_share": round(
                    float(
                        np.mean([r["heldout_quality_share"] for r in results if r["case"] == name])
                    ),
                    4,
                ),
                "cost_share": round(
                    float(np.mean([r["heldout_cost_share"] for r in results if r["case"] == name])),
                    4,
                ),
            }
            for name in dict.fromkeys(r["case"] for r in results)
        },
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary["mean"], indent=2))


if __name__ == "__main__":
    main()
