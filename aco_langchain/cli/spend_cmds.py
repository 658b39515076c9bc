"""``aco spend``: what the ledger recorded — total spend, calls, savings vs the baseline tier.

Usage::

    aco spend                                  # everything in the ledger
    aco spend --run r1 --by tier               # one run, per tier
    aco spend --month 2026-12 --by day --json  # {"total_usd", "calls", "savings_usd", ...}
    aco spend --prune-before 2026-11-01        # compact finished budget rows (operators)

The ledger is the one the models use: ``--ledger URL``, else ``$ACO_LEDGER_URL``, else the
config's ``ledger.url``, else the SQLite default (``~/.local/share/aco-langchain/ledger.db``).
"""

from __future__ import annotations

import json
from typing import Any

import typer

from aco_langchain.cli.common import fail, load_or_fail


def spend_report(
    cfg: Any,
    *,
    ledger_url: str | None = None,
    run: str | None = None,
    month: str | None = None,
    by: str | None = None,
) -> dict[str, Any]:
    """The ``aco spend --json`` document (also what a server's ``/v1/spend`` can return).

    Raises:
        LedgerError: the ledger cannot be opened.
        ValueError: a bad ``month`` or ``by``.
    """
    from aco_langchain.spend.ledger import GROUPS, month_bounds, open_ledger

    if by is not None and by not in GROUPS:
        raise ValueError(f"--by {by!r} is unknown: use one of {', '.join(GROUPS)}")
    if month is not None:
        month_bounds(month)  # a clear error before the ledger is opened
    ledger = open_ledger(ledger_url, cfg)
    summary = ledger.summary(run=run, month=month, by=by)
    base = cfg.ledger.baseline_tier
    spec = cfg.tier(base)
    from aco_langchain.spend.outcomes import open_outcomes, outcome_figures

    runs = {g.key: g.cost_usd for g in ledger.summary(run=run, month=month, by="run").groups}
    observed = open_outcomes(ledger_url, cfg).many(runs) if runs else {}
    return {
        **summary.to_dict(),
        "outcomes": outcome_figures(runs, observed),
        "baseline": {"tier": base, "model_id": spec.model_id, "model": spec.provider_model},
        "run": run,
        "month": month,
        "ledger": ledger.url,
    }


def parse_day(value: str) -> float:
    """UTC epoch seconds of the start of ``YYYY-MM-DD``.

    Raises:
        ValueError: not a ``YYYY-MM-DD`` date (names the option and an example).
    """
    import calendar
    import datetime as dt

    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"--prune-before {value!r} is not a date: use YYYY-MM-DD (e.g. 2026-11-01)"
        ) from None
    return float(calendar.timegm(day.timetuple()))


def prune_report(cfg: Any, before: str, *, ledger_url: str | None = None) -> dict[str, Any]:
    """Compact the ledger's finished budget rows (``aco spend --prune-before DATE``).

    Budget rows of periods that ended by ``before`` (``user:alice@2026-10``) and of runs
    nothing held or settled on since then are deleted once nothing is held on them; expired
    holds are reconciled first. Spend rows (what ``aco spend`` reports) all stay.

    Raises:
        LedgerError: the ledger cannot be opened.
        ValueError: ``before`` is not ``YYYY-MM-DD``.
    """
    from aco_langchain.spend.ledger import open_ledger

    cut = parse_day(before)
    ledger = open_ledger(ledger_url, cfg)
    report = ledger.prune(cut)
    return {**report.to_dict(), "before_date": before, "ledger": ledger.url}


def register(app: typer.Typer) -> None:
    """Add ``aco spend`` to ``app``."""

    @app.command("spend")
    def spend(
        config: str | None = typer.Option(
            None, "--config", "-c", help="config.yaml (default: $ACO_CONFIG or built-ins)."
        ),
        ledger: str | None = typer.Option(
            None, "--ledger", help="Ledger URL (default: $ACO_LEDGER_URL, config, SQLite file)."
        ),
        run: str | None = typer.Option(None, "--run", help="Only this run key."),
        month: str | None = typer.Option(None, "--month", help="Only this UTC month, YYYY-MM."),
        by: str | None = typer.Option(None, "--by", help="Group by tier, model, run or day."),
        as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
        prune_before: str | None = typer.Option(
            None,
            "--prune-before",
            help="Delete settled budget rows of periods ended and runs idle before this UTC "
            "date (YYYY-MM-DD); spend rows stay. A pruned run key starts a fresh budget.",
        ),
    ) -> None:
        """Total spend, calls and savings vs the baseline tier, from the spend ledger."""
        from aco_langchain.errors import LedgerError

        cfg = load_or_fail(config, as_json)
        if prune_before is not None:
            try:
                pruned = prune_report(cfg, prune_before, ledger_url=ledger)
            except (LedgerError, ValueError) as err:
                fail(str(err), as_json)
            if as_json:
                typer.echo(json.dumps(pruned, indent=2))
            else:
                typer.echo(
                    f"ledger: {pruned['ledger']}: pruned {pruned['budgets_deleted']} settled "
                    f"budget row(s) finished before {prune_before}; reconciled "
                    f"{pruned['holds_reconciled']} expired hold(s); spend rows kept"
                )
            return
        try:
            report = spend_report(cfg, ledger_url=ledger, run=run, month=month, by=by)
        except (LedgerError, ValueError) as err:
            fail(str(err), as_json)
        if as_json:
            typer.echo(json.dumps(report, indent=2))
            return
        _print(report)


def _print(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    base = report["baseline"]
    scope = ", ".join(f"{k} {report[k]}" for k in ("run", "month") if report.get(k) is not None)
    console.print(f"ledger: {report['ledger']}" + (f" ({scope})" if scope else ""), highlight=False)
    console.print(
        f"Total spend: {report['total_usd']:.4f} USD | Savings vs {base['model']} "
        f"(tier {base['tier']}): {report['savings_usd']:.4f} USD | calls: {report['calls']}",
        highlight=False,
    )
    o = report["outcomes"]
    rate = "-" if o["success_rate"] is None else f"{o['success_rate']:.0%}"
    cps = o["cost_per_successful_task"]
    console.print(
        f"Outcomes: {o['runs_with_outcome']} of {o['runs']} runs observed "
        f"({o['runs_without_outcome']} with none, not counted) | success rate {rate} | "
        f"cost per successful task {'-' if cps is None else f'{cps:.4f} USD'}",
        highlight=False,
    )
    if not report.get("groups"):
        return
    table = Table(show_edge=False)
    for col in (report["by"], "calls", "spend USD", "baseline USD", "savings USD", "tokens in/out"):
        table.add_column(col, justify="left" if col == report["by"] else "right")
    for g in report["groups"]:
        table.add_row(
            g["key"],
            str(g["calls"]),
            f"{g['cost_usd']:.6f}",
            f"{g['baseline_usd']:.6f}",
            f"{g['savings_usd']:.6f}",
            f"{g['input_tokens']:,}/{g['output_tokens']:,}",
        )
    console.print(table)


__all__ = ["parse_day", "prune_report", "register", "spend_report"]
