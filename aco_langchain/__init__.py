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
    "ACORouterChatModel": "aco_langchain.chat_model",
    "TierRegistry": "aco_langchain.tiers",
    "RouteRequest": "aco_langchain.router",
    "RouteDecision": "aco_langchain.router",
    "route": "aco_langchain.router",
    "ACOOptimizer": "aco_langchain.optimizer",
    "PerStepRouter": "aco_langchain.per_step",
    "StepDecision": "aco_langchain.per_step",
    "Trace": "aco_langchain.tracing",
    "TraceRecorder": "aco_langchain.tracing",
    "ScriptedChatModel": "aco_langchain.testing",
    "create_aco_agent": "aco_langchain.graph",
    "create_strategy_graph": "aco_langchain.graph",
    "ACOMiddleware": "aco_langchain.middleware",
    "ACOTraceCallbackHandler": "aco_langchain.tracing.callback",
    "AsyncACOTraceCallbackHandler": "aco_langchain.tracing.callback",
}

__all__ = ["ACOConfig", "ConfigError", "load_config", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'aco_langchain' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
