"""``aco budget|gate|verify|stats``: the agent cost controls on the command line.

Usage::

    import typer

    from aco_langchain.cli.agent_cmds import register
    app = typer.Typer()
    register(app)      # aco budget "TEXT", aco gate TOOL --task-type T,
                       # aco verify --risk R --confidence C, aco stats [TRACE_FILES...]

Only ``typer`` is imported at module level so ``aco`` starts fast; the rest loads per command.
"""

from __future__ import annotations

from typing import Any

import typer

from aco_langchain.cli.common import fail, load_or_fail

_CONFIG_HELP = "config.yaml (default: $ACO_CONFIG or built-ins)."
_JSON_HELP = "Print machine-readable JSON."
_RISKS = ("low", "medium", "high", "critical")


def _emit_json(data: Any) -> None:
    import json

    typer.echo(json.dumps(data, indent=2, default=str))


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def _usd(x: float | None) -> str:
    return "n/a" if x is None else f"${x:.4f}"


def _observed(traces: list[Any], cfg: Any) -> dict[str, Any]:
    """Outcomes reported for these traces' runs (``aco outcome``, ``record_outcome``)."""
    import logging

    from aco_langchain.errors import LedgerError
    from aco_langchain.spend.outcomes import open_outcomes

    keys = [t.run_key for t in traces if t.run_key]
    if not keys:
        return {}
    try:
        return open_outcomes(config=cfg).many(keys)
    except LedgerError as err:  # stats still print, over the outcomes the traces carry
        logging.getLogger(__name__).warning("outcomes not read: %s", err)
        return {}


def register(app: typer.Typer) -> None:
    """Add ``budget``, ``gate``, ``verify`` and ``stats`` to ``app``.

    Usage::

        register(app)   # then: aco gate web_search --task-type research --json
    """

    @app.command("budget")
    def budget_cmd(
        text: str = typer.Argument(..., help="The request to budget context for."),
        tier: int | None = typer.Option(None, "--tier", help="Tier (default: routed)."),
        task_type: str | None = typer.Option(None, "--task-type", help="Default: classified."),
        config: str | None = typer.Option(None, "--config", "-c", help=_CONFIG_HELP),
        as_json: bool = typer.Option(False, "--json", help=_JSON_HELP),
    ) -> None:
        """Context budget: total tokens, what to keep exactly, summarise and omit."""
        from aco_langchain.config import TASK_TYPES

        cfg = load_or_fail(config, as_json)
        if not text.strip():
            fail('the request is empty: e.g. aco budget "Research transformer advances"', as_json)
        if tier is not None and tier not in range(1, 6):
            fail(f"--tier {tier} does not exist: use 1 to 5", as_json)
        if task_type is not None and task_type not in TASK_TYPES:
            fail(
                f"--task-type {task_type!r} is unknown: use one of {', '.join(TASK_TYPES)}", as_json
            )
        from aco_langchain.errors import RoutingError
        from aco_langchain.spend.context import context_budget

        try:
            b = context_budget(text, cfg, tier=tier, task_type=task_type)
        except (RoutingError, ValueError) as err:
            fail(str(err), as_json)
        if as_json:
            _emit_json(b.model_dump())
            return
        from rich.table import Table

        t = Table(title=f"Context budget: {text}", show_header=False)
        t.add_column("field", style="bold")
        t.add_column("value")
        t.add_row("tier", f"{b.tier} ({b.model_id})")
        t.add_row("task type", b.task_type)
        t.add_row("context window", f"{b.context_window:,} tokens")
        t.add_row("output reserve", f"{b.output_reserve:,} tokens")
        t.add_row("total_tokens", f"[bold]{b.total_tokens:,}[/]")
        t.add_row("keep_exact", ", ".join(b.keep_exact))
        t.add_row("summarize", ", ".join(b.summarize) or "-")
        t.add_row("omit", ", ".join(b.omit) or "-")
        con = _console()
        con.print(t)
        con.print(f"reason: {b.reason}")

    @app.command("gate")
    def gate_cmd(
        tool: str = typer.Argument(..., help="Tool name, e.g. web_search."),
        task_type: str = typer.Option("general", "--task-type", "-t", help="Task type."),
        prior_calls: int = typer.Option(0, "--prior-calls", help="Times the tool already ran."),
        budget_remaining: float | None = typer.Option(
            None, "--budget-remaining", help="USD left in the run."
        ),
        cost: float | None = typer.Option(None, "--cost", help="Override the tool's USD cost."),
        config: str | None = typer.Option(None, "--config", "-c", help=_CONFIG_HELP),
        as_json: bool = typer.Option(False, "--json", help=_JSON_HELP),
    ) -> None:
        """Is a tool call worth its cost for this task type?"""
        from aco_langchain.config import TASK_TYPES

        cfg = load_or_fail(config, as_json)
        if task_type not in TASK_TYPES:
            fail(
                f"--task-type {task_type!r} is unknown: use one of {', '.join(TASK_TYPES)}", as_json
            )
        if prior_calls < 0:
            fail("--prior-calls must be 0 or more", as_json)
        if (budget_remaining is not None and budget_remaining < 0) or (
            cost is not None and cost < 0
        ):
            fail("--budget-remaining and --cost must be 0 or more", as_json)
        from aco_langchain.agent.gates import gate

        d = gate(
            tool,
            task_type,
            config=cfg,
            prior_calls=prior_calls,
            budget_remaining=budget_remaining,
            cost=cost,
        )
        if as_json:
            _emit_json(d.model_dump())
            return
        verdict = "[bold green]ALLOW[/]" if d.allowed else "[bold yellow]SKIP[/]"
        con = _console()
        con.print(f"{verdict} {d.tool_name} for {d.task_type}")
        con.print(
            f"  p_useful={d.p_useful:.2f} value=${d.value_usd:.2f} "
            f"EV=${d.expected_value:.4f} cost=${d.cost:.4f}"
        )
        con.print(f"  reason: {d.reason}")

    @app.command("verify")
    def verify_cmd(
        risk: str = typer.Option(..., "--risk", "-r", help="low | medium | high | critical"),
        confidence: float = typer.Option(..., "--confidence", help="Answer confidence, 0-1."),
        verifier_calls: int = typer.Option(0, "--verifier-calls", help="Verifier calls so far."),
        total_steps: int = typer.Option(0, "--steps", help="Steps so far (incl. this one)."),
        config: str | None = typer.Option(None, "--config", "-c", help=_CONFIG_HELP),
        as_json: bool = typer.Option(False, "--json", help=_JSON_HELP),
    ) -> None:
        """Does this answer need the verifier?"""
        cfg = load_or_fail(config, as_json)
        if risk not in _RISKS:
            fail(f"--risk {risk!r} is unknown: use low, medium, high or critical", as_json)
        if not 0.0 <= confidence <= 1.0:
            fail(f"--confidence must be between 0 and 1, not {confidence}", as_json)
        if verifier_calls < 0 or total_steps < 0:
            fail("--verifier-calls and --steps must be 0 or more", as_json)
        from aco_langchain.agent.gates import verify

        d = verify(
            risk,  # type: ignore[arg-type]
            confidence,
            config=cfg,
            verifier_calls=verifier_calls,
            total_steps=total_steps,
        )
        if as_json:
            _emit_json(d.model_dump())
            return
        verdict = "[bold yellow]VERIFY[/]" if d.needed else "[bold green]SKIP[/]"
        con = _console()
        con.print(f"{verdict} risk={d.risk} confidence={d.confidence:.2f}")
        con.print(f"  reason: {d.reason}")

    @app.command("stats")
    def stats_cmd(
        trace_files: list[str] | None = typer.Argument(
            None,
            help="JSONL trace files (default: config trace_path or ./traces/aco_traces.jsonl).",
        ),
        config: str | None = typer.Option(None, "--config", "-c", help=_CONFIG_HELP),
        as_json: bool = typer.Option(False, "--json", help=_JSON_HELP),
        plot: str | None = typer.Option(
            None,
            "--plot",
            help="Also write a PNG: spend per step, tier mix, success by tier, rates.",
        ),
    ) -> None:
        """Cost per successful task, success rate by tier, other rates, and the seed's alerts."""
        from pathlib import Path

        from aco_langchain.tracing.sinks import DEFAULT_TRACE_PATH

        cfg = load_or_fail(config, as_json)
        files = list(trace_files or [cfg.trace_path or DEFAULT_TRACE_PATH])
        missing = [f for f in files if not Path(f).is_file()]
        if missing:
            fail(
                f"no trace file at {', '.join(missing)}: run an agent with trace_path set, "
                "or pass the JSONL files to read",
                as_json,
            )
        from aco_langchain.tracing.sinks import read_traces
        from aco_langchain.tracing.stats import compute_stats

        try:
            per_file = {f: read_traces(f) for f in files}
        except OSError as err:
            fail(f"cannot read traces: {err}", as_json)
        # A file with lines but not one trace is not a trace file (a config, a CSV...): say
        # so and exit 1, rather than report 0 runs.
        for f, got in per_file.items():
            if got.problems and not got.traces:
                fail(
                    f"{f} is not a trace file (no line is a trace; {got.problems[0]}): pass "
                    "the JSONL file an agent writes (config trace_path)",
                    as_json,
                )
        result = read_traces([])
        for got in per_file.values():
            result.traces.extend(got.traces)
            result.problems.extend(got.problems)
        report = compute_stats(
            result.traces, cfg, problems=result.problems, outcomes=_observed(result.traces, cfg)
        )
        if plot:
            from aco_langchain.errors import PlotError
            from aco_langchain.viz import save_png, stats_figure

            try:
                save_png(stats_figure(result.traces, report), plot)
            except PlotError as err:
                fail(str(err), as_json)
        if as_json:
            extra = {"plot": plot} if plot else {}
            _emit_json({"files": files, **report.model_dump(mode="json"), **extra})
            return
        from rich.table import Table

        con = _console()
        t = Table(title=f"ACO stats ({report.runs} runs from {len(files)} file(s))")
        t.add_column("metric", style="bold")
        t.add_column("value", justify="right")
        t.add_row("runs / with an observed outcome", f"{report.runs} / {report.runs_with_outcome}")
        t.add_row("  no outcome reported (not counted)", str(report.runs_without_outcome))
        t.add_row("successes (observed)", str(report.successes))
        t.add_row("success rate (observed runs)", _pct(report.success_rate))
        t.add_row("total cost", _usd(report.total_cost))
        t.add_row("cost per successful task", _usd(report.cost_per_successful_task))
        t.add_row(
            f"  same runs on baseline (ledger.baseline_tier = {cfg.ledger.baseline_tier})",
            _usd(report.frontier_cost_per_successful_task),
        )
        t.add_row("escalation rate", _pct(report.escalation_rate))
        t.add_row("cache hit rate", _pct(report.cache_hit_rate))
        t.add_row("verifier call rate", _pct(report.verifier_call_rate))
        t.add_row("false-DONE rate", _pct(report.false_done_rate))
        con.print(t)
        if report.success_rate_by_tier:
            bt = Table(title="Success rate by tier (tier of the final answer)")
            bt.add_column("tier", justify="right")
            bt.add_column("runs", justify="right")
            bt.add_column("successes", justify="right")
            bt.add_column("success rate", justify="right")
            for tier, s in report.success_rate_by_tier.items():
                bt.add_row(str(tier), str(s.runs), str(s.successes), _pct(s.success_rate))
            con.print(bt)
        for a in report.alerts:
            con.print(f"[bold red]ALERT[/] {a.message}")
        if not report.alerts and report.runs:
            con.print("[green]no alerts[/]")
        for p in report.problems:
            con.print(f"[yellow]skipped[/] {p}")
        if plot:
            con.print(f"plot written to {plot}")
