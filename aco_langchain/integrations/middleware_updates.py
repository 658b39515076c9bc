"""What ``ACOMiddleware`` hands back to ``create_agent``: state updates, model responses and
trace events, built from the engine's outcomes (plain functions, no state).

Example:
    ```python
    from aco_langchain.integrations.middleware_updates import stop_jump

    stop_jump(stop)   # {"jump_to": "end", "messages": [...], "aco_events": [...]}
    ```
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from langchain.agents.middleware.types import ExtendedModelResponse, ModelResponse
from langchain_core.callbacks.manager import adispatch_custom_event, dispatch_custom_event
from langchain_core.messages import AIMessage
from langgraph.types import Command

from aco_langchain.agent.checks import StopOutcome, VerifierOutcome, VerifyPlan

if TYPE_CHECKING:
    from langchain_core.runnables import RunnableConfig

Update = dict[str, Any]


def current_config() -> RunnableConfig | None:
    try:
        from langgraph.config import get_config

        return get_config()
    except RuntimeError:  # outside a graph run
        return None


def configurable() -> Mapping[str, Any]:
    return (current_config() or {}).get("configurable") or {}


def emit(name: str, data: Mapping[str, Any]) -> None:
    """Dispatch a custom event for the trace handler (no-op outside a run)."""
    with contextlib.suppress(RuntimeError):
        dispatch_custom_event(name, dict(data))


async def aemit(name: str, data: Mapping[str, Any]) -> None:
    with contextlib.suppress(RuntimeError):
        await adispatch_custom_event(name, dict(data))


def first_ai(response: Any) -> AIMessage | None:
    if isinstance(response, AIMessage):
        return response
    if isinstance(response, ExtendedModelResponse):
        response = response.model_response
    return next(
        (m for m in getattr(response, "result", None) or [] if isinstance(m, AIMessage)), None
    )


def tool_name(tool: Any) -> str:
    if isinstance(tool, Mapping):
        return str(tool.get("name") or (tool.get("function") or {}).get("name"))
    return str(getattr(tool, "name", tool))


def declined_tools(update: Update | None) -> list[Mapping[str, Any]]:
    """The tool gate's declined calls in an ``after_model`` update (for the trace)."""
    return [e for e in (update or {}).get("aco_events") or [] if e.get("type") == "tool"]


def stop_jump(stop: StopOutcome) -> Update:
    return {"jump_to": "end", "messages": [stop.message], "aco_events": [stop.event]}


def stop_response(stop: StopOutcome) -> ExtendedModelResponse[Any]:
    return ExtendedModelResponse(
        model_response=ModelResponse(result=[stop.message]),
        command=Command(update={"aco_events": [stop.event]}),
    )


def verifier_update(gate: VerifyPlan, outcome: VerifierOutcome) -> Update:
    update: Update = {"aco_events": [gate.gate_event, outcome.event]}
    if outcome.feedback is not None:
        update["messages"] = [outcome.feedback]
        update["jump_to"] = "model"
    return update


__all__ = [
    "aemit",
    "configurable",
    "current_config",
    "declined_tools",
    "emit",
    "first_ai",
    "stop_jump",
    "stop_response",
    "tool_name",
    "verifier_update",
]
