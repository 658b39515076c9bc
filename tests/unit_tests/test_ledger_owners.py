"""Holds whose owner process died are settled at their worst case; settled budget rows of
finished periods and runs are pruned (spend rows stay). Real SQLite and Postgres."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aco_langchain.spend.ledger import Hold, Limit, MemoryLedger, SpendLedger, SpendRecord
from aco_langchain.spend.ledger.base import period_end, scope_finished
from aco_langchain.spend.ledger.owners import (
    expired_hold_fate,
    live_processes,
    process_identity,
)
from tests.ledger_backends import ledger_and_url  # noqa: F401 - the fixture

ROOT = Path(__file__).resolve().parents[2]

_HOLD_AND_DIE = """
import os, sys
from aco_langchain.spend.ledger import Limit, open_ledger
ledger = open_ledger(sys.argv[1], shared=False)
got = ledger.hold([Limit("run:dead", usd=1.0), Limit("total@2026-12", usd=9.0)], 0.4, 300,
                  ttl_s=0.5, owner="trace-of-the-dead-call")
print(got.id, flush=True)
os._exit(0)  # dies mid-call: no settle, no release
"""


def test_a_process_is_alive_only_as_itself() -> None:
    me = process_identity()
    host, pid, start = me.rsplit(":", 2)
    assert int(pid) == os.getpid()
    assert live_processes([me]) == {me}
    assert live_processes([f"{host}:{pid}:{int(start) + 1}"]) == set()  # a recycled pid
    assert live_processes([f"other-host:{pid}:{start}"]) == set()
    assert expired_hold_fate(me, frozenset({me})) == "release"
    assert expired_hold_fate("other-host:1:1", frozenset({me})) == "settle"
    assert expired_hold_fate("", frozenset()) == "release"  # holds from before schema 2


def test_a_dead_owners_hold_is_settled_at_its_worst_case(
    ledger_and_url: tuple[SpendLedger, str],  # noqa: F811
) -> None:
    ledger, url = ledger_and_url
    if isinstance(ledger, MemoryLedger):
        pytest.skip("a memory ledger's holds live and die with its one process")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", _HOLD_AND_DIE, url],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert out.stdout.strip()
    assert ledger.usage("run:dead").held_usd == pytest.approx(0.4)
    time.sleep(0.7)
    u = ledger.usage("run:dead")  # the expiry check reconciles: the owner is gone
    assert u.held_usd == pytest.approx(0.0) and u.spent_usd == pytest.approx(0.4)
    assert u.spent_tokens == 300
    assert ledger.usage("total@2026-12").spent_usd == pytest.approx(0.4)
    (row,) = ledger.records(run="dead")
    assert (row.outcome, row.cost_usd, row.output_tokens) == ("orphaned", 0.4, 300)
    assert row.trace_id == "trace-of-the-dead-call"
    assert ledger.summary().total_usd == pytest.approx(0.4)


def test_a_live_owners_expired_hold_is_released(
    ledger_and_url: tuple[SpendLedger, str],  # noqa: F811
) -> None:
    ledger, _ = ledger_and_url
    assert isinstance(ledger.hold([Limit("run:me", usd=1.0)], 0.4, ttl_s=0.3), Hold)
    time.sleep(0.5)
    u = ledger.usage("run:me")
    assert u.held_usd == pytest.approx(0.0) and u.spent_usd == 0.0
    assert ledger.records(run="me") == []


def test_periods_end_and_finished_scopes() -> None:
    assert period_end("2026-11") == period_end("2026-11-30")
    assert period_end("all") is None and period_end("garbage") is None
    dec = period_end("2026-11")
    assert dec is not None
    assert scope_finished("user:alice@2026-11", touched_at=dec + 99, before=dec)
    assert not scope_finished("user:alice@2026-12", touched_at=0.0, before=dec)
    assert not scope_finished("total@all", touched_at=0.0, before=dec)
    assert scope_finished("run:r1", touched_at=dec - 1, before=dec)
    assert not scope_finished("run:r1", touched_at=dec + 1, before=dec)


def test_prune_compacts_finished_budget_rows_and_keeps_spend_rows(
    ledger_and_url: tuple[SpendLedger, str],  # noqa: F811
) -> None:
    ledger, _ = ledger_and_url
    old_period = [Limit("run:old", usd=5.0), Limit("user:alice@2020-01", usd=5.0)]
    got = ledger.hold(old_period, 0.5)
    assert isinstance(got, Hold)
    ledger.settle(got, SpendRecord(run_key="old", cost_usd=0.25))
    live = ledger.hold([Limit("run:busy", usd=5.0), Limit("user:bob@2020-01", usd=5.0)], 0.5)
    assert isinstance(live, Hold)  # still in flight: its rows are not settled
    ledger.add("kept", 1.0)  # a run touched after the cut below
    report = ledger.prune(time.time() - 3600)
    assert report.budgets_deleted == 1  # user:alice@2020-01 (2020 ended; run:old is recent)
    assert ledger.usage("user:alice@2020-01").spent_usd == 0.0
    assert ledger.spent("old") == pytest.approx(0.25)
    report = ledger.prune(time.time() + 1)  # later: every run is finished by then
    assert report.budgets_deleted == 2  # run:old, run:kept; never busy's (held)
    assert ledger.spent("old") == 0.0 and ledger.spent("kept") == 0.0
    assert ledger.usage("run:busy").held_usd == pytest.approx(0.5)
    assert ledger.usage("user:bob@2020-01").held_usd == pytest.approx(0.5)
    rows = ledger.records()
    assert [(r.run_key, r.cost_usd) for r in rows] == [("old", 0.25), ("kept", 1.0)]
    assert ledger.summary().total_usd == pytest.approx(1.25)  # reports read spend rows


def test_a_hold_ttl_shorter_than_the_call_deadline_is_refused(tmp_path: Path) -> None:
    from aco_langchain.config import config_from_dict
    from aco_langchain.errors import ConfigError

    with pytest.raises((ConfigError, ValueError), match=r"ledger.hold_ttl_s \(0.001 s\)"):
        config_from_dict({"ledger": {"hold_ttl_s": 0.001}})
    ok = config_from_dict({"ledger": {"hold_ttl_s": 5}, "routing": {"max_latency_per_call_s": 5}})
    assert ok.ledger.hold_ttl_s == 5
    bad = tmp_path / "config.yaml"
    bad.write_text("ledger:\n  hold_ttl_s: 0.001\n")
    from typer.testing import CliRunner

    from aco_langchain.cli.main import app

    out = CliRunner().invoke(app, ["config", "validate", str(bad)])
    assert out.exit_code != 0
    assert out.exception is None or isinstance(out.exception, SystemExit)  # no traceback
    assert "hold_ttl_s (0.001 s) is shorter" in out.output


def test_aco_spend_prune_before_compacts_and_names_bad_dates(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from aco_langchain.cli.main import app
    from aco_langchain.spend.ledger import open_ledger

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = open_ledger(url, shared=False)
    got = ledger.hold([Limit("run:r", usd=1.0), Limit("key:k1@2020-01", usd=1.0)], 0.2)
    assert isinstance(got, Hold)
    ledger.settle(got, SpendRecord(run_key="r", cost_usd=0.1))
    runner = CliRunner()
    out = runner.invoke(app, ["spend", "--ledger", url, "--prune-before", "2026-01-01", "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["budgets_deleted"] == 1 and doc["before_date"] == "2026-01-01"
    assert ledger.usage("key:k1@2020-01").spent_usd == 0.0
    assert ledger.spent("r") == pytest.approx(0.1)  # touched after 2026-01-01: kept
    totals = json.loads(runner.invoke(app, ["spend", "--ledger", url, "--json"]).output)
    assert totals["total_usd"] == pytest.approx(0.1)  # spend rows stay
    bad = runner.invoke(app, ["spend", "--ledger", url, "--prune-before", "last week"])
    assert bad.exit_code != 0 and "use YYYY-MM-DD" in bad.output
    assert bad.exception is None or isinstance(bad.exception, SystemExit)
