"""``/route`` and ``aco route`` give the decision whatever the tiers' availability."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aco_langchain.cli import app
from aco_langchain.config import config_from_dict


def test_server_route_decides_with_no_tier_up(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from aco_langchain.server import create_app

    cfg = config_from_dict({"ledger": {"url": f"sqlite:///{tmp_path / 'l.db'}"}})
    client = TestClient(create_app(cfg, allow_unauthenticated=True))
    r = client.post("/route", json={"prompt": "Fix the auth bug in production"})
    assert r.status_code == 200, r.text  # not 503: no model is called
    body = r.json()
    assert body["tier"] in range(1, 6) and body["chosen_model"] == cfg.tier(body["tier"]).model_id
    assert "OPENAI_API_KEY" in body["unavailable"][str(body["tier"])]
    assert "1" in body["unavailable"]  # no local server in the test: said, with why


def test_cli_route_says_every_tier_that_is_down() -> None:
    res = CliRunner().invoke(app, ["route", "Fix the auth bug in production"])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("→ tier=")
    assert "tier 1: local model not running" in res.output
    out = json.loads(CliRunner().invoke(app, ["route", "--json", "What is 2+2?"]).output)
    assert out["tier"] in range(1, 6) and out["unavailable"]["1"].startswith("local model")
