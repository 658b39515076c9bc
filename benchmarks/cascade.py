"""Cascade vs always using the top tier: cost, latency and kept-answer accuracy.

Every question of ``benchmarks/data/cascade_calibration.jsonl`` goes through
``cascade.enabled``: the real local tier (SmolLM2-135M on llama.cpp) answers
first with logprobs, and a low confidence escalates. This machine has no cloud keys, so the
tiers above 1 are *stand-ins*: scripted models that return the reference answer. What is
measured and what is modelled:

- measured: the local tier's answers, their correctness, confidences and wall-clock latency;
  which questions escalate; token usage of every call, priced by the router at the config's
  tier prices (the same code path as a real call);
- modelled: the stand-in tiers' latency (the config's ``avg_latency_ms`` of that tier) and their
  correctness (assumed right: an upper bound on the cascade's accuracy).

Baseline: every question sent to tier 5 (``force_tier=5``), same stand-in, same pricing.
Prints a table, writes ``benchmarks/results/cascade.json``.

Usage::

    .venv/bin/python benchmarks/cascade.py [--limit 40]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from calibrate_cascade import DATA, is_correct  # noqa: E402

from aco_langchain import AcoCallInfo, ACORouterChatModel  # noqa: E402
from aco_langchain.config import ACOConfig  # noqa: E402
from aco_langchain.providers import local as lm  # noqa: E402
from aco_langchain.testing import ScriptedChatModel  # noqa: E402

SYSTEM = "Answer the question with only the answer: a number, a name, or yes/no. No explanation."


def _stand_in(items: list[dict[str, Any]], tier: int) -> ScriptedChatModel:
    answers = {it["question"]: it["answers"][0] for it in items}

    def reply(messages: list[Any]) -> str:
        return answers.get(str(messages[-1].content), "unknown")

    return ScriptedChatModel(script=[reply], model=f"stand-in-tier{tier}")


def run(limit: int | None) -> dict[str, Any]:
    items = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    items = items[:limit] if limit else items
    # The rule router sends these short questions to the local tier, so every question starts
    # there and the figures isolate the cascade (the learned router's choices are measured by
    # benchmarks/router_quality.py).
    cfg = ACOConfig(router="rules")
    stand_ins = {n: _stand_in(items, n) for n in range(2, 6)}
    cascade = ACORouterChatModel(
        config=cfg.model_copy(update={"cascade": cfg.cascade.model_copy(update={"enabled": True})}),
        tier_models=stand_ins,
        max_tokens=48,
        temperature=0.0,
    )
    top = ACORouterChatModel(config=cfg, tier_models=stand_ins, max_tokens=48)
    rows = []
    for it in items:
        msgs = [("system", SYSTEM), ("human", it["question"])]
        t0 = time.perf_counter()
        msg = cascade.invoke(msgs)
        wall_ms = (time.perf_counter() - t0) * 1000
        info = _info(msg)
        first = info.first_tier or info.tier
        escalated = info.escalated
        modelled_ms = wall_ms + (cfg.tier(info.tier).avg_latency_ms if escalated else 0.0)
        if not escalated and info.tier != 1:
            modelled_ms = cfg.tier(info.tier).avg_latency_ms
        base = _info(top.invoke(msgs, force_tier=5))
        rows.append(
            {
                "id": it["id"],
                "first_tier": first,
                "final_tier": info.tier,
                "escalated": escalated,
                # the cheap answer's confidence (an escalated call's own is the final tier's)
                "confidence": info.first_confidence if escalated else info.confidence,
                "correct": is_correct(it, str(msg.content)) if not escalated else True,
                "local_correct": None if first != 1 else is_correct(it, _first_answer(info, msg)),
                "cost_usd": info.cost_usd,
                "latency_ms": modelled_ms,
                "local_wall_ms": wall_ms,
                "top_cost_usd": base.cost_usd,
                "top_latency_ms": cfg.tier(5).avg_latency_ms,
            }
        )
    n = len(rows)
    esc = sum(r["escalated"] for r in rows)
    kept = [r for r in rows if not r["escalated"] and r["final_tier"] == 1]
    summary = {
        "n": n,
        "escalation_rate": esc / n,
        "kept_local": len(kept),
        "kept_local_accuracy": (sum(r["correct"] for r in kept) / len(kept)) if kept else None,
        "cascade_accuracy_upper_bound": sum(r["correct"] for r in rows) / n,
        "cascade_mean_cost_usd": statistics.fmean(r["cost_usd"] for r in rows),
        "top_mean_cost_usd": statistics.fmean(r["top_cost_usd"] for r in rows),
        "cascade_median_latency_ms": statistics.median(r["latency_ms"] for r in rows),
        "top_median_latency_ms": statistics.median(r["top_latency_ms"] for r in rows),
        "local_median_wall_ms": statistics.median(r["local_wall_ms"] for r in rows),
        "threshold": _threshold(),
    }
    top_cost = summary["top_mean_cost_usd"]
    summary["cost_ratio"] = summary["cascade_mean_cost_usd"] / top_cost if top_cost else None
    return {"summary": summary, "rows": rows}


def _info(msg: Any) -> AcoCallInfo:
    info = AcoCallInfo.from_message(msg)
    if info is None:
        raise RuntimeError("the router's answer carries no response_metadata['aco'] record")
    return info


def _first_answer(info: AcoCallInfo, msg: Any) -> str:
    return str(msg.content) if not info.escalated else ""


def _threshold() -> float | None:
    from aco_langchain.chat.cascade import calibrated_threshold

    return calibrated_threshold()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="only the first N questions")
    args = ap.parse_args()
    settings = ACOConfig().local_model
    if not lm.is_built(settings):
        print("local model not built: run `make local-model` (aco local-model build)")
        return 1
    with lm.serve(settings):
        out = run(args.limit)
    s = out["summary"]
    print(f"questions                         {s['n']}")
    print(
        f"escalation rate                   {s['escalation_rate']:.1%}"
        f"  (threshold {s['threshold']})"
    )
    acc = s["kept_local_accuracy"]
    print(
        f"kept on the local tier            {s['kept_local']}  accuracy {acc:.1%}"
        if acc is not None
        else "  accuracy n/a"
    )
    print(
        f"cascade accuracy (upper bound)    {s['cascade_accuracy_upper_bound']:.1%}"
        "  (stand-in tiers assumed right)"
    )
    print(
        f"mean cost  cascade / top tier     ${s['cascade_mean_cost_usd']:.5f}"
        f" / ${s['top_mean_cost_usd']:.5f}  (ratio {s['cost_ratio']:.3f})"
    )
    print(
        f"median latency cascade / top      {s['cascade_median_latency_ms']:.0f} ms"
        f" / {s['top_median_latency_ms']:.0f} ms  (top and escalations: config avg_latency_ms)"
    )
    print(f"local tier median wall time       {s['local_median_wall_ms']:.0f} ms (measured)")
    dest = ROOT / "benchmarks" / "results" / "cascade.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(out, indent=2))
    print(f"wrote {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
