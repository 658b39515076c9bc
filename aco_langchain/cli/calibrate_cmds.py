"""``aco calibrate``: choose the router's thresholds for a quality target on your own data.

Only typer is imported at module level; numpy and the calibrator load inside the command.

Usage::

    aco calibrate --data collected.jsonl --bundle my_bundle --target 0.95 \\
        --config config.yaml --write-config calibrated.yaml --plot frontier.png
    aco eval --data heldout.jsonl --bundle my_bundle --config calibrated.yaml --json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from aco_langchain.cli.common import fail, load_or_fail


def _raw_config(path: str | None, as_json: bool) -> dict[str, Any]:
    """The user's YAML mapping as written (so the output keeps only what they set)."""
    if not path:
        return {}
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:  # load_or_fail vetted it
        fail(f"{path}: cannot re-read the config ({type(err).__name__})", as_json)
    return data if isinstance(data, dict) else {}


def calibrate_cmd(
    data: list[str] = typer.Option(..., "--data", help="Outcome files (JSONL, CSV)."),
    target: float = typer.Option(
        ..., "--target", help="Share of the best model's quality to keep, e.g. 0.95."
    ),
    bundle: str | None = typer.Option(
        None, "--bundle", help="Router bundle (default: the config's, else the shipped one)."
    ),
    config: str | None = typer.Option(None, "--config", help="The config.yaml in use now."),
    write_config: str | None = typer.Option(
        None, "--write-config", help="Write the calibrated config here (YAML)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the split and the bootstrap."),
    heldout: float = typer.Option(
        0.3, "--heldout", min=0.1, max=0.6, help="Share of the data held out for the report."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    plot: str | None = typer.Option(None, "--plot", help="Write the held-out frontier as PNG."),
) -> None:
    """Choose thresholds that keep --target of the best model's quality at the lowest cost."""
    from aco_langchain.cli.router_cmds import load_data

    cfg = load_or_fail(config, as_json)
    dataset = load_data(data, as_json)
    from aco_langchain.config import config_from_dict
    from aco_langchain.errors import BundleError, ConfigError, TrainError
    from aco_langchain.routing.bundle import load_bundle
    from aco_langchain.routing.training import calibrate as cb

    bundle_dir = bundle or cfg.router_model_path
    try:
        b = load_bundle(bundle_dir)
        cal = cb.calibrate(b, dataset, target, cfg, seed=seed, heldout=heldout)
    except (BundleError, TrainError) as err:
        fail(str(err), as_json)
    result = cal.to_dict()
    result["ok"] = not cal.refused
    result["written"] = None
    if cal.refused:
        result["error"] = (
            "refused: the calibration is worse on the held-out split than the current one "
            f"(current quality share {cal.before.quality_share:.3f} at cost share "
            f"{cal.before.cost_share:.3f}); the config was not written"
        )
    elif write_config:
        updates = cb.config_updates(cal)
        if bundle:
            updates["router_model_path"] = str(Path(bundle).resolve())
        merged = cb.merge(_raw_config(config, as_json), updates)
        try:
            config_from_dict(merged, source=write_config)
        except ConfigError as err:
            fail(str(err), as_json)
        _write_yaml(merged, write_config, cal, as_json)
        result["written"] = write_config
    if plot:
        _plot(cal, plot, as_json)
        result["plot"] = plot
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        _print(cal, result)
    if cal.refused:
        raise typer.Exit(code=1)


def _write_yaml(mapping: dict[str, Any], path: str, cal: Any, as_json: bool) -> None:
    import os
    import tempfile

    import yaml

    a = cal.after
    header = (
        f"# aco calibrate: target {cal.target:.0%} of {cal.best_single}'s quality.\n"
        f"# Held-out ({a.n} prompts): quality share {a.quality_share:.3f} "
        f"(95% CI {a.ci95[0]:.3f}-{a.ci95[1]:.3f}) at cost share {a.cost_share:.3f}.\n"
    )
    out = Path(path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(header + yaml.safe_dump(mapping, sort_keys=False))
        os.replace(tmp, out)
    except OSError as err:
        fail(f"{path}: cannot write the config ({err.strerror})", as_json)


def _plot(cal: Any, path: str, as_json: bool) -> None:
    from aco_langchain.errors import PlotError
    from aco_langchain.viz import new_figure, save_png

    try:
        fig = new_figure(7.0, 4.5)
        ax = fig.add_subplot()
        pts = sorted((f["cost_share"], f["quality_share"]) for f in cal.frontier)
        ax.plot(*zip(*pts, strict=True), ".-", color="tab:blue", label="knob sweep (held-out)")
        for name, m, mk in (("current", cal.before, "s"), ("calibrated", cal.after, "*")):
            ax.errorbar(
                [m.cost_share],
                [m.quality_share],
                yerr=[[m.quality_share - m.ci95[0]], [m.ci95[1] - m.quality_share]],
                fmt=mk,
                ms=10,
                capsize=3,
                label=f"{name} ({m.quality_share:.3f} @ {m.cost_share:.2f})",
            )
        ax.axhline(cal.target, color="tab:gray", ls="--", lw=1, label=f"target {cal.target:.0%}")
        ax.set_xlabel(f"cost / {cal.best_single}'s cost")
        ax.set_ylabel(f"quality / {cal.best_single}'s quality")
        ax.set_title(f"aco calibrate: held-out split ({cal.after.n} prompts)")
        ax.legend(fontsize=8, loc="lower right")
        save_png(fig, path)
    except PlotError as err:
        fail(str(err), as_json)


def _print(cal: Any, result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    t = Table(title=f"held-out split: {cal.after.n} prompts (target {cal.target:.0%})")
    for col in ("setting", "quality share", "95% CI", "cost share", "95% CI", "meets"):
        t.add_column(col, justify="right" if col != "setting" else "left")
    for name, m in (("current", cal.before), ("calibrated", cal.after)):
        t.add_row(
            name,
            f"{m.quality_share:.3f}",
            f"{m.ci95[0]:.3f}-{m.ci95[1]:.3f}",
            f"{m.cost_share:.3f}",
            f"{m.cost_share_ci95[0]:.3f}-{m.cost_share_ci95[1]:.3f}",
            "yes" if m.meets_target else "no",
        )
    con.print(t)
    s = cal.chosen
    con.print(
        f"chosen on {cal.n_calibration} prompts: knob {s.lam:.4g}"
        + (f" (mix {s.mix:.2f} -> {s.lam_next:.4g})" if s.lam_next is not None else "")
        + f", safety_threshold {s.safety_threshold}, downgrade_threshold "
        f"{s.downgrade_threshold}"
        + (f", cascade threshold {s.cascade_threshold}" if s.cascade_threshold else "")
        + ("" if cal.met_on_calibration else " [target not met with 95% confidence]")
    )
    if result.get("error"):
        con.print(f"[bold red]{result['error']}[/]")
    elif result.get("written"):
        con.print(f"written: {result['written']}")


def register(app: typer.Typer) -> None:
    """Add ``calibrate`` to the ``aco`` app."""
    app.command("calibrate")(calibrate_cmd)
