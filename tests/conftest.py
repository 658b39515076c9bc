"""Fixtures for every test: no test writes the developer's real ledger.

``ACORouterChatModel()`` defaults to the SQLite ledger under the user data dir
(``~/.local/share/aco-langchain/ledger.db``); here every test gets ``ACO_LEDGER_URL=memory://``
(a private in-memory ledger per model) and a temporary ``XDG_DATA_HOME``. Tests of the SQLite
and Postgres ledgers pass their own URLs.

Prices are the shipped defaults everywhere (tiers 2-5 priced by genai-prices, real list
prices that move with its data). A test that asserts dollar figures passes the seed's
illustrative table in explicitly: ``tests/prices.py`` (``at_seed_prices(...)``,
``config_at_seed_prices({...})``, ``write_seed_config(path)`` for CLI and subprocess runs).
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _private_ledger(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ACO_LEDGER_URL", "memory://")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
