"""The calibrated run policy, live: step caps per model stop a run (doom), and the run
ladder escalates a capped or rejected run to the next model."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableLambda

from aco_langchain import create_aco_agent
from aco_langchain.agent.run_ladder import invoke_ladder, judge_run, next_rung
from aco_langchain.config import ACOConfig
from aco_langchain.errors import ConfigError
from aco_langchain.testing import ScriptedChatModel
from tests.unit_tests.agent_helpers import call, read_file


def _agent(events: list[dict[str, Any]]) -> RunnableLambda:
    return RunnableLambda(lambda _inputs: {"messages": [], "aco_events": events})


def test_judge_run_and_next_rung() -> None:
    capped = judge_run([{"type": "stop", "kind": "step_limit", "reason": "3 steps"}], False)
    assert capped.stopped_by_cap and not capped.accepted
    assert not judge_run([{"type": "verifier", "passed": False}], False).accepted
    assert judge_run([{"type": "verifier", "passed": True}], True).accepted
    unverified = judge_run([{"type": "model"}], True)
    assert not unverified.accepted and "not verified" in unverified.reason
    assert judge_run([{"type": "model"}], False).accepted
    assert next_rung(["a", "b"], "a", capped) == "b"
    assert next_rung(["a", "b"], "b", capped) is None


def test_invoke_ladder_escalates_until_a_run_is_accepted() -> None:
    cfg = ACOConfig(
        agent={"escalation_ladder": ["cheap", "mid", "strong"], "require_verified": True}
    )
    agents = {
        "cheap": _agent([{"type": "stop", "kind": "step_limit", "reason": "cap"}]),
        "mid": _agent([{"type": "verifier", "passed": True}]),
        "strong": _agent([]),
    }
    out = invoke_ladder(agents, {"messages": []}, config=cfg)
    assert out.model == "mid" and out.accepted
    assert [a.model for a in out.attempts] == ["cheap", "mid"]
    with pytest.raises(ConfigError, match="no agent was given"):
        invoke_ladder({"cheap": agents["cheap"]}, {}, config=cfg)
    with pytest.raises(ConfigError, match="--write-config"):
        invoke_ladder(agents, {}, config=ACOConfig())


def test_a_models_step_cap_stops_its_run() -> None:
    looping = ScriptedChatModel(
        model="fake", script=[call("read_file", {"path": f"f{i}"}, f"c{i}") for i in range(9)]
    )
    tiers = dict.fromkeys(range(1, 6), looping)
    base = ACOConfig(router="rules")
    cfg = ACOConfig(
        router="rules", agent={"step_caps": {m.model_id: 2 for m in base.models.values()}}
    )
    out = create_aco_agent(cfg, [read_file], tier_models=tiers, verify_answers=False).invoke(
        {"messages": [HumanMessage("Fix the parse bug in utils.py")]}
    )
    stop = next(e for e in out["aco_events"] if e["type"] == "stop")
    assert stop["kind"] == "step_limit" and "agent.step_caps[" in stop["reason"]
    assert sum(e["type"] == "model" for e in out["aco_events"]) == 2
