"""One tool-call wrapper for both adapters: langgraph's ``ToolNode`` in ``create_aco_agent``
and ``ACOMiddleware.wrap_tool_call`` in ``create_agent``.

The tool itself runs in langgraph's ``ToolNode`` (``InjectedState``, ``InjectedStore``,
``ToolRuntime`` and tools returning ``Command`` all work there). Around each call this wrapper
answers an unknown tool with a clear error message, turns a tool's exception into an error
``ToolMessage`` (a failing tool is an answer the model can act on, not a crash), records the
call's ``tool`` event, and adds the tool's cost to the run's spend ledger (the budget's one
source of truth, see ``agent/engine.py``).

Example:
    ```python
    from langgraph.prebuilt import ToolNode
    from aco_langchain.integrations.tool_calls import ToolCallRecorder

    rec = ToolCallRecorder(lambda: llm.spend_ledger, policy.with_settings, {"read_file": tool})
    node = ToolNode(tools, wrap_tool_call=rec.wrap, awrap_tool_call=rec.awrap)
    ```
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks.manager import adispatch_custom_event, dispatch_custom_event
from langchain_core.messages import ToolMessage
from langchain_core.messages.tool import ToolCall
from langgraph.errors import GraphBubbleUp
from langgraph.prebuilt.tool_node import ToolCallRequest
from langgraph.types import Command

from aco_langchain.agent.checks import error_message, tool_outcome_event, unknown_tool_message
from aco_langchain.agent.engine import RunView, current_run_key
from aco_langchain.agent.events import ToolEvent
from aco_langchain.agent.policy import AgentPolicy, RunSettings, run_settings
from aco_langchain.spend.ledger import SpendLedger
from aco_langchain.tracing.names import EVENT_TOOL

logger = logging.getLogger(__name__)

ToolResult = ToolMessage | Command[Any]
PolicyFor = Callable[[RunSettings], AgentPolicy]


@dataclass(frozen=True)
class _Call:
    tool_call: ToolCall
    policy: AgentPolicy
    step: int
    run_key: str | None


def emit_tool_events(events: Iterable[Mapping[str, Any]]) -> None:
    """Send each ``tool`` event to the trace handler (a no-op outside a run)."""
    for event in events:
        with contextlib.suppress(RuntimeError):
            dispatch_custom_event(EVENT_TOOL, dict(event))


async def aemit_tool_events(events: Iterable[Mapping[str, Any]]) -> None:
    """Async ``emit_tool_events``."""
    for event in events:
        with contextlib.suppress(RuntimeError):
            await adispatch_custom_event(EVENT_TOOL, dict(event))


def _events_of(result: Any) -> list[Mapping[str, Any]]:
    update = getattr(result, "update", None)
    if not isinstance(update, Mapping):
        return []
    return [e for e in update.get("aco_events") or [] if e.get("type") == "tool"]


def request_settings(request: ToolCallRequest) -> RunSettings:
    """The run's settings seen from a tool call (its runtime's context and config)."""
    runtime = request.runtime
    context = getattr(runtime, "context", None)
    config = getattr(runtime, "config", None) or {}
    return run_settings(context, config.get("configurable"))


class ToolCallRecorder:
    """Wraps each tool call: unknown tools, errors as messages, the ``tool`` event, the cost.

    Args:
        ledger: Gives the spend ledger of the run's model (tool costs are added to the run's
            key); a callable, as ``ACOMiddleware`` learns its model at the first call.
        policy_for: The agent's policy for a run's settings.
        known_tools: Names of the agent's tools (for the unknown-tool message).

    Example:
        ```python
        rec = ToolCallRecorder(lambda: llm.spend_ledger, policy.with_settings, {"read_file"})
        ToolNode([read_file], wrap_tool_call=rec.wrap, awrap_tool_call=rec.awrap)
        ```
    """

    def __init__(
        self,
        ledger: Callable[[], SpendLedger],
        policy_for: PolicyFor,
        known_tools: Mapping[str, Any],
    ) -> None:
        self.ledger = ledger
        self.policy_for = policy_for
        self.known_tools = known_tools

    def _call(self, request: ToolCallRequest) -> _Call:
        policy = self.policy_for(request_settings(request))
        state = request.state if isinstance(request.state, Mapping) else {}
        events = state.get("aco_events") or []
        view = RunView.from_events(events, policy, spent=0.0)
        return _Call(request.tool_call, policy, view.steps, current_run_key(events))

    def _record(self, call: _Call, message: ToolMessage | None) -> ToolEvent:
        event = tool_outcome_event(call.tool_call, message, call.policy, call.step)
        if call.run_key and event["cost"] > 0:
            self.ledger().add(call.run_key, event["cost"])
        return event

    def _finish(self, call: _Call, result: Any) -> ToolResult:
        tc = call.tool_call
        if isinstance(result, ToolMessage):
            event = self._record(call, result)
            return Command(update={"messages": [result], "aco_events": [event]})
        if isinstance(result, Command) and isinstance(result.update, Mapping):
            update = dict(result.update)
            answers = [
                m
                for m in update.get("messages") or []
                if isinstance(m, ToolMessage) and m.tool_call_id == tc["id"]
            ]
            event = self._record(call, answers[0] if answers else None)
            update["aco_events"] = [*(update.get("aco_events") or []), event]
            return Command(
                graph=result.graph, update=update, resume=result.resume, goto=result.goto
            )
        logger.debug("tool %s returned %s: no tool event recorded", tc["name"], type(result))
        return result  # type: ignore[no-any-return]

    def _unknown(self, request: ToolCallRequest) -> ToolMessage | None:
        if request.tool is not None:
            return None
        logger.info("the model called an unknown tool %r", request.tool_call["name"])
        return unknown_tool_message(request.tool_call, list(self.known_tools))

    def wrap(
        self, request: ToolCallRequest, execute: Callable[[ToolCallRequest], ToolResult]
    ) -> ToolResult:
        """Run one tool call through ``execute`` (ToolNode's or the middleware handler).

        Args:
            request: The tool call request.
            execute: Runs the tool.

        Returns:
            A ``Command`` with the answer and its ``tool`` event (or the tool's own command,
            with the event added).

        Raises:
            GraphBubbleUp: An ``interrupt`` inside the tool (always propagated).
        """
        call = self._call(request)
        unknown = self._unknown(request)
        if unknown is not None:
            result = self._finish(call, unknown)
        else:
            try:
                result = self._finish(call, execute(request))
            except GraphBubbleUp:
                raise
            except Exception as exc:  # noqa: BLE001 - a failing tool is an answer, not a crash
                result = self._failed(call, exc)
        emit_tool_events(_events_of(result))
        return result

    def _failed(self, call: _Call, exc: Exception) -> ToolResult:
        logger.info("tool %s raised %s: %s", call.tool_call["name"], type(exc).__name__, exc)
        return self._finish(call, error_message(call.tool_call, exc))

    async def awrap(
        self,
        request: ToolCallRequest,
        execute: Callable[[ToolCallRequest], Awaitable[ToolResult]],
    ) -> ToolResult:
        """Async ``wrap`` (same decisions)."""
        call = self._call(request)
        unknown = self._unknown(request)
        if unknown is not None:
            result = self._finish(call, unknown)
        else:
            try:
                result = self._finish(call, await execute(request))
            except GraphBubbleUp:
                raise
            except Exception as exc:  # noqa: BLE001 - a failing tool is an answer, not a crash
                result = self._failed(call, exc)
        await aemit_tool_events(_events_of(result))
        return result


__all__ = [
    "PolicyFor",
    "ToolCallRecorder",
    "ToolResult",
    "aemit_tool_events",
    "emit_tool_events",
    "request_settings",
]
