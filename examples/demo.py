"""`make demo`: what aco-langchain does, on this machine, with no API keys and no network.

1. Starts the real local model (tier 1; built once by `aco local-model build`).
2. Sends realistic prompts through one ``ACORouterChatModel(cascade=True, max_tokens=48)``.
   Each row says where that ``llm`` routes the prompt when every tier is available. A prompt
   it routes to tier 1 is answered for real by the local model, with the answer's confidence;
   a doubtful one says "would escalate to tier N (dry run: no OPENAI_API_KEY)" when tier N has
   no key. A prompt routed to a cloud tier is sent for real when its key is set; otherwise the
   row is a dry run: the decision and its estimated cost, and no answer.
3. Runs a small agent (per-step routing, verification gate, doom termination) on the real
   tiers (``examples/demo_agent.py``), writes its trace to JSONL, then `aco stats` over it.
4. Prints the spend (measured where real, estimated where not) and the estimated savings
   against always using the top tier.

Usage::

    .venv/bin/python examples/demo.py [--no-local] [--verbose]
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage
from rich.console import Console
from rich.table import Table

from aco_langchain import ACOConfig, ACORouterChatModel
from aco_langchain.chat.model import build_route_request
from aco_langchain.routing import get_router, route
from aco_langchain.routing.policy import estimate_call_cost

PROMPTS = [
    "What is the capital of France?",
    "Translate 'good morning' into Spanish.",
    "Summarize in one sentence: the meeting moved from Tuesday to Thursday at 3pm.",
    "Write a Python function that checks whether a string is a palindrome.",
    "Research recent advances in retrieval-augmented generation and compare three approaches.",
    "Review this vendor contract clause for GDPR compliance risks.",
    "Fix the auth bug in production: users are logged out after every deploy.",
]
MAX_TOKENS = 48

console = Console(width=170)


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


def _threshold(cfg: ACOConfig) -> float:
    from aco_langchain.chat.cascade import calibrated_threshold

    limit = cfg.cascade.confidence_threshold
    return float(limit if limit is not None else calibrated_threshold())


def _escalation_note(conf: float, limit: float, unavailable: dict[int, str]) -> str:
    """What a doubtful tier-1 answer would do: escalate to tier 2, real or dry run."""
    if conf >= limit:
        return f"kept (confidence {conf:.2f} >= {limit:.2f})"
    why = unavailable.get(2)
    if why:
        return f"doubtful ({conf:.2f} < {limit:.2f}): would escalate to tier 2 (dry run: {why})"
    return f"doubtful ({conf:.2f} < {limit:.2f}): escalated"


def routing_table(cfg: ACOConfig, verbose: bool = False) -> dict[str, float]:
    """Route every prompt; answer for real where the tier is available, else dry run."""
    from demo_agent import short_reason  # examples/demo_agent.py, beside this script

    llm = ACORouterChatModel(config=cfg, max_tokens=MAX_TOKENS, temperature=0.0, cascade=True)
    router = get_router(cfg)
    unavailable = llm.registry.unavailable()
    limit = _threshold(cfg)
    table = Table(
        title=f"ACORouterChatModel(cascade=True, max_tokens={MAX_TOKENS})", show_lines=True
    )
    for col in ("prompt", "routed (all tiers up)", "why", "what ran", "answer", "cost $", "ms"):
        table.add_column(col, overflow="fold")
    figures = {"spent": 0.0, "dry_run_estimate": 0.0, "top_tier_estimate": 0.0}
    for prompt in PROMPTS:
        # The same request this llm builds (its max_tokens included), decided with every tier
        # available: the decision a dry-run row shows.
        req = build_route_request([HumanMessage(prompt)], {"max_tokens": MAX_TOKENS}, 0)
        wanted = route(req, cfg, router=router, unavailable={})
        figures["top_tier_estimate"] += estimate_call_cost(cfg, 5, req)
        where = f"tier {wanted.tier} {cfg.tier(wanted.tier).model_id}"
        why = short_reason(wanted.reason, verbose)
        shown = prompt if verbose or len(prompt) <= 60 else prompt[:57] + "..."
        if wanted.tier in unavailable:
            figures["dry_run_estimate"] += wanted.cost_estimate
            table.add_row(
                shown,
                where,
                why,
                f"[yellow]dry run ({unavailable[wanted.tier]})[/]",
                "[dim]not sent[/]",
                f"~{wanted.cost_estimate:.4f} (est.)",
                "-",
            )
            continue
        t0 = time.perf_counter()
        try:
            msg = llm.invoke(prompt)
        except Exception as err:  # noqa: BLE001 - shown, not hidden
            table.add_row(shown, where, why, "[red]error[/]", f"[red]{err}[/]", "-", "-")
            continue
        ms = (time.perf_counter() - t0) * 1000
        meta = msg.response_metadata["aco"]
        figures["spent"] += meta["cost_usd"]
        ran = f"tier {meta['tier']} (real)"
        if meta["tier"] == 1 and not meta["escalated"] and meta.get("confidence") is not None:
            ran += "; " + _escalation_note(float(meta["confidence"]), limit, unavailable)
        elif meta["escalated"]:
            ran += f"; escalated from tier {meta['first_tier']}"
        answer = str(msg.content).strip()
        table.add_row(
            shown,
            where,
            why,
            ran,
            (answer if verbose else answer[:120]) or "(empty)",
            f"{meta['cost_usd']:.4f}",
            f"{ms:.0f}",
        )
    console.print(table)
    return figures


def agent_section(trace_file: Path, verbose: bool = False) -> None:
    """A small agent run with per-step routing, a verification gate and doom termination."""
    from demo_agent import run_demo_agent  # examples/demo_agent.py, beside this script

    run_demo_agent(trace_file, console, verbose=verbose)
    if not trace_file.exists():
        return
    console.print(f"\n[bold]aco stats {trace_file}[/]")
    aco = Path(sys.executable).with_name("aco")
    subprocess.run([str(aco), "stats", str(trace_file)], check=False)


def main() -> None:
    ap = argparse.ArgumentParser(description="aco-langchain demo")
    ap.add_argument("--no-local", action="store_true", help="do not start the local model")
    ap.add_argument("--verbose", action="store_true", help="full reasons and answers")
    args = ap.parse_args()
    # A one-slot local server on a shared 2-core box: give each call time, keep answers short.
    cfg = ACOConfig(routing={"max_latency_per_call_s": 120, "max_output_tokens": 160})
    with _local_context(cfg, not args.no_local), tempfile.TemporaryDirectory() as tmp:
        figures = routing_table(cfg, args.verbose)
        agent_section(Path(tmp) / "aco_traces.jsonl", args.verbose)
    top = figures["top_tier_estimate"]
    plan = figures["spent"] + figures["dry_run_estimate"]
    saved = top - plan
    console.print(
        f"\n[bold]spend[/] ${figures['spent']:.4f} measured on the calls that ran; "
        f"${figures['dry_run_estimate']:.4f} estimated for the dry-run rows; "
        f"always tier 5 for the same prompts: ${top:.4f} estimated. "
        f"Estimated savings: ${saved:.4f} ({(saved / top * 100) if top else 0:.0f}%)."
    )


if __name__ == "__main__":
    main()
