"""LangGraph integration: agent nodes, the prebuilt ACO agent, and seed-3 strategy graphs.

Nothing here imports LangGraph until a name is used (``import aco_langchain`` stays light);
the ``TYPE_CHECKING`` imports let type checkers see the real names.

Example:
    ```python
    from aco_langchain.integrations.langgraph import create_aco_agent, create_strategy_graph

    agent = create_aco_agent(ACOConfig(), [search], tier_models=tiers)
    router = create_strategy_graph(ACOConfig(), tier_models=tiers)   # classify, then dispatch
    ```
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aco_langchain.agent.engine import RunView
    from aco_langchain.agent.policy import ACOContext, AgentPolicy
    from aco_langchain.integrations.langgraph.agent import (
        ACOAgentGraph,
        build_aco_agent_graph,
        create_aco_agent,
        open_checkpointer,
        resolve_router_model,
    )
    from aco_langchain.integrations.langgraph.nodes import ACOAgentNodes
    from aco_langchain.integrations.langgraph.state import ACOAgentState, StrategyState
    from aco_langchain.integrations.langgraph.strategies import (
        create_complex_graph,
        create_critical_graph,
        create_moderate_graph,
        create_simple_graph,
        create_strategy_graph,
    )

_LAZY = {
    "ACOAgentNodes": "aco_langchain.integrations.langgraph.nodes",
    "ACOAgentState": "aco_langchain.integrations.langgraph.state",
    "StrategyState": "aco_langchain.integrations.langgraph.state",
    "ACOContext": "aco_langchain.agent.policy",
    "AgentPolicy": "aco_langchain.agent.policy",
    "RunView": "aco_langchain.agent.engine",
    "ACOAgentGraph": "aco_langchain.integrations.langgraph.agent",
    "build_aco_agent_graph": "aco_langchain.integrations.langgraph.agent",
    "create_aco_agent": "aco_langchain.integrations.langgraph.agent",
    "open_checkpointer": "aco_langchain.integrations.langgraph.agent",
    "resolve_router_model": "aco_langchain.integrations.langgraph.agent",
    "create_simple_graph": "aco_langchain.integrations.langgraph.strategies",
    "create_moderate_graph": "aco_langchain.integrations.langgraph.strategies",
    "create_complex_graph": "aco_langchain.integrations.langgraph.strategies",
    "create_critical_graph": "aco_langchain.integrations.langgraph.strategies",
    "create_strategy_graph": "aco_langchain.integrations.langgraph.strategies",
}

__all__ = [
    "ACOAgentNodes",
    "ACOAgentState",
    "StrategyState",
    "ACOContext",
    "AgentPolicy",
    "RunView",
    "ACOAgentGraph",
    "build_aco_agent_graph",
    "create_aco_agent",
    "open_checkpointer",
    "resolve_router_model",
    "create_simple_graph",
    "create_moderate_graph",
    "create_complex_graph",
    "create_critical_graph",
    "create_strategy_graph",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
