"""The names the trace handler reads: the verifier's run tag and the custom events.

The emitters (the agent nodes, ``ACOMiddleware``, the strategy graphs, any chain) and the
reader (``ACOTraceCallbackHandler``) agree on these; they live apart from both so an
emitter does not import the handler.

Example:
    ```python
    from langchain_core.callbacks.manager import dispatch_custom_event
    from aco_langchain.tracing.names import EVENT_OUTCOME

    dispatch_custom_event(EVENT_OUTCOME, {"task_success": True})
    ```
"""

from __future__ import annotations

#: Tag of a verifier's model runs (``config={"tags": [VERIFIER_TAG]}``).
VERIFIER_TAG = "aco:verifier"
#: Custom event with a verifier's verdict (``{"passed", "why", "tier", "cost"}``).
EVENT_VERDICT = "aco_verifier_verdict"
#: Custom event of a run the controls stopped (``{"type": "stop", "kind", "reason"}``).
EVENT_STOP = "aco_stop"
#: Custom event of one tool call as the agent recorded it: its ``tool`` event (``name``,
#: ``id``, ``success``, ``skipped``, ``cost`` from the agent's ``agent.tool_costs``,
#: ``reason`` of a decline). A declined call has no tool run of its own to trace.
EVENT_TOOL = "aco_tool"
#: Custom event any chain may send to say how it ended (``{"task_success": bool, ...}``).
EVENT_OUTCOME = "aco_outcome"

__all__ = ["EVENT_OUTCOME", "EVENT_STOP", "EVENT_TOOL", "EVENT_VERDICT", "VERIFIER_TAG"]
