"""``aco replay``: recorded prompts through the real ``ACORouterChatModel`` on replay tiers.

Prints, beside each single tier, the baseline (``ledger.baseline_tier``) and the hindsight
oracle: accuracy, mean and total cost, cost relative to the baseline, the router's
quality-target operating point, and the ledger's total (equal to the sum of the per-prompt
costs). ``--runs`` replays recorded agent runs instead (``aco_langchain.replay.runs_cli``).

Usage::

    aco replay                                   # the shipped sample, its config and bundle
    aco replay --data my.jsonl --config examples/replay-config.yaml --json \\
        --choices-out choices.jsonl --plot frontier.png
"""

from __future__ import annotations

import json
from typing import Any

import typer

from aco_langchain.cli.common import fail, load_or_fail


def replay_cmd(
    data: list[str] = typer.Option(
        None, "--data", help="Recordings to replay (RouterBench CSV, replay JSONL)."
    ),
    config: str | None = typer.Option(
        None, "--config", "-c", help="config.yaml with replay tiers (default: the sample's)."
    ),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Replay the first N prompts."),
    choices_out: str | None = typer.Option(
        None, "--choices-out", help="JSONL: id, tier, model, cost_usd, correct, reason."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
    plot: str | None = typer.Option(
        None, "--plot", help="Write the router knob's cost-quality frontier as a PNG."
    ),
    ledger: str | None = typer.Option(
        None, "--ledger", help="Ledger URL to record into (default: a temporary one)."
    ),
    runs: str | None = typer.Option(None, "--runs", help="Replay recorded agent runs (JSONL)."),
    models: str | None = typer.Option(None, "--models", help="--runs: models, a,b."),
    verifier: str | None = typer.Option(None, "--verifier", help="--runs: the verifier."),
    calibrate: bool = typer.Option(False, "--calibrate", help="--runs: calibrate the gate."),
    target: float | None = typer.Option(None, "--target", help="--runs: the quality target."),
    train_split: float | None = typer.Option(
        None, "--train-split", help="--runs: share of runs to calibrate on."
    ),
    seed: int = typer.Option(0, "--seed", help="--runs: seed of the split."),
    write_config: str | None = typer.Option(
        None, "--write-config", help="--runs: write the calibrated config here."
    ),
) -> None:
    """Replay recorded prompts through the router on replay tiers and print what it saved."""
    if runs is not None:
        try:
            from aco_langchain.replay.runs_cli import run_replay_runs
        except ModuleNotFoundError as err:
            if err.name != "aco_langchain.replay.runs_cli":
                raise
            fail("aco replay --runs is not in this build: upgrade aco-langchain", as_json)
        raise typer.Exit(
            run_replay_runs(
                runs=runs,
                models=models,
                verifier=verifier,
                calibrate=calibrate,
                target=target,
                train_split=train_split,
                seed=seed,
                as_json=as_json,
                plot=plot,
                write_config=write_config,
            )
        )
    from aco_langchain.errors import ACOError, ConfigError
    from aco_langchain.replay.figures import replay_report
    from aco_langchain.replay.recording import open_recording
    from aco_langchain.replay.runner import knob_frontier, replay_tier_models
    from aco_langchain.replay.sample import sample_config, with_recording

    try:
        cfg = load_or_fail(config, as_json) if config else sample_config()
    except ConfigError as err:
        fail(str(err), as_json)
    if data:
        from aco_langchain.providers.replay import resolve_recording

        cfg = with_recording(cfg, [str(resolve_recording(p)) for p in data])
    try:
        tier_models = replay_tier_models(cfg)
        paths = sorted({str(p) for n in tier_models for p in _recording_of(cfg, n)})
        prompts = open_recording(paths).prompts()
    except ACOError as err:
        fail(str(err), as_json)
    if limit is not None:
        prompts = prompts[:limit]
    baseline = cfg.ledger.baseline_tier
    if baseline not in tier_models:
        baseline = max(tier_models)
    try:
        run = _run_with_progress(prompts, cfg, ledger, quiet=as_json)
        rep = replay_report(
            run.choices,
            prompts,
            tier_models,
            top_tier=baseline,
            ledger_total_usd=run.ledger_total_usd,
            quality_target=cfg.routing.quality_target,
        )
    except ACOError as err:
        fail(str(err), as_json)
    if choices_out:
        try:
            with open(choices_out, "w", encoding="utf-8") as fh:
                for c in run.choices:
                    fh.write(json.dumps(c.to_dict()) + "\n")
        except OSError as err:
            fail(f"{choices_out}: cannot write ({err.strerror})", as_json)
    out = rep.to_dict()
    out["unscored"] = run.unscored
    out["ledger"] = ledger or "memory:// (temporary)"
    if plot:
        targets = [round(0.70 + 0.025 * i, 3) for i in range(13)]
        _plot(out, knob_frontier(prompts, cfg, targets), plot, as_json)
        out["plot"] = plot
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    _print(out)


def _recording_of(cfg: Any, tier: int) -> list[str]:
    from aco_langchain.providers.replay import spec_recording

    return [str(p) for p in spec_recording(cfg.tier(tier))]


def _run_with_progress(prompts: list[Any], cfg: Any, ledger: str | None, quiet: bool) -> Any:
    from aco_langchain.replay.runner import replay_prompts

    if quiet:
        return replay_prompts(prompts, cfg, ledger_url=ledger)
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task("replaying", total=len(prompts))
        return replay_prompts(
            prompts, cfg, ledger_url=ledger, progress=lambda k: bar.advance(task, k)
        )


def _print(out: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console(width=max(100, Console().width))
    top = out["top_tier"]
    t = Table(title=f"aco replay: {out['n']} recorded prompts through ACORouterChatModel")
    for col in ("", "model", "accuracy", "mean $", "total $", "vs baseline"):
        t.add_column(col, justify="left" if col in ("", "model") else "right")
    for tier, m in out["tiers"].items():
        name = f"tier {tier}" + (" baseline" if int(tier) == top["tier"] else "")
        t.add_row(name, m["model"].split("/")[-1], *_cells(m))
    t.add_row("oracle", "hindsight", *_cells(out["oracle"]))
    t.add_row(
        "[bold]router[/]",
        f"target {out['quality_target']}",
        *[f"[bold]{c}[/]" for c in _cells(out)],
    )
    con.print(t)
    con.print(
        f"router: {out['accuracy_rel_top']:.1%} of the baseline's accuracy at "
        f"{out['cost_rel_top']:.1%} of its cost (baseline: ledger.baseline_tier = tier "
        f"{top['tier']}, {top['model']})"
    )
    con.print(
        f"ledger total ${out['ledger_total_usd']:.6f} = sum of per-prompt costs "
        f"${out['cost_usd_total']:.6f} ({out['ledger']})"
        + (f"; {out['errors']} prompt(s) no tier could answer" if out["errors"] else "")
    )
    if out.get("plot"):
        con.print(f"frontier written to {out['plot']}")


def _cells(m: dict[str, Any]) -> list[str]:
    return [
        f"{m['accuracy']:.3f}",
        f"{m['cost_usd_mean']:.6f}",
        f"{m['cost_usd_total']:.4f}",
        f"{m['cost_rel_top']:.1%}",
    ]


def _plot(out: dict[str, Any], frontier: list[dict[str, Any]], path: str, as_json: bool) -> None:
    from aco_langchain.errors import PlotError
    from aco_langchain.viz import frontier_figure, save_png

    top = out["top_tier"]
    rep = {
        "data": "aco replay, quality_target swept",
        "n_prompts": out["n"],
        "models": {
            m["model"]: {"accuracy": m["accuracy"], "mean_cost": m["cost_usd_mean"]}
            for m in out["tiers"].values()
        },
        "best_single": {"model": top["model"], "accuracy": top["accuracy"]},
        "oracle": {
            "accuracy": out["oracle"]["accuracy"],
            "mean_cost": out["oracle"]["cost_usd_mean"],
        },
        "router": {
            "curve": [
                {
                    "mean_cost": p["cost_usd_mean"],
                    "accuracy": p["accuracy"],
                    "knob": p["quality_target"],
                    "mix": 0.0,
                }
                for p in frontier
            ],
        },
    }
    try:
        save_png(frontier_figure(rep, quality_level=out["quality_target"]), path)
    except PlotError as err:
        fail(str(err), as_json)


def register(app: typer.Typer) -> None:
    """Add ``replay`` to the ``aco`` app."""
    app.command("replay")(replay_cmd)
