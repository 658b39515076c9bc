"""No key leaves the process: every file and stream a run wrote is grepped for it.

The key has no well-known shape (no ``sk-``): only the configured ``api_key_env`` says it is a
secret. Cloud tiers are loopback fakes (tests/fault_server.py) whose 401 echoes the key, as
some providers do.
"""

from __future__ import annotations

import json
import logging
import traceback
import uuid
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from typer.testing import CliRunner

from aco_langchain import ACORouterChatModel
from aco_langchain.cli import app
from aco_langchain.config import ACOConfig, config_from_dict
from aco_langchain.errors import AllTiersFailedError
from aco_langchain.integrations.langgraph import create_aco_agent
from aco_langchain.routing import RuleRouter
from aco_langchain.testing import ScriptedChatModel
from aco_langchain.tracing.callback import ACOTraceCallbackHandler
from tests.fault_server import FaultServer
from tests.settings import NO_WAIT

ENV = "ACME_PROVIDER_CRED"


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    value = f"zq{uuid.uuid4().hex}"
    monkeypatch.setenv(ENV, value)
    return value


def _all_text(root: Path) -> str:
    return "\n".join(
        p.read_bytes().decode("utf-8", "replace") for p in root.rglob("*") if p.is_file()
    )


def test_a_run_writes_the_key_nowhere(
    key: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    servers = {n: FaultServer(default="401").start() for n in (2, 3, 4)}
    try:
        models = {
            f"tier{n}": {
                "model_id": f"t{n}",
                "provider": "openai-compatible",
                "base_url": srv.base_url,
                "api_key_env": ENV,
                "cost_per_1k_input": 0.1,
                "cost_per_1k_output": 0.1,
            }
            for n, srv in servers.items()
        }
        cfg = config_from_dict(
            {
                "routing": {"max_retries": 0, "max_latency_per_call_s": 5, **NO_WAIT},
                "models": models,
            }
        )
        llm = ACORouterChatModel(config=cfg, router=RuleRouter())
        handler = ACOTraceCallbackHandler(str(tmp_path / "traces.jsonl"))
        with pytest.raises(AllTiersFailedError) as info:
            llm.invoke("hi", force_tier=2, config={"callbacks": [handler]})
        err = info.value
        seen = [
            str(err),
            repr(err.failures),
            "".join(traceback.format_exception(err)),
            *(repr(e) for e in err.exceptions.values()),
        ]
        servers[4].push("ok")  # now tier 4 answers after the 401s of tiers 2 and 3
        msg = llm.invoke("hi", force_tier=2, config={"callbacks": [handler]})
        assert msg.response_metadata["aco"]["tier"] == 4
        seen.append(json.dumps(msg.response_metadata, default=str))
    finally:
        for s in servers.values():
            s.stop()
    out, errs = capfd.readouterr()
    logs = "\n".join(r.getMessage() for r in caplog.records)
    assert "Incorrect API key provided" in seen[0]  # the provider's words are kept...
    assert (tmp_path / "traces.jsonl").is_file()
    for text in [*seen, out, errs, logs, _all_text(tmp_path)]:
        assert key not in text  # ...the key is not


@tool
def fetch(url: str) -> str:
    """Fetch a URL."""
    raise RuntimeError(f"401 from {url}: token {_KEY_HOLDER[0]} rejected")


_KEY_HOLDER: list[str] = [""]


def test_tool_error_with_a_key_is_masked_in_the_trace(key: str, tmp_path: Path) -> None:
    _KEY_HOLDER[0] = key
    cfg = ACOConfig(router="rules")
    cfg.models["tier2"] = cfg.models["tier2"].model_copy(update={"api_key_env": ENV})
    call = AIMessage("", tool_calls=[{"name": "fetch", "args": {"url": "https://x"}, "id": "c1"}])
    tiers = {n: ScriptedChatModel(script=[call, "done"]) for n in range(1, 6)}
    trace_file = tmp_path / "t.jsonl"
    graph = create_aco_agent(cfg, [fetch], tier_models=tiers, verify_answers=False)
    graph.invoke(
        {"messages": [HumanMessage("fetch it")]},
        config={"callbacks": [ACOTraceCallbackHandler(str(trace_file))]},
    )
    text = trace_file.read_text()
    assert "rejected" in text  # the tool error is traced...
    assert key not in text  # ...without the key


def test_cli_output_never_shows_the_key(key: str, tmp_path: Path) -> None:
    # A key carried in a base_url query string, as some gateways want it.
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "router: rules\nmodels:\n  tier3:\n"
        f"    base_url: https://gw.example/v1?key={key}\n    api_key_env: {ENV}\n"
    )
    for args in (["config", "show", "--config", str(cfg)], ["config", "validate", str(cfg)]):
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 0, res.output
        assert key not in res.output
    assert "gw.example" in CliRunner().invoke(app, ["config", "show", "--config", str(cfg)]).output
