"""Typed LangGraph state for the ACO agent and strategy graphs.

``aco_events`` is the run's append-only event log (see ``agent/events.py``): every node
appends its events and the controls derive spend, steps, failures and progress from it, so
state stays JSON-able, checkpoint-friendly and safe under parallel branches.

Usage::

    from aco_langchain.integrations.langgraph.state import ACOAgentState
    builder = StateGraph(ACOAgentState)
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, NotRequired

from langchain_core.messages import AnyMessage
from langgraph.graph import add_messages
from typing_extensions import TypedDict

from aco_langchain.agent.events import AgentEvent, merge_events


class ACOAgentState(TypedDict):
    """State of ``create_aco_agent`` graphs.

    Usage::

        graph.invoke({"messages": [("user", "Fix the failing test")]})
    """

    messages: Annotated[list[AnyMessage], add_messages]
    aco_events: NotRequired[Annotated[list[AgentEvent], merge_events]]
    """The run's event log (``agent/events.py``): turns, steps, tool calls, gates, verifier
    calls, stops."""


class SpecialistOutput(TypedDict):
    """One specialist's (or critic's) contribution in the strategy graphs."""

    role: str
    tier: int
    content: str


class StrategyState(TypedDict):
    """State of the seed-3 strategy graphs (simple / moderate / complex / critical).

    Usage::

        graph.invoke({"task": "Design a rollout plan for the new billing service"})
    """

    task: str
    complexity: NotRequired[str]
    strategy: NotRequired[str]
    plan: NotRequired[str]
    outputs: NotRequired[Annotated[list[SpecialistOutput], operator.add]]
    critiques: NotRequired[Annotated[list[SpecialistOutput], operator.add]]
    approved: NotRequired[bool | None]
    answer: NotRequired[str]
    aco_events: NotRequired[Annotated[list[dict[str, Any]], merge_events]]


class SpecialistInput(TypedDict):
    """What ``Send`` gives one specialist or critic branch."""

    task: str
    role: str
    plan: NotRequired[str]
    outputs: NotRequired[list[SpecialistOutput]]


__all__ = ["ACOAgentState", "SpecialistInput", "SpecialistOutput", "StrategyState"]
