"""create_aco_agent: whole agent loops offline with scripted tiers (tool calls included)."""

from __future__ import annotations

import os
from typing import Annotated, Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import InjectedToolCallId, tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.prebuilt import InjectedState
from langgraph.types import Command

from aco_langchain.config import ACOConfig
from aco_langchain.integrations.langgraph import create_aco_agent, open_checkpointer
from aco_langchain.testing import ScriptedChatModel
from aco_langchain.tracing.callback import VERIFIER_TAG
from tests.prices import config_at_seed_prices

TASK = "Fix the parse bug in utils.py"


def call(name: str, args: dict[str, Any], cid: str) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": cid}])


@tool
def read_file(path: str) -> str:
    """Read a file of the repository."""
    return f"contents of {path}: def parse(d): return d.split('-')"


@tool
def run_tests(target: str) -> str:
    """Run the test suite on a target."""
    raise RuntimeError(f"3 tests failed in {target}")


@tool
def deploy_service(name: str) -> str:
    """Deploy a service to production."""
    return f"{name} deployed"


def tiers(**scripts: list[Any]) -> dict[int, ScriptedChatModel]:
    """Five scripted tiers; ``t3=[...]`` overrides tier 3's script."""
    out = {n: ScriptedChatModel(model=f"fake-t{n}", script=[f"answer t{n}"]) for n in range(1, 6)}
    for key, script in scripts.items():
        n = int(key[1:])
        out[n] = ScriptedChatModel(model=f"fake-t{n}", script=script)
    return out


def cfg(**agent: Any) -> ACOConfig:
    """The rule router at the seed's prices (the budget figures below assume them)."""
    return config_at_seed_prices({"router": "rules", "agent": agent or {}})


def events(out: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in out["aco_events"] if e["type"] == kind]


def test_tool_loop_routes_each_step() -> None:
    t = tiers(t3=[call("read_file", {"path": "utils.py"}, "c1")])
    # the local tier's answer carries confident logprobs: its measured confidence skips
    # verification (a router prediction alone would not, see the next test)
    t[1] = ScriptedChatModel(model="fake-t1", script=["The bug is in parse()."], logprob=-0.01)
    graph = create_aco_agent(cfg(), [read_file], tier_models=t)
    out = graph.invoke({"messages": [HumanMessage(TASK)]})
    msgs = out["messages"]
    assert [type(m).__name__ for m in msgs] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
    ]
    assert "def parse" in msgs[2].content
    steps = events(out, "model")
    assert [s["tier"] for s in steps] == [3, 1]  # edit step, then a routine read step
    assert steps[0]["kind"] == "edit" and steps[1]["kind"] == "routine"
    assert "read_file results" in steps[1]["action"]
    assert len(t[3].calls) == 1 and len(t[1].calls) == 1
    assert t[1].calls[0][-1].type == "tool"  # the local tier saw the tool result
    assert events(out, "tool")[0]["success"] is True
    assert msgs[-1].response_metadata["aco"]["tier"] == 1
    assert msgs[-1].response_metadata["aco_step"]["step"] == 2
    assert events(out, "verify_gate")[0]["needed"] is False


def test_an_unmeasured_answer_does_not_skip_verification() -> None:
    # no logprobs: nothing measured the answer (per-step calls force their tier, so there
    # is no router prediction either), so a medium-risk answer is verified
    t = tiers(t3=[call("read_file", {"path": "utils.py"}, "c1"), "PASS\nlooks right"])
    graph = create_aco_agent(cfg(), [read_file], tier_models=t)
    out = graph.invoke({"messages": [HumanMessage(TASK)]})
    gate = events(out, "verify_gate")[0]
    assert gate["needed"] is True and "no measured confidence" in gate["reason"]


async def test_async_loop_matches_sync() -> None:
    t = tiers(t3=[call("read_file", {"path": "a.py"}, "c1")], t1=["done"])
    graph = create_aco_agent(cfg(), [read_file], tier_models=t)
    out = await graph.ainvoke({"messages": [HumanMessage(TASK)]})
    assert [s["tier"] for s in events(out, "model")] == [3, 1]
    assert out["messages"][-1].content == "done"


def test_verifier_fail_sends_the_run_back_one_tier_up() -> None:
    t = tiers(t4=["FAIL\nmissing the fix", "fixed answer from t4"])
    # logprob -1.0 per token: confidence ~0.37, under the 0.90 bar of high risk
    t[3] = ScriptedChatModel(model="fake-t3", script=["first answer"], logprob=-1.0)
    graph = create_aco_agent(cfg(), [], tier_models=t, task_risk="high")
    out = graph.invoke({"messages": [HumanMessage(TASK)]})
    ver = events(out, "verifier")
    assert [v["passed"] for v in ver] == [False] and ver[0]["tier"] == 4
    assert ver[0]["why"] == "missing the fix"
    steps = events(out, "model")
    assert [s["tier"] for s in steps] == [3, 4]
    assert "prior failures" in steps[1]["reason"]
    feedback = [m for m in out["messages"] if m.type == "human" and m.name == "aco_verifier"]
    assert feedback and "missing the fix" in feedback[0].content
    assert out["messages"][-1].content == "fixed answer from t4"
    gates = events(out, "verify_gate")
    assert gates[0]["needed"] and "0.37 < 0.90" in gates[0]["reason"]
    assert not gates[1]["needed"]  # confident answer (and the verifier budget is spent)


def test_verifier_runs_are_tagged() -> None:
    from langchain_core.callbacks import BaseCallbackHandler

    seen: list[list[str]] = []

    class Tags(BaseCallbackHandler):
        def on_chat_model_start(self, serialized, messages, *, tags=None, **kw):  # type: ignore[no-untyped-def]
            seen.append(list(tags or []))

    t = tiers(t4=["PASS\nfine"])
    t[3] = ScriptedChatModel(model="fake-t3", script=["answer"], logprob=-1.0)
    graph = create_aco_agent(cfg(), [], tier_models=t, task_risk="high")
    graph.invoke({"messages": [HumanMessage(TASK)]}, {"callbacks": [Tags()]})
    assert len(seen) == 2
    assert VERIFIER_TAG not in seen[0] and VERIFIER_TAG in seen[1]


def test_doom_ends_repeated_failures_with_a_message() -> None:
    t = tiers(t3=[call("run_tests", {"target": "tests/"}, "c1")], t4=["never"])
    # (a third identical call would be skipped by the tool gate's diminishing returns)
    graph = create_aco_agent(cfg(max_repeated_failures=2), [run_tests], tier_models=t)
    out = graph.invoke({"messages": [HumanMessage("Fix the failing unit tests")]})
    last = out["messages"][-1]
    assert isinstance(last, AIMessage) and last.name == "aco"
    assert "repeated_failure" in last.content and "failed 2 times" in last.content
    assert events(out, "stop")[0]["kind"] == "repeated_failure"
    fails = events(out, "tool")
    assert len(fails) == 2 and not any(f["success"] for f in fails)
    assert "RuntimeError" in fails[0]["error"]
    # after a failed call, the next step is one tier up
    assert "prior failures" in events(out, "model")[1]["reason"]


def test_budget_exhausted_stops_the_run() -> None:
    big = AIMessage(
        "",
        tool_calls=[{"name": "read_file", "args": {"path": "x"}, "id": "c1"}],
        usage_metadata={"input_tokens": 3000, "output_tokens": 500, "total_tokens": 3500},
    )
    t = tiers(t3=[big])
    graph = create_aco_agent(cfg(), [read_file], tier_models=t, max_budget=1.0)
    out = graph.invoke({"messages": [HumanMessage(TASK)]})
    stop = events(out, "stop")
    assert stop and stop[0]["kind"] == "budget_exhausted"
    assert "budget exhausted" in out["messages"][-1].content
    assert len(events(out, "model")) == 1


def test_budget_low_with_stop_policy() -> None:
    graph = create_aco_agent(
        cfg(on_low_budget="stop"), [read_file], tier_models=tiers(), max_budget=0.001
    )
    out = graph.invoke({"messages": [HumanMessage(TASK)]})
    assert events(out, "stop")[0]["kind"] == "budget_low"
    assert "on_low_budget=stop" in out["messages"][-1].content
    assert not events(out, "model")


def test_per_invocation_budget_override() -> None:
    graph = create_aco_agent(cfg(on_low_budget="stop"), [], tier_models=tiers())
    out = graph.invoke(
        {"messages": [HumanMessage(TASK)]}, {"configurable": {"aco_max_budget": 0.0001}}
    )
    assert events(out, "stop")[0]["kind"] == "budget_low"


def test_tool_gate_skips_useless_calls() -> None:
    @tool
    def web_search(query: str) -> str:
        """Search the web."""
        raise AssertionError("the gate should have skipped this")

    t = tiers(t1=[call("web_search", {"query": "2+2"}, "c1"), "4"])
    priced = cfg(tool_costs={"web_search": 0.01})
    graph = create_aco_agent(priced, [web_search], tier_models=t, verify_answers=False)
    out = graph.invoke({"messages": [HumanMessage("What is 2+2?")]})
    skipped = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert skipped and "skipped by the tool gate" in skipped[0].content
    assert "agent.tool_costs['web_search']" in skipped[0].content
    ev = events(out, "tool")[0]
    assert ev["skipped"] and ev["cost"] == 0.0
    assert out["messages"][-1].content == "4"


def test_unknown_tool_is_an_error_message() -> None:
    t = tiers(t3=[call("nope", {}, "c1"), "gave up"])
    graph = create_aco_agent(cfg(), [read_file], tier_models=t, verify_answers=False)
    out = graph.invoke({"messages": [HumanMessage(TASK)]})
    tm = [m for m in out["messages"] if isinstance(m, ToolMessage)][0]
    assert tm.status == "error" and "unknown tool" in tm.content


def test_empty_answer_falls_back_one_tier() -> None:
    # An empty reply is a tier fault (issue 11): the chat model falls back to the next tier.
    t = tiers(t3=[""], t4=["a real answer"])
    graph = create_aco_agent(cfg(), [], tier_models=t, verify_answers=False)
    out = graph.invoke({"messages": [HumanMessage(TASK)]})
    step = events(out, "model")[0]
    assert step["tier"] == 4
    assert out["messages"][-1].content == "a real answer"
    meta = out["messages"][-1].response_metadata["aco"]
    assert meta["fallback_from"] == 3 and "no content" in meta["failures"]["3"]


class _NoTools(ScriptedChatModel):
    """A tier without tool calling (like the default local tier)."""

    bind_tools = BaseChatModel.bind_tools  # type: ignore[assignment]


def test_toolless_tier_is_skipped_or_answers_in_text() -> None:
    t = tiers(t3=[call("read_file", {"path": "a"}, "c1")], t2=["from tier 2"])
    t[1] = _NoTools(model="fake-local", script=["from the local tier"])
    out = create_aco_agent(cfg(), [read_file], tier_models=t, verify_answers=False).invoke(
        {"messages": [HumanMessage(TASK)]}
    )
    step = events(out, "model")[1]
    assert step["tier"] == 2 and "no tool calling -> tier 2" in step["reason"]

    t = tiers(t3=[call("read_file", {"path": "a"}, "c1")])
    t[1] = _NoTools(model="fake-local", script=["from the local tier"])
    out = create_aco_agent(
        cfg(), [read_file], tier_models=t, verify_answers=False, toolless_tiers="text"
    ).invoke({"messages": [HumanMessage(TASK)]})
    step = events(out, "model")[1]
    assert step["tier"] == 1 and "answers in text" in step["reason"]
    assert "tools" not in t[1].call_kwargs[0]
    assert out["messages"][-1].content == "from the local tier"


def test_tool_tiers_override_detection() -> None:
    t = tiers(t3=[call("read_file", {"path": "a"}, "c1")], t2=["from tier 2"])
    graph = create_aco_agent(
        cfg(), [read_file], tier_models=t, verify_answers=False, tool_tiers={2, 3, 4, 5}
    )
    out = graph.invoke({"messages": [HumanMessage(TASK)]})
    assert events(out, "model")[1]["tier"] == 2
    assert not t[1].calls


def test_checkpointer_keeps_the_thread_and_restarts_the_turn() -> None:
    t = tiers(t3=[call("read_file", {"path": "a"}, "c1")], t1=["first", "second"])
    graph = create_aco_agent(cfg(), [read_file], tier_models=t, checkpointer=InMemorySaver())
    conf = {"configurable": {"thread_id": "th-1"}}
    graph.invoke({"messages": [HumanMessage(TASK)]}, conf)
    out = graph.invoke({"messages": [HumanMessage("And summarize it")]}, conf)
    assert [m.type for m in out["messages"]].count("human") == 2
    turns = [i for i, e in enumerate(out["aco_events"]) if e["type"] == "turn"]
    assert len(turns) == 2
    second = [e for e in out["aco_events"][turns[1] :] if e["type"] == "model"]
    assert second[0]["step"] == 1  # the budget and step count restart per turn
    snap = graph.get_state(conf)
    assert snap.values["messages"][-1].content == out["messages"][-1].content


def test_sqlite_checkpointer(tmp_path) -> None:  # type: ignore[no-untyped-def]
    t = tiers(t3=["an answer"])
    with open_checkpointer(str(tmp_path / "ck.sqlite")) as saver:
        graph = create_aco_agent(cfg(), [], tier_models=t, checkpointer=saver, task_risk="low")
        conf = {"configurable": {"thread_id": "sq-1"}}
        graph.invoke({"messages": [HumanMessage(TASK)]}, conf)
    with open_checkpointer(f"sqlite:///{tmp_path / 'ck.sqlite'}") as saver:
        graph = create_aco_agent(cfg(), [], tier_models=t, checkpointer=saver, task_risk="low")
        state = graph.get_state({"configurable": {"thread_id": "sq-1"}})
        assert state.values["messages"][-1].content == "an answer"
        assert any(e["type"] == "model" for e in state.values["aco_events"])


def _critical_graph(saver: Any) -> tuple[Any, dict[int, ScriptedChatModel]]:
    t = tiers(t5=[call("deploy_service", {"name": "billing"}, "c1"), "deployed it", "done"])
    graph = create_aco_agent(
        cfg(), [deploy_service], tier_models=t, checkpointer=saver, task_risk="critical"
    )
    return graph, t


def test_critical_tool_call_waits_for_a_human_then_runs() -> None:
    graph, _ = _critical_graph(InMemorySaver())
    conf = {"configurable": {"thread_id": "hitl-1"}}
    out = graph.invoke({"messages": [HumanMessage("Deploy the billing service")]}, conf)
    assert "__interrupt__" in out
    payload = out["__interrupt__"][0].value
    assert payload["type"] == "aco_approval"
    assert payload["tool_calls"][0]["name"] == "deploy_service"
    assert graph.get_state(conf).next == ("tool_gate",)
    out = graph.invoke(Command(resume=True), conf)
    tm = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert tm and tm[0].content == "billing deployed"


def test_critical_tool_call_rejected_by_a_human() -> None:
    graph, _ = _critical_graph(InMemorySaver())
    conf = {"configurable": {"thread_id": "hitl-2"}}
    graph.invoke({"messages": [HumanMessage("Deploy the billing service")]}, conf)
    out = graph.invoke(Command(resume={"approved": False, "reason": "freeze week"}), conf)
    tm = [m for m in out["messages"] if isinstance(m, ToolMessage)][0]
    assert tm.status == "error" and "rejected by a human: freeze week" in tm.content
    ev = events(out, "tool")[0]
    assert ev["skipped"] and "freeze week" in ev["reason"]


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="max_budget"):
        create_aco_agent(cfg(), [], tier_models=tiers(), max_budget=-1)
    with pytest.raises(ValueError, match="verifier_tier"):
        create_aco_agent(cfg(), [], tier_models=tiers(), verifier_tier=9)
    with pytest.raises(TypeError, match="not an ACORouterChatModel"):
        create_aco_agent(ScriptedChatModel(), [])
    graph = create_aco_agent(cfg(), [], tier_models=tiers())
    with pytest.raises(ValueError, match="aco_task_risk"):
        graph.invoke(
            {"messages": [HumanMessage(TASK)]}, {"configurable": {"aco_task_risk": "extreme"}}
        )


PG_URL = os.environ.get("ACO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_reachable() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=2):
            return None
    except Exception as err:  # noqa: BLE001
        return f"PostgreSQL not reachable at {PG_URL}: {err}"


@pytest.mark.postgres
def test_postgres_checkpointer_interrupt_and_resume() -> None:
    why = _pg_reachable()
    if why:
        pytest.skip(why)
    import uuid

    thread = f"pg-{uuid.uuid4().hex[:8]}"
    conf = {"configurable": {"thread_id": thread}}
    with open_checkpointer(PG_URL) as saver:
        graph, _ = _critical_graph(saver)
        out = graph.invoke({"messages": [HumanMessage("Deploy the billing service")]}, conf)
        assert "__interrupt__" in out
    # a new process (new saver, new graph) resumes the same thread
    with open_checkpointer(PG_URL) as saver:
        graph, _ = _critical_graph(saver)
        out = graph.invoke(Command(resume="approve"), conf)
        tm = [m for m in out["messages"] if isinstance(m, ToolMessage)]
        assert tm and tm[0].content == "billing deployed"


# --- langgraph's own ToolNode: injected state, Command-returning tools, run context ---------


@tool
def count_messages(label: str, state: Annotated[dict, InjectedState]) -> str:
    """Count the messages of the conversation so far."""
    return f"{label}: {len(state['messages'])} messages, {len(state['aco_events'])} events"


@tool
def remember(note: str, tool_call_id: Annotated[str, InjectedToolCallId]) -> Command:
    """Remember a note for the rest of the run."""
    return Command(
        update={
            "messages": [ToolMessage(f"noted: {note}", tool_call_id=tool_call_id)],
            "aco_events": [{"type": "note", "note": note}],
        }
    )


def test_injected_state_tool_runs_in_create_aco_agent() -> None:
    t = tiers(t3=[call("count_messages", {"label": "seen"}, "c1")], t1=["counted"])
    out = create_aco_agent(cfg(), [count_messages], tier_models=t, verify_answers=False).invoke(
        {"messages": [HumanMessage(TASK)]}
    )
    tm = [m for m in out["messages"] if isinstance(m, ToolMessage)][0]
    assert tm.status != "error", tm.content
    assert tm.content.startswith("seen: 2 messages")  # the human message and the tool call
    assert events(out, "tool")[0]["success"] is True


def test_command_returning_tool_updates_the_state() -> None:
    t = tiers(t3=[call("remember", {"note": "parse() splits on '-'"}, "c1"), "ok"])
    out = create_aco_agent(cfg(), [remember], tier_models=t, verify_answers=False).invoke(
        {"messages": [HumanMessage(TASK)]}
    )
    tm = [m for m in out["messages"] if isinstance(m, ToolMessage)][0]
    assert tm.content == "noted: parse() splits on '-'"  # not a stringified Command
    notes = [e["note"] for e in out["aco_events"] if e["type"] == "note"]
    assert notes == ["parse() splits on '-'"]  # the tool's own state update applied
    assert events(out, "tool")[0]["success"] is True
    assert out["messages"][-1].content == "ok"


def test_run_context_overrides_like_the_configurable_keys() -> None:
    from aco_langchain.integrations.langgraph import ACOContext

    graph = create_aco_agent(cfg(on_low_budget="stop"), [], tier_models=tiers())
    out = graph.invoke({"messages": [HumanMessage(TASK)]}, context=ACOContext(max_budget=0.0001))
    assert events(out, "stop")[0]["kind"] == "budget_low"
    out = graph.invoke({"messages": [HumanMessage(TASK)]}, context={"run_id": "ctx-run"})
    assert out["aco_events"][0]["run_key"] == "ctx-run"
    assert events(out, "model")[0]["run_key"] == "ctx-run"


def test_tool_costs_and_model_calls_share_the_run_ledger() -> None:
    from aco_langchain.chat.model import ACORouterChatModel

    @tool
    def web_search(query: str) -> str:
        """Search the web for research."""
        return "three papers"

    t = tiers(t3=[call("web_search", {"query": "router papers"}, "c1")], t1=["summary"])
    llm = ACORouterChatModel(config=cfg(tool_costs={"web_search": 0.01}), tier_models=t)
    graph = create_aco_agent(llm, [web_search], verify_answers=False)
    out = graph.invoke(
        {"messages": [HumanMessage("Research routing papers and compare them")]},
        context={"run_id": "ledger-run"},
    )
    model_cost = sum(e["cost"] for e in events(out, "model"))
    tool_cost = sum(e["cost"] for e in events(out, "tool"))
    assert tool_cost > 0
    # the ledger (the budget's source of truth) holds every model call and tool cost
    assert llm.spent("ledger-run") == pytest.approx(model_cost + tool_cost)


def test_an_unavailable_verifier_tier_is_said_not_degraded() -> None:
    """No keys: the verifier's tier (3) and every stronger one are unavailable. The answer is
    not verified (a tier-1 self-check is no check) and the gate says why; the run ends."""
    local = ScriptedChatModel(model="fake-t1", script=["the answer"])
    graph = create_aco_agent(cfg(), [], tier_models={1: local})
    out = graph.invoke({"messages": [HumanMessage("What is 2+2?")]})
    gate = events(out, "verify_gate")[0]
    assert gate["needed"] is False
    assert "not verified: verifier tier 3 is unavailable (no OPENAI_API_KEY)" in gate["reason"]
    assert not events(out, "verifier")
    assert out["messages"][-1].content == "the answer"


def test_an_unavailable_verifier_tier_moves_up_to_an_available_one() -> None:
    t = {
        1: ScriptedChatModel(model="fake-t1", script=["the answer"]),
        4: ScriptedChatModel(model="fake-t4", script=["PASS\nfine"]),
    }
    graph = create_aco_agent(cfg(), [], tier_models=t)
    out = graph.invoke({"messages": [HumanMessage("What is 2+2?")]})
    gate = events(out, "verify_gate")[0]
    assert (
        gate["needed"]
        and "verifier tier 3 unavailable (no OPENAI_API_KEY) -> tier 4" in gate["reason"]
    )
    assert [v["tier"] for v in events(out, "verifier")] == [4]
