"""One run budget shared by 8 processes on a real SQLite file and the real local Postgres.

The tiers are ChatOpenAI models on a loopback server that bills long answers (cut at the cap
it is sent) and fails every 7th request (see ``tests/billing_server.py``: a fake provider,
since no cloud provider runs here). Checks: what the server billed never exceeds the budget,
most of the budget is used, ledger rows = billed calls, ledger total = billed total; streams
settle; a worker killed with -9 mid-call has its hold settled at the worst case after the
expiry (the provider may have billed it), and nothing settled before is lost.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aco_langchain.spend.ledger import Hold, Limit, SpendLedger
from tests.billing_server import BillingServer
from tests.ledger_backends import make_ledger
from tests.ledger_worker import BUDGET, CAP, PRICES

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 8
CALLS = 200


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[SpendLedger, str]]:
    gen = make_ledger(request.param, tmp_path)
    yield next(gen)
    for _ in gen:
        pass


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    env["ACO_CACHE_DIR"] = str(tmp_path / "no-local-model")  # tier 1 is not running
    env.pop("ACO_LEDGER_URL", None)
    return env


def _worker(url: str, base_url: str, run: str, tmp_path: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.ledger_worker", url, base_url, str(CALLS), run, *extra],
        cwd=ROOT,
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _billed_usd(billed: list[tuple[str, int, int]]) -> float:
    total = 0.0
    for model, prompt, completion in billed:
        p_in, p_out = PRICES[int(model.removeprefix("loop-t"))]
        total += (prompt * p_in + completion * p_out) / 1000
    return total


def test_eight_processes_never_overspend_one_run_budget(
    shared: tuple[SpendLedger, str], tmp_path: Path
) -> None:
    ledger, url = shared
    with BillingServer(words=2000, fail_every=7) as srv:
        procs = [_worker(url, srv.base_url, "shared-run", tmp_path) for _ in range(WORKERS)]
        outs = []
        for p in procs:
            stdout, stderr = p.communicate(timeout=600)
            assert p.returncode == 0, stderr[-2000:]
            outs.append(json.loads(stdout.strip().splitlines()[-1]))
        billed = srv.billed()
    billed_usd = _billed_usd(billed)
    assert billed_usd <= BUDGET  # what the provider charged never passes the budget
    assert billed_usd >= 0.9 * BUDGET  # and the budget was used, not refused wholesale
    rows = [r for r in ledger.records(run="shared-run")]
    assert len(rows) == len(billed)  # one row per billed call
    assert sum(r.cost_usd for r in rows) == pytest.approx(billed_usd, rel=1e-9)
    assert max(r.output_tokens for r in rows) <= CAP  # the cap was sent and honoured
    assert ledger.spent("shared-run") == pytest.approx(billed_usd, rel=1e-9)
    usage = ledger.usage("run:shared-run")
    assert usage.held_usd == pytest.approx(0.0, abs=1e-9)  # every hold settled or released
    answered = sum(o["answered"] for o in outs)
    assert answered == len(billed) and sum(o["streams"] for o in outs) > 0
    assert sum(o["refused"] for o in outs) > 0  # the budget did stop calls
    assert {r.tier for r in rows} >= {4}  # (and fallbacks on the injected 500s)


def test_a_worker_killed_mid_call_is_charged_its_worst_case_and_keeps_its_spend(
    shared: tuple[SpendLedger, str], tmp_path: Path
) -> None:
    ledger, url = shared
    with BillingServer(words=50, hang_s=60) as srv:
        proc = _worker(url, srv.base_url, "killed-run", tmp_path, "hang")
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 30
        while (held := ledger.usage("run:killed-run").held_usd) <= 0:  # the hanging call
            assert time.monotonic() < deadline, "the worker never held its call"
            time.sleep(0.05)
        spent_before = ledger.spent("killed-run")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert spent_before > 0 and len(ledger.records(run="killed-run")) == 2
    assert ledger.usage("run:killed-run").held_usd > 0  # still held right after the kill
    time.sleep(2.5)  # the worker's holds expire after hold_ttl_s = 2 s
    u = ledger.usage("run:killed-run")  # reconciles: the owner process is gone
    assert u.held_usd == pytest.approx(0.0, abs=1e-9)
    # The dead worker's call may have been billed upstream: it is settled at its worst case,
    # never released, and a row says so.
    assert ledger.spent("killed-run") == pytest.approx(spent_before + held)
    orphan = ledger.records(run="killed-run")[-1]
    assert orphan.outcome == "orphaned" and orphan.cost_usd == pytest.approx(held)
    assert orphan.trace_id  # the hold's owner label: the call's trace id
    rest = BUDGET - spent_before - held
    assert isinstance(ledger.hold([Limit("run:killed-run", usd=BUDGET)], rest), Hold)
    assert not isinstance(
        ledger.hold([Limit("run:killed-run", usd=BUDGET)], 0.01), Hold
    )  # and no more than that
