"""``aco train`` and ``aco eval``: train a learned-router bundle, measure a router on data.

Only typer is imported at module level (``aco route`` must start fast); numpy, the
trainer and rich load inside the commands.

Usage::

    aco train --data routerbench/*.csv --out my_bundle --seed 0
    aco eval --data routerbench/mbpp_train.csv --bundle my_bundle --json
"""

from __future__ import annotations

import json
from typing import Any

import typer

from aco_langchain.cli.common import fail, load_or_fail


def load_data(paths: list[str], as_json: bool) -> Any:
    """The outcome files at ``paths`` as one ``OutcomeSet``, or a clean exit 1."""
    from aco_langchain.errors import DataError
    from aco_langchain.routing.training.datasets import load_outcomes

    try:
        return load_outcomes(paths)
    except DataError as err:
        fail(str(err), as_json)


def train_cmd(
    data: list[str] = typer.Option(..., "--data", help="Outcome files (RouterBench CSV, JSONL)."),
    out: str = typer.Option(..., "--out", help="Bundle directory to write (atomically)."),
    config: str | None = typer.Option(None, "--config", help="config.yaml (tier map)."),
    base_data: list[str] = typer.Option(
        [], "--base-data", help="Other outcome files (e.g. RouterBench) merged in by tier."
    ),
    base_weight: float = typer.Option(
        0.3, "--base-weight", help="Weight of each --base-data row (yours weigh 1)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed: same data + seed = same bundle."),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest summary as JSON."),
    plot: str | None = typer.Option(
        None, "--plot", help="Write the cross-validated cost-quality frontier as a PNG."
    ),
) -> None:
    """Train a learned-router bundle from per-prompt outcome data."""
    # the config (else $ACO_CONFIG or the defaults) maps tiers to models when it names the
    # data's models, as `aco collect` data does
    cfg = load_or_fail(config, as_json)
    dataset = load_data(data, as_json)
    from aco_langchain.errors import BundleError, TrainError
    from aco_langchain.routing.bundle import save_bundle
    from aco_langchain.routing.training.train import train_bundle

    try:
        if base_data:
            from aco_langchain.routing.training.train import merge_base

            dataset = merge_base(dataset, load_data(base_data, as_json), cfg, base_weight)
        bundle = train_bundle(dataset, config=cfg, seed=seed)
        path = save_bundle(bundle, out)
    except (TrainError, BundleError) as err:
        fail(str(err), as_json)
    except OSError as err:
        fail(f"{out}: cannot write the bundle ({err.strerror})", as_json)
    if plot and bundle.cv_report is not None:
        _plot(
            {**bundle.cv_report, "data": f"{dataset.summary()['name']}, cross-validated"},
            plot,
            as_json,
        )
    man = bundle.manifest
    summary = {
        "ok": True,
        "bundle": str(path),
        "models": man.models,
        "tier_map": man.tier_map,
        "validation": man.validation,
        "fingerprint": bundle.fingerprint(),
        **({"plot": plot} if plot else {}),
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    con = Console()
    con.print(f"[bold]bundle[/] written to {path} ({len(dataset)} prompts, seed {seed})")
    t = Table(title="tier map")
    t.add_column("tier")
    t.add_column("model")
    for k, v in sorted(man.tier_map.items()):
        t.add_row(k, v)
    con.print(t)
    val = man.validation
    con.print(
        f"cross-validated: router AIQ {val['router_aiq']:.4f} (zero router "
        f"{val['zero_router_aiq']:.4f}), cost reduction at 95% "
        f"{val['router_cost_reduction_at_95']:.1%}"
        + (f", APGR {val['router_apgr']:.3f}" if "router_apgr" in val else "")
    )


def eval_cmd(
    data: list[str] = typer.Option(..., "--data", help="Outcome files to evaluate on."),
    bundle: str | None = typer.Option(
        None, "--bundle", help="Bundle dir (default: the config's, else the shipped one)."
    ),
    config: str | None = typer.Option(
        None, "--config", help="Also measure this config's setting (operating_point)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
    plot: str | None = typer.Option(
        None, "--plot", help="Write the cost-quality frontier as a PNG (needs matplotlib)."
    ),
    choices_out: str | None = typer.Option(
        None,
        "--choices-out",
        help="JSONL of each plain (unmixed) operating point's choice per prompt.",
    ),
) -> None:
    """Evaluate the learned router on outcome data: singles, oracle, zero router, router."""
    cfg = load_or_fail(config, as_json) if config else None
    dataset = load_data(data, as_json)
    from aco_langchain.errors import BundleError, TrainError
    from aco_langchain.routing.bundle import load_bundle
    from aco_langchain.routing.training.calibrate import operating_point
    from aco_langchain.routing.training.train import evaluate_bundle

    try:
        b = load_bundle(bundle or (cfg.router_model_path if cfg else None))
        rep = evaluate_bundle(b, dataset)
        if cfg is not None:
            rep["operating_point"] = operating_point(b, dataset, cfg)
    except BundleError as err:
        fail(str(err), as_json)
    except TrainError as err:
        fail(f"{err} (data: {' '.join(data)})", as_json)
    choices, mixes = rep.pop("choices"), rep.pop("mixes")
    if choices_out:
        try:
            with open(choices_out, "w", encoding="utf-8") as fh:
                for k, row in enumerate(choices):
                    if mixes[k] > 0:  # mixed points follow from their two neighbours
                        continue
                    for sid, j in zip(dataset.ids, row, strict=True):
                        rec = {"point": k, "id": sid, "model": dataset.models[int(j)]}
                        fh.write(json.dumps(rec) + "\n")
        except OSError as err:
            fail(f"{choices_out}: cannot write ({err.strerror})", as_json)
    if plot:
        _plot(rep, plot, as_json)
    if as_json:
        typer.echo(json.dumps(rep, indent=2))
        return
    _print_report(rep)


def _print_report(rep: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    t = Table(title=f"{rep['data']}: {rep['n_prompts']} prompts")
    t.add_column("router / model")
    t.add_column("accuracy", justify="right")
    t.add_column("mean cost $", justify="right")
    t.add_column("AIQ", justify="right")
    t.add_column("cost cut @95%", justify="right")
    for name, m in sorted(rep["models"].items(), key=lambda kv: kv[1]["mean_cost"]):
        t.add_row(name, f"{m['accuracy']:.3f}", f"{m['mean_cost']:.6f}", "", "")
    o = rep["oracle"]
    t.add_row("oracle", f"{o['accuracy']:.3f}", f"{o['mean_cost']:.6f}", f"{o['aiq']:.4f}", "")
    z = rep["zero_router"]
    t.add_row("zero router (hull)", "", "", f"{z['aiq']:.4f}", f"{z['cost_reduction_at_95']:.1%}")
    r = rep["router"]
    pt = r["point_at_95"] or {}
    t.add_row(
        "[bold]learned router[/]",
        f"{pt.get('accuracy', float('nan')):.3f}",
        f"{pt.get('mean_cost', float('nan')):.6f}",
        f"[bold]{r['aiq']:.4f}[/]",
        f"[bold]{r['cost_reduction_at_95']:.1%}[/]",
    )
    con.print(t)
    op = rep.get("operating_point")
    if op:
        con.print(
            f"config's setting: accuracy {op['accuracy']:.3f}, mean cost "
            f"${op['cost_usd_mean']:.6f} ({op['quality_share']:.1%} of "
            f"{rep['best_single']['model']}'s quality at {op['cost_share']:.1%} of its cost)"
        )
    if "apgr" in r:
        rnd = rep.get("random_router", {})
        con.print(
            f"APGR {r['apgr']:.3f} (random {rnd.get('apgr', float('nan')):.3f}), "
            f"CPT(50%) {r['cpt_50']:.1%}, CPT(80%) {r['cpt_80']:.1%}"
        )


def _plot(rep: dict[str, Any], path: str, as_json: bool) -> None:
    from aco_langchain.errors import PlotError
    from aco_langchain.viz import frontier_figure, save_png

    try:
        save_png(frontier_figure(rep), path)
    except PlotError as err:
        fail(str(err), as_json)


def register(app: typer.Typer) -> None:
    """Add ``train``, ``eval`` and the learning commands (``calibrate``, ``collect``,
    ``learn``) to the ``aco`` app."""
    import importlib

    app.command("train")(train_cmd)
    app.command("eval")(eval_cmd)
    for name in ("calibrate_cmds", "collect_cmds", "learn_cmds"):
        try:
            module = importlib.import_module(f"aco_langchain.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"aco_langchain.cli.{name}":
                raise
            continue
        module.register(app)
