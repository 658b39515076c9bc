"""The demo, offline: nothing scripted is shown as an answer (the real runs need the local
model; ``tests/integration_tests/test_agent_local.py`` runs them)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from aco_langchain.config import ACOConfig
from tests.examples import load_example

_agent = load_example("demo_agent")
_demo = load_example("demo")


def test_demo_agent_without_the_local_model_says_so_and_shows_no_answer(tmp_path: Path) -> None:
    console = Console(record=True, width=200)
    path = tmp_path / "traces" / "demo.jsonl"
    _agent.run_demo_agent(path, console)
    text = console.export_text()
    assert "local model not running" in text
    assert "final (" not in text and "scripted" not in text
    assert not path.exists()


def test_tier_labels_say_what_is_real() -> None:
    labels = _agent._labels(ACOConfig())
    assert labels[1].endswith("(unavailable: local model not running (aco local-model start))")
    assert labels[2] == "gpt-4o-mini (unavailable: no OPENAI_API_KEY)"


def test_short_reasons_keep_the_last_clauses() -> None:
    reason = (
        "learned: tier 2 maximises p; local-first: p(t1)=0.99; tier 2 unavailable (no KEY) -> 1"
    )
    assert (
        _agent.short_reason(reason) == "local-first: p(t1)=0.99; tier 2 unavailable (no KEY) -> 1"
    )
    assert _agent.short_reason(reason, verbose=True) == reason
    assert len(_agent.short_reason("x" * 300)) == 90


def test_a_doubtful_local_answer_says_it_would_escalate() -> None:
    note = _demo._escalation_note(0.2, 0.5, {2: "no OPENAI_API_KEY"})
    assert note == "doubtful (0.20 < 0.50): would escalate to tier 2 (dry run: no OPENAI_API_KEY)"
    assert _demo._escalation_note(0.8, 0.5, {}).startswith("kept")
