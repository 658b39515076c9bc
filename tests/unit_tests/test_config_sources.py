"""`aco config show --sources`: each effective value and where it came from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aco_langchain.cli.main import app
from aco_langchain.config_sources import setting_sources

runner = CliRunner()


def _file(tmp_path: Path) -> Path:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        "routing:\n  max_cost_per_task: 2.0\n"
        "models:\n  tier4:\n    cost_per_1k_input: 1.0\n    cost_per_1k_output: 3.0\n"
        "ledger:\n  url: sqlite:///from-file.db\n"
    )
    return cfg


def test_file_env_and_default_sources(tmp_path: Path) -> None:
    cfg = _file(tmp_path)
    rows = {s.key: s for s in setting_sources(str(cfg), env={"ACO_CACHE_DIR": "/c"})}
    assert rows["routing.max_cost_per_task"].value == 2.0
    assert rows["routing.max_cost_per_task"].source == f"file {cfg}"
    assert rows["models.tier4.cost_per_1k_output"].source == f"file {cfg}"
    assert rows["models.tier4.model"].source == "default"  # the tier's unnamed fields
    assert rows["routing.prefer_local"].source == "default"
    assert (rows["local_model.cache_dir"].value, rows["local_model.cache_dir"].source) == (
        "/c", "env ACO_CACHE_DIR",
    )  # fmt: skip
    assert rows["ledger.url"].source == f"file {cfg}"


def test_the_ledger_env_wins_over_the_file(tmp_path: Path) -> None:
    env = {"ACO_LEDGER_URL": "memory://", "ACO_CONFIG": str(_file(tmp_path))}
    rows = {s.key: s for s in setting_sources(env=env)}
    assert (rows["ledger.url"].value, rows["ledger.url"].source) == (
        "memory://", "env ACO_LEDGER_URL",
    )  # fmt: skip
    assert rows["routing.max_cost_per_task"].value == 2.0  # $ACO_CONFIG was read


def test_cli_prints_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACO_SERVER_API_KEYS", "sk-plain-secret-key-1234")
    cfg = _file(tmp_path)
    res = runner.invoke(app, ["config", "show", "--sources", "--json", "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    rows = {r["key"]: r for r in json.loads(res.output)}
    assert rows["routing.max_cost_per_task"]["source"] == f"file {cfg}"
    assert rows["server.api_keys (env)"]["value"] == "1 plain key(s), not shown"
    assert "sk-plain-secret-key-1234" not in res.output
    text = runner.invoke(app, ["config", "show", "--sources", "--config", str(cfg)]).output
    assert "routing.max_cost_per_task" in text and f"(file {cfg})" in text


def test_cli_sources_of_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    res = runner.invoke(app, ["config", "show", "--sources", "--config", str(tmp_path / "x")])
    assert res.exit_code != 0 and "no such config file" in res.output
    assert "Traceback" not in res.output
