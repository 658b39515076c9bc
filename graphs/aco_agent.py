"""Deployable ACO agent graph for ``langgraph dev`` (``langgraph.json``: ``aco_agent``).

The graph is built on first access of ``graph`` (PEP 562), from ``$ACO_CONFIG`` or the
default config; nothing touches the network at import. Without API keys only the local tier
can answer (start it with ``aco local-model start``); the router says so in each step's
reason. Critical tool calls wait for a human's approval (the server provides persistence).

Usage::

    langgraph dev                         # from the repository root
    python -c "from graphs.aco_agent import graph; print(graph.get_graph().draw_ascii())"
"""

from __future__ import annotations

import ast
import asyncio
import functools
import operator
import os
from typing import Any

from langchain_core.tools import tool

_OPS: dict[type, Any] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.Mod: operator.mod,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def _eval(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_eval(node.left), _eval(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_eval(node.operand))
    raise ValueError("only numbers and + - * / % ** are allowed")


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression, e.g. '(2 + 3) * 4'."""
    return str(_eval(ast.parse(expression, mode="eval")))


@tool
def word_count(text: str) -> int:
    """Count the words in a text."""
    return len(text.split())


TOOLS = [calculator, word_count]


@functools.cache
def build_graph() -> Any:
    """The compiled agent (built once per process)."""
    from aco_langchain.config import load_config
    from aco_langchain.integrations.langgraph import create_aco_agent

    return create_aco_agent(
        load_config(os.environ.get("ACO_CONFIG") or None),
        TOOLS,
        system_prompt="You are a careful assistant. Use the tools when they help.",
        human_approval=True,
        name="aco_agent",
    )


async def agraph() -> Any:
    """The agent for ``langgraph dev`` (langgraph.json): built on a worker thread, since the
    server calls graph factories on its event loop and building opens the spend ledger."""
    return await asyncio.to_thread(build_graph)


def __getattr__(name: str) -> Any:
    if name == "graph":
        return build_graph()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
