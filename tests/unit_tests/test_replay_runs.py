"""Run-level policies on recorded agent runs: the table, the simulated verifier, step caps,
calibration on a training split and the ``aco replay --runs`` output."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from aco_langchain.config import load_config
from aco_langchain.errors import DataError
from aco_langchain.replay.runs import (
    RunPolicy,
    VerifierSpec,
    load_runs,
    parse_verifier,
    simulate_task,
)
from aco_langchain.replay.runs_calibrate import calibrate, evaluate, split_tasks
from aco_langchain.replay.runs_cli import run_replay_runs


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _table_rows(n: int = 40) -> list[dict[str, object]]:
    """cheap resolves the even tasks in 5 calls, fails the odd ones in 30 calls;
    big resolves every task but one in ten, and costs 20x more."""
    rows: list[dict[str, object]] = []
    for i in range(n):
        task = f"t{i:03d}"
        even = i % 2 == 0
        rows.append(
            {
                "task_id": task,
                "model": "cheap",
                "resolved": int(even),
                "cost_usd": 0.05 if even else 0.3,
                "calls": 5 if even else 30,
            }
        )
        rows.append(
            {
                "task_id": task,
                "model": "big",
                "resolved": int(i % 10 != 9),
                "cost_usd": 2.0,
                "calls": 10,
            }
        )
    return rows


@pytest.fixture
def runs_csv(tmp_path: Path) -> Path:
    return _write(tmp_path / "runs.csv", _table_rows())


def test_parse_verifier_forms_and_errors() -> None:
    assert parse_verifier("oracle") == VerifierSpec(1.0, 0.0)
    assert parse_verifier("recall=0.8,false_reject=0.1") == VerifierSpec(0.8, 0.1)
    for bad in ("recall=1.5,false_reject=0", "recall=0.8", "good", "recall=x,false_reject=0"):
        with pytest.raises(DataError, match="recall=R,false_reject=Q"):
            parse_verifier(bad)


def test_load_runs_names_missing_columns_and_drops_incomplete_tasks(tmp_path: Path) -> None:
    bad = _write(tmp_path / "bad.csv", [{"task_id": "a", "model": "m", "resolved": 1}])
    with pytest.raises(DataError, match="cost_usd, calls"):
        load_runs(bad)
    rows = [
        *_table_rows(4),
        {"task_id": "lonely", "model": "cheap", "resolved": 1, "cost_usd": 1, "calls": 1},
    ]
    table = load_runs(_write(tmp_path / "r.csv", rows))
    assert "lonely" not in table.tasks and len(table.tasks) == 4
    with pytest.raises(DataError, match="no runs of nope"):
        load_runs(tmp_path / "r.csv", models=["nope"])


def test_score_column_reads_as_resolved_at_half(tmp_path: Path) -> None:
    rows = [
        {"task_id": "a", "model": "m", "score": 0.7, "cost_usd": 1, "calls": 3},
        {"task_id": "b", "model": "m", "score": 0.2, "cost_usd": 1, "calls": 3},
    ]
    table = load_runs(_write(tmp_path / "s.csv", rows))
    assert table.run("a", "m").resolved and not table.run("b", "m").resolved


def test_oracle_ladder_escalates_only_failed_runs(runs_csv: Path) -> None:
    table = load_runs(runs_csv)
    policy = RunPolicy(("cheap", "big"), (None, None))
    ok = simulate_task(table, "t000", policy, VerifierSpec(1.0, 0.0), seed=0)
    assert [a.model for a in ok.attempts] == ["cheap"] and ok.resolved and ok.cost_usd == 0.05
    failed = simulate_task(table, "t001", policy, VerifierSpec(1.0, 0.0), seed=0)
    assert [a.model for a in failed.attempts] == ["cheap", "big"]
    assert failed.attempts[0].accepted is False and failed.resolved
    assert failed.cost_usd == pytest.approx(2.3)


def test_step_cap_stops_the_run_prorates_cost_and_escalates(runs_csv: Path) -> None:
    table = load_runs(runs_csv)
    policy = RunPolicy(("cheap", "big"), (10, None))
    out = simulate_task(table, "t001", policy, VerifierSpec(0.0, 0.0), seed=0)
    first = out.attempts[0]
    # A verifier that accepts everything would have kept the failed run; the cap stops it.
    assert first.stopped_by_cap and not first.accepted and first.calls == 10
    assert first.cost_usd == pytest.approx(0.3 * 10 / 30)
    assert out.attempts[1].model == "big"


def test_seeded_verdicts_are_reproducible_and_match_expectation(runs_csv: Path) -> None:
    table = load_runs(runs_csv)
    policy = RunPolicy(("cheap", "big"), (None, None))
    spec = VerifierSpec(0.6, 0.2)
    a, _ = evaluate(table, policy, spec, seed=3)
    b, _ = evaluate(table, policy, spec, seed=3)
    assert a == b
    sims = [evaluate(table, policy, spec, seed=s)[0] for s in range(200)]
    mean_rate = sum(f.resolved_rate for f in sims) / len(sims)
    assert mean_rate == pytest.approx(a.expected_resolved_rate, abs=0.02)
    assert a.resolved_rate_ci95[0] <= a.resolved_rate <= a.resolved_rate_ci95[1]


def test_calibration_puts_the_cheap_model_first_when_it_pays(runs_csv: Path) -> None:
    table = load_runs(runs_csv)
    train, heldout = split_tasks(table.tasks, 0.5, seed=0)
    assert not set(train) & set(heldout) and len(train) == 20
    chosen = calibrate(table.subset(train), VerifierSpec(1.0, 0.0), 0.99)
    # cheap's failures are exactly its long runs: capped, they escalate to big for sure.
    assert chosen.policy.ladder == ("cheap", "big")
    assert chosen.train_cost_usd < chosen.best_single_cost_usd


def test_cli_json_has_the_interface_fields(runs_csv: Path, capsys, tmp_path: Path) -> None:
    cfg = tmp_path / "agent.yaml"
    code = run_replay_runs(
        str(runs_csv),
        None,
        "recall=0.8,false_reject=0.1",
        True,
        0.99,
        0.5,
        0,
        True,
        None,
        str(cfg),
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["policy"]["ladder"][-1] == "big"
    assert set(report["heldout"]) >= {"tasks", "resolved_rate", "cost_usd"}
    assert report["heldout"]["tasks"] == 20 == len(report["heldout_tasks"])
    assert set(report["best_single"]) >= {"model", "resolved_rate", "cost_usd"}
    record = report["heldout_tasks"][0]
    assert set(record) >= {"task_id", "resolved", "cost_usd", "attempts"}
    assert set(record["attempts"][0]) >= {"model", "cost_usd", "resolved", "accepted", "calls"}
    total = sum(r["cost_usd"] for r in report["heldout_tasks"])
    assert report["heldout"]["cost_usd"] == pytest.approx(total, abs=1e-4)
    agent = load_config(cfg).agent
    assert agent.escalation_ladder == report["policy"]["ladder"]
    assert agent.step_caps == {
        m: c for m, c in report["policy"]["step_caps"].items() if c is not None
    }


def test_cli_bad_verifier_is_a_clear_error(runs_csv: Path, capsys) -> None:
    code = run_replay_runs(str(runs_csv), None, "recall=2", False, 0.99, 0.5, 0, True, None, None)
    assert code == 1
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False and "--verifier" in out["error"]
