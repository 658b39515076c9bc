"""Observed outcomes: stored per run beside the ledger, reported by API, CLI and replays."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aco_langchain import ACORouterChatModel
from aco_langchain.cli import app
from aco_langchain.routing import RuleRouter
from aco_langchain.spend.ledger import open_ledger
from aco_langchain.spend.outcomes import (
    Outcome,
    OutcomeStore,
    PostgresOutcomes,
    open_outcomes,
    outcome_figures,
)
from aco_langchain.testing import ScriptedChatModel
from tests.ledger_backends import drop_pg

PG = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OutcomeStore]:
    if request.param == "memory":
        yield open_outcomes("memory://")
    elif request.param == "sqlite":
        yield open_outcomes(f"sqlite:///{tmp_path / 'ledger.db'}")
    else:
        prefix = f"t{uuid.uuid4().hex[:10]}_"
        s = open_outcomes(f"{PG}?table_prefix={prefix}")
        assert isinstance(s, PostgresOutcomes)
        yield s
        drop_pg(prefix)


def test_one_row_per_run_last_report_wins(store: OutcomeStore) -> None:
    assert store.get("r1") is None  # unknown until reported
    store.record("r1", success=False, source="cli")
    store.record("r1", success=True, score=0.75, source="api")
    store.record("r2", success=False)
    got = store.get("r1")
    assert got is not None and got.success and got.score == 0.75 and got.source == "api"
    assert set(store.many(["r1", "r2", "r3"])) == {"r1", "r2"}
    assert len(store.many()) == 2


async def test_async_methods_share_the_rows(store: OutcomeStore) -> None:
    await store.arecord("a1", success=True, score=1.0, source="verifier")
    assert store.get("a1") == await store.aget("a1")
    store.record("a2", success=False)
    assert set(await store.amany(["a1", "a2", "zz"])) == {"a1", "a2"}


def test_bad_values_are_clear_errors() -> None:
    store = open_outcomes("memory://")
    with pytest.raises(ValueError, match="score"):
        store.record("r", success=True, score=1.5)
    with pytest.raises(ValueError, match="run id is empty"):
        store.record(" ", success=True)


def test_two_handles_on_one_sqlite_file_see_the_same_outcomes(tmp_path: Path) -> None:
    from aco_langchain.spend.outcomes import SQLiteOutcomes

    path = tmp_path / "shared.db"
    SQLiteOutcomes(path, f"sqlite:///{path}").record("w1", success=True)
    assert SQLiteOutcomes(path, f"sqlite:///{path}").get("w1") is not None


async def test_llm_record_outcome_sync_and_async(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    tiers = {n: ScriptedChatModel(script=["ok"], model=f"t{n}") for n in range(1, 6)}
    llm = ACORouterChatModel(tier_models=tiers, router=RuleRouter(), ledger=open_ledger(url))
    llm.invoke("hello", aco_run_id="job-1")
    llm.record_outcome("job-1", success=True, score=0.9)
    await llm.arecord_outcome("job-2", success=False)
    # the last run is the default
    llm.invoke("hello again", aco_run_id="job-3")
    llm.record_outcome(success=False)
    store = open_outcomes(url)
    assert store.get("job-1").success and not store.get("job-2").success
    assert store.get("job-3") is not None and not store.get("job-3").success


def test_cli_outcome_and_spend_report(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    tiers = {n: ScriptedChatModel(script=["ok"], model=f"t{n}") for n in range(1, 6)}
    llm = ACORouterChatModel(tier_models=tiers, router=RuleRouter(), ledger=open_ledger(url))
    for run in ("a", "b", "c"):
        llm.invoke("hello there", force_tier=3, aco_run_id=run)
    res = CliRunner().invoke(app, ["spend", "--json", "--ledger", url])
    o = json.loads(res.output)["outcomes"]
    assert o["runs"] == 3 and o["runs_without_outcome"] == 3 and o["success_rate"] is None
    for run, flag in (("a", "--success"), ("b", "--fail")):
        res = CliRunner().invoke(app, ["outcome", run, flag, "--ledger", url, "--json"])
        assert res.exit_code == 0, res.output
    o = json.loads(CliRunner().invoke(app, ["spend", "--json", "--ledger", url]).output)["outcomes"]
    assert o["runs_with_outcome"] == 2 and o["runs_without_outcome"] == 1
    assert o["success_rate"] == 0.5
    assert o["cost_per_successful_task"] == pytest.approx(llm.spent("a") + llm.spent("b"))
    res = CliRunner().invoke(app, ["outcome", "a", "--ledger", url])
    assert res.exit_code != 0 and "--success or --fail" in res.output
    res = CliRunner().invoke(app, ["outcome", "a", "--success", "--score", "2", "--ledger", url])
    assert res.exit_code != 0 and "score" in res.output and "Traceback" not in res.output


def test_outcome_figures_count_only_observed_runs() -> None:
    figs = outcome_figures(
        {"a": 0.3, "b": 0.1, "c": 0.6},
        {"a": Outcome("a", True), "b": Outcome("b", False), "x": Outcome("x", True)},
    )
    assert figs["runs_with_outcome"] == 2 and figs["runs_without_outcome"] == 1
    assert figs["success_rate"] == 0.5
    assert figs["cost_per_successful_task"] == pytest.approx(0.4)
    assert outcome_figures({"a": 1.0}, {})["success_rate"] is None


def test_replay_records_the_recorded_outcomes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    out = tmp_path / "c.jsonl"
    res = CliRunner().invoke(
        app, ["replay", "--limit", "6", "--ledger", url, "--json", "--choices-out", str(out)]
    )
    assert res.exit_code == 0, res.output
    choices = [json.loads(x) for x in out.read_text().splitlines()]
    store = open_outcomes(url)
    for c in choices:
        got = store.get(c["run_key"])
        assert got is not None and got.source == "replay" and got.success == c["correct"]
