"""Seed 3's strategies as graphs, and the classify-and-dispatch graph."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from aco_langchain.config import ACOConfig
from aco_langchain.integrations.langgraph import (
    create_complex_graph,
    create_critical_graph,
    create_moderate_graph,
    create_simple_graph,
    create_strategy_graph,
)
from aco_langchain.testing import ScriptedChatModel
from aco_langchain.tracing.callback import ACOTraceCallbackHandler

CFG = ACOConfig(router="rules")


def role_of(messages: list[BaseMessage]) -> str:
    system = str(messages[0].content)
    prefixes = {
        "You are the research": "research",
        "You are the coding": "coding",
        "You are the review": "review",
        "Merge": "Merge",
        "You are a critic": "critic",
        "Write the final": "final",
        "Write a short numbered plan": "plan",
        "Carry out": "Carry",
    }
    return next((role for p, role in prefixes.items() if system.startswith(p)), "answer")


def echo_tiers(critic: str = "APPROVE\nfine") -> dict[int, ScriptedChatModel]:
    """Each tier answers '<role> from t<n>' (critics answer ``critic``)."""

    def script(n: int) -> Any:
        def answer(messages: list[BaseMessage]) -> str:
            role = role_of(messages)
            return critic if role == "critic" else f"{role} from t{n}"

        return answer

    return {n: ScriptedChatModel(model=f"fake-t{n}", script=[script(n)]) for n in range(1, 6)}


def test_simple_is_one_routed_call() -> None:
    t = echo_tiers()
    out = create_simple_graph(CFG, tier_models=t).invoke({"task": "What is 2+2?"})
    assert out["strategy"] == "simple"
    assert len(out["aco_events"]) == 1 and out["aco_events"][0]["tier"] == 1
    assert out["answer"] == "answer from t1"


def test_moderate_plans_then_executes() -> None:
    t = echo_tiers()
    out = create_moderate_graph(CFG, tier_models=t).invoke({"task": "Write a CSV parser"})
    assert out["plan"] == "plan from t3"
    assert out["answer"] == "Carry from t2"
    assert [e["role"] for e in out["aco_events"]] == ["planner", "executor"]
    assert "plan from t3" in str(t[2].calls[0][-1].content)  # the executor saw the plan


async def test_complex_runs_specialists_in_parallel_then_merges() -> None:
    t = echo_tiers()
    graph = create_complex_graph(CFG, tier_models=t, role_tiers={"review": 3})
    out = await graph.ainvoke({"task": "Compare three cache designs"})
    assert sorted(o["role"] for o in out["outputs"]) == ["code", "research", "review"]
    assert all(o["tier"] == 3 for o in out["outputs"])
    assert out["answer"] == "Merge from t4"
    merge_prompt = str(t[4].calls[0][-1].content)
    assert "[research]" in merge_prompt and "[review]" in merge_prompt


def test_critical_with_critics_and_human_approval() -> None:
    t = echo_tiers()
    graph = create_critical_graph(
        CFG, tier_models=t, critics=3, human_approval=True, checkpointer=InMemorySaver()
    )
    conf = {"configurable": {"thread_id": "c1"}}
    out = graph.invoke({"task": "Rotate the production database credentials"}, conf)
    payload = out["__interrupt__"][0].value
    assert payload["draft"] == "Merge from t4" and len(payload["critiques"]) == 3
    out = graph.invoke(Command(resume=True), conf)
    assert out["approved"] is True and out["answer"] == "final from t5"
    roles = [e["role"] for e in out["aco_events"]]
    assert roles.count("critic-1") == 1 and roles.count("critic-3") == 1
    assert roles[-1] == "final"


def test_critical_rejected_by_critics() -> None:
    t = echo_tiers(critic="REJECT\nno rollback plan")
    out = create_critical_graph(CFG, tier_models=t).invoke({"task": "Delete the old backups"})
    assert out["approved"] is False
    assert out["answer"].startswith("Not released") and "no rollback plan" in out["answer"]


@pytest.mark.parametrize(
    ("task", "strategy"),
    [
        ("What is 2+2?", "simple"),
        ("Write a function that parses ISO dates and handles time zones", "moderate"),
        ("Research and compare three vector databases", "complex"),
        ("Deploy the payment service to production", "critical"),
    ],
)
def test_dispatch_picks_the_strategy(task: str, strategy: str) -> None:
    out = create_strategy_graph(CFG, tier_models=echo_tiers()).invoke({"task": task})
    assert out["complexity"] == strategy and out["strategy"] == strategy
    assert out["answer"]


def test_dispatch_traces_every_call() -> None:
    h = ACOTraceCallbackHandler(config=CFG)
    graph = create_strategy_graph(CFG, tier_models=echo_tiers())
    out = graph.invoke({"task": "Research and compare three vector databases"}, {"callbacks": [h]})
    tr = h.traces[0]
    assert tr.request == "Research and compare three vector databases"
    assert len(tr.steps) == len(out["aco_events"]) == 4
    assert tr.total_cost == pytest.approx(sum(e["cost"] for e in out["aco_events"]))


def test_bad_input_and_settings() -> None:
    with pytest.raises(ValueError, match="task"):
        create_strategy_graph(CFG, tier_models=echo_tiers()).invoke({"task": " "})
    with pytest.raises(ValueError, match="critics"):
        create_critical_graph(CFG, tier_models=echo_tiers(), critics=0)
    with pytest.raises(ValueError, match="role_tiers"):
        create_simple_graph(CFG, tier_models=echo_tiers(), role_tiers={"answer": 7})


def test_a_role_whose_tier_is_unavailable_lets_the_router_decide() -> None:
    """No API keys: tiers 2-5 are unavailable, so every role runs where the router sends it
    (tier 1) instead of failing on its forced tier (roles prefer a tier, they do not need it)."""
    only_local = {1: echo_tiers()[1]}
    out = create_critical_graph(CFG, tier_models=only_local).invoke(
        {"task": "Summarize the release notes"}
    )
    assert out["answer"] == "final from t1"
    models = [e for e in out["aco_events"] if e["type"] == "model"]
    assert models and all(e["tier"] == 1 for e in models)
    assert all("no OPENAI_API_KEY" in e["reason"] for e in models if e["role"] != "answer")
    assert any(e["reason"].startswith("role tier ") for e in models)


def test_critics_are_traced_as_verifier_calls_with_their_verdicts() -> None:
    h = ACOTraceCallbackHandler(config=CFG)
    graph = create_critical_graph(CFG, tier_models=echo_tiers(critic="REJECT\nno rollback"))
    out = graph.invoke({"task": "Delete the old backups"}, {"callbacks": [h]})
    tr = h.traces[0]
    verified = [s for s in tr.steps if s.verifier_called]
    assert verified and verified[-1].verifier_verdicts == [False, False]
    assert tr.verified is False and tr.task_success is not True
    critic_cost = sum(e["cost"] for e in out["aco_events"] if e["role"].startswith("critic"))
    assert sum(s.verifier_cost for s in tr.steps) == pytest.approx(critic_cost)
    assert tr.total_cost == pytest.approx(sum(e["cost"] for e in out["aco_events"]))
