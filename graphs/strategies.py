"""Deployable seed-3 strategy graphs for ``langgraph dev``.

``graph`` classifies a task and dispatches to simple / moderate / complex / critical;
``critical`` is the critical strategy alone, with human approval of the final answer. Both
are built on first access (PEP 562) from ``$ACO_CONFIG`` or the default config; no network
at import. Input: ``{"task": "..."}``.

Usage::

    langgraph dev      # serves aco_strategies and aco_critical (see langgraph.json)
"""

from __future__ import annotations

import asyncio
import functools
import os
from typing import Any


def _config() -> Any:
    from aco_langchain.config import load_config

    return load_config(os.environ.get("ACO_CONFIG") or None)


@functools.cache
def build_graph() -> Any:
    """The classify-and-dispatch graph (built once per process)."""
    from aco_langchain.integrations.langgraph import create_strategy_graph

    return create_strategy_graph(_config())


@functools.cache
def build_critical() -> Any:
    """The critical strategy with human approval (built once per process)."""
    from aco_langchain.integrations.langgraph import create_critical_graph

    return create_critical_graph(_config(), human_approval=True)


async def agraph() -> Any:
    """``build_graph`` for ``langgraph dev`` (langgraph.json), built on a worker thread: the
    server calls graph factories on its event loop, and building opens the spend ledger."""
    return await asyncio.to_thread(build_graph)


async def acritical() -> Any:
    """``build_critical`` for ``langgraph dev``, built on a worker thread (see ``agraph``)."""
    return await asyncio.to_thread(build_critical)


def __getattr__(name: str) -> Any:
    if name == "graph":
        return build_graph()
    if name == "critical":
        return build_critical()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
