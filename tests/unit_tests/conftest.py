"""Shared fixtures: offline tiers and a clean environment (no API keys leak into tests)."""

from __future__ import annotations

import pytest

from aco_langchain.testing import ScriptedChatModel


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ACO_CONFIG", raising=False)
    # Keep tests away from a developer's running local server and cache.
    monkeypatch.setenv("ACO_CACHE_DIR", str(tmp_path / "aco-cache"))


@pytest.fixture
def fake_tiers() -> dict[int, ScriptedChatModel]:
    """Five scripted tiers; each answers with its own name."""
    return {
        n: ScriptedChatModel(script=[f"answer from tier {n}"], model=f"fake-t{n}")
        for n in range(1, 6)
    }
