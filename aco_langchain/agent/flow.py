"""Running a decision generator: the engine decides, the adapter does the I/O.

A step's escalation loop (``engine.step_flow``) is a generator that yields what to call and
receives the answer; ``drive`` runs it with a sync call, ``adrive`` with an async one, so the
sync and async adapters share every decision.

Example:
    ```python
    from aco_langchain.agent.flow import drive

    outcome = drive(step_flow(plan, can), lambda c: llm.invoke(msgs, force_tier=c.tier))
    ```
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import TypeVar

_Y = TypeVar("_Y")
_S = TypeVar("_S")
_R = TypeVar("_R")


def drive(flow: Generator[_Y, _S, _R], do: Callable[[_Y], _S]) -> _R:
    """Run a decision generator with a sync I/O function.

    Args:
        flow: Yields what to do (e.g. a ``TierCall``), receives its result.
        do: The I/O for one request.

    Returns:
        The generator's return value.

    Example:
        ```python
        outcome = drive(step_flow(plan, can), lambda c: llm.invoke(msgs, force_tier=c.tier))
        ```
    """
    try:
        request = next(flow)
        while True:
            request = flow.send(do(request))
    except StopIteration as done:
        return done.value


async def adrive(flow: Generator[_Y, _S, _R], do: Callable[[_Y], Awaitable[_S]]) -> _R:
    """Run a decision generator with an async I/O function (same as ``drive``).

    Args:
        flow: Yields what to do, receives its result.
        do: The async I/O for one request.

    Returns:
        The generator's return value.

    Example:
        ```python
        outcome = await adrive(step_flow(plan, can), lambda c: llm.ainvoke(msgs, force_tier=c.tier))
        ```
    """
    try:
        request = next(flow)
        while True:
            request = flow.send(await do(request))
    except StopIteration as done:
        return done.value


__all__ = ["adrive", "drive"]
