"""``aco replay --runs FILE``: run-level policies on recorded agent runs, as the CLI prints them.

Thin I/O around :mod:`aco_langchain.replay.runs` (the simulation) and
:mod:`aco_langchain.replay.runs_calibrate` (the choice on a training split): read the table,
evaluate every single model, the hindsight oracle and the escalation policy, print a table
or JSON, draw ``--plot``, write ``--write-config``.

Example:
    ```python
    from aco_langchain.replay.runs_cli import run_replay_runs

    code = run_replay_runs(
        "runs.csv", None, "recall=0.8,false_reject=0.1", calibrate=True, target=0.99,
        train_split=0.5, seed=0, as_json=True, plot=None, write_config="aco_agent.yaml",
    )
    ```
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from pathlib import Path
from typing import Any

from aco_langchain.errors import ACOError, DataError
from aco_langchain.replay.runs import (
    RunPolicy,
    RunTable,
    TaskOutcome,
    VerifierSpec,
    load_runs,
    parse_models,
    parse_verifier,
    policy_label,
)
from aco_langchain.replay.runs_calibrate import (
    Calibration,
    Figures,
    best_single,
    evaluate,
    figures_of,
    oracle_outcomes,
    single,
    split_tasks,
)
from aco_langchain.replay.runs_calibrate import (
    calibrate as choose_policy,
)

logger = logging.getLogger(__name__)

DEFAULT_TARGET = 0.99
DEFAULT_TRAIN_SPLIT = 0.5


def _figures(fig: Figures) -> dict[str, Any]:
    return {
        "tasks": fig.tasks,
        "resolved": fig.resolved,
        "resolved_rate": round(fig.resolved_rate, 6),
        "cost_usd": round(fig.cost_usd, 6),
        "resolved_rate_ci95": [round(v, 6) for v in fig.resolved_rate_ci95],
        "cost_usd_ci95": [round(v, 6) for v in fig.cost_usd_ci95],
        "expected_resolved_rate": round(fig.expected_resolved_rate, 6),
        "expected_cost_usd": round(fig.expected_cost_usd, 6),
    }


def _task_record(outcome: TaskOutcome) -> dict[str, Any]:
    return {
        "task_id": outcome.task_id,
        "resolved": outcome.resolved,
        "cost_usd": round(outcome.cost_usd, 6),
        "final_model": outcome.attempts[-1].model if outcome.attempts else None,
        "attempts": [
            {
                "model": a.model,
                "cost_usd": round(a.cost_usd, 6),
                "resolved": a.resolved,
                "accepted": a.accepted,
                "calls": a.calls,
                "stopped_by_cap": a.stopped_by_cap,
            }
            for a in outcome.attempts
        ],
    }


def _default_policy(table: RunTable, models: list[str] | None) -> RunPolicy:
    """Without --calibrate: the --models order as given, else all models cheapest first."""
    if models:
        ladder = tuple(models)
    else:
        mean = {m: sum(table.run(t, m).cost_usd for t in table.tasks) for m in table.models}
        ladder = tuple(sorted(table.models, key=mean.__getitem__))
    return RunPolicy(ladder=ladder, step_caps=(None,) * len(ladder))


def policy_dict(
    policy: RunPolicy, verifier: VerifierSpec, calibration: Calibration | None, target: float
) -> dict[str, Any]:
    """The policy as JSON: ladder, per-model step caps, the verification bar, provenance."""
    out: dict[str, Any] = {
        "ladder": list(policy.ladder),
        "step_caps": {m: c for m, c in zip(policy.ladder, policy.step_caps, strict=True)},
        "thresholds": {
            # A rung's run is handed back only when the verifier accepts it (the last
            # rung's whatever the verdict); a run stopped by its cap always escalates.
            "accept_on": "verifier_accepts",
            "verifier": {"recall": verifier.recall, "false_reject": verifier.false_reject},
        },
        "label": policy_label(policy),
    }
    if calibration is not None:
        out["calibration"] = {
            "target": target,
            "train_tasks": calibration.train_tasks,
            "train_expected_resolved_rate": round(calibration.train_resolved_rate, 6),
            "train_expected_cost_usd": round(calibration.train_cost_usd, 6),
            "train_best_single": {
                "model": calibration.best_single_model,
                "resolved_rate": round(calibration.best_single_resolved_rate, 6),
                "cost_usd": round(calibration.best_single_cost_usd, 6),
            },
            "candidates": calibration.candidates,
        }
    return out


def replay_runs_report(
    table: RunTable,
    verifier: VerifierSpec,
    *,
    models: list[str] | None,
    calibrate: bool,
    target: float,
    train_split: float,
    seed: int,
) -> dict[str, Any]:
    """Everything ``aco replay --runs`` reports, as a JSON-ready dict.

    With ``calibrate`` the policy is chosen on a seeded training split and every figure is
    over the held-out tasks; without it the policy is the ``models`` order (or all models
    cheapest first, no caps) and the figures are over all tasks.

    Raises:
        DataError: A bad split or target.

    Example:
        ```python
        replay_runs_report(table, VerifierSpec(0.8, 0.1), models=None, calibrate=True,
                           target=0.99, train_split=0.5, seed=0)["heldout"]["cost_usd"]
        ```
    """
    calibration: Calibration | None = None
    if calibrate:
        train, heldout = split_tasks(table.tasks, train_split, seed)
        calibration = choose_policy(table.subset(train), verifier, target)
        policy = calibration.policy
        scope = table.subset(heldout)
    else:
        policy = _default_policy(table, models)
        scope = table
    fig, outcomes = evaluate(scope, policy, verifier, seed)
    best_model, _, _ = best_single(scope)
    singles = {m: evaluate(scope, single(m), verifier, seed)[0] for m in scope.models}
    best = singles[best_model]
    oracle = figures_of(oracle_outcomes(scope), seed)
    return {
        "runs": {"tasks": len(table.tasks), "models": list(table.models)},
        "verifier": verifier.label(),
        "seed": seed,
        "split": (
            {"train_split": train_split, "train_tasks": len(table.tasks) - len(scope.tasks)}
            if calibrate
            else "all tasks (no --calibrate)"
        ),
        "policy": policy_dict(policy, verifier, calibration, target),
        "heldout": {
            **_figures(fig),
            "cost_share_of_best_single": round(fig.cost_usd / best.cost_usd, 6)
            if best.cost_usd
            else None,
            "resolved_rate_minus_best_single": round(fig.resolved_rate - best.resolved_rate, 6),
        },
        # The best single model on these same tasks (highest resolved rate, then cheapest):
        # the strongest fixed choice in hindsight, the baseline the policy must keep up with.
        "best_single": {"model": best_model, **_figures(best)},
        "oracle": _figures(oracle),
        "singles": {m: _figures(f) for m, f in singles.items()},
        "heldout_tasks": [_task_record(o) for o in outcomes],
    }


def _print_table(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    split = report["split"]
    where = (
        f"held-out {report['heldout']['tasks']} tasks (trained on {split['train_tasks']})"
        if isinstance(split, dict)
        else f"all {report['heldout']['tasks']} tasks"
    )
    con.print(f"[bold]policy[/] {report['policy']['label']}  verifier {report['verifier']}")
    table = Table(title=f"agent runs: {where}, seed {report['seed']}")
    for col in ("policy", "resolved", "95% CI", "cost $", "95% CI", "E[resolved]", "E[cost] $"):
        table.add_column(col)

    def row(name: str, f: dict[str, Any]) -> None:
        lo, hi = f["resolved_rate_ci95"]
        clo, chi = f["cost_usd_ci95"]
        table.add_row(
            name,
            f"{f['resolved_rate']:.1%}",
            f"{lo:.1%}-{hi:.1%}",
            f"{f['cost_usd']:.2f}",
            f"{clo:.2f}-{chi:.2f}",
            f"{f['expected_resolved_rate']:.1%}",
            f"{f['expected_cost_usd']:.2f}",
        )

    row("escalation policy", report["heldout"])
    row(f"best single ({report['best_single']['model']})", report["best_single"])
    row("hindsight oracle", report["oracle"])
    for model, f in report["singles"].items():
        row(model, f)
    con.print(table)


def _plot(report: dict[str, Any], path: str) -> None:
    from aco_langchain.viz.figure import new_figure, save_png

    fig = new_figure(7, 4.5)
    ax = fig.add_subplot()
    for model, f in report["singles"].items():
        ax.scatter(f["cost_usd"], f["resolved_rate"], color="tab:gray")
        ax.annotate(model, (f["cost_usd"], f["resolved_rate"]), fontsize=7)
    for name, f, color in (
        ("oracle", report["oracle"], "tab:green"),
        ("policy", report["heldout"], "tab:red"),
    ):
        ax.scatter(f["cost_usd"], f["resolved_rate"], color=color, marker="*", s=120)
        ax.annotate(name, (f["cost_usd"], f["resolved_rate"]), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("total cost, USD (log)")
    ax.set_ylabel("resolved rate")
    ax.set_title(f"agent runs, verifier {report['verifier']}: {report['policy']['label']}")
    save_png(fig, path)


def run_replay_runs(
    runs: str,
    models: str | list[str] | None,
    verifier: str | None,
    calibrate: bool,
    target: float | None,
    train_split: float | None,
    seed: int,
    as_json: bool,
    plot: str | None,
    write_config: str | None,
    *,
    prompts: str | None = None,
) -> int:
    """The ``aco replay --runs`` command: evaluate (and calibrate) a run-level policy.

    Args:
        runs: CSV of complete agent runs (``task_id, model, resolved|score, cost_usd, calls``).
        models: Models to use (``a,b,c`` or a list); without ``calibrate`` their order is the
            ladder. None: all.
        verifier: ``oracle`` or ``recall=R,false_reject=Q`` (None: ``oracle``).
        calibrate: Choose ladder and caps on a training split; report held-out figures.
        target: Share of the best single model's resolved rate to keep (None: 0.99).
        train_split: Share of tasks to train on (None: 0.5).
        seed: Seed of the split, the verifier's verdicts and the intervals.
        as_json: Print JSON instead of a table.
        plot: Write cost vs resolved as a PNG here.
        write_config: Write the policy as the agent config fields (YAML) here.
        prompts: Optional JSONL of task prompts (kept with the table; not used to route yet).

    Returns:
        The exit code: 0, or 1 after printing a clear error (no traceback).

    Example:
        ```python
        run_replay_runs("runs.csv", None, "oracle", False, 0.99, 0.5, 0, True, None, None)
        ```
    """
    try:
        chosen = parse_models(models) if isinstance(models, str) or models is None else models
        spec = parse_verifier(verifier or "oracle")
        table = load_runs(runs, models=chosen, prompts=prompts)
        report = replay_runs_report(
            table,
            spec,
            models=chosen,
            calibrate=calibrate,
            target=DEFAULT_TARGET if target is None else target,
            train_split=DEFAULT_TRAIN_SPLIT if train_split is None else train_split,
            seed=seed,
        )
        if plot:
            _plot(report, plot)
            report["plot"] = plot
        if write_config:
            from aco_langchain.replay.runs_config import write_agent_config

            ladder = report["policy"]["ladder"]
            caps = report["policy"]["step_caps"]
            write_agent_config(
                write_config,
                RunPolicy(tuple(ladder), tuple(caps[m] for m in ladder)),
                spec,
            )
            report["config"] = write_config
    except ACOError as err:
        _fail(str(err), as_json)
        return 1
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        _print_table(report)
        if write_config:
            print(f"policy written to {write_config} (agent: config fields)")
    return 0


def _fail(message: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"ok": False, "error": message}))
    else:
        print(f"error: {message}", file=sys.stderr)


__all__ = ["replay_runs_report", "run_replay_runs", "policy_dict"]
_ = (dataclasses, Path, DataError)
