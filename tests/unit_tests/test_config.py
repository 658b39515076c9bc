from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from aco_langchain.cli import app
from aco_langchain.config import ACOConfig, config_from_dict, load_config
from aco_langchain.errors import ConfigError


def test_defaults_are_the_seed_table() -> None:
    cfg = ACOConfig()
    assert [cfg.tier(n).model_id for n in range(1, 6)] == [
        "tiny-local-3b",
        "cheap-cloud-8b",
        "medium-70b",
        "frontier-latest",
        "specialist-expert",
    ]
    assert cfg.routing.safety_threshold == 0.30
    assert cfg.routing.downgrade_threshold == 0.90
    assert cfg.routing.max_retries == 3
    assert cfg.routing.max_cost_per_task == 5.0
    assert cfg.task_floors == {
        "legal_regulated": 4,
        "long_horizon": 3,
        "coding": 3,
        "quick_answer": 1,
    }
    assert cfg.tier(1).is_local and cfg.tier(1).cost_per_1k_input == 0.0


def test_seed_config_yaml_loads_and_merges_partial_tiers(tmp_path) -> None:
    seed = {
        "routing": {
            "safety_threshold": 0.3,
            "downgrade_threshold": 0.9,
            "max_retries": 3,
            "max_cost_per_task": 5.0,
        },
        "models": {
            "tier1": {
                "model_id": "tiny-local-3b",
                "provider": "local",
                "cost_per_1k_input": 0.0,
                "cost_per_1k_output": 0.0,
            },
            "tier4": {
                "model_id": "frontier-latest",
                "provider": "cloud",
                "cost_per_1k_input": 1.0,
                "cost_per_1k_output": 3.0,
            },
        },
        "task_floors": {"legal_regulated": 4, "long_horizon": 3, "coding": 3, "quick_answer": 1},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(seed))
    cfg = load_config(path)
    assert cfg.tier(4).provider == "cloud" and cfg.tier(4).cost_per_1k_output == 3.0
    assert cfg.tier(2).model_id == "cheap-cloud-8b"  # untouched tiers keep defaults
    assert cfg.tier(1).is_local  # provider local implies is_local


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"routing": {"safety_threshold": 1.5}}, "routing.safety_threshold"),
        ({"routing": {"bogus": 1}}, "routing.bogus: unknown key"),
        ({"models": {"tier9": {"model_id": "x"}}}, "unknown tier 'tier9'"),
        ({"models": {"tier2": {"model_id": "x", "cost_per_1k_input": -1}}}, "cost_per_1k_input"),
        ({"task_floors": {"coding": 7}}, "unknown tier 7"),
        ({"task_floors": {"gardening": 2}}, "unknown task 'gardening'"),
        ({"surprise": True}, "surprise: unknown key"),
    ],
)
def test_bad_config_names_the_field(data: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict(data)
    assert needle in str(info.value)


def test_missing_file_and_bad_yaml(tmp_path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("routing: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_cli_validate_and_show(tmp_path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("routing:\n  max_cost_per_task: 2.0\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("routing:\n  safety_threshold: 2\n")
    runner = CliRunner()
    ok = runner.invoke(app, ["config", "validate", str(good)])
    assert ok.exit_code == 0 and "ok" in ok.output
    res = runner.invoke(app, ["config", "validate", str(bad), "--json"])
    assert res.exit_code == 1
    assert "routing.safety_threshold" in res.output and "Traceback" not in res.output
    shown = runner.invoke(app, ["config", "show", "--config", str(good), "--json"])
    assert shown.exit_code == 0 and '"max_cost_per_task": 2.0' in shown.output
