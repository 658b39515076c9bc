"""Deciding a call before any I/O: the route request, the tier order, the budget hold, and
the answer flow (cascade verdict, escalation) that the sync and async loops both drive."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatResult
from langchain_core.runnables import RunnableConfig

from aco_langchain.chat.messages import message_text
from aco_langchain.errors import BudgetExceededError
from aco_langchain.providers.deadline import Deadline, call_deadline
from aco_langchain.providers.faults import (
    TierHealth,
    fallback_order,
)
from aco_langchain.providers.tiers import TierRegistry, estimate_tokens, usage_tokens
from aco_langchain.routing import RouteConstraints, RouteDecision, Router, RouteRequest, decide
from aco_langchain.spend.ledger import ReservingLedger, SpendLedger

if TYPE_CHECKING:
    from aco_langchain.chat.model import ACORouterChatModel

logger = logging.getLogger(__name__)

#: Per-call options, accepted as invoke kwargs or RunnableConfig ``configurable`` keys.
ACO_OPTIONS = tuple(RouteConstraints.model_fields)
_RUN_KEY_OPTION = "aco_run_id"
_TOOLS_KEY = "aco_tools"
_TOOL_CHOICE_KEY = "aco_tool_choice"
#: How often a call is planned again when concurrent calls took the budget it was planned for.
_HOLD_ATTEMPTS = 4


@dataclass
class Runtime:
    """The per-instance parts of a router model, in one plain holder (pydantic private
    attribute access costs ~1 us each on the hot path)."""

    registry: TierRegistry
    router: Router
    ledger: SpendLedger
    health: TierHealth
    default_run: str
    identifying: dict[str, Any]


def build_route_request(
    messages: Sequence[BaseMessage], options: dict[str, Any], n_tools: int
) -> RouteRequest:
    """What the router sees of a call: texts, roles, tools and the per-call options."""
    texts = [message_text(m) for m in messages]
    last_user = next(
        (t for m, t in zip(reversed(messages), reversed(texts), strict=True) if m.type == "human"),
        None,
    )
    max_tokens = options.pop("max_tokens", None)
    # Validation is cheaper than model_construct in pydantic 2.13 (measured: 2.4 vs 4.0 us),
    # and it checks the user's per-call options (force_tier=9 is a clear error).
    return RouteRequest(
        text="\n".join(texts),
        last_user_text=last_user,
        roles=[m.type for m in messages],
        n_tools=n_tools,
        expected_output_tokens=max_tokens,
        constraints=RouteConstraints(**options),
    )


@dataclass
class CallPlan:
    """Everything decided before any I/O for one call."""

    decision: RouteDecision
    order: list[int]
    run_key: str
    request: RouteRequest
    tools: list[dict[str, Any]] | None
    tool_choice: Any
    passthrough: dict[str, Any]
    cascade: bool
    started: float = field(default_factory=time.perf_counter)
    held: float = 0.0
    """USD held against the run's budget while the call is in flight."""
    completed_usd: float = 0.0
    """USD of the tier calls that answered so far."""
    settled: bool = False
    deadline: Deadline = field(default_factory=lambda: Deadline.start(float("inf"), "none"))
    """The call's one deadline: every attempt, retry, fallback and cascade step shares it."""


@dataclass
class TierCall:
    """One tier's answer inside a call (the cheap one of a cascade, or the final one)."""

    tier: int
    model_id: str
    cost_usd: float
    usage: UsageMetadata | None
    failures: dict[int, str]


def _no_extra(_tier: int) -> dict[str, Any]:
    return {}


class PlanningMixin:
    """The decisions of :class:`ACORouterChatModel`: pure, shared by every I/O path."""

    @staticmethod
    def _options_from_config(config: RunnableConfig | None, kwargs: dict[str, Any]) -> None:
        configurable = (config or {}).get("configurable") or {}
        for key in (*ACO_OPTIONS, _RUN_KEY_OPTION):
            if key in configurable and key not in kwargs:
                kwargs[key] = configurable[key]
        if _RUN_KEY_OPTION not in kwargs and "thread_id" in configurable:
            kwargs[_RUN_KEY_OPTION] = str(configurable["thread_id"])

    def plan(
        self: ACORouterChatModel,
        messages: Sequence[BaseMessage],
        kwargs: dict[str, Any],
        *,
        streaming: bool = False,
    ) -> CallPlan:
        """Route the call and fix the fallback order; no I/O."""
        rt = self._rt
        kw = dict(kwargs)
        options = {k: kw.pop(k) for k in ACO_OPTIONS if k in kw}
        run_key = str(kw.pop(_RUN_KEY_OPTION, None) or self.run_key or rt.default_run)
        tools = kw.pop(_TOOLS_KEY, None)
        tool_choice = kw.pop(_TOOL_CHOICE_KEY, None)
        override = kw.pop("model", None)
        if override and override != self.model_name and "force_model" not in options:
            # A concrete tier model name (e.g. "gpt-4.1") or a tier's model_id.
            by_name = [n for n in range(1, 6) if rt.registry.model_name(n) == override]
            if by_name and "force_tier" not in options:
                options["force_tier"] = by_name[0]
            else:
                options["force_model"] = override
        max_tokens = kw.get("max_tokens", self.max_tokens)
        if max_tokens is not None:
            options["max_tokens"] = max_tokens
        request = build_route_request(messages, options, len(tools or []))
        unavailable = {**rt.registry.unavailable(), **rt.health.cooling()}
        assessment = rt.router.assess(request, self.config)
        decision = decide(
            assessment,
            request,
            self.config,
            unavailable=unavailable,
            spent_usd=rt.ledger.spent(run_key),
        )
        candidates = {
            n
            for n in range(1, 6)
            if n not in unavailable and (not tools or rt.registry.takes_tools(n))
        }
        if decision.budget_exceeded:
            candidates = {n for n in candidates if self.config.tier(n).is_local}
        order = fallback_order(
            decision.tier,
            candidates,
            allow_cloud=self.config.routing.allow_cloud_fallback,
            local=[n for n in range(1, 6) if self.config.tier(n).is_local],
        )
        cascade = (
            self._cascade_enabled
            and decision.tier < 5
            and not (streaming and not self.config.cascade.buffer_stream)
            and options.get("force_tier") is None
            and options.get("force_model") is None
        )
        for key, value in (("temperature", self.temperature), ("max_tokens", self.max_tokens)):
            if value is not None:
                kw.setdefault(key, value)
        deadline = call_deadline(
            self.config.routing.max_latency_per_call_s,
            self.timeout,
            request.constraints.max_latency_ms,
        )
        logger.debug(
            "tier %s (order %s, deadline %gs by %s): %s",
            decision.tier,
            order,
            deadline.budget_s,
            deadline.source,
            decision.reason,
        )
        return CallPlan(
            decision, order, run_key, request, tools, tool_choice, kw, cascade, deadline=deadline
        )

    def _tier_call_args(
        self: ACORouterChatModel, plan: CallPlan, tier: int, extra: dict[str, Any]
    ) -> tuple[BaseChatModel, dict[str, Any]]:
        """The tier's model and the kwargs for its call (tools bound for this tier)."""
        model = self._rt.registry.model(tier)
        kw = {**plan.passthrough, **extra}
        if plan.tools:
            bound = model.bind_tools(plan.tools, tool_choice=plan.tool_choice)
            kw.update(getattr(bound, "kwargs", {}))
        return model, kw

    def _stop(self: ACORouterChatModel, stop: list[str] | None) -> list[str] | None:
        return stop or self.stop or None

    def _tier_call(
        self: ACORouterChatModel,
        plan: CallPlan,
        tier: int,
        result_msg: BaseMessage,
        failures: dict[int, str],
    ) -> TierCall:
        usage = getattr(result_msg, "usage_metadata", None)
        if usage is None:
            # No usage from the provider: estimate, so spend is never silently zero.
            out = estimate_tokens(message_text(result_msg))
            usage = UsageMetadata(
                input_tokens=estimate_tokens(plan.request.text),
                output_tokens=out,
                total_tokens=estimate_tokens(plan.request.text) + out,
            )
        i, o = usage_tokens(usage)  # type: ignore[arg-type]
        call = TierCall(
            tier=tier,
            model_id=self.config.tier(tier).model_id,
            cost_usd=self._rt.registry.cost(tier, i, o),
            usage=usage,
            failures=dict(failures),
        )
        plan.completed_usd += call.cost_usd
        return call

    def _cascade_verdict(
        self: ACORouterChatModel, plan: CallPlan, cheap: TierCall, result: ChatResult
    ) -> Any:
        from aco_langchain.chat.cascade import cascade_step

        gen = result.generations[0]
        info = gen.generation_info or {}
        logprobs = info.get("logprobs") or gen.message.response_metadata.get("logprobs")
        provider = "ollama" if self.config.tier(cheap.tier).provider == "ollama" else "openai"
        return cascade_step(
            request=plan.request.routing_text,
            initial_tier=cheap.tier,
            cheap_logprobs=logprobs,
            cheap_response=gen.message,
            config=self.config,
            provider=provider,
            available_tiers=plan.order,
            finish_reason=info.get("finish_reason")
            or gen.message.response_metadata.get("finish_reason"),
        )

    def _escalation_plan(self: ACORouterChatModel, plan: CallPlan, verdict: Any) -> list[int]:
        up = [n for n in plan.order if n >= verdict.final_tier]
        return up or [verdict.final_tier]

    def _logprob_kwargs(self: ACORouterChatModel, tier: int) -> dict[str, Any]:
        spec = self.config.tier(tier)
        if self._rt.registry.has_instance(tier) or "logprobs" not in spec.capabilities:
            return {}
        k = self.config.cascade.top_logprobs
        return {"logprobs": True, **({"top_logprobs": k} if k else {})}

    def _plan_and_hold(
        self: ACORouterChatModel,
        messages: Sequence[BaseMessage],
        kwargs: dict[str, Any],
        *,
        streaming: bool = False,
        first: CallPlan | None = None,
    ) -> CallPlan:
        """Plan the call, then hold its estimate against the run's budget.

        The hold is atomic in a ReservingLedger, so concurrent calls of one run see each
        other's estimates: a call that no longer fits is planned again (a cheaper tier, or
        the budget policy). A ledger without holds is only read and then added to.
        """
        ledger = self._rt.ledger
        limit = self.config.routing.max_cost_per_task
        plan = first
        for attempt in range(_HOLD_ATTEMPTS):
            if plan is None or attempt:
                plan = self.plan(messages, kwargs, streaming=streaming)
            if not isinstance(ledger, ReservingLedger):
                return plan
            if ledger.reserve(plan.run_key, plan.decision.cost_estimate, limit):
                plan.held = plan.decision.cost_estimate
                return plan
        assert plan is not None  # noqa: S101 - the loop ran at least once
        raise BudgetExceededError(
            f"run {plan.run_key!r}: concurrent calls kept taking the rest of max_cost_per_task "
            f"(${limit}); retry, or raise routing.max_cost_per_task"
        )

    def _settle(self: ACORouterChatModel, plan: CallPlan, actual: float) -> None:
        """Record what the call really cost and release its hold (once)."""
        if plan.settled:
            return
        plan.settled = True
        ledger = self._rt.ledger
        if isinstance(ledger, ReservingLedger):
            ledger.settle(plan.run_key, plan.held, actual)
        else:
            ledger.add(plan.run_key, actual)

    def _answer_flow(
        self: ACORouterChatModel, plan: CallPlan
    ) -> Generator[
        tuple[list[int], Callable[[int], dict[str, Any]]], tuple[ChatResult, TierCall], ChatResult
    ]:
        """The decisions of one answer, shared by sync and async: yields (tier order, extra
        kwargs per tier) for each tier call it needs, receives (result, call), returns the
        decorated result. Without a cascade: one call. With one: the cheap call with logprobs,
        the verdict, and the escalated call when the verdict asks for it."""
        if not plan.cascade:
            result, call = yield plan.order, _no_extra
            return self._decorate(result, plan, call, None, None)
        result, cheap = yield plan.order, self._logprob_kwargs
        verdict = self._cascade_verdict(plan, cheap, result)
        if not verdict.escalated:
            return self._decorate(result, plan, cheap, None, verdict)
        final_result, final = yield self._escalation_plan(plan, verdict), _no_extra
        return self._decorate(final_result, plan, final, cheap, verdict)
