"""``aco collect``: run your prompts through chosen tiers and record scored outcomes.

Only typer is imported at module level; the chat model and the collector load inside.

Usage::

    aco collect prompts.jsonl --config config.yaml --tiers 1,2,4 --scorer exact \\
        --out collected.jsonl --concurrency 4 --budget 2.00
    aco train --data collected.jsonl --config config.yaml --out my_bundle
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import typer

from aco_langchain.cli.common import fail, load_or_fail


def _tiers(raw: str, as_json: bool) -> list[int]:
    try:
        tiers = sorted({int(t) for t in raw.split(",") if t.strip()})
    except ValueError:
        fail(f"--tiers {raw!r}: give tier numbers separated by commas, e.g. 1,2,4", as_json)
    if not tiers or any(t not in range(1, 6) for t in tiers):
        fail(f"--tiers {raw!r}: tiers are 1 to 5, e.g. --tiers 1,2,4", as_json)
    return tiers


def build_llm(cfg: Any, run_key: str, max_tokens: int | None) -> Any:
    """The router model every collected call goes through (forced tiers, one budget; each
    answer is the tier's own: no cascade, no response cache)."""
    from aco_langchain.chat.model import ACORouterChatModel

    cfg = cfg.model_copy(update={"cascade": cfg.cascade.model_copy(update={"enabled": False})})
    return ACORouterChatModel(config=cfg, run_key=run_key, max_tokens=max_tokens, cache=False)


def collect_cmd(
    prompts: str = typer.Argument(..., help="Prompts: JSONL, JSON, CSV or a LangSmith export."),
    config: str | None = typer.Option(None, "--config", help="config.yaml (the tiers)."),
    tiers: str = typer.Option("1,2,3,4,5", "--tiers", help="Tiers to collect, e.g. 1,2,4."),
    scorer: str = typer.Option(
        "exact",
        "--scorer",
        help="exact | contains | regex:PAT | numeric[:tol] | module:function | judge:TIER",
    ),
    out: str | None = typer.Option(
        None, "--out", help="Replay JSONL to append to (default: PROMPTS.collected.jsonl)."
    ),
    concurrency: int = typer.Option(4, "--concurrency", min=1, max=64, help="Calls at once."),
    budget: float | None = typer.Option(
        None, "--budget", min=0.0, help="USD cap for this collection (default: the config's)."
    ),
    max_tokens: int | None = typer.Option(
        None, "--max-tokens", min=1, help="Output cap per call (default: the config's)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Run PROMPTS through each tier, score the answers, append replay rows (resumable)."""
    import asyncio

    from aco_langchain.errors import ACOError
    from aco_langchain.routing.training.collect import collect, load_prompts
    from aco_langchain.routing.training.scorers import parse_scorer

    cfg = load_or_fail(config, as_json)
    tier_list = _tiers(tiers, as_json)
    out_path = out or str(Path(prompts).with_suffix("")) + ".collected.jsonl"
    try:
        items = load_prompts(prompts)
        score = parse_scorer(scorer)
    except ACOError as err:
        fail(str(err), as_json)
    if budget is not None:
        cfg.routing.max_cost_per_task = budget
    # over budget: stop, never answer from another tier than the one being collected
    cfg.routing.on_budget_exceeded = "raise"
    # the collection is one run of many prompts: its cap is the USD budget, not the
    # per-task token budget meant for one agent task
    cfg.routing.max_tokens_per_task = 10**12
    # one budget key per output file, so a resumed collection keeps counting its spend
    digest = hashlib.sha256(str(Path(out_path).resolve()).encode()).hexdigest()
    run_key = f"aco-collect-{digest[:12]}"
    try:
        llm = build_llm(cfg, run_key, max_tokens)
    except ACOError as err:
        fail(str(err), as_json)
    total = len(items) * len(tier_list)
    try:
        if as_json:
            report = asyncio.run(collect(items, llm, tier_list, score, out_path, concurrency))
        else:
            from rich.progress import Progress

            with Progress(transient=False) as bar:
                task = bar.add_task(
                    f"collecting {len(items)} prompts x {len(tier_list)} tiers", total=total
                )
                report = asyncio.run(
                    collect(
                        items,
                        llm,
                        tier_list,
                        score,
                        out_path,
                        concurrency,
                        on_progress=lambda k: bar.advance(task, k),
                    )
                )
    except ACOError as err:
        fail(str(err), as_json)
    except OSError as err:
        fail(f"{out_path}: cannot write ({err.strerror})", as_json)
    result = {**report.to_dict(), "run_key": run_key, "tiers": tier_list, "prompts": len(items)}
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        typer.echo(
            f"{report.written} rows written to {out_path} ({report.skipped} already there, "
            f"{report.failed} failed), ${report.cost_usd:.6f}"
            + (f" + judge ${report.judge_cost_usd:.6f}" if report.judge_cost_usd else "")
            + (
                " -- stopped by the budget: raise --budget and re-run to finish"
                if report.stopped_by_budget
                else ""
            )
        )
    if report.failed or report.stopped_by_budget:
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    """Add ``collect`` to the ``aco`` app."""
    app.command("collect")(collect_cmd)
