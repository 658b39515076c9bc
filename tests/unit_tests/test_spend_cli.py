"""``aco spend`` reads the same ledger the models write (a real SQLite file)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aco_langchain import ACORouterChatModel
from aco_langchain.cli import app
from aco_langchain.routing import RuleRouter
from aco_langchain.spend.ledger import open_ledger
from aco_langchain.testing import ScriptedChatModel


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    tiers = {n: ScriptedChatModel(script=["a fine answer"], model=f"t{n}") for n in range(1, 6)}
    llm = ACORouterChatModel(tier_models=tiers, router=RuleRouter(), ledger=open_ledger(url))
    for tier, run in ((1, "a"), (2, "a"), (4, "b")):
        llm.invoke("hello there", force_tier=tier, aco_run_id=run)
    assert llm.spent("a") > 0
    return url


def _spend(*args: str) -> dict:
    res = CliRunner().invoke(app, ["spend", "--json", *args])
    assert res.exit_code == 0, res.stdout
    return json.loads(res.stdout)


def test_totals_and_savings_vs_the_baseline(url: str) -> None:
    out = _spend("--ledger", url)
    assert out["calls"] == 3 and out["total_usd"] > 0
    assert out["baseline"]["tier"] == 4
    # 2 of 3 calls were cheaper than tier 4 for the same tokens; the tier-4 one saved nothing
    assert out["savings_usd"] == pytest.approx(out["baseline_usd"] - out["total_usd"])
    assert out["savings_usd"] > 0


def test_filters_and_groups(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACO_LEDGER_URL", url)  # the env var finds the same ledger
    by_tier = _spend("--by", "tier")
    assert [g["key"] for g in by_tier["groups"]] == ["1", "2", "4"]
    run_a = _spend("--run", "a")
    assert run_a["calls"] == 2
    this_month = time.strftime("%Y-%m", time.gmtime())
    assert _spend("--month", this_month)["calls"] == 3
    assert _spend("--month", "2001-01")["calls"] == 0
    assert [g["key"] for g in _spend("--by", "run")["groups"]] == ["a", "b"]
    text = CliRunner().invoke(app, ["spend", "--by", "model"])
    assert "Total spend:" in text.stdout and "Savings vs gpt-4.1" in text.stdout


def test_bad_input_is_one_line(url: str) -> None:
    res = CliRunner().invoke(app, ["spend", "--ledger", url, "--month", "12-2026", "--json"])
    assert res.exit_code == 1 and "YYYY-MM" in res.stdout
    res = CliRunner().invoke(app, ["spend", "--ledger", url, "--by", "week", "--json"])
    assert res.exit_code == 1 and "tier, model, run, day" in res.stdout
    res = CliRunner().invoke(app, ["spend", "--ledger", "ftp://x", "--json"])
    assert res.exit_code == 1 and "unknown scheme 'ftp'" in res.stdout
