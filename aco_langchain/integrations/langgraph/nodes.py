"""LangGraph nodes of the ACO agent: a thin adapter around the agent engine.

Every decision comes from the engine (``agent/engine.py``, ``agent/checks.py``); the nodes
read the state, make the model calls, dispatch the trace events and write the engine's
updates back. The tools run in langgraph's own ``ToolNode`` (``InjectedState``,
``InjectedStore``, ``ToolRuntime`` and ``Command``-returning tools work), wrapped by the same
``ToolCallRecorder`` as ``ACOMiddleware``.

- ``start``: a new turn and its run key (budget and doom rules restart per input);
- ``doom``: the doom detector; a doomed run ends with a final AIMessage giving the reason;
- ``agent``: the step's tier (``plan_step``) and the model call with ``force_tier``, one tier
  up on an unusable answer (``step_flow``);
- ``tool_gate``: the cost gate per call (skipped calls get a ToolMessage saying why) and, for
  critical calls with ``human_approval``, ``interrupt`` for a human's decision;
- ``tools``: langgraph's ``ToolNode`` for the calls the gate let through (one ``Send`` each);
- ``verify_gate`` / ``verifier``: the verification gate and the verifier call (tagged
  ``aco:verifier``); a FAIL sends the run back to the agent with the verifier's reason.

Settings per run come from LangGraph's ``context`` (``ACOContext``) or the older
``configurable`` keys; what the run spent comes from the chat model's ledger.

Example:
    ```python
    nodes = ACOAgentNodes(ACORouterChatModel(tier_models=tiers), [search], AgentPolicy())
    builder.add_node("agent", nodes.agent)
    ```
"""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks.manager import adispatch_custom_event, dispatch_custom_event
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage, ToolMessage
from langchain_core.messages.tool import ToolCall
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langchain_core.tools import BaseTool
from langgraph.graph import END
from langgraph.prebuilt import ToolNode
from langgraph.types import Send, interrupt

from aco_langchain.agent.checks import (
    StopOutcome,
    VerifierOutcome,
    VerifyPlan,
    apply_approval,
    doom_stop,
    gate_tool_calls,
    is_stop_message,
    plan_verification,
    verification_outcome,
)
from aco_langchain.agent.engine import (
    RunView,
    StepActionFn,
    StepOutcome,
    StepPlan,
    TierCall,
    adrive,
    current_run_key,
    default_step_action,
    drive,
    plan_step,
    request_text,
    step_flow,
    turn_event,
)
from aco_langchain.agent.policy import AgentPolicy, RunSettings, run_settings, takes_tools
from aco_langchain.integrations.tool_calls import ToolCallRecorder
from aco_langchain.tracing.names import EVENT_STOP, EVENT_TOOL, EVENT_VERDICT, VERIFIER_TAG

if TYPE_CHECKING:
    from aco_langchain.chat.model import ACORouterChatModel

Update = dict[str, Any]


def node_settings(config: RunnableConfig | None) -> RunSettings:
    """The run's settings inside a node: LangGraph ``context`` first, ``configurable`` second."""
    context = None
    try:
        from langgraph.runtime import get_runtime

        context = getattr(get_runtime(), "context", None)
    except (RuntimeError, KeyError):  # outside a graph run: only the config
        context = None
    return run_settings(context, (config or {}).get("configurable"))


def with_metadata(
    config: RunnableConfig | None, metadata: Mapping[str, Any], tags: Sequence[str] = ()
) -> RunnableConfig:
    """``config`` with extra run metadata and tags (for the trace handler)."""
    cfg: dict[str, Any] = dict(config or {})
    cfg["metadata"] = {**(cfg.get("metadata") or {}), **metadata}
    if tags:
        cfg["tags"] = [*(cfg.get("tags") or []), *tags]
    return cfg  # type: ignore[return-value]


def last_ai(messages: Sequence[BaseMessage]) -> AIMessage | None:
    """The latest AIMessage of a conversation."""
    return next((m for m in reversed(messages) if isinstance(m, AIMessage)), None)


def pending_tool_calls(messages: Sequence[BaseMessage]) -> list[ToolCall]:
    """The latest AI message's tool calls that no ToolMessage answers yet."""
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if isinstance(m, AIMessage):
            answered = {t.tool_call_id for t in messages[i + 1 :] if isinstance(t, ToolMessage)}
            return [
                ToolCall(name=tc["name"], args=tc["args"], id=tc["id"], type="tool_call")
                for tc in m.tool_calls
                if tc["id"] not in answered
            ]
    return []


@dataclass(frozen=True)
class VerifierCall:
    """The verifier call to make: the plan, the policy, and the call's keyword arguments."""

    plan: VerifyPlan
    policy: AgentPolicy
    kwargs: dict[str, Any]


def verifier_call(
    plan: VerifyPlan, policy: AgentPolicy, run_key: str | None, config: RunnableConfig | None
) -> VerifierCall:
    """The verifier's call: its tier, the run's ledger key, the ``aco:verifier`` tag.

    Args:
        plan: The verification plan (``needed``).
        policy: The run's policy.
        run_key: The run's ledger key (the verifier's cost is the run's).
        config: The current run config (callbacks, tags).

    Returns:
        The call, for ``llm.invoke(call.plan.prompt, **call.kwargs)``.

    Example:
        ```python
        call = verifier_call(plan, policy, "t1:3f2a9c1d", config)
        reply = llm.invoke(call.plan.prompt, **call.kwargs)
        ```
    """
    meta = {"aco_role": "verifier", "aco_tier": plan.tier, "aco_step": plan.step}
    kwargs: dict[str, Any] = {
        "config": with_metadata(config, meta, [VERIFIER_TAG]),
        "force_tier": plan.tier,
    }
    if run_key:
        kwargs["aco_run_id"] = run_key
    return VerifierCall(plan, policy, kwargs)


def _stop_update(stop: StopOutcome) -> Update:
    return {"messages": [stop.message], "aco_events": [stop.event]}


def _step_update(outcome: StepOutcome) -> Update:
    return {"messages": [outcome.message], "aco_events": [outcome.event]}


def _verifier_update(outcome: VerifierOutcome) -> Update:
    update: Update = {"aco_events": [outcome.event]}
    if outcome.feedback is not None:
        update["messages"] = [outcome.feedback]
    return update


class ACOAgentNodes:
    """The agent's nodes and edge functions, sharing one model, tool set and policy.

    Args:
        llm: The ``ACORouterChatModel`` (each step is sent with ``force_tier`` and the run's
            ``aco_run_id``).
        tools: LangChain tools or plain functions (run by langgraph's ``ToolNode``).
        policy: The agent's controls (default: ``AgentPolicy(config=llm.config)``).
        system_prompt: Prepended to the conversation when it has no system message.
        step_action: ``(messages, request) -> action`` for per-step routing.

    Example:
        ```python
        nodes = ACOAgentNodes(llm, [read_file], AgentPolicy(max_budget=0.5))
        nodes.agent.invoke({"messages": [HumanMessage("Read setup.cfg")]})
        ```
    """

    def __init__(
        self,
        llm: ACORouterChatModel,
        tools: Sequence[BaseTool | Callable[..., Any]] = (),
        policy: AgentPolicy | None = None,
        *,
        system_prompt: str | None = None,
        step_action: StepActionFn | None = None,
    ) -> None:
        self.llm = llm
        self.policy = policy or AgentPolicy(config=llm.config)
        self.system_prompt = system_prompt
        self.step_action = step_action or default_step_action
        recorder = ToolCallRecorder(lambda: llm.spend_ledger, self.policy.with_settings, {})
        self.tool_node = ToolNode(
            list(tools), wrap_tool_call=recorder.wrap, awrap_tool_call=recorder.awrap
        )
        recorder.known_tools = self.tool_node.tools_by_name
        self.tools_by_name: dict[str, BaseTool] = self.tool_node.tools_by_name
        self.tools: list[BaseTool] = list(self.tools_by_name.values())
        self._bound: Runnable[Any, Any] = llm.bind_tools(self.tools) if self.tools else llm

    # ------------------------------------------------------------------ reading the run
    def takes_tools(self, tier: int, policy: AgentPolicy | None = None) -> bool:
        """Can ``tier`` call tools (``tool_tiers``, else detected from the tier model)?"""
        return takes_tools(self.llm.registry, policy or self.policy, tier)

    def _policy(self, config: RunnableConfig | None) -> AgentPolicy:
        return self.policy.with_settings(node_settings(config))

    def _view(
        self, state: Mapping[str, Any], policy: AgentPolicy, spent: float | None = None
    ) -> tuple[RunView, str | None]:
        """The run as the rules see it; ``spent`` read from the ledger unless given."""
        events = state.get("aco_events") or []
        key = current_run_key(events)
        if spent is None:
            spent = self.llm.spent(key) if key else 0.0
        return RunView.from_events(events, policy, spent=spent), key

    async def _aspent(self, state: Mapping[str, Any]) -> float:
        """The run's spend, read without blocking the event loop (async nodes)."""
        key = current_run_key(state.get("aco_events") or [])
        return await self.llm.aspent(key) if key else 0.0

    # ------------------------------------------------------------------ start / doom
    def _start(self, state: Mapping[str, Any], config: RunnableConfig) -> Update:
        thread = ((config or {}).get("configurable") or {}).get("thread_id")
        event = turn_event(node_settings(config), thread, uuid.uuid4().hex)
        return {"aco_events": [event]}

    def _doom_stop(
        self, state: Mapping[str, Any], config: RunnableConfig, spent: float | None = None
    ) -> StopOutcome | None:
        return doom_stop(self._view(state, self._policy(config), spent)[0])

    def _doom(self, state: Mapping[str, Any], config: RunnableConfig) -> Update:
        stop = self._doom_stop(state, config)
        if stop is None:
            return {}
        dispatch_custom_event(EVENT_STOP, stop.event, config=config)
        return _stop_update(stop)

    async def _adoom(self, state: Mapping[str, Any], config: RunnableConfig) -> Update:
        stop = self._doom_stop(state, config, await self._aspent(state))
        if stop is None:
            return {}
        await adispatch_custom_event(EVENT_STOP, stop.event, config=config)
        return _stop_update(stop)

    # ------------------------------------------------------------------ agent
    def _plan(
        self, state: Mapping[str, Any], config: RunnableConfig, spent: float | None = None
    ) -> tuple[StepPlan | StopOutcome, list[BaseMessage]]:
        policy = self._policy(config)
        view, key = self._view(state, policy, spent)
        messages = list(state["messages"])
        plan = plan_step(
            view,
            policy,
            messages,
            run_key=key or turn_event(node_settings(config), None, uuid.uuid4().hex)["run_key"],
            step_action=self.step_action,
            unavailable=self.llm.registry.unavailable(),
            tools_bound=bool(self.tools),
            can_call_tools=functools.partial(self.takes_tools, policy=policy),
        )
        if self.system_prompt and not any(isinstance(m, SystemMessage) for m in messages):
            messages = [SystemMessage(self.system_prompt), *messages]
        return plan, messages

    def _call_kwargs(
        self, plan: StepPlan, call: TierCall, config: RunnableConfig
    ) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "aco_step": plan.decision.step_num,
            "aco_tier": call.tier,
            "aco_action": plan.action[:200],
            "aco_role": "agent",
        }
        if call.escalated_because:
            meta["aco_escalated"] = call.escalated_because
        return {
            "config": with_metadata(config, meta),
            "force_tier": call.tier,
            "aco_run_id": plan.run_key,
        }

    def _flow(self, plan: StepPlan) -> Any:
        return step_flow(plan, functools.partial(self.takes_tools, policy=plan.policy))

    def _agent(self, state: Mapping[str, Any], config: RunnableConfig) -> Update:
        plan, messages = self._plan(state, config)
        if isinstance(plan, StopOutcome):
            dispatch_custom_event(EVENT_STOP, plan.event, config=config)
            return _stop_update(plan)
        model = self._bound if plan.bind_tools else self.llm
        outcome = drive(
            self._flow(plan),
            lambda call: model.invoke(messages, **self._call_kwargs(plan, call, config)),
        )
        return _step_update(outcome)

    async def _aagent(self, state: Mapping[str, Any], config: RunnableConfig) -> Update:
        plan, messages = self._plan(state, config, await self._aspent(state))
        if isinstance(plan, StopOutcome):
            await adispatch_custom_event(EVENT_STOP, plan.event, config=config)
            return _stop_update(plan)
        model = self._bound if plan.bind_tools else self.llm
        outcome = await adrive(
            self._flow(plan),
            lambda call: model.ainvoke(messages, **self._call_kwargs(plan, call, config)),
        )
        return _step_update(outcome)

    # ------------------------------------------------------------------ tool gate
    def _tool_gate(self, state: Mapping[str, Any], config: RunnableConfig) -> Update:
        policy = self._policy(config)
        view, _key = self._view(state, policy)
        messages = state["messages"]
        ai = last_ai(messages)
        gate = gate_tool_calls(
            view,
            policy,
            ai.tool_calls if ai else [],
            known_tools=self.tools_by_name,
            task_text=request_text(messages),
        )
        if gate.approval is not None:
            gate = apply_approval(gate, interrupt(gate.approval), policy, view.steps)
        for event in gate.events:  # declined calls never run: the trace learns of them here
            with contextlib.suppress(RuntimeError):
                dispatch_custom_event(EVENT_TOOL, dict(event), config=config)
        return {"messages": gate.messages, "aco_events": gate.events}

    # ------------------------------------------------------------------ verification
    def _verify_gate(self, state: Mapping[str, Any], config: RunnableConfig) -> Update:
        plan = plan_verification(
            self._view(state, self._policy(config))[0],
            self._policy(config),
            state["messages"],
            self.llm.registry.unavailable(),
        )
        return {} if plan is None else {"aco_events": [plan.gate_event]}

    def _verifier_call(
        self, state: Mapping[str, Any], config: RunnableConfig, spent: float | None = None
    ) -> VerifierCall | None:
        policy = self._policy(config)
        view, key = self._view(state, policy, spent)
        plan = plan_verification(view, policy, state["messages"], self.llm.registry.unavailable())
        return None if plan is None else verifier_call(plan, policy, key, config)

    def _verifier(self, state: Mapping[str, Any], config: RunnableConfig) -> Update:
        call = self._verifier_call(state, config)
        if call is None:
            return {}
        reply = self.llm.invoke(call.plan.prompt, **call.kwargs)
        outcome = verification_outcome(call.plan, call.policy, reply)
        dispatch_custom_event(EVENT_VERDICT, outcome.verdict, config=config)
        return _verifier_update(outcome)

    async def _averifier(self, state: Mapping[str, Any], config: RunnableConfig) -> Update:
        call = self._verifier_call(state, config, await self._aspent(state))
        if call is None:
            return {}
        reply = await self.llm.ainvoke(call.plan.prompt, **call.kwargs)
        outcome = verification_outcome(call.plan, call.policy, reply)
        await adispatch_custom_event(EVENT_VERDICT, outcome.verdict, config=config)
        return _verifier_update(outcome)

    # ------------------------------------------------------------------ runnables
    @property
    def start(self) -> Runnable[Any, Update]:
        """Node: start a turn (its run key; budget and doom rules count from here)."""
        return RunnableLambda(self._start, name="start")

    @property
    def doom(self) -> Runnable[Any, Update]:
        """Node: the doom detector; ends a doomed run with a final AIMessage."""
        return RunnableLambda(self._doom, afunc=self._adoom, name="doom")

    @property
    def agent(self) -> Runnable[Any, Update]:
        """Node: per-step routing and the model call (with escalation)."""
        return RunnableLambda(self._agent, afunc=self._aagent, name="agent")

    @property
    def tool_gate(self) -> Runnable[Any, Update]:
        """Node: the tool gate (and human approval of critical calls)."""
        return RunnableLambda(self._tool_gate, name="tool_gate")

    @property
    def tools_node(self) -> ToolNode:
        """Node: langgraph's ``ToolNode`` for the calls the gate allowed (one ``Send`` each)."""
        return self.tool_node

    @property
    def verify_gate(self) -> Runnable[Any, Update]:
        """Node: the verification gate on a final answer."""
        return RunnableLambda(self._verify_gate, name="verify_gate")

    @property
    def verifier(self) -> Runnable[Any, Update]:
        """Node: the verifier call."""
        return RunnableLambda(self._verifier, afunc=self._averifier, name="verifier")

    # ------------------------------------------------------------------ edges
    @staticmethod
    def after_doom(state: Mapping[str, Any]) -> str:
        """Edge: END when the doom node stopped the run, else ``agent``."""
        last = state["messages"][-1] if state.get("messages") else None
        return END if is_stop_message(last) else "agent"

    @staticmethod
    def after_agent(state: Mapping[str, Any]) -> str:
        """Edge: ``tool_gate`` for tool calls, END for a stop, else ``verify_gate``."""
        last = state["messages"][-1]
        if is_stop_message(last):
            return END
        if isinstance(last, AIMessage) and last.tool_calls:
            return "tool_gate"
        return "verify_gate"

    @staticmethod
    def after_tool_gate(state: Mapping[str, Any]) -> list[Send] | str:
        """Edge: one ``Send("tools", [call])`` per call the gate let through, else ``doom``."""
        pending = pending_tool_calls(state["messages"])
        return [Send("tools", [tc]) for tc in pending] if pending else "doom"

    @staticmethod
    def after_verify_gate(state: Mapping[str, Any]) -> str:
        """Edge: ``verifier`` when the gate asked for it, else END."""
        for e in reversed(state.get("aco_events") or []):
            if e.get("type") == "verify_gate":
                return "verifier" if e.get("needed") else END
            if e.get("type") in ("model", "turn"):
                break
        return END

    @staticmethod
    def after_verifier(state: Mapping[str, Any]) -> str:
        """Edge: back to ``doom`` (and the agent) after a FAIL, else END."""
        for e in reversed(state.get("aco_events") or []):
            if e.get("type") == "verifier":
                return "doom" if e.get("passed") is False else END
        return END


__all__ = [
    "ACOAgentNodes",
    "StepActionFn",
    "VerifierCall",
    "last_ai",
    "node_settings",
    "pending_tool_calls",
    "verifier_call",
    "with_metadata",
]
