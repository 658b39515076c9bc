"""``ACOMiddleware``: the ACO agent controls for LangChain v1 ``create_agent``.

The same decisions as the LangGraph nodes (``integrations.langgraph.control``), as middleware:

- ``before_agent``: a new input starts a turn (budget and doom rules count from there);
- ``before_model``: the doom detector and the per-step budget; a doomed or out-of-budget run
  jumps to the end with a final AIMessage giving the reason (``jump_to="end"``);
- ``wrap_model_call`` / ``awrap_model_call``: ``PerStepRouter`` picks the step's tier and the
  call goes to it (``request.override(model=...)``: the ``ACORouterChatModel`` with
  ``force_tier``, or with ``direct=True`` the tier's own chat model); an empty answer, an
  unparseable tool call or a low-confidence answer is retried one tier up by calling the
  handler again;
- ``wrap_tool_call`` / ``awrap_tool_call``: the tool gate (skipped calls get a ToolMessage
  saying why), a human's approval of critical calls (``interrupt``), and the outcome record;
- ``after_model``: the verification gate on a final answer; a verifier FAIL sends the run
  back to the model (``jump_to="model"``) with the verifier's reason, one tier up.

State: ``aco_events``, the run's event log (merged by concatenation, checkpoint-friendly).

Usage::

    from langchain.agents import create_agent
    from aco_langchain.integrations.middleware import ACOMiddleware
    aco = ACOMiddleware(ACOConfig(), tier_models=tiers, max_budget=0.5)
    agent = create_agent(aco.model, [search], middleware=[aco])
    agent.invoke({"messages": [("user", "Find the release date")]})
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, NotRequired

from langchain.agents.middleware.types import (
    AgentMiddleware,
    AgentState,
    ExtendedModelResponse,
    ModelRequest,
    ModelResponse,
    hook_config,
)
from langchain_core.callbacks.manager import adispatch_custom_event, dispatch_custom_event
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.errors import GraphBubbleUp
from langgraph.types import Command, interrupt

from aco_langchain.agent.per_step import StepDecision
from aco_langchain.integrations.langgraph.agent import ConfigOrModel, resolve_router_model
from aco_langchain.integrations.langgraph.control import (
    EVENT_STOP,
    EVENT_VERDICT,
    VERIFIER_PROMPT,
    VERIFIER_TAG,
    AgentPolicy,
    Risk,
    RunView,
    ToollessPolicy,
    aco_meta,
    answer_confidence,
    approval_granted,
    call_cost,
    default_step_action,
    doom_or_stop,
    escalation_reason,
    gate_tool_call,
    is_critical_call,
    merge_events,
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

StepActionFn = Callable[[Sequence[Any], str], str]


class ACOMiddlewareState(AgentState):
    """Agent state plus the ACO event log."""

    aco_events: NotRequired[Annotated[list[dict[str, Any]], merge_events]]


@dataclass
class _ModelPlan:
    policy: AgentPolicy
    decision: StepDecision
    bind_tools: bool
    action: str


def _current_config() -> Any:
    try:
        from langgraph.config import get_config

        return get_config()
    except RuntimeError:
        return None


def _emit(name: str, data: dict[str, Any]) -> None:
    """Dispatch a custom event for the trace handler (no-op outside a run)."""
    with contextlib.suppress(RuntimeError):
        dispatch_custom_event(name, data)


async def _aemit(name: str, data: dict[str, Any]) -> None:
    with contextlib.suppress(RuntimeError):
        await adispatch_custom_event(name, data)


def _stop(kind: str, reason: str) -> dict[str, Any]:
    msg = AIMessage(
        stop_message_text(kind, reason),
        name="aco",
        response_metadata={"aco_stop": {"kind": kind, "reason": reason}},
    )
    return {
        "jump_to": "end",
        "messages": [msg],
        "aco_events": [{"type": "stop", "kind": kind, "reason": reason}],
    }


def _first_ai(response: Any) -> AIMessage | None:
    if isinstance(response, AIMessage):
        return response
    result = getattr(response, "result", None)
    if result is None and hasattr(response, "model_response"):
        result = response.model_response.result
    for m in result or []:
        if isinstance(m, AIMessage):
            return m
    return None


class ACOMiddleware(AgentMiddleware):
    """Per-step routing, escalation, tool gate, verification and doom stop for ``create_agent``.

    ``config_or_model``: an ``ACOConfig`` / YAML path / dict (with ``tier_models``) or a
    ready ``ACORouterChatModel``. Pass ``aco.model`` as ``create_agent``'s model (any model
    works: each call is overridden). ``direct=True`` calls the tier's own chat model instead
    of the router model (costs are then priced from usage at the tier's price).

    Usage::

        aco = ACOMiddleware(cfg, tier_models=tiers, task_risk="high", max_budget=1.0)
        agent = create_agent(aco.model, tools, middleware=[aco])
    """

    state_schema = ACOMiddlewareState  # type: ignore[assignment]

    def __init__(
        self,
        config_or_model: ConfigOrModel = None,
        *,
        tier_models: Mapping[int, BaseChatModel] | None = None,
        max_budget: float | None = None,
        task_risk: Risk = "medium",
        verifier_tier: int | None = None,
        verify_answers: bool = True,
        toolless_tiers: ToollessPolicy = "skip",
        tool_tiers: Iterable[int] | None = None,
        human_approval: bool = False,
        max_escalations: int = 1,
        step_action: StepActionFn | None = None,
        direct: bool = False,
    ) -> None:
        super().__init__()
        if max_budget is not None and max_budget < 0:
            raise ValueError(f"max_budget must be >= 0, got {max_budget}")
        if verifier_tier is not None and verifier_tier not in range(1, 6):
            raise ValueError(f"verifier_tier must be 1 to 5, got {verifier_tier}")
        self.llm = resolve_router_model(config_or_model, tier_models)
        self.policy = AgentPolicy(
            config=self.llm.config,
            max_budget=max_budget,
            task_risk=task_risk,
            verifier_tier=verifier_tier,
            toolless_tiers=toolless_tiers,
            human_approval=human_approval,
            max_escalations=max_escalations,
            verify_answers=verify_answers,
        )
        self.step_action = step_action or default_step_action
        self.direct = direct

    @property
    def model(self) -> Any:
        """The ``ACORouterChatModel`` to pass to ``create_agent``."""
        return self.llm

    # ------------------------------------------------------------------ shared decisions
    def _policy(self, runtime: Any = None) -> AgentPolicy:
        conf = _current_config() or {}
        return self.policy.with_overrides(conf.get("configurable"))

    def _view(self, state: Mapping[str, Any], policy: AgentPolicy) -> RunView:
        return RunView.from_events(state.get("aco_events") or [], policy)

    def takes_tools(self, tier: int) -> bool:
        """Can ``tier`` call tools (``tool_tiers``, else detected from the tier model)?"""
        return tier_takes_tools(self.llm, self.policy, tier)

    def _before_model(self, state: Mapping[str, Any]) -> dict[str, Any] | None:
        policy = self._policy()
        view = self._view(state, policy)
        found = doom_or_stop(view)
        if found is not None:
            return _stop(*found)
        return None

    def _plan(self, request: ModelRequest) -> _ModelPlan | dict[str, Any]:
        policy = self._policy()
        view = self._view(request.state, policy)
        request_str = request_text(request.messages)
        action = self.step_action(request.messages, request_str)
        decision, bind = route_step(
            view,
            policy,
            action,
            unavailable=self.llm.registry.unavailable(),
            tools_bound=bool(request.tools),
            takes_tools=self.takes_tools,
        )
        if decision.stop:
            return _stop("budget_low", decision.reason)
        return _ModelPlan(policy, decision, bind, action)

    def _tier_request(self, request: ModelRequest, plan: _ModelPlan, tier: int) -> ModelRequest:
        overrides: dict[str, Any] = {}
        if self.direct:
            overrides["model"] = self.llm.registry.model(tier)
        else:
            overrides["model"] = self.llm
            overrides["model_settings"] = {**request.model_settings, "force_tier": tier}
        if not plan.bind_tools and request.tools:
            overrides["tools"] = []
            overrides["tool_choice"] = None
        return request.override(**overrides)

    def _next_tier(self, plan: _ModelPlan, tier: int, answer: AIMessage | None) -> Any:
        if answer is None:
            return None
        why = escalation_reason(answer, answer_confidence(answer), plan.policy)
        if why is None or tier >= 5:
            return None
        up = [n for n in range(tier + 1, 6) if not plan.bind_tools or self.takes_tools(n)]
        return (up[0], why) if up else None

    def _finish(
        self, plan: _ModelPlan, answers: list[tuple[int, Any, AIMessage | None, str | None]]
    ) -> Any:
        tier, response, ai, _ = answers[-1]
        if ai is None:
            return response
        decision = plan.decision
        extra = 0.0
        if len(answers) > 1:
            extra = sum(
                call_cost(m, t, plan.policy.config)[0] for t, _r, m, _w in answers[:-1] if m
            )
            decision = decision.model_copy(
                update={
                    "reason": decision.reason
                    + "".join(f"; escalated ({w}) -> tier {t}" for t, _r, _m, w in answers[1:])
                }
            )
        event = model_event(
            ai,
            decision,
            plan.policy,
            action=plan.action,
            escalated=len(answers) > 1,
            tier=tier,
            extra_cost=extra,
        )
        ai.response_metadata["aco_step"] = {
            "step": decision.step_num,
            "tier": event["tier"],
            "reason": decision.reason,
            "cost": event["cost"],
        }
        if isinstance(response, AIMessage):
            response = ModelResponse(result=[response])
        return ExtendedModelResponse(
            model_response=response, command=Command(update={"aco_events": [event]})
        )

    # ------------------------------------------------------------------ hooks: turn, doom
    def before_agent(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        """Start a turn: budget and doom rules count from this input."""
        return {"aco_events": [{"type": "turn"}]}

    async def abefore_agent(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        """Async ``before_agent``."""
        return self.before_agent(state, runtime)

    @hook_config(can_jump_to=["end"])
    def before_model(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        """End a doomed run with a final message (``jump_to="end"``)."""
        update = self._before_model(state)
        if update is not None:
            _emit(EVENT_STOP, update["aco_events"][0])
        return update

    @hook_config(can_jump_to=["end"])
    async def abefore_model(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        """Async ``before_model``."""
        update = self._before_model(state)
        if update is not None:
            await _aemit(EVENT_STOP, update["aco_events"][0])
        return update

    # ------------------------------------------------------------------ model calls
    def wrap_model_call(self, request: ModelRequest, handler: Callable[[ModelRequest], Any]) -> Any:
        """Route the step to its tier; retry one tier up on an unusable answer."""
        plan = self._plan(request)
        if isinstance(plan, dict):
            stop = plan["messages"][0]
            _emit(EVENT_STOP, plan["aco_events"][0])
            return ExtendedModelResponse(
                model_response=ModelResponse(result=[stop]),
                command=Command(update={"aco_events": plan["aco_events"]}),
            )
        tier = plan.decision.adjusted_tier
        answers: list[tuple[int, Any, AIMessage | None, str | None]] = []
        why: str | None = None
        for _ in range(plan.policy.max_escalations + 1):
            response = handler(self._tier_request(request, plan, tier))
            ai = _first_ai(response)
            answers.append((tier, response, ai, why))
            nxt = self._next_tier(plan, tier, ai)
            if nxt is None:
                break
            tier, why = nxt
        return self._finish(plan, answers)

    async def awrap_model_call(
        self, request: ModelRequest, handler: Callable[[ModelRequest], Awaitable[Any]]
    ) -> Any:
        """Async ``wrap_model_call`` (same decisions)."""
        plan = self._plan(request)
        if isinstance(plan, dict):
            stop = plan["messages"][0]
            await _aemit(EVENT_STOP, plan["aco_events"][0])
            return ExtendedModelResponse(
                model_response=ModelResponse(result=[stop]),
                command=Command(update={"aco_events": plan["aco_events"]}),
            )
        tier = plan.decision.adjusted_tier
        answers: list[tuple[int, Any, AIMessage | None, str | None]] = []
        why: str | None = None
        for _ in range(plan.policy.max_escalations + 1):
            response = await handler(self._tier_request(request, plan, tier))
            ai = _first_ai(response)
            answers.append((tier, response, ai, why))
            nxt = self._next_tier(plan, tier, ai)
            if nxt is None:
                break
            tier, why = nxt
        return self._finish(plan, answers)

    # ------------------------------------------------------------------ tools
    def _gate(self, request: Any) -> tuple[AgentPolicy, int, ToolMessage | None, dict | None]:
        """Gate one tool call: ``(policy, step, skip message, skip event)``."""
        from aco_langchain.routing.rules import classify_task

        policy = self._policy()
        state = request.state if isinstance(request.state, Mapping) else {}
        view = self._view(state, policy)
        tc = request.tool_call
        if request.tool is None:
            return policy, view.steps, None, None
        task_type = view.task_type or classify_task(request_text(state.get("messages") or []))
        g = gate_tool_call(view, policy, tc, task_type)
        reason = None if g.allowed else f"skipped by the cost gate: {g.reason}"
        if reason is None and policy.human_approval and is_critical_call(tc, policy):
            answer = interrupt(
                {
                    "type": "aco_approval",
                    "question": "Approve this critical tool call?",
                    "risk": policy.task_risk,
                    "tool_calls": [{"name": tc["name"], "args": tc["args"], "id": tc["id"]}],
                }
            )
            if not approval_granted(answer):
                why = answer.get("reason") if isinstance(answer, Mapping) else None
                reason = f"rejected by a human{': ' + str(why) if why else ''}"
        if reason is None:
            return policy, view.steps, None, None
        msg = ToolMessage(
            f"Tool call not run: {reason}",
            tool_call_id=tc["id"],
            name=tc["name"],
            status="error",
        )
        event = tool_event(tc, policy, step=view.steps, success=False, skipped=True, reason=reason)
        return policy, view.steps, msg, event

    @staticmethod
    def _tool_outcome(
        request: Any, policy: AgentPolicy, step: int, result: Any, error: BaseException | None
    ) -> Any:
        tc = request.tool_call
        if error is not None:
            result = ToolMessage(
                f"Error: {type(error).__name__}: {error}",
                tool_call_id=tc["id"],
                name=tc["name"],
                status="error",
            )
        if isinstance(result, ToolMessage):
            ok = result.status != "error"
            event = tool_event(
                tc,
                policy,
                step=step,
                success=ok,
                error=None if ok else message_text(result)[:300],
            )
            return Command(update={"messages": [result], "aco_events": [event]})
        if isinstance(result, Command) and isinstance(result.update, dict):
            event = tool_event(tc, policy, step=step, success=True)
            update = dict(result.update)
            update["aco_events"] = [*(update.get("aco_events") or []), event]
            return Command(
                graph=result.graph, update=update, resume=result.resume, goto=result.goto
            )
        return result

    def wrap_tool_call(self, request: Any, handler: Callable[[Any], Any]) -> Any:
        """Gate the tool call, run it, record its outcome (errors become error messages)."""
        policy, step, skip, event = self._gate(request)
        if skip is not None:
            return Command(update={"messages": [skip], "aco_events": [event]})
        try:
            result = handler(request)
        except GraphBubbleUp:
            raise
        except Exception as exc:  # noqa: BLE001 - a failing tool is an answer, not a crash
            return self._tool_outcome(request, policy, step, None, exc)
        return self._tool_outcome(request, policy, step, result, None)

    async def awrap_tool_call(self, request: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
        """Async ``wrap_tool_call``."""
        policy, step, skip, event = self._gate(request)
        if skip is not None:
            return Command(update={"messages": [skip], "aco_events": [event]})
        try:
            result = await handler(request)
        except GraphBubbleUp:
            raise
        except Exception as exc:  # noqa: BLE001
            return self._tool_outcome(request, policy, step, None, exc)
        return self._tool_outcome(request, policy, step, result, None)

    # ------------------------------------------------------------------ verification
    def _verify_plan(self, state: Mapping[str, Any]) -> tuple[Any, ...] | None:
        policy = self._policy()
        messages = state.get("messages") or []
        last = messages[-1] if messages else None
        if (
            not policy.verify_answers
            or not isinstance(last, AIMessage)
            or last.tool_calls
            or last.name == "aco"
        ):
            return None
        view = self._view(state, policy)
        conf = answer_confidence(last)
        if conf is None:
            conf = aco_meta(last).get("confidence")
        d = verify_gate(view, policy, conf)
        gate_event = {
            "type": "verify_gate",
            "step": view.steps,
            "needed": d.needed,
            "confidence": d.confidence,
            "reason": d.reason,
        }
        if not d.needed:
            return (gate_event,)
        last_model = view.last_model() or {}
        tier = verifier_tier(policy, int(last_model.get("tier") or 1))
        prompt = [
            SystemMessage(VERIFIER_PROMPT),
            HumanMessage(f"REQUEST:\n{request_text(messages)}\n\nANSWER:\n{message_text(last)}"),
        ]
        cfg = dict(_current_config() or {})
        cfg["tags"] = [*(cfg.get("tags") or []), VERIFIER_TAG]
        cfg["metadata"] = {**(cfg.get("metadata") or {}), "aco_role": "verifier", "aco_tier": tier}
        return gate_event, policy, view, tier, prompt, cfg

    @staticmethod
    def _verify_update(
        plan: tuple[Any, ...], reply: AIMessage
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        gate_event, policy, view, tier, _prompt, _cfg = plan
        passed, why = parse_verdict(message_text(reply))
        t = int(aco_meta(reply).get("tier") or tier)
        cost = call_cost(reply, t, policy.config)[0]
        event = {
            "type": "verifier",
            "step": view.steps,
            "tier": t,
            "model_id": policy.config.tier(t).model_id,
            "passed": passed,
            "why": why[:300],
            "cost": cost,
        }
        update: dict[str, Any] = {"aco_events": [gate_event, event]}
        if passed is False:
            update["messages"] = [
                HumanMessage(
                    f"A verifier rejected your last answer: {why}\nFix it and answer again.",
                    name="aco_verifier",
                )
            ]
            update["jump_to"] = "model"
        return update, {"passed": passed, "why": why, "tier": t, "cost": cost}

    @hook_config(can_jump_to=["model"])
    def after_model(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        """The verification gate on a final answer; a FAIL goes back to the model."""
        plan = self._verify_plan(state)
        if plan is None:
            return None
        if len(plan) == 1:
            return {"aco_events": [plan[0]]}
        reply = self.llm.invoke(plan[4], config=plan[5], force_tier=plan[3])
        update, verdict = self._verify_update(plan, reply)
        _emit(EVENT_VERDICT, verdict)
        return update

    @hook_config(can_jump_to=["model"])
    async def aafter_model(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        """Async ``after_model``."""
        plan = self._verify_plan(state)
        if plan is None:
            return None
        if len(plan) == 1:
            return {"aco_events": [plan[0]]}
        reply = await self.llm.ainvoke(plan[4], config=plan[5], force_tier=plan[3])
        update, verdict = self._verify_update(plan, reply)
        await _aemit(EVENT_VERDICT, verdict)
        return update


__all__ = ["ACOMiddleware", "ACOMiddlewareState"]
