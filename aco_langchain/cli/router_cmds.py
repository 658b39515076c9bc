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


def _load_data(paths: list[str], as_json: bool) -> Any:
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
    seed: int = typer.Option(0, "--seed", help="Seed: same data + seed = same bundle."),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest summary as JSON."),
) -> None:
    """Train a learned-router bundle from per-prompt outcome data."""
    cfg = load_or_fail(config, as_json) if config else None
    dataset = _load_data(data, as_json)
    from aco_langchain.errors import BundleError, TrainError
    from aco_langchain.routing.bundle import save_bundle
    from aco_langchain.routing.training.train import train_bundle

    try:
        bundle = train_bundle(dataset, config=cfg, seed=seed)
        path = save_bundle(bundle, out)
    except (TrainError, BundleError) as err:
        fail(str(err), as_json)
    except OSError as err:
        fail(f"{out}: cannot write the bundle ({err.strerror})", as_json)
    man = bundle.manifest
    summary = {
        "ok": True,
        "bundle": str(path),
        "models": man.models,
        "tier_map": man.tier_map,
        "validation": man.validation,
        "fingerprint": bundle.fingerprint(),
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
    bundle: str | None = typer.Option(None, "--bundle", help="Bundle dir (default: shipped)."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
    plot: str | None = typer.Option(None, "--plot", help="Write the cost-quality curve PNG."),
    choices_out: str | None = typer.Option(
        None,
        "--choices-out",
        help="JSONL of each plain (unmixed) operating point's choice per prompt.",
    ),
) -> None:
    """Evaluate the learned router on outcome data: singles, oracle, zero router, router."""
    dataset = _load_data(data, as_json)
    import numpy as np

    from aco_langchain.errors import BundleError
    from aco_langchain.routing.bundle import load_bundle
    from aco_langchain.routing.training import evaluate as ev
    from aco_langchain.routing.training.train import Fitted, featurize

    try:
        b = load_bundle(bundle)
    except BundleError as err:
        fail(str(err), as_json)
    man = b.manifest
    if sorted(man.models) != sorted(dataset.models):
        missing = sorted(set(dataset.models) - set(man.models))
        fail(
            f"the data's models differ from the bundle's (not in bundle: {missing}); "
            f"train a bundle for them first: aco train --data {' '.join(data)} --out DIR",
            as_json,
        )
    order = [man.models.index(m) for m in dataset.models]
    x, dense = featurize(dataset.prompts, man.feature_spec)
    p, c_hat = Fitted(b.arrays).predict(x, dense)
    p, c_hat = p[:, order], c_hat[:, order]
    knobs = ev.default_lambdas()
    u = np.array([ev.prompt_uniform(t) for t in dataset.prompts])
    choices, lam_idx, mixes = ev.mixed_sweep(p, c_hat / man.cost_reference, knobs, u)
    pair = None
    if len(dataset.models) == 2:
        strong = ev.best_single(dataset.correct, dataset.cost)[0]
        pair = p[:, strong] - p[:, 1 - strong]
    rep = ev.report(
        dataset.models, dataset.correct, dataset.cost, choices, knobs[lam_idx], pair, mixes
    )
    rep["data"] = dataset.summary()["name"]
    rep["bundle"] = b.path
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
    _print_report(rep, np)


def _print_report(rep: dict[str, Any], np: Any) -> None:
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
    if "apgr" in r:
        rnd = rep.get("random_router", {})
        con.print(
            f"APGR {r['apgr']:.3f} (random {rnd.get('apgr', float('nan')):.3f}), "
            f"CPT(50%) {r['cpt_50']:.1%}, CPT(80%) {r['cpt_80']:.1%}"
        )


def _plot(rep: dict[str, Any], path: str, as_json: bool) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        fail("--plot needs matplotlib (the 'train' extra): pip install matplotlib", as_json)
    from aco_langchain.routing.training import evaluate as ev

    fig, ax = plt.subplots(figsize=(7, 4.5))
    curve = rep["router"]["curve"]
    ax.plot([c["mean_cost"] for c in curve], [c["accuracy"] for c in curve], ".-", label="router")
    singles = [(m["mean_cost"], m["accuracy"]) for m in rep["models"].values()]
    for name, m in rep["models"].items():
        ax.scatter(m["mean_cost"], m["accuracy"], marker="x")
        ax.annotate(name.split("/")[-1], (m["mean_cost"], m["accuracy"]), fontsize=6)
    hull = ev.upper_hull(singles)
    ax.plot([h[0] for h in hull], [h[1] for h in hull], "--", label="zero router (hull)")
    o = rep["oracle"]
    ax.scatter(o["mean_cost"], o["accuracy"], marker="*", s=80, label="oracle")
    ax.set_xscale("log")
    ax.set_xlabel("mean cost per query (USD)")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=7)
    try:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    except OSError as err:
        fail(f"{path}: cannot write the plot ({err.strerror})", as_json)
    finally:
        plt.close(fig)


def register(app: typer.Typer) -> None:
    """Add ``train`` and ``eval`` to the ``aco`` app."""
    app.command("train")(train_cmd)
    app.command("eval")(eval_cmd)
