"""The tier registry: what a call imports and how often it asks a tier for its names."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from langchain_core.language_models.base import LangSmithParams

from aco_langchain.config import ACOConfig
from aco_langchain.providers.tiers import TierRegistry
from aco_langchain.testing import ScriptedChatModel


class _CountingTier(ScriptedChatModel):
    """Counts ``_get_ls_params`` calls (ChatOpenAI's costs ~0.6 ms each)."""

    ls_calls: int = 0

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        self.ls_calls += 1
        return super()._get_ls_params(stop=stop, **kwargs)


def test_a_given_tier_is_asked_for_its_names_once() -> None:
    tier = _CountingTier(script=["ok"], model="my-model")
    reg = TierRegistry(ACOConfig(), instances={2: tier})
    names = {(reg.provider(2), reg.model_name(2)) for _ in range(5)}
    assert names == {(tier._get_ls_params()["ls_provider"], "my-model")}
    assert tier.ls_calls == 2  # once by the registry, once by the assertion above


def test_scripted_tiers_import_no_provider_sdk() -> None:
    """A first call over scripted tiers imports neither langchain-openai nor -ollama."""
    code = (
        "import sys\n"
        "from aco_langchain import ACOConfig, ACORouterChatModel\n"
        "from aco_langchain.config import seed_priced_models\n"
        "from aco_langchain.testing import ScriptedChatModel\n"
        "t = ScriptedChatModel(script=['ok'])\n"
        "llm = ACORouterChatModel(config=ACOConfig(models=seed_priced_models()),\n"
        "                         tier_models={n: t for n in range(1, 6)})\n"
        "llm.invoke('What is 2+2?')\n"
        "print(sorted(m for m in ('langchain_openai', 'langchain_ollama') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
