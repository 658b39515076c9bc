"""The demo, offline: nothing scripted is shown as an answer (the real runs need the local
model; ``tests/integration_tests/test_agent_local.py`` runs them)."""

from __future__ import annotations

from pathlib import Path

import pytest
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


def test_the_replay_part_labels_each_answer_and_its_savings_add_up(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import re

    console = Console(record=True, width=240)
    monkeypatch.setattr(_demo, "console", console)
    figures = _demo.replay_section(verbose=False)
    text = console.export_text()
    assert "recorded answer of <model> (replay)" in text and "not sent" not in text
    rows = [line for line in text.splitlines() if "(replay):" in line]
    assert len(rows) >= 10
    assert all(("right" in r) != ("wrong" in r) for r in rows)  # each says right or wrong
    costs = [re.findall(r"\d+\.\d{6}", r)[-2:] for r in rows]
    spent = sum(float(c[0]) for c in costs)
    baseline = sum(float(c[1]) for c in costs)
    assert spent == pytest.approx(figures["spent"], abs=1e-6)
    assert baseline == pytest.approx(figures["baseline"], abs=1e-6)
    saved = re.search(r"savings: \$(\d+\.\d+)", text)
    assert saved and float(saved.group(1)) == pytest.approx(baseline - spent, abs=2e-6)
    assert f"the ledger recorded ${figures['spent']:.6f}" in text


def test_without_the_local_model_the_live_part_says_why(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    console = Console(record=True, width=200)
    monkeypatch.setattr(_demo, "console", console)
    assert _demo.live_section(ACOConfig(), verbose=False) == 0
    assert "local model not running" in console.export_text()
