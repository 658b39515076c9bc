"""Calibrate the cascade's escalation threshold on the real local tier.

Procedure:

1. Ask the local model (SmolLM2-135M-Instruct via llama-server, greedy, at most 48 tokens,
   logprobs on) every question of ``benchmarks/data/cascade_calibration.jsonl`` (95 short
   questions with checkable answers: arithmetic, capitals, yes/no facts, one-word facts).
2. Score each answer against its accepted answers (numbers: the last number in the answer;
   yes/no: the first yes/no word; text: any accepted answer appears, case-insensitive).
3. Compute ``cascade.confidence_from_logprobs`` on the answer's tokens, and report the ROC AUC
   of confidence for "answer is correct" (and the AUC of each component for comparison, with a
   bootstrap 95% interval).
4. Pick the threshold. "Escalate" means confidence < threshold; a wrong answer is the positive
   class. Candidates are midpoints between consecutive observed confidences. Chosen: the
   threshold maximising F1 of "escalate exactly the wrong answers"; ties go to the lower
   threshold (fewer escalations). Also reported: the lowest threshold whose kept answers reach
   the target accuracy (``--target-accuracy``), and a two-fold check (choose on one half by
   parity of the row index, measure on the other).
5. Print the figures, write everything to ``benchmarks/results/calibrate_cascade.json`` and,
   with ``--write-default``, the threshold and its provenance to
   ``aco_langchain/data/cascade_calibration.json`` (read by ``cascade.calibrated_threshold``).

Usage::

    python benchmarks/calibrate_cascade.py --write-default      # starts/stops the server itself
    python benchmarks/calibrate_cascade.py --base-url http://127.0.0.1:8080/v1 --limit 20
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aco_langchain.chat import cascade as cs  # noqa: E402
from aco_langchain.config import load_config  # noqa: E402
from aco_langchain.providers import local as lm  # noqa: E402

DATA = ROOT / "benchmarks" / "data" / "cascade_calibration.jsonl"
RESULTS = ROOT / "benchmarks" / "results" / "calibrate_cascade.json"
DEFAULT_FILE = ROOT / "aco_langchain" / "data" / "cascade_calibration.json"
SYSTEM = "Answer the question with only the answer: a number, a name, or yes/no. No explanation."
WORDS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "twelve": 12,
    "twenty-four": 24,
    "sixty": 60,
}


def is_correct(item: dict[str, Any], answer: str) -> bool:
    """Score ``answer`` against the item's accepted answers (see the module docstring)."""
    text = answer.strip().lower()
    if item["kind"] == "yesno":
        m = re.search(r"\b(yes|no)\b", text)
        return bool(m) and m.group(1) == item["answers"][0].lower()
    if item["kind"] == "number":
        targets = set()
        for a in item["answers"]:
            if re.fullmatch(r"-?\d+(\.\d+)?", a):
                targets.add(float(a))
            elif a.lower() in WORDS:
                targets.add(float(WORDS[a.lower()]))
        nums = re.findall(r"-?\d[\d,]*(?:\.\d+)?", text)
        if nums:  # the last number is the answer ("11 * 11 = 121.")
            return float(nums[-1].replace(",", "").rstrip(".")) in targets
        words = re.findall(r"\b(" + "|".join(WORDS) + r")\b", text)
        return bool(words) and float(WORDS[words[-1]]) in targets
    return any(a.lower() in text for a in item["answers"])


def auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """ROC AUC of ``scores`` for ``labels`` (Mann-Whitney; ties count one half)."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def bootstrap_auc(
    scores: Sequence[float], labels: Sequence[bool], n: int = 1000, seed: int = 0
) -> tuple[float, float] | None:
    """A percentile bootstrap 95% interval of the AUC."""
    rng = random.Random(seed)
    idx = range(len(scores))
    vals = []
    for _ in range(n):
        sample = [rng.choice(idx) for _ in idx]
        a = auc([scores[i] for i in sample], [labels[i] for i in sample])
        if a is not None:
            vals.append(a)
    if not vals:
        return None
    vals.sort()
    return vals[int(0.025 * len(vals))], vals[int(0.975 * len(vals)) - 1]


def threshold_table(conf: Sequence[float], correct: Sequence[bool]) -> list[dict[str, float]]:
    """Escalation figures for every candidate threshold (escalate iff confidence < t)."""
    uniq = sorted(set(conf))
    cands = [0.0] + [(a + b) / 2 for a, b in zip(uniq, uniq[1:], strict=False)] + [1.0]
    rows = []
    n_wrong = sum(not c for c in correct)
    for t in cands:
        esc = [c < t for c in conf]
        tp = sum(e and not ok for e, ok in zip(esc, correct, strict=True))
        n_esc = sum(esc)
        kept = [ok for e, ok in zip(esc, correct, strict=True) if not e]
        prec = tp / n_esc if n_esc else 0.0
        rec = tp / n_wrong if n_wrong else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        rows.append(
            {
                "threshold": round(t, 6),
                "escalation_rate": n_esc / len(conf),
                "precision": prec,
                "recall": rec,
                "f1": f1,
                "kept": len(kept),
                "kept_accuracy": sum(kept) / len(kept) if kept else 1.0,
                "final_accuracy_if_escalations_fixed": (sum(kept) + n_esc) / len(conf),
            }
        )
    return rows


def choose_f1(rows: list[dict[str, float]]) -> dict[str, float]:
    """Max F1; ties to the lower threshold."""
    return max(rows, key=lambda r: (round(r["f1"], 9), -r["threshold"]))


def choose_target(
    rows: list[dict[str, float]], target: float, min_kept: int = 5
) -> dict[str, float] | None:
    """The lowest threshold whose kept answers reach ``target`` accuracy (>= min_kept kept)."""
    ok = [r for r in rows if r["kept_accuracy"] >= target and r["kept"] >= min_kept]
    return min(ok, key=lambda r: r["threshold"]) if ok else None


def evaluate_at(conf: Sequence[float], correct: Sequence[bool], t: float) -> dict[str, float]:
    """Figures of one fixed threshold on (held-out) data."""
    row = threshold_table(conf, correct)
    exact = [r for r in row if r["threshold"] == round(t, 6)]
    if exact:
        return exact[0]
    esc = [c < t for c in conf]
    n_wrong = sum(not c for c in correct)
    tp = sum(e and not ok for e, ok in zip(esc, correct, strict=True))
    prec = tp / sum(esc) if sum(esc) else 0.0
    rec = tp / n_wrong if n_wrong else 0.0
    kept = [ok for e, ok in zip(esc, correct, strict=True) if not e]
    return {
        "threshold": t,
        "escalation_rate": sum(esc) / len(conf),
        "precision": prec,
        "recall": rec,
        "f1": 2 * prec * rec / (prec + rec) if prec + rec else 0.0,
        "kept": len(kept),
        "kept_accuracy": sum(kept) / len(kept) if kept else 1.0,
    }


def ask_all(
    items: list[dict[str, Any]],
    base_url: str,
    top_logprobs: int,
    max_tokens: int,
    say: Callable[[str], None],
) -> list[dict[str, Any]]:
    """Ask every item once; return per-item records with answer, logprobs stats, timing."""
    from langchain_core.messages import HumanMessage, SystemMessage
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(
        base_url=base_url,
        api_key="local",
        model=lm.MODEL_ALIAS,
        temperature=0.0,
        logprobs=True,
        top_logprobs=top_logprobs,
        max_retries=1,
        timeout=60,
        extra_body={"max_tokens": max_tokens},
    )
    records = []
    for i, item in enumerate(items):
        t0 = time.perf_counter()
        msg = llm.invoke([SystemMessage(SYSTEM), HumanMessage(item["question"])])
        dt = time.perf_counter() - t0
        text = cs.response_text(msg)
        tokens = cs.normalize_logprobs(msg.response_metadata.get("logprobs"), "openai")
        est = cs.confidence_from_logprobs(tokens)
        form = cs.answer_format_confidence(text, item["question"])
        ok = is_correct(item, text)
        usage = msg.usage_metadata or {}
        records.append(
            {
                "id": item["id"],
                "category": item["category"],
                "question": item["question"],
                "answer": text,
                "correct": ok,
                "confidence": est.value,
                "geo_mean_prob": est.details.get("geo_mean_prob", 0.0),
                "p10_prob": est.details.get("p10_prob", 0.0),
                "min_prob": est.details.get("min_prob", 0.0),
                "format_check": form.value,
                "finish_reason": msg.response_metadata.get("finish_reason"),
                "n_tokens": est.n_tokens,
                "output_tokens": usage.get("output_tokens"),
                "latency_s": round(dt, 4),
            }
        )
        say(
            f"[{i + 1:3d}/{len(items)}] {'ok ' if ok else 'BAD'} conf={est.value:.3f} "
            f"{item['question'][:48]!r} -> {text.strip()[:40]!r}"
        )
    return records


def main(argv: list[str] | None = None) -> int:
    """Run the calibration (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--base-url", help="use this running server instead of starting one")
    ap.add_argument("--config", help="config.yaml (local_model settings)")
    ap.add_argument("--limit", type=int, help="only the first N questions")
    ap.add_argument("--top-logprobs", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--target-accuracy", type=float, default=0.9)
    ap.add_argument("--write-default", action="store_true", help=f"update {DEFAULT_FILE.name}")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    say: Callable[[str], None] = (lambda _m: None) if args.quiet else print

    items = [json.loads(line) for line in args.data.read_text("utf-8").splitlines() if line]
    if args.limit:
        items = items[: args.limit]
    settings = load_config(args.config).local_model
    ctx = nullcontext(None) if args.base_url else lm.serve(settings)
    with ctx as info:
        base_url = args.base_url or info.base_url
        say(f"asking {len(items)} questions at {base_url}")
        t0 = time.perf_counter()
        records = ask_all(items, base_url, args.top_logprobs, args.max_tokens, say)
        wall = time.perf_counter() - t0

    correct = [r["correct"] for r in records]
    conf = [r["confidence"] for r in records]
    n, n_ok = len(records), sum(correct)
    aucs = {
        key: auc([r[key] for r in records], correct)
        for key in ("confidence", "geo_mean_prob", "p10_prob", "min_prob", "format_check")
    }
    ci = bootstrap_auc(conf, correct)
    rows = threshold_table(conf, correct)
    best = choose_f1(rows)
    target = choose_target(rows, args.target_accuracy)

    halves = []
    for k in (0, 1):
        fit = [i for i in range(n) if i % 2 == k]
        held = [i for i in range(n) if i % 2 != k]
        t = choose_f1(threshold_table([conf[i] for i in fit], [correct[i] for i in fit]))
        ev = evaluate_at([conf[i] for i in held], [correct[i] for i in held], t["threshold"])
        halves.append({"fit_half": k, "threshold": t["threshold"], "held_out": ev})

    out_tokens = sum(r["output_tokens"] or 0 for r in records)
    per_cat = {}
    for cat in sorted({r["category"] for r in records}):
        sub = [r for r in records if r["category"] == cat]
        per_cat[cat] = {
            "n": len(sub),
            "accuracy": sum(r["correct"] for r in sub) / len(sub),
            "mean_confidence": sum(r["confidence"] for r in sub) / len(sub),
        }
    summary = {
        "model": f"SmolLM2-135M-Instruct Q4_1 via llama-server (llama-cpp-python "
        f"{lm.LLAMA_CPP_PYTHON_VERSION} vendor tree)",
        "n": n,
        "accuracy": n_ok / n if n else 0.0,
        "auc": aucs["confidence"],
        "auc_ci95": ci,
        "auc_components": aucs,
        "chosen": best,
        "target_accuracy": args.target_accuracy,
        "target_choice": target,
        "two_fold": halves,
        "per_category": per_cat,
        "wall_s": round(wall, 2),
        "output_tokens": out_tokens,
        "mean_latency_s": sum(r["latency_s"] for r in records) / n if n else 0.0,
    }

    def fmt(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    print(f"\nn={n}  accuracy={summary['accuracy']:.3f}  wall={wall:.1f}s")
    print(
        f"AUC(confidence vs correct)={fmt(aucs['confidence'])}"
        + (f"  95% CI [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
    )
    print("component AUCs: " + ", ".join(f"{k}={fmt(v)}" for k, v in aucs.items()))
    print(
        f"chosen threshold (max F1 of escalate-when-wrong): {best['threshold']:.4f}  "
        f"F1={best['f1']:.3f} precision={best['precision']:.3f} recall={best['recall']:.3f} "
        f"escalation rate={best['escalation_rate']:.3f} kept accuracy={best['kept_accuracy']:.3f}"
    )
    if target:
        print(
            f"lowest threshold with kept accuracy >= {args.target_accuracy}: "
            f"{target['threshold']:.4f} (escalation rate {target['escalation_rate']:.3f})"
        )
    else:
        print(f"no threshold keeps >= 5 answers at accuracy >= {args.target_accuracy}")
    for h in halves:
        ev = h["held_out"]
        print(
            f"two-fold: fit on half {h['fit_half']} -> t={h['threshold']:.4f}; held-out "
            f"F1={ev['f1']:.3f} escalation rate={ev['escalation_rate']:.3f} "
            f"kept accuracy={ev['kept_accuracy']:.3f}"
        )
    for cat, v in per_cat.items():
        print(f"  {cat:8s} n={v['n']:3d} acc={v['accuracy']:.2f} conf={v['mean_confidence']:.3f}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"summary": summary, "thresholds": rows, "records": records}, indent=2) + "\n",
        encoding="utf-8",
    )
    print(f"wrote {args.out}")
    if args.write_default:
        if aucs["confidence"] is None or math.isnan(best["threshold"]):
            print("not writing the default: need both correct and wrong answers", file=sys.stderr)
            return 1
        default = {
            "threshold": round(best["threshold"], 4),
            "method": "max F1 of escalate-when-wrong over midpoints of observed confidences "
            "(confidence = geo_mean_prob**0.5 * p10_prob**0.5); "
            "see benchmarks/calibrate_cascade.py",
            "date": time.strftime("%Y-%m-%d"),
            "n": n,
            "accuracy": round(summary["accuracy"], 4),
            "auc": round(aucs["confidence"], 4),
            "auc_ci95": [round(x, 4) for x in ci] if ci else None,
            "f1": round(best["f1"], 4),
            "escalation_rate": round(best["escalation_rate"], 4),
            "kept_accuracy": round(best["kept_accuracy"], 4),
            "model": summary["model"],
            "data": "benchmarks/data/cascade_calibration.jsonl",
            "settings": {
                "temperature": 0.0,
                "max_tokens": args.max_tokens,
                "top_logprobs": args.top_logprobs,
                "system_prompt": SYSTEM,
            },
        }
        DEFAULT_FILE.parent.mkdir(parents=True, exist_ok=True)
        DEFAULT_FILE.write_text(json.dumps(default, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {DEFAULT_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
