"""``aco outcome``: report whether a run succeeded (its outcome is unknown until then).

Usage::

    aco outcome run-42 --success --score 0.9
    aco outcome run-43 --fail --ledger postgresql://aco@db:5432/aco --json
"""

from __future__ import annotations

import json

import typer

from aco_langchain.cli.common import fail, load_or_fail


def outcome_cmd(
    run_id: str = typer.Argument(..., help="The run's id (aco_run_id / the ledger's run key)."),
    success: bool | None = typer.Option(
        None, "--success/--fail", help="Did the run do what was asked?"
    ),
    score: float | None = typer.Option(None, "--score", help="A grade in [0, 1]."),
    config: str | None = typer.Option(None, "--config", "-c", help="config.yaml (ledger.url)."),
    ledger: str | None = typer.Option(
        None, "--ledger", help="Ledger URL (default: $ACO_LEDGER_URL, config, SQLite file)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the stored outcome as JSON."),
) -> None:
    """Record a run's observed outcome in the ledger database (one row per run)."""
    if success is None:
        fail("say how the run went: --success or --fail", as_json)
    cfg = load_or_fail(config, as_json)
    from aco_langchain.errors import LedgerError
    from aco_langchain.spend.outcomes import open_outcomes

    try:
        out = open_outcomes(ledger, cfg).record(
            run_id, success=bool(success), score=score, source="cli"
        )
    except (LedgerError, ValueError) as err:
        fail(str(err), as_json)
    if as_json:
        typer.echo(json.dumps({"ok": True, **out.to_dict()}))
        return
    score_s = "" if out.score is None else f" (score {out.score:g})"
    typer.echo(f"run {out.run_key}: {'success' if out.success else 'failed'}{score_s}")


def register(app: typer.Typer) -> None:
    """Add ``outcome`` to the ``aco`` app."""
    app.command("outcome")(outcome_cmd)
