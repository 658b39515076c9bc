"""aco-langchain: agent cost optimizer for LangChain and LangGraph.

Usage::

    from aco_langchain import ACORouterChatModel, ACOConfig
    llm = ACORouterChatModel(config=ACOConfig())
    llm.invoke("What is 2+2?").response_metadata["aco"]["tier"]

Heavy modules (chat model, graphs, training, server) import lazily on first attribute use.
"""

from __future__ import annotations

import importlib
from typing import Any

from aco_langchain.config import ACOConfig, ConfigError, load_config

__version__ = "0.1.0"

_LAZY = {
    "ACORouterChatModel": "aco_langchain.chat.model",
    "TierRegistry": "aco_langchain.providers.tiers",
    "RouteRequest": "aco_langchain.routing",
    "RouteDecision": "aco_langchain.routing",
    "route": "aco_langchain.routing",
    "ACOOptimizer": "aco_langchain.agent.optimizer",
    "PerStepRouter": "aco_langchain.agent.per_step",
    "StepDecision": "aco_langchain.agent.per_step",
    "Trace": "aco_langchain.tracing",
    "TraceRecorder": "aco_langchain.tracing",
    "ScriptedChatModel": "aco_langchain.testing",
    "create_aco_agent": "aco_langchain.integrations.langgraph",
    "create_strategy_graph": "aco_langchain.integrations.langgraph",
    "ACOMiddleware": "aco_langchain.integrations.middleware",
    "ACOTraceCallbackHandler": "aco_langchain.tracing.callback",
    "AsyncACOTraceCallbackHandler": "aco_langchain.tracing.callback",
}

__all__ = ["ACOConfig", "ConfigError", "load_config", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'aco_langchain' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
