"""``ACOMiddleware``: the ACO agent controls for LangChain v1 ``create_agent``.

A thin adapter around the agent engine (``agent/engine.py``, ``agent/checks.py``): the same
decisions as the LangGraph nodes, as middleware hooks.

- ``before_agent``: a new input starts a turn and its run key (budget and doom rules count
  from there);
- ``before_model``: the doom detector; a doomed run jumps to the end with a final AIMessage
  giving the reason (``jump_to="end"``);
- ``wrap_model_call`` / ``awrap_model_call``: the step's tier (``plan_step``), the call
  overridden to it (``request.override(model=...)``: the ``ACORouterChatModel`` with
  ``force_tier``, or with ``direct=True`` the tier's own chat model), one tier up on an
  unusable answer by calling the handler again (``step_flow``);
- ``after_model``: for tool calls, the cost gate (skipped calls get a ToolMessage saying why)
  and a human's approval of critical calls (``interrupt``); for a final answer, the
  verification gate, whose FAIL sends the run back to the model (``jump_to="model"``);
- ``wrap_tool_call`` / ``awrap_tool_call``: errors as error messages, the ``tool`` event and
  the tool's cost in the run's ledger (``ToolCallRecorder``, shared with the nodes).

The router model is the one given to ``create_agent`` when it is an ``ACORouterChatModel``;
otherwise the middleware's own (built from ``config_or_model``, else the default config).
Per-run settings come from the agent's ``context`` (``task_risk``, ``max_budget``, ``run_id``
fields or keys) or the older ``configurable`` keys ``aco_task_risk`` / ``aco_max_budget`` /
``aco_run_id``.

Example:
    ```python
    from langchain.agents import create_agent
    from aco_langchain import ACOMiddleware, ACORouterChatModel

    llm = ACORouterChatModel(config=cfg, tier_models=tiers)
    agent = create_agent(llm, [search], middleware=[ACOMiddleware(max_budget=0.5)])
    agent.invoke({"messages": [("user", "Find the release date")]})
    ```
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, NotRequired

from langchain.agents.middleware.types import (
    AgentMiddleware,
    AgentState,
    ContextT,
    ExtendedModelResponse,
    ModelRequest,
    ModelResponse,
    ResponseT,
    hook_config,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langgraph.prebuilt.tool_node import ToolCallRequest
from langgraph.types import Command, interrupt
from typing_extensions import override

from aco_langchain.agent.checks import (
    StopOutcome,
    apply_approval,
    doom_stop,
    gate_tool_calls,
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
from aco_langchain.agent.events import AgentEvent, merge_events
from aco_langchain.agent.policy import (
    AgentPolicy,
    Risk,
    RunSettings,
    ToollessPolicy,
    run_settings,
    takes_tools,
)
from aco_langchain.integrations.langgraph.agent import ConfigOrModel, resolve_router_model
from aco_langchain.integrations.langgraph.nodes import VerifierCall, verifier_call
from aco_langchain.integrations.middleware_updates import (
    aemit,
    configurable,
    current_config,
    declined_tools,
    emit,
    first_ai,
    stop_jump,
    stop_response,
    tool_name,
    verifier_update,
)
from aco_langchain.integrations.step_budget import GuardedCall, OverBudget, StepHolds
from aco_langchain.integrations.tool_calls import (
    ToolCallRecorder,
    ToolResult,
    aemit_tool_events,
    emit_tool_events,
)
from aco_langchain.tracing.names import EVENT_STOP, EVENT_VERDICT

if TYPE_CHECKING:
    from langgraph.runtime import Runtime

    from aco_langchain.chat.model import ACORouterChatModel

logger = logging.getLogger(__name__)

Update = dict[str, Any]
ModelResult = ModelResponse[ResponseT] | AIMessage | ExtendedModelResponse[ResponseT]


class ACOMiddlewareState(AgentState[ResponseT]):
    """Agent state plus the ACO event log (``agent/events.py``)."""

    aco_events: NotRequired[Annotated[list[AgentEvent], merge_events]]


@dataclasses.dataclass(frozen=True)
class _ModelStep:
    llm: ACORouterChatModel
    plan: StepPlan
    holds: StepHolds


class ACOMiddleware(AgentMiddleware[ACOMiddlewareState[ResponseT], ContextT, ResponseT]):
    """Per-step routing, escalation, tool gate, verification and doom stop for ``create_agent``.

    Example:
        ```python
        from langchain.agents import create_agent

        llm = ACORouterChatModel(config=cfg, tier_models=tiers)
        agent = create_agent(llm, tools, middleware=[ACOMiddleware(task_risk="high")])
        # or let the middleware build the router model:
        aco = ACOMiddleware(cfg, tier_models=tiers, max_budget=1.0)
        agent = create_agent(aco.model, tools, middleware=[aco])
        ```
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
        """Check the options and build the router model when a config is given.

        Args:
            config_or_model: An ``ACOConfig`` / YAML path / dict (with ``tier_models``) or a
                ready ``ACORouterChatModel``; None: use the model given to ``create_agent``
                (or, when that is not a router model, the default config's).
            tier_models: Chat models per tier for the middleware's own router model.
            max_budget: USD per run (default ``routing.max_cost_per_task``).
            task_risk: ``low``, ``medium``, ``high`` or ``critical``.
            verifier_tier: The verifier's tier (default one above the answer's, at least 3).
            verify_answers: Run the verification gate on final answers.
            toolless_tiers: ``skip`` tiers without tool calling, or let them answer in ``text``.
            tool_tiers: The tiers that can call tools (default: detected).
            human_approval: Interrupt before critical tool calls (needs a checkpointer).
            max_escalations: Extra calls, one tier up each, on an unusable answer.
            step_action: ``(messages, request) -> action`` for per-step routing.
            direct: Call the tier's own chat model instead of the router model (costs are
                then priced from usage at the tier's price and added to the run's ledger).

        Raises:
            ConfigError: An option has a wrong value.
            TypeError: ``config_or_model`` is another chat model.
        """
        super().__init__()
        own = None
        if config_or_model is not None or tier_models:
            own = resolve_router_model(config_or_model, tier_models)
        self._own: ACORouterChatModel | None = own
        self._bound: ACORouterChatModel | None = own
        self.policy = AgentPolicy(
            config=own.config if own is not None else AgentPolicy().config,
            max_budget=max_budget,
            task_risk=task_risk,
            verifier_tier=verifier_tier,
            toolless_tiers=toolless_tiers,
            human_approval=human_approval,
            max_escalations=max_escalations,
            verify_answers=verify_answers,
            tool_tiers=None if tool_tiers is None else frozenset(tool_tiers),
        )
        self.step_action = step_action or default_step_action
        self.direct = direct
        self._tools = ToolCallRecorder(lambda: self.llm.spend_ledger, self._policy, {})

    # ------------------------------------------------------------------ the router model
    @property
    def model(self) -> ACORouterChatModel:
        """The router model to pass to ``create_agent`` (built from the default config when
        the middleware was given none)."""
        if self._own is None:
            self._own = resolve_router_model(None)
        return self._own

    @property
    def llm(self) -> ACORouterChatModel:
        """The router model the controls use: the agent's, once seen, else ``model``."""
        return self._bound or self.model

    def _router_for(self, model: BaseChatModel) -> ACORouterChatModel:
        from aco_langchain.chat.model import ACORouterChatModel

        if isinstance(model, ACORouterChatModel):
            if self._bound is not None and model is not self._bound:
                logger.warning(
                    "ACOMiddleware sees a second ACORouterChatModel: use one middleware per "
                    "agent (the run's ledger and config follow the model)"
                )
            self._bound = model
            return model
        if self._bound is None:
            logger.warning(
                "create_agent's model %s is not an ACORouterChatModel: ACOMiddleware routes "
                "with its own router model",
                type(model).__name__,
            )
        return self.llm

    # ------------------------------------------------------------------ reading the run
    def _policy(self, settings: RunSettings) -> AgentPolicy:
        policy = self.policy
        if policy.config is not self.llm.config:
            policy = dataclasses.replace(policy, config=self.llm.config)
        return policy.with_settings(settings)

    def _settings(self, runtime: Any) -> RunSettings:
        return run_settings(getattr(runtime, "context", None), configurable())

    def _view(self, state: Mapping[str, Any], policy: AgentPolicy) -> tuple[RunView, str | None]:
        events = state.get("aco_events") or []
        key = current_run_key(events)
        return RunView.from_events(events, policy, spent=self.llm.spent(key) if key else 0.0), key

    # ------------------------------------------------------------------ turn, doom
    @override
    def before_agent(
        self, state: ACOMiddlewareState[ResponseT], runtime: Runtime[ContextT]
    ) -> Update | None:
        """Start a turn: its run key; budget and doom rules count from this input.

        Args:
            state: The agent state.
            runtime: The run's runtime (its ``context`` may carry ``run_id``).

        Returns:
            The ``turn`` event.
        """
        thread = configurable().get("thread_id")
        return {"aco_events": [turn_event(self._settings(runtime), thread, uuid.uuid4().hex)]}

    @override
    async def abefore_agent(
        self, state: ACOMiddlewareState[ResponseT], runtime: Runtime[ContextT]
    ) -> Update | None:
        """Async ``before_agent``."""
        return self.before_agent(state, runtime)

    def _doom(self, state: Mapping[str, Any], runtime: Any) -> StopOutcome | None:
        return doom_stop(self._view(state, self._policy(self._settings(runtime)))[0])

    @hook_config(can_jump_to=["end"])
    @override
    def before_model(
        self, state: ACOMiddlewareState[ResponseT], runtime: Runtime[ContextT]
    ) -> Update | None:
        """End a doomed run with a final message.

        Args:
            state: The agent state.
            runtime: The run's runtime.

        Returns:
            ``jump_to="end"`` with the stop message when the run is doomed, else None.
        """
        stop = self._doom(state, runtime)
        if stop is None:
            return None
        emit(EVENT_STOP, stop.event)
        return stop_jump(stop)

    @hook_config(can_jump_to=["end"])
    @override
    async def abefore_model(
        self, state: ACOMiddlewareState[ResponseT], runtime: Runtime[ContextT]
    ) -> Update | None:
        """Async ``before_model``."""
        stop = self._doom(state, runtime)
        if stop is None:
            return None
        await aemit(EVENT_STOP, stop.event)
        return stop_jump(stop)

    # ------------------------------------------------------------------ model calls
    def _plan(self, request: ModelRequest[ContextT]) -> _ModelStep | StopOutcome:
        llm = self._router_for(request.model)
        self._tools.known_tools = {tool_name(t): t for t in request.tools}
        policy = self._policy(self._settings(request.runtime))
        view, key = self._view(request.state, policy)
        plan = plan_step(
            view,
            policy,
            request.messages,
            run_key=key or turn_event({}, None, uuid.uuid4().hex)["run_key"],
            step_action=self.step_action,
            unavailable=llm.registry.unavailable(),
            tools_bound=bool(request.tools),
            can_call_tools=functools.partial(takes_tools, llm.registry, policy),
        )
        if isinstance(plan, StopOutcome):
            return plan
        return _ModelStep(llm, plan, StepHolds.for_run(llm, plan.run_key, policy.budget))

    def _guard(
        self, request: ModelRequest[ContextT], step: _ModelStep, call: TierCall
    ) -> GuardedCall:
        """The tier call between its budget hold and its settlement (``step_budget``)."""
        settings = request.model_settings or {}
        return GuardedCall(
            step.holds,
            call,
            request.messages,
            request.tools if step.plan.bind_tools else None,
            int(settings.get("max_tokens") or step.llm.config.routing.max_output_tokens),
            lambda direct: self._tier_request(request, step, call, direct=direct),
            self.direct,
        )

    def _tier_request(
        self,
        request: ModelRequest[ContextT],
        step: _ModelStep,
        call: TierCall,
        direct: bool | None = None,
    ) -> ModelRequest[ContextT]:
        """The tier call: the tier's own model (direct), else the router model forced to
        the tier (its retries, fallback and ledger row)."""
        overrides: dict[str, Any] = {}
        if self.direct if direct is None else direct:
            overrides["model"] = step.llm.registry.model(call.tier)
        else:
            overrides["model"] = step.llm
            overrides["model_settings"] = {
                **request.model_settings,
                "force_tier": call.tier,
                "aco_run_id": step.plan.run_key,
            }
        if not step.plan.bind_tools and request.tools:
            overrides["tools"] = []
            overrides["tool_choice"] = None
        return request.override(**overrides)

    def _finish(
        self, step: _ModelStep, outcome: StepOutcome, response: Any
    ) -> ModelResult[ResponseT]:
        if outcome.event is None:
            return response  # type: ignore[no-any-return]
        # Every tier call's cost is on the ledger already: a direct call settled its hold,
        # a routed call was settled by the router model.
        if isinstance(response, ExtendedModelResponse):
            response = response.model_response
        if isinstance(response, AIMessage):
            response = ModelResponse(result=[response])
        return ExtendedModelResponse(
            model_response=response, command=Command(update={"aco_events": [outcome.event]})
        )

    @override
    def wrap_model_call(
        self,
        request: ModelRequest[ContextT],
        handler: Callable[[ModelRequest[ContextT]], ModelResponse[ResponseT]],
    ) -> ModelResult[ResponseT]:
        """Route the step to its tier; retry one tier up on an unusable answer.

        Args:
            request: The model request (state, runtime, tools).
            handler: Calls the model (called again for an escalation).

        Returns:
            The kept answer with its ``model`` event, or the stop message when the budget
            says stop.
        """
        step = self._plan(request)
        if isinstance(step, StopOutcome):
            emit(EVENT_STOP, step.event)
            return stop_response(step)
        responses: list[Any] = []

        def call(tier_call: TierCall) -> AIMessage | None:
            guarded = self._guard(request, step, tier_call)
            try:
                try:
                    response = handler(guarded.begin())
                except Exception as exc:
                    response = handler(guarded.fallback(exc))
            except BaseException:
                guarded.abort()
                raise
            responses.append(response)
            answer = first_ai(response)
            guarded.end(answer)
            return answer

        can = functools.partial(takes_tools, step.llm.registry, step.plan.policy)
        try:
            outcome: StepOutcome = drive(step_flow(step.plan, can), call)
        except OverBudget as over:
            emit(EVENT_STOP, over.stop.event)
            return stop_response(over.stop)
        return self._finish(step, outcome, responses[-1])

    @override
    async def awrap_model_call(
        self,
        request: ModelRequest[ContextT],
        handler: Callable[[ModelRequest[ContextT]], Awaitable[ModelResponse[ResponseT]]],
    ) -> ModelResult[ResponseT]:
        """Async ``wrap_model_call`` (same decisions)."""
        step = self._plan(request)
        if isinstance(step, StopOutcome):
            await aemit(EVENT_STOP, step.event)
            return stop_response(step)
        responses: list[Any] = []

        async def call(tier_call: TierCall) -> AIMessage | None:
            guarded = self._guard(request, step, tier_call)
            try:
                try:
                    response = await handler(guarded.begin())
                except Exception as exc:
                    response = await handler(guarded.fallback(exc))
            except BaseException:
                guarded.abort()
                raise
            responses.append(response)
            answer = first_ai(response)
            guarded.end(answer)
            return answer

        can = functools.partial(takes_tools, step.llm.registry, step.plan.policy)
        try:
            outcome: StepOutcome = await adrive(step_flow(step.plan, can), call)
        except OverBudget as over:
            await aemit(EVENT_STOP, over.stop.event)
            return stop_response(over.stop)
        return self._finish(step, outcome, responses[-1])

    # ------------------------------------------------------------------ after the model
    def _after_model(
        self, state: Mapping[str, Any], runtime: Any
    ) -> tuple[Update | None, VerifierCall | None]:
        """The tool gate for tool calls; the verification plan for a final answer."""
        policy = self._policy(self._settings(runtime))
        view, key = self._view(state, policy)
        messages: Sequence[BaseMessage] = state.get("messages") or []
        last = messages[-1] if messages else None
        if isinstance(last, AIMessage) and last.tool_calls:
            gate = gate_tool_calls(
                view,
                policy,
                last.tool_calls,
                known_tools=self._tools.known_tools,
                task_text=request_text(messages),
            )
            if gate.approval is not None:
                gate = apply_approval(gate, interrupt(gate.approval), policy, view.steps)
            if not gate.messages:
                return None, None
            return {"messages": gate.messages, "aco_events": gate.events}, None
        plan = plan_verification(view, policy, messages, self.llm.registry.unavailable())
        if plan is None:
            return None, None
        if not plan.needed:
            return {"aco_events": [plan.gate_event]}, None
        return None, verifier_call(plan, policy, key, current_config())

    @hook_config(can_jump_to=["model"])
    @override
    def after_model(
        self, state: ACOMiddlewareState[ResponseT], runtime: Runtime[ContextT]
    ) -> Update | None:
        """The tool gate and approval on tool calls; the verification gate on an answer.

        Args:
            state: The agent state (its last message is the model's answer).
            runtime: The run's runtime.

        Returns:
            Not-run ToolMessages for gated calls; the verifier's events, and for a FAIL its
            feedback with ``jump_to="model"``; None when there is nothing to add.

        Raises:
            GraphInterrupt: Critical calls wait for a human (``human_approval``).
        """
        update, verify = self._after_model(state, runtime)
        emit_tool_events(declined_tools(update))
        if verify is None:
            return update
        reply = self.llm.invoke(verify.plan.prompt, **verify.kwargs)
        outcome = verification_outcome(verify.plan, verify.policy, reply)
        emit(EVENT_VERDICT, outcome.verdict)
        return verifier_update(verify.plan, outcome)

    @hook_config(can_jump_to=["model"])
    @override
    async def aafter_model(
        self, state: ACOMiddlewareState[ResponseT], runtime: Runtime[ContextT]
    ) -> Update | None:
        """Async ``after_model``."""
        update, verify = self._after_model(state, runtime)
        await aemit_tool_events(declined_tools(update))
        if verify is None:
            return update
        reply = await self.llm.ainvoke(verify.plan.prompt, **verify.kwargs)
        outcome = verification_outcome(verify.plan, verify.policy, reply)
        await aemit(EVENT_VERDICT, outcome.verdict)
        return verifier_update(verify.plan, outcome)

    # ------------------------------------------------------------------ tools
    @override
    def wrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], ToolResult],
    ) -> ToolResult:
        """Run the tool call; record its outcome (errors become error messages).

        Args:
            request: The tool call request.
            handler: Runs the tool (langgraph's ``ToolNode``).

        Returns:
            A ``Command`` with the answer and its ``tool`` event.
        """
        return self._tools.wrap(request, handler)

    @override
    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[ToolResult]],
    ) -> ToolResult:
        """Async ``wrap_tool_call``."""
        return await self._tools.awrap(request, handler)


__all__ = ["ACOMiddleware", "ACOMiddlewareState"]
