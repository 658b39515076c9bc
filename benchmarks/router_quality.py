"""Held-out quality of the learned router beside its baselines.

Protocol: 5-fold cross-validation on the training data, folds stratified by task, empty
outcomes counted as wrong; each fold's router is trained on the other four, so every
prompt's prediction is held out (out-of-fold). Baselines on the same prompts: the zero
router (convex hull of the single models), the task prior (per-task mean outcome of the
training folds: uses the task label, a reference, never a router) and a random router
(each prompt to the best single model with probability x, else to the cheapest; x swept).
It also reports how unlike the training prompts the labelled chat tasks of
``tests/data/strategy_tasks.jsonl`` are (the shipped router's structure distance, which
decides when it blends toward the rule router). The curve
holds the knob grid plus mixed points between neighbouring knob values (a prompt's crc32
coin picks which of the two it uses, ``evaluate.mixed_sweep``); the cost cut on the plain
grid is reported beside it. The task-prior baseline gets the same mixed points. Prints a
table and writes ``benchmarks/results/router_quality.json``.

Usage::

    python benchmarks/router_quality.py [--data-dir ../shared/data/routing] [--seeds 0 1]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from aco_langchain.routing.features import FeatureSpec, normalize_prompt
from aco_langchain.routing.training import evaluate as ev
from aco_langchain.routing.training.datasets import OutcomeSet, load_outcomes
from aco_langchain.routing.training.train import (
    TrainParams,
    featurize,
    out_of_fold,
    stratified_folds,
)

OUT = Path(__file__).parent / "results" / "router_quality.json"


def task_prior(data: OutcomeSet, seed: int) -> np.ndarray:
    """Baseline: per-task mean outcome of the training folds (uses the label: an upper-ish
    reference for prompt-format priors, never a router)."""
    n, m = data.correct.shape
    p = np.zeros((n, m))
    tasks = np.array(data.tasks)
    for test in stratified_folds(data.tasks, 5, seed):
        train = np.setdiff1d(np.arange(n), test)
        for t in set(data.tasks):
            a, b = train[tasks[train] == t], test[tasks[test] == t]
            p[b] = data.correct[a].mean(axis=0) if a.size else data.correct[train].mean(axis=0)
    return p


def evaluate(data: OutcomeSet, seed: int) -> dict:
    """Cross-validated metrics of the learned router and the task-prior baseline."""
    t0 = time.perf_counter()
    x, dense = featurize(data.prompts, FeatureSpec(normalize=True))
    p, c_hat = out_of_fold(x, dense, data, TrainParams(), seed)
    best_cost = ev.best_single(data.correct, data.cost)[2]
    knobs = ev.default_lambdas()
    pair = None
    if len(data.models) == 2:
        s = ev.best_single(data.correct, data.cost)[0]
        pair = p[:, s] - p[:, 1 - s]
    u = np.array([ev.prompt_uniform(normalize_prompt(t)) for t in data.prompts])
    choices, lam_idx, mixes = ev.mixed_sweep(p, c_hat / best_cost, knobs, u)
    rep = ev.report(data.models, data.correct, data.cost, choices, knobs[lam_idx], pair, mixes)
    # the same router on the plain knob grid (no mixed points), for comparison
    plain = ev.choices_points(choices[mixes == 0], data.correct, data.cost)
    rep["router"]["cost_reduction_at_95_plain_grid"] = ev.cost_reduction_at(
        plain, data.correct, data.cost
    )[0]
    singles = ev.single_model_points(data.correct, data.cost)
    lo, hi = min(c for c, _ in singles), max(c for c, _ in singles)
    rep["router"]["aiq_plain_grid"] = ev.aiq(plain, lo, hi)
    prior = task_prior(data, seed)
    pts = ev.choices_points(
        ev.mixed_sweep(prior, c_hat / best_cost, knobs, u)[0], data.correct, data.cost
    )
    base = {
        "aiq": ev.aiq(pts, lo, hi),
        "cost_reduction_at_95": ev.cost_reduction_at(pts, data.correct, data.cost)[0],
    }
    if pair is not None:
        s = ev.best_single(data.correct, data.cost)[0]
        base.update(ev.apgr(prior[:, s] - prior[:, 1 - s], data.correct, s, 1 - s))
    rep["router"].pop("curve")
    rep["random_router_curve"] = random_router(data)
    return {
        "seed": seed,
        "seconds": round(time.perf_counter() - t0, 1),
        "router": rep["router"],
        "zero_router": rep["zero_router"],
        "oracle": rep["oracle"],
        "task_prior_baseline": base,
        "random_router": rep.get("random_router") or rep["random_router_curve"],
    }


def random_router(data: OutcomeSet, steps: int = 101) -> dict[str, float]:
    """Each prompt to the best single model with probability x, else the cheapest one
    (seeded coins, x swept over [0, 1]): AIQ and cost cut of that curve."""
    best = ev.best_single(data.correct, data.cost)[0]
    singles = ev.single_model_points(data.correct, data.cost)
    cheapest = min(range(len(singles)), key=lambda j: singles[j][0])
    coins = np.random.default_rng(0).random(len(data))
    choices = np.stack([np.where(coins < x, best, cheapest) for x in np.linspace(0, 1, steps)])
    pts = ev.choices_points(choices, data.correct, data.cost)
    lo, hi = min(c for c, _ in singles), max(c for c, _ in singles)
    return {
        "aiq": ev.aiq(pts, lo, hi),
        "cost_reduction_at_95": ev.cost_reduction_at(pts, data.correct, data.cost)[0],
    }


def familiarity_report(data: OutcomeSet) -> dict[str, object]:
    """The shipped router's structure distance on training prompts and on chat tasks."""
    from aco_langchain.routing import RouteRequest
    from aco_langchain.routing.learned import (
        FAMILIAR_DISTANCE,
        UNFAMILIAR_DISTANCE,
        familiarity,
        load_router,
    )

    router = load_router()

    def dist(text: str) -> float:
        req = RouteRequest.from_text(text)
        return router._predict(req, router.ask_text(req))[3]

    chat_file = Path(__file__).resolve().parents[1] / "tests" / "data" / "strategy_tasks.jsonl"
    chat = [json.loads(x)["task"] for x in chat_file.read_text().splitlines() if x]
    out: dict[str, object] = {"familiar_distance": FAMILIAR_DISTANCE}
    out["unfamiliar_distance"] = UNFAMILIAR_DISTANCE
    for name, texts in (("training_prompts", data.prompts), ("chat_tasks", chat)):
        d = np.array([dist(t) for t in texts])
        out[name] = {
            "n": len(texts),
            "distance_p50_p90_p99": [round(float(v), 2) for v in np.percentile(d, [50, 90, 99])],
            "share_blended": float(np.mean([familiarity(v) < 1 for v in d])),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data-dir",
        default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "routing"),
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--sets", nargs="+", default=["routerbench", "routellm_mmlu"])
    args = ap.parse_args()
    root = Path(args.data_dir)
    sets = {
        "routerbench": sorted(str(p) for p in (root / "routerbench").glob("*.csv")),
        "routellm_mmlu": [str(root / "routellm_mmlu" / "mmlu_train.csv")],
    }
    sets = {k: v for k, v in sets.items() if k in args.sets}
    results: dict = {"protocol": "5-fold CV, folds stratified by task, empty outcomes wrong"}
    for name, files in sets.items():
        data = load_outcomes(files)
        runs = [evaluate(data, s) for s in args.seeds]
        keys = ["aiq", "cost_reduction_at_95", "apgr", "cpt_50", "cpt_80"]
        mean = {
            k: float(np.mean([r["router"][k] for r in runs]))
            for k in keys
            if k in runs[0]["router"]
        }
        results[name] = {"n_prompts": len(data), "models": data.models, "mean": mean, "runs": runs}
        if name == "routerbench":
            results["familiarity"] = familiarity_report(data)
        print(f"\n== {name} ({len(data)} prompts, {len(data.models)} models, seeds {args.seeds})")
        for r in runs:
            rr, zb, tp = r["router"], r["zero_router"], r["task_prior_baseline"]
            line = (
                f"seed {r['seed']}: router AIQ {rr['aiq']:.4f} (plain grid "
                f"{rr['aiq_plain_grid']:.4f}) cut@95 "
                f"{rr['cost_reduction_at_95']:.1%} (plain grid "
                f"{rr['cost_reduction_at_95_plain_grid']:.1%}) | zero router {zb['aiq']:.4f} | "
                f"task prior {tp['aiq']:.4f} cut@95 {tp['cost_reduction_at_95']:.1%} | "
                f"oracle {r['oracle']['aiq']:.4f}"
            )
            if "aiq" in (r["random_router"] or {}):
                rnd = r["random_router"]
                line += f" | random {rnd['aiq']:.4f} cut@95 {rnd['cost_reduction_at_95']:.1%}"
            if "apgr" in rr:
                line += (
                    f" | APGR {rr['apgr']:.3f} (task prior {tp['apgr']:.3f}, random "
                    f"{r['random_router']['apgr']:.3f}) CPT50 {rr['cpt_50']:.1%} "
                    f"CPT80 {rr['cpt_80']:.1%}"
                )
            print(line)
        print("mean:", {k: round(v, 4) for k, v in mean.items()})
        if name == "routerbench":
            print("structure distance (shipped router):", results["familiarity"])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    if OUT.exists():  # keep the figures of the sets not run this time
        results = {**json.loads(OUT.read_text()), **results}
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {OUT}")


if __name__ == "__main__":
    main()
