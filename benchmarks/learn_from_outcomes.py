"""Online learning on shifting traffic: the shipped-style router vs online learning vs the
hindsight oracle, outcomes revealed as they come.

Setup (RouterBench slice, 11 models, observed per-prompt cost):
* the router's bundle is trained on half of ARC-Challenge and Winogrande (general
  questions): it never saw code;
* traffic replays the other half: a general start (ARC + Winogrande only), then a
  code-heavy mix (80% MBPP, 20% general) -- the shift. Prompts are drawn with
  replacement (seeded), so the code phase repeats MBPP prompts as real traffic repeats;
* every call is routed among five of the models (``TIERS``, a price ladder) by
  argmax p - lam x cost / cost_reference at the bundle's operating point for 95%; online
  learning adjusts that assessment (``routing/online.py``: ``adjust`` with the defaults,
  2% exploration), then the outcome of the chosen model is revealed and observed
  (``online_store``: SQLite, as in production);
* the oracle takes the cheapest correct model per prompt (hindsight).

Per window of calls: mean cost and accuracy of each; the headline compares the code-heavy
phase: share of the shipped-oracle cost gap online learning closes, and its accuracy
change against the shipped router (target: >= half the gap at <= 1 point loss).

Run: PYTHONPATH=$PWD .venv/bin/python benchmarks/learn_from_outcomes.py [--calls 4000]
Writes benchmarks/results/learn_from_outcomes.json and .png.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path

import numpy as np

from aco_langchain.config import ACOConfig
from aco_langchain.routing.base import Assessment
from aco_langchain.routing.features import normalize_prompt
from aco_langchain.routing.online import Posterior, adjust, cluster_of
from aco_langchain.routing.online_store import open_learning
from aco_langchain.routing.rules import text_signals
from aco_langchain.routing.training import calibrate as cb
from aco_langchain.routing.training.datasets import OutcomeSet, concat, load_outcomes
from aco_langchain.routing.training.train import train_bundle

DATA = Path("/work/shared/data/routing/routerbench")
RESULTS = Path(__file__).parent / "results"


#: The five tiers routed among (price ladder): cheap open models up to GPT-4.
TIERS = (
    "mistralai/mistral-7b-chat",
    "mistralai/mixtral-8x7b-chat",
    "gpt-3.5-turbo-1106",
    "claude-v2",
    "gpt-4-1106-preview",
)


def five_tiers(data: OutcomeSet) -> OutcomeSet:
    """``data`` restricted to the ``TIERS`` models (an Assessment has five tiers)."""
    cols = [data.models.index(m) for m in TIERS]
    return OutcomeSet(
        name=data.name,
        ids=data.ids,
        prompts=data.prompts,
        tasks=data.tasks,
        models=list(TIERS),
        correct=data.correct[:, cols],
        cost=data.cost[:, cols],
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=4000)
    ap.add_argument("--window", type=int, default=250)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--target", type=float, default=0.95, help="routing.quality_target")
    ap.add_argument(
        "--prior-strength", type=float, default=None, help="learning.prior_strength (default)"
    )
    ap.add_argument("--out", default="learn_from_outcomes", help="results file stem")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    sets = {t: load_outcomes([DATA / f"{t}_train.csv"]) for t in ("arc_challenge", "winograde")}
    code = load_outcomes([DATA / "mbpp_train.csv"])
    halves = {t: cb.split(s.tasks, 0.5, args.seed) for t, s in sets.items()}
    train = concat([s.subset(halves[t][0]) for t, s in sets.items()])
    general = concat([s.subset(halves[t][1]) for t, s in sets.items()])
    traffic = five_tiers(concat([general, code]))
    n_general = len(general)
    bundle = train_bundle(train, seed=args.seed)
    pred = cb.predictions(bundle, traffic)
    op = cb._point_for(pred.points, 0.95)
    shipped = cb.Setting(op.lam, op.lam_next, op.mix, 0.0, 1.0, prefer_local=False)
    ship_pick = cb.choose(pred, shipped)
    edges = bundle.manifest.difficulty_edges
    k = len(pred.models)
    tasks = [text_signals(normalize_prompt(p))[0] for p in traffic.prompts]
    # the stream: general first, then 80% code
    half = args.calls // 2
    stream = [rng.randrange(n_general) for _ in range(half)]
    for _ in range(args.calls - half):
        if rng.random() < 0.8:
            stream.append(n_general + rng.randrange(len(code)))
        else:
            stream.append(rng.randrange(n_general))
    settings = ACOConfig().learning
    if args.prior_strength is not None:
        settings = settings.model_copy(update={"prior_strength": args.prior_strength})
    coin = random.Random(args.seed + 1)
    with tempfile.TemporaryDirectory() as tmp:
        store = open_learning(url=f"sqlite:///{tmp}/ledger.db")
        rows = []
        for i in stream:
            p = pred.p[i]
            mean_p = float(p.mean())
            difficulty = min(5, max(1, 1 + sum(1 for e in edges if mean_p < e)))
            a = Assessment(
                task_type=tasks[i],
                difficulty=difficulty,
                complexity="moderate",
                suggested_tier=int(ship_pick[i]) + 1,
                confidence=float(p[ship_pick[i]]),
                p_success={t + 1: float(p[t]) for t in range(k)},
                reason="",
                router="learned",
            )
            cluster = cluster_of(a)
            posts: dict[int, Posterior] = store.posteriors(cluster)
            adj, _ = adjust(
                a, posts, settings, coin=coin.random(), may_explore=True, target=args.target
            )
            j = adj.suggested_tier - 1
            store.observe(cluster, adj.suggested_tier, float(pred.correct[i, j]))
            ok = pred.correct[i] >= 0.5
            orc = int(np.argmin(np.where(ok, pred.cost[i], np.inf))) if ok.any() else 0
            rows.append(
                (
                    pred.cost[i, ship_pick[i]],
                    pred.correct[i, ship_pick[i]],
                    pred.cost[i, j],
                    pred.correct[i, j],
                    pred.cost[i, orc],
                    pred.correct[i, orc],
                    pred.best_cost[i],
                    pred.best_correct[i],
                )
            )
    arr = np.array(rows)
    windows = []
    for s in range(0, len(arr), args.window):
        w = arr[s : s + args.window]
        windows.append(
            {
                "start": s,
                "phase": "general" if s < half else "code-heavy",
                "shipped": {"cost": w[:, 0].mean(), "accuracy": w[:, 1].mean()},
                "online": {"cost": w[:, 2].mean(), "accuracy": w[:, 3].mean()},
                "oracle": {"cost": w[:, 4].mean(), "accuracy": w[:, 5].mean()},
                "best_single": {"cost": w[:, 6].mean(), "accuracy": w[:, 7].mean()},
            }
        )

    def phase(lo: int, hi: int) -> dict[str, float]:
        w = arr[lo:hi]
        ship_c, onl_c, orc_c = w[:, 0].mean(), w[:, 2].mean(), w[:, 4].mean()
        gap = ship_c - orc_c
        return {
            "calls": int(hi - lo),
            "shipped_cost": float(ship_c),
            "online_cost": float(onl_c),
            "oracle_cost": float(orc_c),
            "best_single_cost": float(w[:, 6].mean()),
            "shipped_accuracy": float(w[:, 1].mean()),
            "online_accuracy": float(w[:, 3].mean()),
            "oracle_accuracy": float(w[:, 5].mean()),
            "best_single_accuracy": float(w[:, 7].mean()),
            "gap_closed": float((ship_c - onl_c) / gap) if gap > 0 else 0.0,
            "accuracy_change_points": float(100 * (w[:, 3].mean() - w[:, 1].mean())),
        }

    out = {
        "protocol": __doc__.split("Run:")[0].strip(),
        "calls": args.calls,
        "seed": args.seed,
        "learning": settings.model_dump(),
        "general_phase": phase(0, half),
        "code_phase": phase(half, len(arr)),
        "code_phase_second_half": phase(half + (len(arr) - half) // 2, len(arr)),
        "windows": windows,
    }
    cp = out["code_phase"]
    out["target_met"] = bool(cp["gap_closed"] >= 0.5 and cp["accuracy_change_points"] >= -1.0)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(out, indent=2, default=float))
    for name in ("general_phase", "code_phase", "code_phase_second_half"):
        ph = out[name]
        print(
            f"{name:24s} cost/call: shipped ${ph['shipped_cost']:.6f}  online "
            f"${ph['online_cost']:.6f}  oracle ${ph['oracle_cost']:.6f}  | accuracy: shipped "
            f"{ph['shipped_accuracy']:.3f}  online {ph['online_accuracy']:.3f}  oracle "
            f"{ph['oracle_accuracy']:.3f}  | gap closed {ph['gap_closed']:.1%}, accuracy "
            f"{ph['accuracy_change_points']:+.1f} pt"
        )
    print(f"target (>= 50% of the gap at <= 1 pt loss, code phase): {out['target_met']}")
    _plot(windows, RESULTS / f"{args.out}.png")


def _plot(windows: list[dict], path: Path) -> None:
    from aco_langchain.viz import new_figure, save_png

    fig = new_figure(8, 5.5)
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    xs = [w["start"] for w in windows]
    for name, color in (("shipped", "tab:gray"), ("online", "tab:blue"), ("oracle", "gold")):
        ax1.plot(xs, [w[name]["cost"] for w in windows], "-o", ms=3, color=color, label=name)
        ax2.plot(xs, [w[name]["accuracy"] for w in windows], "-o", ms=3, color=color, label=name)
    ax2.plot(xs, [0.95 * w["best_single"]["accuracy"] for w in windows], "--", color="tab:red",
             label="95% of best single")  # fmt: skip
    shift = next((w["start"] for w in windows if w["phase"] == "code-heavy"), None)
    for ax in (ax1, ax2):
        if shift is not None:
            ax.axvline(shift, color="k", lw=0.8, ls=":")
    ax1.set_ylabel("mean cost per call ($)")
    ax2.set_ylabel("accuracy")
    ax2.set_xlabel("calls (traffic shifts to code-heavy at the dotted line)")
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=8)
    ax1.set_title("online learning from observed outcomes (RouterBench, shifting traffic)")
    save_png(fig, path)


if __name__ == "__main__":
    main()
