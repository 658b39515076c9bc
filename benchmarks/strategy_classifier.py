"""Accuracy of the strategy classifier (simple / moderate / complex / critical) on the
labelled realistic tasks of ``tests/data/strategy_tasks.jsonl``, with the confusion matrix,
beside seed 3's keyword classifier (``routing.rules.classify_complexity``) and the learned
router's own complexity. Prints a table and writes ``benchmarks/results/strategy_classifier.json``.

Usage::

    python benchmarks/strategy_classifier.py
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from aco_langchain import ACOConfig
from aco_langchain.routing import RouteRequest, get_router
from aco_langchain.routing.rules import classify_complexity
from aco_langchain.routing.strategy import classify_strategy

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "strategy_tasks.jsonl"
OUT = Path(__file__).parent / "results" / "strategy_classifier.json"
LABELS = ("simple", "moderate", "complex", "critical")


def measure(rows: list[dict[str, str]], classify: Callable[[str], str]) -> dict:
    """Accuracy, confusion matrix (rows: label, columns: predicted) and the misses."""
    matrix = {t: dict.fromkeys(LABELS, 0) for t in LABELS}
    misses = []
    for r in rows:
        got = classify(r["task"])
        matrix[r["label"]][got] += 1
        if got != r["label"]:
            misses.append({"task": r["task"], "label": r["label"], "predicted": got})
    correct = sum(matrix[t][t] for t in LABELS)
    return {"accuracy": correct / len(rows), "confusion": matrix, "misses": misses}


def main() -> None:
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line]
    cfg = ACOConfig()
    router = get_router(cfg)

    def ours(task: str) -> str:
        return classify_strategy(task, router.assess(RouteRequest.from_text(task), cfg))

    def learned_only(task: str) -> str:
        return router.assess(RouteRequest.from_text(task), cfg).complexity

    results = {
        "n_tasks": len(rows),
        "per_label": {t: sum(r["label"] == t for r in rows) for t in LABELS},
        "classify_strategy": measure(rows, ours),
        "seed3_keywords": measure(rows, classify_complexity),
        "learned_router_complexity": measure(rows, learned_only),
    }
    for name in ("classify_strategy", "seed3_keywords", "learned_router_complexity"):
        m = results[name]
        print(f"\n== {name}: accuracy {m['accuracy']:.1%} on {len(rows)} tasks")
        print(f"{'label / predicted':>18} " + " ".join(f"{t:>9}" for t in LABELS))
        for t in LABELS:
            print(f"{t:>18} " + " ".join(f"{m['confusion'][t][p]:>9}" for p in LABELS))
    print("\nmisses of classify_strategy:")
    for miss in results["classify_strategy"]["misses"]:
        print(f"  {miss['label']} -> {miss['predicted']}: {miss['task']}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {OUT}")


if __name__ == "__main__":
    main()
