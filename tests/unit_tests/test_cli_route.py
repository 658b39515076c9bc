from __future__ import annotations

import json

from typer.testing import CliRunner

from aco_langchain.cli import app

runner = CliRunner()


def test_route_seed_examples(tmp_path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("router: rules\n")
    out = runner.invoke(app, ["route", "Fix the auth bug in production", "--config", str(cfg)])
    assert out.exit_code == 0, out.output
    assert "tier=5" in out.output and "specialist-expert" in out.output
    res = runner.invoke(app, ["route", "What is 2+2?", "--json", "--config", str(cfg)])
    data = json.loads(res.output)
    assert data["tier"] <= 2
    assert {
        "tier",
        "model_id",
        "confidence",
        "cost_estimate",
        "task_type",
        "difficulty",
        "reason",
    } <= set(data)
    # no keys, no local server: the output says what a call would do now
    assert data["unavailable"]["2"] == "no OPENAI_API_KEY"


def test_route_default_router_works() -> None:
    res = runner.invoke(app, ["route", "What is 2+2?", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["tier"] in {1, 2, 3, 4, 5}


def test_route_bad_input_is_one_clean_error() -> None:
    for args, needle in [
        (["route", "  "], "prompt is empty"),
        (["route", "x", "--risk", "extreme"], "--risk"),
        (["route", "x", "--task-type", "gardening"], "--task-type"),
        (["route", "x", "--config", "/nonexistent.yaml"], "no such config file"),
    ]:
        res = runner.invoke(app, args)
        assert res.exit_code == 1, args
        assert needle in res.output and "Traceback" not in res.output


def test_version() -> None:
    res = runner.invoke(app, ["version", "--json"])
    assert res.exit_code == 0 and "version" in json.loads(res.output)
