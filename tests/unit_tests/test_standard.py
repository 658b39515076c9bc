"""LangChain's standard chat-model suites against ACORouterChatModel with scripted tiers.

Unit suite: all of it. Integration suite: what scripted tiers can serve (invoke, stream,
async, batch, usage metadata, model override); the suite's own flags skip tool calling and
structured output, which run against the real local tier in tests/integration_tests.
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from aco_langchain import ACOConfig, ACORouterChatModel
from aco_langchain.routing import RuleRouter
from aco_langchain.testing import ScriptedChatModel


def _tiers() -> dict[int, BaseChatModel]:
    return {
        n: ScriptedChatModel(script=["Hello! I am a scripted tier."], model=f"fake-t{n}")
        for n in range(1, 6)
    }


class TestACORouterUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return ACORouterChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"tier_models": _tiers(), "router": RuleRouter(), "config": ACOConfig()}

    @property
    def has_structured_output(self) -> bool:
        return True


class TestACORouterFakeIntegration(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return ACORouterChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"tier_models": _tiers(), "router": RuleRouter(), "config": ACOConfig()}

    @property
    def has_tool_calling(self) -> bool:
        return False

    @property
    def has_structured_output(self) -> bool:
        return False

    @property
    def model_override_value(self) -> str | None:
        return "fake-t3"
