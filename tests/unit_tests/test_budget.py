"""Context budget: sizes from the tier window, parts by task, and applying it to messages."""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.messages.utils import count_tokens_approximately

from aco_langchain.config import ACOConfig
from aco_langchain.spend.context import apply_context_budget, context_budget


def test_budget_comes_from_the_tier_window_minus_an_answer_reserve():
    cfg = ACOConfig()
    b = context_budget("What is 2+2?", cfg, tier=1, task_type="quick_answer")
    assert b.context_window == cfg.tier(1).max_context == 2048
    assert b.total_tokens == 2048 - 512 and b.output_reserve == 512
    assert "system_prompt" in b.keep_exact and "latest_user_turn" in b.keep_exact
    assert "conversation_history" in b.omit


def test_budget_routes_when_tier_not_given_and_research_keeps_sources():
    b = context_budget("Research transformer advances")
    assert b.task_type == "research"
    assert "cited_sources" in b.keep_exact
    assert "older_search_results" in b.summarize
    assert "raw_html" in b.omit
    assert b.total_tokens > 0


def test_budget_is_capped_by_max_tokens_per_task():
    cfg = ACOConfig(routing={"max_tokens_per_task": 5000})
    b = context_budget("x", cfg, tier=4, task_type="general")
    assert b.total_tokens == 5000 and "max_tokens_per_task" in b.reason


def test_legal_keeps_history_exact_and_never_lists_a_part_twice():
    b = context_budget("x", tier=4, task_type="legal_regulated")
    assert "conversation_history" in b.keep_exact
    parts = b.keep_exact + b.summarize + b.omit
    assert len(parts) == len(set(parts))


def _conversation():
    return [
        SystemMessage("You are a careful coding agent."),
        HumanMessage("old question " * 300),
        AIMessage("old answer " * 300),
        HumanMessage("Fix the failing auth test"),
        AIMessage("", tool_calls=[{"name": "read_file", "args": {"p": "a"}, "id": "c1"}]),
        ToolMessage("old file contents " * 400, tool_call_id="c1"),
        AIMessage("", tool_calls=[{"name": "run_tests", "args": {}, "id": "c2"}]),
        ToolMessage("FAILED test_auth: expired token accepted", tool_call_id="c2"),
    ]


def test_apply_keeps_system_latest_turn_and_latest_tool_results_exact():
    msgs = _conversation()
    out = apply_context_budget(msgs, 400)
    assert out[0] == msgs[0]
    assert HumanMessage("Fix the failing auth test") in out
    assert out[-1] == msgs[-1] and out[-2] == msgs[-2]
    # the older tool result is stubbed, not dropped: its tool call keeps a result
    stub = [m for m in out if isinstance(m, ToolMessage) and m.tool_call_id == "c1"][0]
    assert "omitted by context budget" in stub.content
    # the old turn does not fit and is gone
    assert not any("old question" in str(m.content) for m in out)
    assert count_tokens_approximately(out) <= 400


def test_apply_returns_messages_untouched_when_they_fit():
    msgs = _conversation()
    assert apply_context_budget(msgs, 100_000) == msgs


def test_apply_summarises_dropped_history_into_the_system_prompt():
    out = apply_context_budget(
        _conversation(), 600, summarizer=lambda dropped: f"{len(dropped)} earlier messages"
    )
    assert isinstance(out[0], SystemMessage)
    assert "2 earlier messages" in out[0].content
    assert out[0].content.startswith("You are a careful coding agent.")


def test_apply_accepts_a_budget_object():
    b = context_budget("x", tier=1, task_type="coding")
    out = apply_context_budget(_conversation(), b)
    assert count_tokens_approximately(out) <= b.total_tokens
