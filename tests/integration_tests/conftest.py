"""Integration fixtures: the real local llama.cpp tier (``local_server``).

Without a built ``llama-server`` the tests that use ``local_server`` are skipped, with the reason
saying how to build it; with ``CI=true`` the fixture builds it instead (several minutes once).

Usage::

    @pytest.mark.local_model
    def test_x(local_server):
        ChatOpenAI(base_url=local_server.base_url, api_key="local")
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from aco_langchain.config import LocalModelSettings, load_config
from aco_langchain.providers import local as lm


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def local_settings() -> LocalModelSettings:
    """The local-model settings of ``$ACO_CONFIG`` (or the defaults)."""
    return load_config().local_model


@pytest.fixture(scope="session")
def local_server(local_settings: LocalModelSettings) -> Iterator[lm.ServerInfo]:
    """A running llama-server (reused if one is already up; stopped only if started here)."""
    try:
        lm.model_path()
    except lm.LocalModelError as err:
        if _in_ci():
            raise
        pytest.skip(str(err))
    if not lm.is_built(local_settings):
        if not _in_ci():
            pytest.skip(
                f"llama-server is not built at {lm.binary_path(local_settings)}: run "
                "`aco local-model build` (or set CI=true to build it from the test run)"
            )
        lm.build(local_settings, progress=lambda m: print(f"[local-model build] {m}"))
    with lm.serve(local_settings) as info:
        yield info
