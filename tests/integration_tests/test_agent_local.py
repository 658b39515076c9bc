"""Agent loops with the real local tier (llama.cpp) as tier 1; the other tiers scripted."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool

from aco_langchain.config import ACOConfig
from aco_langchain.providers import local as lm
from aco_langchain.testing import ScriptedChatModel

pytestmark = pytest.mark.local_model


@tool
def read_log(job: str) -> str:
    """Read a job's log."""
    return "ERROR: connection to reports-db timed out"


def _local(info: lm.ServerInfo):  # type: ignore[no-untyped-def]
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        base_url=info.base_url,
        api_key="local",
        model=lm.MODEL_ALIAS,
        temperature=0.0,
        max_retries=0,
        timeout=60,
        logprobs=True,
        extra_body={"max_tokens": 32},
    )


def _tiers(info: lm.ServerInfo) -> dict[int, object]:
    tiers: dict[int, object] = {
        n: ScriptedChatModel(model=f"fake-t{n}", script=["PASS\nok"]) for n in range(2, 6)
    }
    tiers[1] = _local(info)
    return tiers


def test_agent_step_answered_by_the_local_tier(local_server: lm.ServerInfo) -> None:
    from aco_langchain.integrations.langgraph import create_aco_agent
    from aco_langchain.tracing.callback import ACOTraceCallbackHandler

    # The router sends its output cap to the tier (routing.max_output_tokens replaces the
    # tier's own max_tokens): keep the 135M model's answer short.
    cfg = ACOConfig(router="rules", routing={"max_output_tokens": 32})
    handler = ACOTraceCallbackHandler(config=cfg)
    graph = create_aco_agent(
        cfg,
        [read_log],
        tier_models=_tiers(local_server),  # type: ignore[arg-type]
        tool_tiers={2, 3, 4, 5},
        toolless_tiers="text",
        max_escalations=0,
        task_risk="low",
    )
    out = graph.invoke(
        {"messages": [HumanMessage("What is the capital of France?")]}, {"callbacks": [handler]}
    )
    step = next(e for e in out["aco_events"] if e["type"] == "model")
    assert step["tier"] == 1 and step["model_id"] == "tiny-local-3b"
    assert "answers in text" in step["reason"]
    answer = next(m for m in out["messages"] if m.type == "ai")
    assert str(answer.content).strip()
    assert answer.response_metadata["aco"]["tier"] == 1
    assert answer.usage_metadata and answer.usage_metadata["output_tokens"] > 0
    trace = handler.traces[0]
    call = trace.steps[0].model_call
    assert call.tier == 1 and call.output_tokens > 0 and call.cost == 0.0
    assert trace.final_outcome in ("completed", "failed")


async def test_async_agent_with_the_local_tier(local_server: lm.ServerInfo) -> None:
    from aco_langchain.integrations.langgraph import create_aco_agent

    graph = create_aco_agent(
        ACOConfig(router="rules", routing={"max_output_tokens": 32}),
        [],
        tier_models=_tiers(local_server),  # type: ignore[arg-type]
        max_escalations=0,
        verify_answers=False,
    )
    out = await graph.ainvoke({"messages": [HumanMessage("Say hello.")]})
    step = next(e for e in out["aco_events"] if e["type"] == "model")
    assert step["tier"] == 1
    assert str(out["messages"][-1].content).strip()


def test_demo_agent_with_the_local_tier(
    local_server: lm.ServerInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both demo runs on the real tiers (no keys: every step is the local model)."""
    from rich.console import Console

    from aco_langchain.tracing import read_traces
    from tests.examples import load_example

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    console = Console(record=True, width=200)
    load_example("demo_agent").run_demo_agent(tmp_path / "t.jsonl", console)
    res = read_traces(tmp_path / "t.jsonl")
    assert len(res.traces) == 2 and not res.problems
    assert all(s.model_call.tier == 1 for t in res.traces for s in t.steps if s.model_call)
    text = console.export_text()
    assert "local model not running" not in text and "scripted" not in text
    assert text.count("final (") == 2
    assert "(unavailable: no OPENAI_API_KEY)" in text
