"""`make demo`: what aco-langchain does, on this machine, with no API keys and no network.

1. Starts the real local model (tier 1; built once by `aco local-model build`).
2. Sends realistic prompts through ACORouterChatModel(cascade=True) and prints: tier, model,
   reason, confidence, cost and latency. Tier-1 answers come from the local model. A prompt
   routed to a cloud tier is answered for real when its API key is set; otherwise the row says
   "dry run (no OPENAI_API_KEY)" with the estimated cost, and no answer is invented.
3. Runs a small agent (per-step routing, verification gate, doom termination) whose trace is
   written to JSONL, then `aco stats` over it.
4. Prints the run's spend and the savings against always using the top tier.

Usage::

    .venv/bin/python examples/demo.py [--no-local]
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

from rich.console import Console
from rich.table import Table

from aco_langchain import ACOConfig, ACORouterChatModel
from aco_langchain.errors import TierUnavailableError
from aco_langchain.providers.tiers import TierRegistry
from aco_langchain.routing import RouteRequest, get_router, route
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


def routing_table(cfg: ACOConfig) -> dict[str, float]:
    """Route every prompt; answer for real where the tier is available."""
    llm = ACORouterChatModel(config=cfg, max_tokens=48, temperature=0.0, cascade=True)
    router = get_router(cfg)
    registry = TierRegistry(cfg)
    unavailable = registry.unavailable()
    table = Table(title="ACORouterChatModel on realistic prompts", show_lines=True)
    for col in ("prompt", "tier", "model", "reason", "conf", "cost $", "latency", "answer"):
        table.add_column(col, overflow="fold")
    spent = routed = top = 0.0
    for prompt in PROMPTS:
        req = RouteRequest.from_text(prompt)
        wanted = route(req, cfg, router=router)
        top += estimate_call_cost(cfg, 5, req)
        if wanted.tier in unavailable:
            routed += wanted.cost_estimate
            table.add_row(
                prompt,
                str(wanted.tier),
                wanted.model_id,
                wanted.reason,
                f"{wanted.confidence:.2f}",
                f"~{wanted.cost_estimate:.4f} (est.)",
                "-",
                f"[yellow]dry run ({unavailable[wanted.tier]})[/]",
            )
            continue
        t0 = time.perf_counter()
        try:
            msg = llm.invoke(prompt)
        except (TierUnavailableError, Exception) as err:  # noqa: BLE001 - shown, not hidden
            table.add_row(
                prompt,
                str(wanted.tier),
                wanted.model_id,
                wanted.reason,
                "-",
                "-",
                "-",
                f"[red]{type(err).__name__}: {err}[/]",
            )
            continue
        ms = (time.perf_counter() - t0) * 1000
        meta = msg.response_metadata["aco"]
        spent += meta["cost_usd"]
        routed += meta["cost_usd"]
        table.add_row(
            prompt,
            str(meta["tier"]),
            meta["model_id"],
            meta["reason"],
            f"{meta['confidence']:.2f}",
            f"{meta['cost_usd']:.4f}",
            f"{ms:.0f} ms",
            str(msg.content).strip()[:160] or "(empty)",
        )
    console.print(table)
    return {"spent": spent, "routed": routed, "top_tier_estimate": top}


def agent_section(trace_file: Path) -> None:
    """A small agent run with per-step routing, a verification gate and doom termination."""
    from demo_agent import run_demo_agent  # examples/demo_agent.py, beside this script

    run_demo_agent(trace_file, console)
    console.print(f"\n[bold]aco stats {trace_file}[/]")
    aco = Path(sys.executable).with_name("aco")
    subprocess.run([str(aco), "stats", str(trace_file)], check=False)


def main() -> None:
    ap = argparse.ArgumentParser(description="aco-langchain demo")
    ap.add_argument("--no-local", action="store_true", help="do not start the local model")
    args = ap.parse_args()
    cfg = ACOConfig()
    with _local_context(cfg, not args.no_local), tempfile.TemporaryDirectory() as tmp:
        figures = routing_table(cfg)
        agent_section(Path(tmp) / "aco_traces.jsonl")
    top = figures["top_tier_estimate"]
    saved = top - figures["routed"]
    console.print(
        f"\n[bold]spent[/] ${figures['spent']:.4f} on real calls;"
        f" routed plan (real + dry-run estimates) ${figures['routed']:.4f}"
        f" vs always tier 5 ${top:.4f}: saves ${saved:.4f}"
        f" ({(saved / top * 100) if top else 0:.0f}%)"
    )


if __name__ == "__main__":
    main()
