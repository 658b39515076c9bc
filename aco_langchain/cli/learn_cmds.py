"""``aco learn``: what online learning has learned (status), apply outcomes, forget.

Usage::

    aco learn status --config config.yaml [--json]
    aco learn sync --config config.yaml      # apply observed outcomes of noted runs
    aco learn reset --config config.yaml --yes
"""

from __future__ import annotations

import json
import math
from typing import Any

import typer

from aco_langchain.cli.common import fail, load_or_fail

learn_app = typer.Typer(help="Online learning from observed outcomes.", no_args_is_help=True)


def _store(config: str | None, as_json: bool) -> tuple[Any, Any]:
    from aco_langchain.errors import ACOError
    from aco_langchain.routing.online_store import open_learning

    cfg = load_or_fail(config, as_json)
    try:
        return cfg, open_learning(cfg)
    except ACOError as err:
        fail(str(err), as_json)


def interval(successes: float, failures: float) -> tuple[float, float, float]:
    """Posterior mean and an approximate 95% interval of Beta(1 + s, 1 + f)."""
    a, b = 1.0 + successes, 1.0 + failures
    mean = a / (a + b)
    sd = math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1.0)))
    return mean, max(0.0, mean - 1.96 * sd), min(1.0, mean + 1.96 * sd)


@learn_app.command("status")
def status_cmd(
    config: str | None = typer.Option(None, "--config", help="config.yaml (its ledger)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Per cluster and tier: outcomes observed, success rate and how sure it is."""
    cfg, store = _store(config, as_json)
    rows = []
    for r in store.rows():
        mean, lo, hi = interval(r.successes, r.failures)
        n = r.successes + r.failures
        rows.append(
            {
                "cluster": r.cluster,
                "tier": r.tier,
                "n": round(n, 3),
                "success_rate": round(mean, 4),
                "ci95": [round(lo, 4), round(hi, 4)],
                # the bundle's weight in the blend: strength / (strength + n)
                "bundle_weight": round(
                    cfg.learning.prior_strength / (cfg.learning.prior_strength + n), 4
                ),
            }
        )
    out = {
        "online": cfg.learning.online,
        "explore_share": cfg.learning.explore_share,
        "prior_strength": cfg.learning.prior_strength,
        "posteriors": rows,
    }
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    con = Console()
    state = "on" if cfg.learning.online else "off (learning.online: false)"
    con.print(f"online learning {state}; explore share {cfg.learning.explore_share:.0%}")
    if not rows:
        con.print("nothing learned yet: no observed outcomes of noted runs")
        return
    t = Table(title="observed success by prompt cluster and tier")
    for col in ("cluster", "tier", "outcomes", "success", "95% interval", "bundle weight"):
        t.add_column(col, justify="left" if col == "cluster" else "right")
    for r in rows:
        t.add_row(
            r["cluster"],
            str(r["tier"]),
            f"{r['n']:g}",
            f"{r['success_rate']:.2f}",
            f"{r['ci95'][0]:.2f}-{r['ci95'][1]:.2f}",
            f"{r['bundle_weight']:.0%}",
        )
    con.print(t)


@learn_app.command("sync")
def sync_cmd(
    config: str | None = typer.Option(None, "--config", help="config.yaml (its ledger)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Apply the observed outcomes (``aco outcome``) of noted runs, each once."""
    from aco_langchain.errors import ACOError

    cfg, store = _store(config, as_json)
    try:
        from aco_langchain.spend.outcomes import open_outcomes
    except ImportError:
        fail("this version has no outcome store (aco_langchain.spend.outcomes)", as_json)
    try:
        from aco_langchain.spend.ledger.url import resolve_ledger_url

        applied = store.sync(open_outcomes(resolve_ledger_url(None, cfg)))
    except ACOError as err:
        fail(str(err), as_json)
    if as_json:
        typer.echo(json.dumps({"ok": True, "applied": applied}))
    else:
        typer.echo(f"{applied} outcome(s) applied")


@learn_app.command("reset")
def reset_cmd(
    config: str | None = typer.Option(None, "--config", help="config.yaml (its ledger)."),
    yes: bool = typer.Option(False, "--yes", help="Really forget everything learned."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Forget every posterior and note."""
    if not yes:
        fail("aco learn reset forgets everything learned: add --yes to confirm", as_json)
    _, store = _store(config, as_json)
    store.reset()
    typer.echo(json.dumps({"ok": True}) if as_json else "online learning state cleared")


def register(app: typer.Typer) -> None:
    """Add ``learn`` to the ``aco`` app."""
    app.add_typer(learn_app, name="learn")
