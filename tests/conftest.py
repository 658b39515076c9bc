"""Fixtures for every test: no test writes the developer's real ledger, and figures are
computed at fixed prices.

``ACORouterChatModel()`` defaults to the SQLite ledger under the user data dir
(``~/.local/share/aco-langchain/ledger.db``); here every test gets ``ACO_LEDGER_URL=memory://``
(a private in-memory ledger per model) and a temporary ``XDG_DATA_HOME``. Tests of the SQLite
and Postgres ledgers pass their own URLs.

The default tiers are priced by genai-prices (real list prices, which move with its data);
tests assert figures at the seed's illustrative table instead (``SEED_PRICES``, the same as
``examples/seed-config.yaml``). Tests of the real prices use ``real_prices``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from aco_langchain import config as aco_config


@pytest.fixture(autouse=True)
def _private_ledger(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ACO_LEDGER_URL", "memory://")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


# Before any test module builds a module-level ACOConfig.
aco_config._default_models = aco_config.seed_priced_models


@pytest.fixture
def real_prices(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped defaults for this test: tiers 2-5 priced by genai-prices."""
    monkeypatch.setattr(aco_config, "_default_models", aco_config.default_models)
