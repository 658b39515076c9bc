"""Scripted tiers and tools shared by the middleware and trace-callback tests."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage
from langchain_core.tools import tool

from aco_langchain.testing import ScriptedChatModel


def call(name: str, args: dict[str, Any], cid: str) -> AIMessage:
    """An AI message that calls one tool."""
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": cid}])


@tool
def read_file(path: str) -> str:
    """Read a file."""
    return f"contents of {path}"


@tool
def run_tests(target: str) -> str:
    """Run the unit tests."""
    raise RuntimeError("2 failed")


@tool
def deploy_service(name: str) -> str:
    """Deploy a service to production."""
    return f"{name} deployed"


def tiers(**scripts: list[Any]) -> dict[int, ScriptedChatModel]:
    """Five scripted tiers; ``t3=[...]`` replaces tier 3's script."""
    out = {n: ScriptedChatModel(model=f"fake-t{n}", script=[f"answer t{n}"]) for n in range(1, 6)}
    for key, script in scripts.items():
        out[int(key[1:])] = ScriptedChatModel(model=f"fake-{key}", script=script)
    return out
