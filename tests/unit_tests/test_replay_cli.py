"""``aco replay``: its figures equal a recomputation from --choices-out and the recording."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from aco_langchain.cli import app
from aco_langchain.config import load_config
from aco_langchain.replay.recording import open_recording
from aco_langchain.replay.sample import SAMPLE_CONFIG, SAMPLE_CSV, sample_config

ROOT = Path(__file__).resolve().parents[2]
N = 40


def _replay(*args: str) -> dict:
    res = CliRunner().invoke(app, ["replay", "--json", *args])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, list[dict]]:
    out = tmp_path_factory.mktemp("replay") / "choices.jsonl"
    rep = _replay("--data", str(SAMPLE_CSV), "--limit", str(N), "--choices-out", str(out))
    return rep, [json.loads(line) for line in out.read_text().splitlines()]


def test_figures_equal_a_recomputation_from_the_choices(run: tuple[dict, list[dict]]) -> None:
    rep, choices = run
    assert rep["n"] == len(choices) == N
    assert {"id", "tier", "model", "cost_usd", "correct"} <= set(choices[0])
    prompts = {p.id: p for p in open_recording(SAMPLE_CSV).prompts()}
    for c in choices:  # each row is the recorded answer of the model that answered
        ans = prompts[c["id"]].answers[c["model"]]
        assert c["cost_usd"] == pytest.approx(ans.cost_usd)
        assert c["correct"] == ans.correct
        assert rep["tiers"][str(c["tier"])]["model"] == c["model"]
    assert rep["accuracy"] == pytest.approx(sum(c["correct"] for c in choices) / N)
    total = sum(c["cost_usd"] for c in choices)
    assert rep["cost_usd_mean"] == pytest.approx(total / N)
    assert rep["ledger_total_usd"] == pytest.approx(total, rel=1e-9)  # ledger = per-prompt sum
    ids = [c["id"] for c in choices]
    for tier, m in rep["tiers"].items():
        answers = [prompts[i].answers[m["model"]] for i in ids]
        assert m["accuracy"] == pytest.approx(sum(a.correct for a in answers) / N)
        assert m["cost_usd_mean"] == pytest.approx(sum(a.cost_usd for a in answers) / N)
        assert sample_config().tier(int(tier)).model == m["model"]


def test_the_oracle_is_the_cheapest_right_tier(run: tuple[dict, list[dict]]) -> None:
    rep, choices = run
    prompts = {p.id: p for p in open_recording(SAMPLE_CSV).prompts()}
    models = [m["model"] for m in rep["tiers"].values()]
    ok = cost = 0.0
    for c in choices:
        answers = [prompts[c["id"]].answers[m] for m in models]
        right = [a for a in answers if a.correct]
        best = min(right or answers, key=lambda a: a.cost_usd)
        ok += best.correct
        cost += best.cost_usd
    assert rep["oracle"]["accuracy"] == pytest.approx(ok / N)
    assert rep["oracle"]["cost_usd_mean"] == pytest.approx(cost / N)
    assert rep["oracle"]["cost_usd_mean"] <= rep["cost_usd_mean"] + 1e-12


def test_a_ledger_url_keeps_the_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    rep = _replay("--limit", "5", "--ledger", url)
    res = CliRunner().invoke(app, ["spend", "--json", "--ledger", url])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["total_usd"] == pytest.approx(rep["ledger_total_usd"])


def test_examples_config_is_the_shipped_one() -> None:
    example = load_config(ROOT / "examples" / "replay-config.yaml")
    shipped = load_config(SAMPLE_CONFIG)
    assert example.models == shipped.models
    assert example.routing == shipped.routing
    assert example.task_floors == shipped.task_floors
    raw = yaml.safe_load((ROOT / "examples" / "replay-config.yaml").read_text())
    assert (ROOT / raw["router_model_path"]).is_dir()


def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["replay", "--data", str(tmp_path / "missing.csv")])
    assert res.exit_code != 0
    assert "missing.csv" in res.output and "Traceback" not in res.output
    cfg = tmp_path / "c.yaml"
    cfg.write_text("router: rules\n")
    res = CliRunner().invoke(app, ["replay", "--config", str(cfg)])
    assert res.exit_code != 0 and "no replay tier" in res.output
