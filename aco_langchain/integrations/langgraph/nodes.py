"""LangGraph nodes of the ACO agent: per-step routing, tool gate, tools, verification, doom.

``ACOAgentNodes`` holds what the nodes share (the router chat model, the tools, the
``AgentPolicy``) and exposes each node as a runnable with a sync and an async body that share
every decision (``graph/control.py``); only the model and tool I/O differ.

- ``start``: marks a new turn (budget and doom rules restart per input);
- ``doom``: the doom detector; a doomed run ends with a final AIMessage giving the reason;
- ``agent``: ``PerStepRouter`` picks the step's tier, the node calls ``ACORouterChatModel``
  with ``force_tier`` (escalating one tier on an empty answer or an unparseable tool call);
- ``tool_gate``: the tool gate per tool call (skipped calls get a ToolMessage saying why),
  and, for critical calls with ``human_approval``, ``interrupt`` for a human's decision;
- ``tools``: runs the calls the gate let through (errors become error ToolMessages);
- ``verify_gate``: decides whether the final answer needs the verifier;
- ``verifier``: calls the verifier tier (runs tagged ``aco:verifier``); a FAIL sends the
  run back to the agent with the verifier's reason, one tier up.

Usage::

    nodes = ACOAgentNodes(ACORouterChatModel(tier_models=tiers), [search], AgentPolicy())
    builder.add_node("agent", nodes.agent)
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks.manager import adispatch_custom_event, dispatch_custom_event
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langchain_core.tools import BaseTool
from langchain_core.tools import tool as as_tool
from langgraph.errors import GraphBubbleUp
from langgraph.graph import END
from langgraph.types import interrupt

from aco_langchain.agent.per_step import StepDecision
from aco_langchain.integrations.langgraph.control import (
    EVENT_STOP,
    EVENT_VERDICT,
    VERIFIER_PROMPT,
    VERIFIER_TAG,
    AgentPolicy,
    RunView,
    aco_meta,
    answer_confidence,
    approval_granted,
    default_step_action,
    doom_or_stop,
    escalation_reason,
    gate_tool_call,
    is_critical_call,
    message_text,
    model_event,
    parse_verdict,
    request_text,
    route_step,
    stop_message_text,
    tier_takes_tools,
    tool_event,
    verifier_tier,
    verify_gate,
)

StepActionFn = Callable[[Sequence[BaseMessage], str], str]


@dataclass
class _Step:
    """One agent step, decided before any I/O."""

    policy: AgentPolicy
    decision: StepDecision
    bind_tools: bool
    action: str
    messages: list[BaseMessage]
    run_key: str
    new_run: bool


def _configurable(config: RunnableConfig | None) -> dict[str, Any]:
    return dict((config or {}).get("configurable") or {})


def _with_metadata(
    config: RunnableConfig | None, metadata: dict[str, Any], tags: Sequence[str] = ()
) -> RunnableConfig:
    cfg: dict[str, Any] = dict(config or {})
    cfg["metadata"] = {**(cfg.get("metadata") or {}), **metadata}
    if tags:
        cfg["tags"] = [*(cfg.get("tags") or []), *tags]
    return cfg  # type: ignore[return-value]


def _last_ai(messages: Sequence[BaseMessage]) -> AIMessage | None:
    for m in reversed(messages):
        if isinstance(m, AIMessage):
            return m
    return None


def _stop_update(kind: str, reason: str) -> dict[str, Any]:
    msg = AIMessage(
        content=stop_message_text(kind, reason),
        name="aco",
        response_metadata={"aco_stop": {"kind": kind, "reason": reason}},
    )
    return {"messages": [msg], "aco_events": [{"type": "stop", "kind": kind, "reason": reason}]}


class ACOAgentNodes:
    """The agent's nodes and edge functions, sharing one model, tool set and policy.

    ``llm`` is an ``ACORouterChatModel`` (each step is sent with ``force_tier``); ``tools``
    are LangChain tools or plain functions; ``step_action(messages, request)`` describes the
    next step for the per-step router (``default_step_action`` when None).

    Usage::

        nodes = ACOAgentNodes(llm, [read_file], AgentPolicy(max_budget=0.5))
        nodes.agent.invoke({"messages": [HumanMessage("Read setup.cfg")]})
    """

    def __init__(
        self,
        llm: Any,
        tools: Sequence[BaseTool | Callable[..., Any]] = (),
        policy: AgentPolicy | None = None,
        *,
        system_prompt: str | None = None,
        step_action: StepActionFn | None = None,
    ) -> None:
        self.llm = llm
        self.tools: list[BaseTool] = [t if isinstance(t, BaseTool) else as_tool(t) for t in tools]
        self.tools_by_name = {t.name: t for t in self.tools}
        self.policy = policy or AgentPolicy(config=llm.config)
        self.system_prompt = system_prompt
        self.step_action = step_action or default_step_action
        self._bound = llm.bind_tools(self.tools) if self.tools else llm

    # ------------------------------------------------------------------ helpers
    def takes_tools(self, tier: int) -> bool:
        """Can ``tier`` call tools (``tool_tiers``, else detected from the tier model)?"""
        return tier_takes_tools(self.llm, self.policy, tier)

    def _policy(self, config: RunnableConfig | None) -> AgentPolicy:
        return self.policy.with_overrides(_configurable(config))

    @staticmethod
    def _run_key(state: Mapping[str, Any], config: RunnableConfig | None) -> tuple[str, bool]:
        conf = _configurable(config)
        if conf.get("aco_run_id"):
            return str(conf["aco_run_id"]), False
        for e in reversed(state.get("aco_events") or []):
            if e.get("run_key"):
                return str(e["run_key"]), False
            if e.get("type") == "turn":
                break
        if conf.get("thread_id"):
            return f"{conf['thread_id']}:{uuid.uuid4().hex[:8]}", True
        return f"aco-agent-{uuid.uuid4().hex[:12]}", True

    def _prepare(
        self, state: Mapping[str, Any], config: RunnableConfig | None
    ) -> _Step | dict[str, Any]:
        policy = self._policy(config)
        view = RunView.from_events(state.get("aco_events") or [], policy)
        messages = list(state["messages"])
        request = request_text(messages)
        action = self.step_action(messages, request)
        decision, bind = route_step(
            view,
            policy,
            action,
            unavailable=self.llm.registry.unavailable(),
            tools_bound=bool(self.tools),
            takes_tools=self.takes_tools,
        )
        if decision.stop:
            return _stop_update("budget_low", decision.reason)
        if self.system_prompt and not any(isinstance(m, SystemMessage) for m in messages):
            messages = [SystemMessage(self.system_prompt), *messages]
        run_key, new = self._run_key(state, config)
        return _Step(policy, decision, bind, action, messages, run_key, new)

    def _model_config(
        self, step: _Step, tier: int, config: RunnableConfig | None, why: str | None
    ) -> Any:
        meta: dict[str, Any] = {
            "aco_step": step.decision.step_num,
            "aco_tier": tier,
            "aco_action": step.action[:200],
            "aco_role": "agent",
        }
        if why:
            meta["aco_escalated"] = why
        return _with_metadata(config, meta)

    def _runnable(self, bind: bool) -> Runnable[Any, Any]:
        return self._bound if bind else self.llm

    def _next_tier(self, step: _Step, tier: int, answer: AIMessage) -> tuple[int, str] | None:
        conf = answer_confidence(answer)
        why = escalation_reason(answer, conf, step.policy)
        if why is None or tier >= 5:
            return None
        up = [n for n in range(tier + 1, 6) if not step.bind_tools or self.takes_tools(n)]
        return (up[0], why) if up else None

    def _finish_step(self, step: _Step, answers: list[tuple[int, AIMessage, str | None]]) -> dict:
        final_tier, final, _ = answers[-1]
        decision = step.decision
        extra = 0.0
        escalations = [why for _t, _m, why in answers[1:] if why]
        if len(answers) > 1:
            from aco_langchain.integrations.langgraph.control import call_cost

            extra = sum(call_cost(m, t, step.policy.config)[0] for t, m, _w in answers[:-1])
            decision = decision.model_copy(
                update={
                    "reason": decision.reason
                    + "".join(f"; escalated ({w}) -> tier {t}" for t, _m, w in answers[1:])
                }
            )
        event = model_event(
            final,
            decision,
            step.policy,
            action=step.action,
            escalated=bool(escalations),
            tier=final_tier,
            extra_cost=extra,
        )
        event["run_key"] = step.run_key
        final.response_metadata["aco_step"] = {
            "step": decision.step_num,
            "tier": event["tier"],
            "reason": decision.reason,
            "cost": event["cost"],
        }
        return {"messages": [final], "aco_events": [event]}

    # ------------------------------------------------------------------ agent node
    def _agent(self, state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        step = self._prepare(state, config)
        if isinstance(step, dict):
            dispatch_custom_event(EVENT_STOP, step["aco_events"][0], config=config)
            return step
        tier = step.decision.adjusted_tier
        answers: list[tuple[int, AIMessage, str | None]] = []
        why: str | None = None
        for _ in range(step.policy.max_escalations + 1):
            answer = self._runnable(step.bind_tools).invoke(
                step.messages,
                config=self._model_config(step, tier, config, why),
                force_tier=tier,
                aco_run_id=step.run_key,
            )
            answers.append((tier, answer, why))
            nxt = self._next_tier(step, tier, answer)
            if nxt is None:
                break
            tier, why = nxt
        return self._finish_step(step, answers)

    async def _aagent(self, state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        step = self._prepare(state, config)
        if isinstance(step, dict):
            await adispatch_custom_event(EVENT_STOP, step["aco_events"][0], config=config)
            return step
        tier = step.decision.adjusted_tier
        answers: list[tuple[int, AIMessage, str | None]] = []
        why: str | None = None
        for _ in range(step.policy.max_escalations + 1):
            answer = await self._runnable(step.bind_tools).ainvoke(
                step.messages,
                config=self._model_config(step, tier, config, why),
                force_tier=tier,
                aco_run_id=step.run_key,
            )
            answers.append((tier, answer, why))
            nxt = self._next_tier(step, tier, answer)
            if nxt is None:
                break
            tier, why = nxt
        return self._finish_step(step, answers)

    # ------------------------------------------------------------------ start / doom
    @staticmethod
    def _start(state: dict[str, Any]) -> dict[str, Any]:
        return {"aco_events": [{"type": "turn"}], "aco_allowed": []}

    def _doom_decision(
        self, state: Mapping[str, Any], config: RunnableConfig | None
    ) -> dict[str, Any] | None:
        view = RunView.from_events(state.get("aco_events") or [], self._policy(config))
        found = doom_or_stop(view)
        return None if found is None else _stop_update(*found)

    def _doom(self, state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        update = self._doom_decision(state, config)
        if update is None:
            return {}
        dispatch_custom_event(EVENT_STOP, update["aco_events"][0], config=config)
        return update

    async def _adoom(self, state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        update = self._doom_decision(state, config)
        if update is None:
            return {}
        await adispatch_custom_event(EVENT_STOP, update["aco_events"][0], config=config)
        return update

    # ------------------------------------------------------------------ tool gate
    def _tool_gate(self, state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        from aco_langchain.routing.rules import classify_task

        policy = self._policy(config)
        view = RunView.from_events(state.get("aco_events") or [], policy)
        ai = _last_ai(state["messages"])
        calls: list[dict[str, Any]] = [dict(tc) for tc in ai.tool_calls] if ai else []
        task_type = view.task_type or classify_task(request_text(state["messages"]))
        messages: list[BaseMessage] = []
        events: list[dict[str, Any]] = []
        allowed: list[dict[str, Any]] = []
        for tc in calls:
            if tc["name"] not in self.tools_by_name:
                allowed.append(tc)  # the tools node answers with an error message
                continue
            g = gate_tool_call(view, policy, tc, task_type)
            if g.allowed:
                allowed.append(tc)
                continue
            messages.append(
                ToolMessage(
                    content=f"Tool call skipped by the cost gate: {g.reason}",
                    tool_call_id=tc["id"],
                    name=tc["name"],
                    status="error",
                )
            )
            events.append(
                tool_event(
                    tc, policy, step=view.steps, success=False, skipped=True, reason=g.reason
                )
            )
        critical = [tc for tc in allowed if is_critical_call(tc, policy)]
        if critical and policy.human_approval:
            answer = interrupt(
                {
                    "type": "aco_approval",
                    "question": "Approve these critical tool calls?",
                    "risk": policy.task_risk,
                    "tool_calls": [
                        {"name": tc["name"], "args": tc["args"], "id": tc["id"]} for tc in critical
                    ],
                }
            )
            if not approval_granted(answer):
                why = answer.get("reason") if isinstance(answer, Mapping) else None
                reason = f"rejected by a human{': ' + str(why) if why else ''}"
                for tc in critical:
                    allowed.remove(tc)
                    messages.append(
                        ToolMessage(
                            content=f"Tool call not run: {reason}",
                            tool_call_id=tc["id"],
                            name=tc["name"],
                            status="error",
                        )
                    )
                    events.append(
                        tool_event(
                            tc, policy, step=view.steps, success=False, skipped=True, reason=reason
                        )
                    )
        return {
            "messages": messages,
            "aco_events": events,
            "aco_allowed": [tc["id"] for tc in allowed],
        }

    # ------------------------------------------------------------------ tools
    def _pending_calls(self, state: Mapping[str, Any]) -> list[dict[str, Any]]:
        ai = _last_ai(state["messages"])
        allowed = set(state.get("aco_allowed") or [])
        return [dict(tc) for tc in (ai.tool_calls if ai else []) if tc["id"] in allowed]

    def _unknown_tool(self, tc: Mapping[str, Any]) -> ToolMessage:
        names = ", ".join(self.tools_by_name) or "none"
        return ToolMessage(
            content=f"Error: unknown tool {tc['name']!r} (available: {names})",
            tool_call_id=tc["id"],
            name=tc["name"],
            status="error",
        )

    @staticmethod
    def _error_message(tc: Mapping[str, Any], exc: BaseException) -> ToolMessage:
        return ToolMessage(
            content=f"Error: {type(exc).__name__}: {exc}",
            tool_call_id=tc["id"],
            name=tc["name"],
            status="error",
        )

    @staticmethod
    def _as_message(tc: Mapping[str, Any], out: Any) -> ToolMessage:
        if isinstance(out, ToolMessage):
            return out
        return ToolMessage(content=str(out), tool_call_id=tc["id"], name=tc["name"])

    def _tool_update(
        self, state: Mapping[str, Any], config: RunnableConfig, results: list[ToolMessage]
    ) -> dict[str, Any]:
        policy = self._policy(config)
        step = RunView.from_events(state.get("aco_events") or [], policy).steps
        events = []
        calls = {tc["id"]: tc for tc in self._pending_calls(state)}
        for msg in results:
            tc = calls.get(msg.tool_call_id, {"name": msg.name, "args": None})
            ok = msg.status != "error"
            events.append(
                tool_event(
                    tc,
                    policy,
                    step=step,
                    success=ok,
                    error=None if ok else message_text(msg)[:300],
                )
            )
        return {"messages": results, "aco_events": events, "aco_allowed": []}

    def _run_tool(self, tc: dict[str, Any], config: RunnableConfig) -> ToolMessage:
        tool = self.tools_by_name.get(tc["name"])
        if tool is None:
            return self._unknown_tool(tc)
        try:
            return self._as_message(tc, tool.invoke({**tc, "type": "tool_call"}, config))
        except GraphBubbleUp:
            raise
        except Exception as exc:  # noqa: BLE001 - a failing tool is an answer, not a crash
            return self._error_message(tc, exc)

    async def _arun_tool(self, tc: dict[str, Any], config: RunnableConfig) -> ToolMessage:
        tool = self.tools_by_name.get(tc["name"])
        if tool is None:
            return self._unknown_tool(tc)
        try:
            out = await tool.ainvoke({**tc, "type": "tool_call"}, config)
            return self._as_message(tc, out)
        except GraphBubbleUp:
            raise
        except Exception as exc:  # noqa: BLE001
            return self._error_message(tc, exc)

    def _tools(self, state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        results = [self._run_tool(tc, config) for tc in self._pending_calls(state)]
        return self._tool_update(state, config, results)

    async def _atools(self, state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        results = await asyncio.gather(
            *(self._arun_tool(tc, config) for tc in self._pending_calls(state))
        )
        return self._tool_update(state, config, list(results))

    # ------------------------------------------------------------------ verification
    def _verify_gate(self, state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        policy = self._policy(config)
        ai = _last_ai(state["messages"])
        if not policy.verify_answers or ai is None or ai.name == "aco":
            return {}
        view = RunView.from_events(state.get("aco_events") or [], policy)
        conf = answer_confidence(ai)
        if conf is None:
            conf = aco_meta(ai).get("confidence")
        d = verify_gate(view, policy, conf)
        return {
            "aco_events": [
                {
                    "type": "verify_gate",
                    "step": view.steps,
                    "needed": d.needed,
                    "confidence": d.confidence,
                    "reason": d.reason,
                }
            ]
        }

    def _verifier_request(
        self, state: Mapping[str, Any], config: RunnableConfig
    ) -> tuple[AgentPolicy, int, list[BaseMessage], Any]:
        policy = self._policy(config)
        view = RunView.from_events(state.get("aco_events") or [], policy)
        last = view.last_model() or {}
        tier = verifier_tier(policy, int(last.get("tier") or 1))
        ai = _last_ai(state["messages"])
        prompt = [
            SystemMessage(VERIFIER_PROMPT),
            HumanMessage(
                f"REQUEST:\n{request_text(state['messages'])}\n\n"
                f"ANSWER:\n{message_text(ai) if ai else ''}"
            ),
        ]
        cfg = _with_metadata(
            config,
            {"aco_role": "verifier", "aco_tier": tier, "aco_step": view.steps},
            [VERIFIER_TAG],
        )
        return policy, tier, prompt, cfg

    def _verifier_update(
        self, state: Mapping[str, Any], policy: AgentPolicy, tier: int, reply: AIMessage
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        from aco_langchain.integrations.langgraph.control import call_cost

        passed, why = parse_verdict(message_text(reply))
        meta_tier = int(aco_meta(reply).get("tier") or tier)
        cost = call_cost(reply, meta_tier, policy.config)[0]
        step = RunView.from_events(state.get("aco_events") or [], policy).steps
        event = {
            "type": "verifier",
            "step": step,
            "tier": meta_tier,
            "model_id": policy.config.tier(meta_tier).model_id,
            "passed": passed,
            "why": why[:300],
            "cost": cost,
        }
        update: dict[str, Any] = {"aco_events": [event]}
        if passed is False:
            update["messages"] = [
                HumanMessage(
                    f"A verifier rejected your last answer: {why}\nFix it and answer again.",
                    name="aco_verifier",
                )
            ]
        return update, {"passed": passed, "why": why, "tier": meta_tier, "cost": cost}

    def _verifier(self, state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        policy, tier, prompt, cfg = self._verifier_request(state, config)
        reply = self.llm.invoke(prompt, config=cfg, force_tier=tier)
        update, verdict = self._verifier_update(state, policy, tier, reply)
        dispatch_custom_event(EVENT_VERDICT, verdict, config=config)
        return update

    async def _averifier(self, state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        policy, tier, prompt, cfg = self._verifier_request(state, config)
        reply = await self.llm.ainvoke(prompt, config=cfg, force_tier=tier)
        update, verdict = self._verifier_update(state, policy, tier, reply)
        await adispatch_custom_event(EVENT_VERDICT, verdict, config=config)
        return update

    # ------------------------------------------------------------------ runnables
    @property
    def start(self) -> Runnable[Any, Any]:
        """Node: start a turn (budget and doom rules count from here)."""
        return RunnableLambda(self._start, name="start")

    @property
    def doom(self) -> Runnable[Any, Any]:
        """Node: the doom detector; ends a doomed run with a final AIMessage."""
        return RunnableLambda(self._doom, afunc=self._adoom, name="doom")

    @property
    def agent(self) -> Runnable[Any, Any]:
        """Node: per-step routing and the model call (with escalation)."""
        return RunnableLambda(self._agent, afunc=self._aagent, name="agent")

    @property
    def tool_gate(self) -> Runnable[Any, Any]:
        """Node: the tool gate (and human approval of critical calls)."""
        return RunnableLambda(self._tool_gate, name="tool_gate")

    @property
    def tools_node(self) -> Runnable[Any, Any]:
        """Node: run the tool calls the gate allowed."""
        return RunnableLambda(self._tools, afunc=self._atools, name="tools")

    @property
    def verify_gate(self) -> Runnable[Any, Any]:
        """Node: the verification gate on a final answer."""
        return RunnableLambda(self._verify_gate, name="verify_gate")

    @property
    def verifier(self) -> Runnable[Any, Any]:
        """Node: the verifier call."""
        return RunnableLambda(self._verifier, afunc=self._averifier, name="verifier")

    # ------------------------------------------------------------------ edges
    @staticmethod
    def after_doom(state: Mapping[str, Any]) -> str:
        """Edge: END when the doom node stopped the run, else ``agent``."""
        last = state["messages"][-1] if state.get("messages") else None
        return END if isinstance(last, AIMessage) and last.name == "aco" else "agent"

    @staticmethod
    def after_agent(state: Mapping[str, Any]) -> str:
        """Edge: ``tool_gate`` for tool calls, END for a stop, else ``verify_gate``."""
        last = state["messages"][-1]
        if isinstance(last, AIMessage) and last.name == "aco":
            return END
        if isinstance(last, AIMessage) and last.tool_calls:
            return "tool_gate"
        return "verify_gate"

    @staticmethod
    def after_tool_gate(state: Mapping[str, Any]) -> str:
        """Edge: ``tools`` when any call was allowed, else back to ``doom``."""
        return "tools" if state.get("aco_allowed") else "doom"

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


__all__ = ["ACOAgentNodes", "StepActionFn"]
