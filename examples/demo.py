"""`make demo`: what aco-langchain does, on this machine, with no API keys and no network.

1. Live: the real local model (tier 1, SmolLM2-135M on llama.cpp) answers two short prompts
   through ``ACORouterChatModel``; each row is labelled live, with whether it was right.
2. Replay: 20 RouterBench prompts (MIT) through the same router on replay tiers — five real
   models' recorded answers, usage and cost (``examples/replay-config.yaml``). Each row says
   "recorded answer of <model> (replay)", whether it was right (the recorded outcome), what
   it cost and what the top tier's recorded answer cost; then accuracy and spend beside
   always-the-top-tier, the savings (recomputable from the rows) and the ledger's total.
3. ``aco replay`` over the whole shipped sample, as one summary line.
4. A small agent (per-step routing, verification gate, doom termination) on the real tiers
   (``examples/demo_agent.py``), its trace, then ``aco stats`` over it.

Nothing is estimated into a spend figure: live calls cost what the ledger recorded ($0
locally); replayed calls cost what the recording says the real model's call cost.

Usage::

    .venv/bin/python examples/demo.py [--no-local] [--no-agent] [--verbose]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from aco_langchain import ACOConfig, ACORouterChatModel
from aco_langchain.replay.figures import replay_report
from aco_langchain.replay.recording import open_recording
from aco_langchain.replay.runner import replay_prompts, replay_tier_models
from aco_langchain.replay.sample import SAMPLE_CSV, sample_config

#: Short prompts the local model answers live, with a word a right answer contains.
LIVE = [
    ("What is the capital of France? Answer in one word.", "paris"),
    ("What is 2 + 3? Answer with the number only.", "5"),
]
MAX_TOKENS = 32
#: Replayed prompts per task (ARC-Challenge, MBPP, Winogrande) from the shipped sample.
PER_TASK = 7
ROOT = Path(__file__).resolve().parent.parent

console = Console(width=160)


def _local_context(cfg: ACOConfig, use_local: bool) -> Any:
    if not use_local:
        return contextlib.nullcontext(None)
    from aco_langchain.errors import LocalModelError
    from aco_langchain.providers.local import is_built, serve

    if not is_built(cfg.local_model):
        console.print("[yellow]local model not built: run `make local-model` first[/]")
        return contextlib.nullcontext(None)
    try:
        console.print("[dim]starting the local model (SmolLM2-135M on llama.cpp)...[/]")
        return serve(cfg.local_model)
    except LocalModelError as err:
        console.print(f"[yellow]local model unavailable: {err}[/]")
        return contextlib.nullcontext(None)


def _short(text: str, n: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= n else flat[: n - 1] + "…"


def _question(text: str, n: int) -> str:
    """The question a few-shot prompt asks: its last block, without the answer format."""
    last = text.strip().split("\n\n")[-1]
    last = last.split("Print only a single choice")[0]
    return _short(last, n)


def live_section(cfg: ACOConfig, verbose: bool) -> int:
    """The local model answers for real; returns how many rows were shown."""
    llm = ACORouterChatModel(config=cfg, max_tokens=MAX_TOKENS, temperature=0.0)
    down = llm.registry.unavailable()
    if 1 in down:
        console.print(f"[yellow]live: skipped, tier 1 unavailable ({down[1]})[/]")
        return 0
    table = Table(title="1. live: the local model answers (ACORouterChatModel, no key)")
    for col in ("prompt", "answered by", "answer (live)", "right?", "cost $", "ms"):
        table.add_column(col, overflow="fold")
    for prompt, expect in LIVE:
        t0 = time.perf_counter()
        try:
            msg = llm.invoke(prompt, force_tier=1)  # the one tier this machine has
        except Exception as err:  # noqa: BLE001 - shown, not hidden
            table.add_row(prompt, "tier 1", f"[red]error: {err}[/]", "-", "-", "-")
            continue
        ms = (time.perf_counter() - t0) * 1000
        meta = msg.response_metadata["aco"]
        answer = str(msg.content).strip()
        ok = expect in answer.lower()
        table.add_row(
            prompt,
            f"tier {meta['tier']} {meta['model_id']} (live, local)",
            (answer if verbose else _short(answer, 70)) or "(empty)",
            "[green]right[/]" if ok else "[red]wrong[/]",
            f"{meta['cost_usd']:.4f}",
            f"{ms:.0f}",
        )
    console.print(table)
    return len(LIVE)


def _demo_prompts() -> list[Any]:
    rec = open_recording(SAMPLE_CSV)
    by_task: dict[str, list[Any]] = {}
    for p in rec.prompts():
        task = p.id.split(".")[0]  # RouterBench ids: <task>.<split>.<n>
        by_task.setdefault(task, []).append(p)
    picked = [p for group in by_task.values() for p in group[:PER_TASK]]
    return picked[: 3 * PER_TASK]


def replay_section(verbose: bool) -> dict[str, float]:
    """Recorded prompts through the router on replay tiers, row by row, then the totals."""
    cfg = sample_config()
    tiers = replay_tier_models(cfg)
    top = cfg.ledger.baseline_tier
    prompts = _demo_prompts()
    run = replay_prompts(prompts, cfg)  # a private in-memory ledger
    table = Table(
        title=f"2. replay: {len(prompts)} RouterBench prompts through the router on replay tiers"
        " (recorded answers of real models; no call is made)",
        show_lines=False,
    )
    for col in ("#", "question (few-shot prompt's last)", "tier",
                "recorded answer of <model> (replay)", "right?",
                "cost $", f"tier {top} $"):  # fmt: skip
        table.add_column(col, overflow="fold")
    for i, (p, c) in enumerate(zip(prompts, run.choices, strict=True), 1):
        top_ans = p.answers[tiers[top]]
        if c.tier is None:
            table.add_row(str(i), _question(p.prompt, 60), "-", f"[red]{c.error}[/]", "-", "-", "-")
            continue
        ans = p.answers[c.model or ""]
        table.add_row(
            str(i),
            _question(p.prompt, 60 if not verbose else 1000),
            str(c.tier),
            f"[dim]{c.model} (replay):[/] {_short(ans.response, 60 if not verbose else 4000)}",
            "[green]right[/]" if c.correct else "[red]wrong[/]",
            f"{c.cost_usd:.6f}",
            f"{top_ans.cost_usd:.6f}",
        )
    console.print(table)
    rep = replay_report(
        run.choices,
        prompts,
        tiers,
        top_tier=top,
        ledger_total_usd=run.ledger_total_usd,
        quality_target=cfg.routing.quality_target,
    ).to_dict()
    t = rep["top_tier"]
    saved = t["cost_usd_total"] - rep["cost_usd_total"]
    n = rep["n"]
    console.print(
        f"router: {round(rep['accuracy'] * n)}/{n} right, spent ${rep['cost_usd_total']:.6f} "
        f"(sum of the cost column; the ledger recorded ${rep['ledger_total_usd']:.6f}).\n"
        f"always tier {t['tier']} ({t['model']}, ledger.baseline_tier): "
        f"{round(t['accuracy'] * n)}/{n} right, ${t['cost_usd_total']:.6f} (sum of the last "
        f"column).\n[bold]savings: ${saved:.6f} = {saved / t['cost_usd_total']:.0%} of the "
        f"baseline's cost[/], at {rep['accuracy_rel_top']:.0%} of its accuracy."
    )
    return {"spent": rep["cost_usd_total"], "baseline": t["cost_usd_total"]}


def replay_summary() -> None:
    """``aco replay`` over the whole shipped sample, in one line."""
    aco = Path(sys.executable).with_name("aco")
    done = subprocess.run([str(aco), "replay", "--json"], capture_output=True, text=True)
    if done.returncode != 0:
        console.print(f"[red]aco replay failed: {done.stdout or done.stderr}[/]")
        return
    r = json.loads(done.stdout)
    t = r["top_tier"]
    console.print(
        f"\n[bold]3. aco replay[/] (all {r['n']} sample prompts, full product path): router "
        f"accuracy {r['accuracy']:.3f} = {r['accuracy_rel_top']:.1%} of tier {t['tier']} "
        f"{t['model']}'s {t['accuracy']:.3f}, at {r['cost_rel_top']:.1%} of its cost "
        f"(${r['cost_usd_mean']:.6f} vs ${t['cost_usd_mean']:.6f} per prompt); oracle "
        f"{r['oracle']['accuracy']:.3f}; ledger total ${r['ledger_total_usd']:.6f} = sum of "
        "per-prompt costs."
    )
    console.print(
        "look further: [bold]aco replay --plot frontier.png[/] (the router's cost-quality "
        "frontier), [bold]aco replay --choices-out choices.jsonl[/] (every prompt's tier, "
        "model, cost, outcome), [bold]aco spend[/], [bold]aco dashboard[/]"
    )


def agent_section(trace_file: Path, verbose: bool = False) -> None:
    """A small agent run with per-step routing, a verification gate and doom termination."""
    from demo_agent import run_demo_agent  # examples/demo_agent.py, beside this script

    console.print("\n[bold]4. agent[/] (live, on the tiers this machine has)")
    run_demo_agent(trace_file, console, verbose=verbose)
    if not trace_file.exists():
        return
    console.print(f"\n[bold]aco stats {trace_file}[/]")
    aco = Path(sys.executable).with_name("aco")
    subprocess.run([str(aco), "stats", str(trace_file)], check=False)


def main() -> None:
    ap = argparse.ArgumentParser(description="aco-langchain demo")
    ap.add_argument("--no-local", action="store_true", help="do not start the local model")
    ap.add_argument("--no-agent", action="store_true", help="skip the agent part")
    ap.add_argument("--verbose", action="store_true", help="full prompts and answers")
    args = ap.parse_args()
    # A one-slot local server on a shared 2-core box: give each call time, keep answers short.
    cfg = ACOConfig(routing={"max_latency_per_call_s": 120, "max_output_tokens": 160})
    with _local_context(cfg, not args.no_local), tempfile.TemporaryDirectory() as tmp:
        live_section(cfg, args.verbose)
        replay_section(args.verbose)
        replay_summary()
        if not args.no_agent:
            agent_section(Path(tmp) / "aco_traces.jsonl", args.verbose)


if __name__ == "__main__":
    main()
