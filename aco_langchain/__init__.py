"""aco-langchain: agent cost optimizer for LangChain and LangGraph.

Example:
    ```python
    from aco_langchain import ACORouterChatModel, ACOConfig

    llm = ACORouterChatModel(config=ACOConfig())
    llm.invoke("What is 2+2?").response_metadata["aco"]["tier"]
    ```

Heavy modules (chat model, graphs, training, server) import lazily on first attribute use;
the ``TYPE_CHECKING`` imports below let type checkers see the real classes.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from aco_langchain.config import ACOConfig, load_config
from aco_langchain.errors import (
    ACOError,
    AllTiersFailedError,
    BudgetExceededError,
    BundleError,
    ConfigError,
    ContextTooLongError,
    DataError,
    DeadlineExceededError,
    DegradedAnswerWarning,
    InvalidRequestError,
    LedgerError,
    LedgerURLError,
    LocalModelError,
    LocalToolCallError,
    RoutingError,
    SettingMovedWarning,
    StreamInterruptedError,
    TierReplyError,
    TierUnavailableError,
    TrainError,
    UnparsedReplyError,
)

# A library logs, the application decides where it goes (nothing printed by default).
logging.getLogger("aco_langchain").addHandler(logging.NullHandler())

if TYPE_CHECKING:
    from aco_langchain.agent.engine import RunView
    from aco_langchain.agent.optimizer import ACOOptimizer
    from aco_langchain.agent.per_step import PerStepRouter, StepDecision
    from aco_langchain.agent.policy import ACOContext, AgentPolicy
    from aco_langchain.call_info import AcoCallInfo
    from aco_langchain.chat.model import ACORouterChatModel
    from aco_langchain.integrations.langgraph import create_aco_agent, create_strategy_graph
    from aco_langchain.integrations.middleware import ACOMiddleware
    from aco_langchain.providers.tiers import TierRegistry
    from aco_langchain.routing import (
        Assessment,
        RouteDecision,
        Router,
        RouteRequest,
        RuleRouter,
        decide,
        route,
    )
    from aco_langchain.spend.ledger import MemoryLedger, ReservingLedger, SpendLedger, open_ledger
    from aco_langchain.testing import ScriptedChatModel
    from aco_langchain.tracing import Trace, TraceRecorder
    from aco_langchain.tracing.callback import (
        ACOTraceCallbackHandler,
        AsyncACOTraceCallbackHandler,
    )

__version__ = "0.1.0"

_LAZY = {
    "ACORouterChatModel": "aco_langchain.chat.model",
    "AcoCallInfo": "aco_langchain.call_info",
    "TierRegistry": "aco_langchain.providers.tiers",
    "Assessment": "aco_langchain.routing",
    "RouteRequest": "aco_langchain.routing",
    "RouteDecision": "aco_langchain.routing",
    "Router": "aco_langchain.routing",
    "RuleRouter": "aco_langchain.routing",
    "decide": "aco_langchain.routing",
    "route": "aco_langchain.routing",
    "SpendLedger": "aco_langchain.spend.ledger",
    "ReservingLedger": "aco_langchain.spend.ledger",
    "MemoryLedger": "aco_langchain.spend.ledger",
    "open_ledger": "aco_langchain.spend.ledger",
    "ACOOptimizer": "aco_langchain.agent.optimizer",
    "PerStepRouter": "aco_langchain.agent.per_step",
    "StepDecision": "aco_langchain.agent.per_step",
    "AgentPolicy": "aco_langchain.agent.policy",
    "ACOContext": "aco_langchain.agent.policy",
    "RunView": "aco_langchain.agent.engine",
    "Trace": "aco_langchain.tracing",
    "TraceRecorder": "aco_langchain.tracing",
    "ScriptedChatModel": "aco_langchain.testing",
    "create_aco_agent": "aco_langchain.integrations.langgraph",
    "create_strategy_graph": "aco_langchain.integrations.langgraph",
    "ACOMiddleware": "aco_langchain.integrations.middleware",
    "ACOTraceCallbackHandler": "aco_langchain.tracing.callback",
    "AsyncACOTraceCallbackHandler": "aco_langchain.tracing.callback",
}

__all__ = [
    "ACOConfig",
    "ACOError",
    "AllTiersFailedError",
    "BudgetExceededError",
    "BundleError",
    "ConfigError",
    "ContextTooLongError",
    "DataError",
    "DeadlineExceededError",
    "InvalidRequestError",
    "LedgerError",
    "LedgerURLError",
    "LocalModelError",
    "LocalToolCallError",
    "RoutingError",
    "StreamInterruptedError",
    "UnparsedReplyError",
    "DegradedAnswerWarning",
    "SettingMovedWarning",
    "TierReplyError",
    "TierUnavailableError",
    "TrainError",
    "__version__",
    "load_config",
    "ACORouterChatModel",
    "AcoCallInfo",
    "TierRegistry",
    "Assessment",
    "RouteRequest",
    "RouteDecision",
    "Router",
    "RuleRouter",
    "decide",
    "route",
    "SpendLedger",
    "ReservingLedger",
    "MemoryLedger",
    "open_ledger",
    "ACOOptimizer",
    "PerStepRouter",
    "StepDecision",
    "AgentPolicy",
    "ACOContext",
    "RunView",
    "Trace",
    "TraceRecorder",
    "ScriptedChatModel",
    "create_aco_agent",
    "create_strategy_graph",
    "ACOMiddleware",
    "ACOTraceCallbackHandler",
    "AsyncACOTraceCallbackHandler",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'aco_langchain' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
