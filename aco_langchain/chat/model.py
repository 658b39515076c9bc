"""ACORouterChatModel: one BaseChatModel that routes each call to the cheapest capable tier.

Usage::

    from aco_langchain import ACORouterChatModel
    llm = ACORouterChatModel()                                  # seed defaults + shipped router
    msg = llm.invoke("What is 2+2?")
    msg.response_metadata["aco"]   # {"tier": 1, "model_id": "tiny-local-3b", "cost_usd": 0.0, ...}
    llm.invoke("Fix the auth bug", force_tier=4, max_cost_usd=0.05)   # per-call options

What happens on each call (sync and async share every decision; only the I/O differs):

1. The messages become a ``RouteRequest``; the router assesses it and the shared policy
   (``router/policy.py``) decides the tier under floors, per-call constraints, the run's
   budget and tier availability.
2. With ``cascade=True`` the cheap tier answers first with logprobs; a low confidence
   escalates to a stronger tier (``cascade.py``). Streams are buffered until the decision
   unless ``config.cascade.buffer_stream`` is false (then streams skip the cascade).
3. The tier is called through its own ``_generate``/``_stream`` with this run's callback
   manager, so usage is counted once and the tier's ``model_name``, ``logprobs`` and
   ``token_usage`` survive. Provider faults are retried and fall back (``faults.py``).
4. Cost comes from the real ``usage_metadata`` at the tier's price and goes to the ledger;
   ``response_metadata["aco"]`` says what was done and what it cost.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any, Literal

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata, add_usage
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import (
    JsonOutputKeyToolsParser,
    PydanticToolsParser,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig, RunnableMap, RunnablePassthrough
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import ConfigDict, Field, PrivateAttr, field_validator

from aco_langchain.chat.messages import message_text, tool_call_chunks
from aco_langchain.config import ACOConfig, config_from_dict, load_config
from aco_langchain.errors import AllTiersFailedError, BudgetExceededError
from aco_langchain.providers.faults import (
    TierHealth,
    backoff_delay,
    classify_error,
    describe_error,
    fallback_order,
)
from aco_langchain.providers.tiers import TierRegistry, estimate_tokens, usage_tokens
from aco_langchain.routing import RouteConstraints, RouteDecision, Router, RouteRequest, decide
from aco_langchain.routing import get_router as _default_router
from aco_langchain.spend.ledger import MemoryLedger, ReservingLedger, SpendLedger

#: Per-call options, accepted as invoke kwargs or RunnableConfig ``configurable`` keys.
ACO_OPTIONS = tuple(RouteConstraints.model_fields)
_RUN_KEY_OPTION = "aco_run_id"
_TOOLS_KEY = "aco_tools"
_TOOL_CHOICE_KEY = "aco_tool_choice"


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
class _Runtime:
    registry: TierRegistry
    router: Router
    ledger: SpendLedger
    health: TierHealth
    default_run: str
    identifying: dict[str, Any]


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


@dataclass
class TierCall:
    """One tier's answer inside a call (the cheap one of a cascade, or the final one)."""

    tier: int
    model_id: str
    cost_usd: float
    usage: UsageMetadata | None
    failures: dict[int, str]


class FallbackRun:
    """The retry/fallback state machine of one call; sync and async loops drive it.

    Usage (the sync loop)::

        run = FallbackRun(order, retries, health)
        while (attempt := run.next_attempt()) is not None:
            tier, delay = attempt
            ...call tier..., then run.succeeded() or run.failed(exc)
    """

    def __init__(
        self, order: list[int], retries: int, health: TierHealth, base_delay_s: float
    ) -> None:
        self.order = list(order)
        self.retries = retries
        self.health = health
        self.base_delay_s = base_delay_s
        self.failures: dict[int, str] = {}
        self._i = 0
        self._attempt = 0
        self._delay = 0.0

    @property
    def tier(self) -> int:
        return self.order[self._i]

    def next_attempt(self) -> tuple[int, float] | None:
        """(tier, seconds to wait first) for the next attempt, or None when exhausted."""
        if self._i >= len(self.order):
            return None
        return self.order[self._i], self._delay

    def succeeded(self) -> None:
        self.health.succeeded(self.tier)

    def failed(self, exc: BaseException) -> None:
        tier = self.tier
        self.failures[tier] = describe_error(exc)
        if classify_error(exc) == "retry" and self._attempt < self.retries:
            self._delay = backoff_delay(self._attempt, self.base_delay_s)
            self._attempt += 1
            return
        self.health.failed(tier)
        self._i += 1
        self._attempt = 0
        self._delay = 0.0

    def exhausted_error(self) -> AllTiersFailedError:
        return AllTiersFailedError(self.failures)


#: How often a call is planned again when concurrent calls took the budget it was planned for.
_HOLD_ATTEMPTS = 4


def _no_extra(_tier: int) -> dict[str, Any]:
    return {}


class ACORouterChatModel(BaseChatModel):
    """Routes every call to the cheapest capable tier of five; drop it in wherever an llm goes.

    Usage::

        llm = ACORouterChatModel(config="config.yaml")
        llm = ACORouterChatModel(tier_models={1: local_llm, 4: ChatOpenAI(model="gpt-4.1")})
        llm.bind_tools([search]).invoke("Find the release notes")
        llm.invoke("hi", config={"configurable": {"max_cost_usd": 0.01}})
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)

    config: ACOConfig = Field(default_factory=ACOConfig)
    """The tier table, thresholds and budgets (an ACOConfig, a dict, or a YAML path)."""
    tier_models: dict[int, BaseChatModel] = Field(default_factory=dict)
    """Ready-made chat models per tier number; they win over the config's providers."""
    router: Any = None
    """A ``Router``; None uses the config's (the shipped learned router by default)."""
    cascade: bool | None = None
    """Ask the cheap tier first and escalate on low confidence; None follows the config."""
    ledger: Any = None
    """A ``SpendLedger`` for run budgets; None keeps spend in memory on this instance."""
    run_key: str | None = None
    """Budget key when calls don't name one (``aco_run_id``); None: this instance's run."""
    model_name: str = Field(default="aco-router", alias="model")
    temperature: float | None = None
    max_tokens: int | None = Field(default=None, alias="max_tokens")
    stop: list[str] | None = Field(default=None, alias="stop_sequences")
    timeout: float | None = None
    max_retries: int | None = None
    """Retries per tier; None uses ``config.routing.max_retries``."""
    retry_base_delay_s: float = 0.5
    streaming: bool = False
    cooldown_after: int = 2
    cooldown_s: float = 30.0

    # One plain holder: pydantic private-attribute access costs ~1 us each on the hot path.
    _rt: _Runtime = PrivateAttr()

    @field_validator("config", mode="before")
    @classmethod
    def _coerce_config(cls, value: Any) -> Any:
        if isinstance(value, str | Path):
            return load_config(value)
        if isinstance(value, dict):
            return config_from_dict(value)
        return value

    def model_post_init(self, context: Any) -> None:
        super().model_post_init(context)
        router = self.router if self.router is not None else _default_router(self.config)
        self._rt = _Runtime(
            registry=TierRegistry(self.config, self.tier_models),
            router=router,
            ledger=self.ledger if self.ledger is not None else MemoryLedger(),
            health=TierHealth(cooldown_after=self.cooldown_after, cooldown_s=self.cooldown_s),
            default_run=f"aco-{uuid.uuid4().hex[:12]}",
            identifying={
                "model_name": self.model_name,
                "tiers": {n: self.config.tier(n).model_id for n in range(1, 6)},
                "router": getattr(router, "name", type(router).__name__),
                "cascade": self._cascade_enabled,
            },
        )

    # -- LangChain plumbing --------------------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return "aco-router"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return self._rt.identifying

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="aco",
            ls_model_name=kwargs.get("model") or self.model_name,
            ls_model_type="chat",
        )
        if (t := kwargs.get("temperature", self.temperature)) is not None:
            params["ls_temperature"] = t
        if (mt := kwargs.get("max_tokens", self.max_tokens)) is not None:
            params["ls_max_tokens"] = mt
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        return params

    @property
    def registry(self) -> TierRegistry:
        """The tiers of this model (their chat models are built on first use)."""
        return self._rt.registry

    @property
    def spend_ledger(self) -> SpendLedger:
        return self._rt.ledger

    def spent(self, run_key: str | None = None) -> float:
        """USD spent so far by ``run_key`` (default: this instance's run)."""
        rt = self._rt
        return rt.ledger.spent(run_key or self.run_key or rt.default_run)

    def reset_budget(self, run_key: str | None = None) -> None:
        """Start the budget of ``run_key`` (default: this instance's run) from zero."""
        rt = self._rt
        rt.ledger.reset(run_key or self.run_key or rt.default_run)

    @property
    def _cascade_enabled(self) -> bool:
        return self.config.cascade.enabled if self.cascade is None else self.cascade

    # -- per-call options from RunnableConfig -----------------------------------------------

    @staticmethod
    def _options_from_config(config: RunnableConfig | None, kwargs: dict[str, Any]) -> None:
        configurable = (config or {}).get("configurable") or {}
        for key in (*ACO_OPTIONS, _RUN_KEY_OPTION):
            if key in configurable and key not in kwargs:
                kwargs[key] = configurable[key]
        if _RUN_KEY_OPTION not in kwargs and "thread_id" in configurable:
            kwargs[_RUN_KEY_OPTION] = str(configurable["thread_id"])

    def invoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        self._options_from_config(config, kwargs)
        return super().invoke(input, config, stop=stop, **kwargs)

    async def ainvoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        self._options_from_config(config, kwargs)
        return await super().ainvoke(input, config, stop=stop, **kwargs)

    def stream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[AIMessageChunk]:
        self._options_from_config(config, kwargs)
        yield from super().stream(input, config, stop=stop, **kwargs)

    async def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        self._options_from_config(config, kwargs)
        async for chunk in super().astream(input, config, stop=stop, **kwargs):
            yield chunk

    # -- decisions (pure, shared by every I/O path) -----------------------------------------

    def plan(
        self, messages: Sequence[BaseMessage], kwargs: dict[str, Any], *, streaming: bool = False
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
        return CallPlan(decision, order, run_key, request, tools, tool_choice, kw, cascade)

    def _tier_call_args(
        self, plan: CallPlan, tier: int, extra: dict[str, Any]
    ) -> tuple[BaseChatModel, dict[str, Any]]:
        """The tier's model and the kwargs for its call (tools bound for this tier)."""
        model = self._rt.registry.model(tier)
        kw = {**plan.passthrough, **extra}
        if plan.tools:
            bound = model.bind_tools(plan.tools, tool_choice=plan.tool_choice)
            kw.update(getattr(bound, "kwargs", {}))
        return model, kw

    def _stop(self, stop: list[str] | None) -> list[str] | None:
        return stop or self.stop or None

    def _tier_call(
        self, plan: CallPlan, tier: int, result_msg: BaseMessage, failures: dict[int, str]
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

    def _aco_metadata(
        self, plan: CallPlan, final: TierCall, cheap: TierCall | None, cascade_info: Any
    ) -> dict[str, Any]:
        rt = self._rt
        calls = [c for c in (cheap, final) if c is not None]
        total = sum(c.cost_usd for c in calls)
        self._settle(plan, total)
        routed = plan.decision.tier
        first_tier = cheap.tier if cheap else routed
        fallback_from = None
        failures = {**(cheap.failures if cheap else {}), **final.failures}
        if cheap is None and final.tier != routed or cheap is not None and cheap.tier != routed:
            fallback_from = routed
        meta: dict[str, Any] = {
            "tier": final.tier,
            "model_id": final.model_id,
            "confidence": round(
                cascade_info.confidence if cascade_info is not None else plan.decision.confidence,
                4,
            ),
            "reason": plan.decision.reason
            + (f"; cascade: {cascade_info.reason}" if cascade_info is not None else ""),
            "cost_usd": round(total, 8),
            "estimated_cost_usd": plan.decision.cost_estimate,
            "escalated": bool(cheap is not None and final.tier != cheap.tier),
            "fallback_from": fallback_from,
            "routed_tier": routed,
            "task_type": plan.decision.task_type,
            "difficulty": plan.decision.difficulty,
            "run_key": plan.run_key,
            "run_spent_usd": round(rt.ledger.spent(plan.run_key), 8),
            "latency_ms": round((time.perf_counter() - plan.started) * 1000, 2),
        }
        if failures:
            meta["failures"] = {str(k): v for k, v in failures.items()}
        if cheap is not None:
            meta["calls"] = [
                {
                    "tier": c.tier,
                    "model_id": c.model_id,
                    "cost_usd": round(c.cost_usd, 8),
                    "usage": dict(c.usage or {}),
                }
                for c in calls
            ]
            meta["first_tier"] = first_tier
        return meta

    def _decorate(
        self,
        result: ChatResult,
        plan: CallPlan,
        final: TierCall,
        cheap: TierCall | None,
        cascade_info: Any,
    ) -> ChatResult:
        rt = self._rt
        meta = self._aco_metadata(plan, final, cheap, cascade_info)
        gen = result.generations[0]
        msg = gen.message
        msg.response_metadata.setdefault("model_name", rt.registry.model_name(final.tier))
        msg.response_metadata["model_provider"] = rt.registry.provider(final.tier)
        msg.response_metadata["aco"] = meta
        if isinstance(msg, AIMessage):
            if msg.usage_metadata is None:
                # The tier reported no usage: carry the estimate the cost was computed from.
                msg.usage_metadata = final.usage
                meta["usage_estimated"] = True
            if cheap is not None and cheap.usage:
                # Both calls were really spent through this model: report their sum.
                msg.usage_metadata = add_usage(cheap.usage, msg.usage_metadata)
        if result.llm_output is None:
            result.llm_output = {}
        result.llm_output["aco"] = meta
        return result

    def _cascade_verdict(self, plan: CallPlan, cheap: TierCall, result: ChatResult) -> Any:
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

    def _escalation_plan(self, plan: CallPlan, verdict: Any) -> list[int]:
        up = [n for n in plan.order if n >= verdict.final_tier]
        return up or [verdict.final_tier]

    def _logprob_kwargs(self, tier: int) -> dict[str, Any]:
        spec = self.config.tier(tier)
        if self._rt.registry.has_instance(tier) or "logprobs" not in spec.capabilities:
            return {}
        k = self.config.cascade.top_logprobs
        return {"logprobs": True, **({"top_logprobs": k} if k else {})}

    def _plan_and_hold(
        self,
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

    def _settle(self, plan: CallPlan, actual: float) -> None:
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
        self, plan: CallPlan
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

    def _retries(self) -> int:
        return self.config.routing.max_retries if self.max_retries is None else self.max_retries

    def _fallback_run(self, order: list[int]) -> FallbackRun:
        return FallbackRun(order, self._retries(), self._rt.health, self.retry_base_delay_s)

    # -- sync I/O -----------------------------------------------------------------------

    def _call_tiers(
        self,
        plan: CallPlan,
        order: list[int],
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_manager: CallbackManagerForLLMRun | None,
        extra: Callable[[int], dict[str, Any]] = _no_extra,
    ) -> tuple[ChatResult, TierCall]:
        run = self._fallback_run(order)
        while (attempt := run.next_attempt()) is not None:
            tier, delay = attempt
            if delay:
                time.sleep(delay)
            try:
                model, kw = self._tier_call_args(plan, tier, extra(tier))
                if model.rate_limiter:
                    model.rate_limiter.acquire(blocking=True)
                result = model._generate(
                    messages, stop=self._stop(stop), run_manager=run_manager, **kw
                )
            except Exception as exc:  # noqa: BLE001 - every provider fault is classified
                run.failed(exc)
                continue
            run.succeeded()
            return result, self._tier_call(plan, tier, result.generations[0].message, run.failures)
        raise run.exhausted_error()

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        plan = self._plan_and_hold(messages, kwargs)
        flow = self._answer_flow(plan)
        order, extra = next(flow)
        try:
            while True:
                answer = self._call_tiers(plan, order, messages, stop, run_manager, extra)
                try:
                    order, extra = flow.send(answer)
                except StopIteration as done:
                    return done.value
        finally:
            self._settle(plan, plan.completed_usd)  # no-op once the answer settled it

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        plan = self.plan(messages, kwargs, streaming=True)
        if plan.cascade:
            # Tokens cannot be taken back: answer in full (buffered), then re-chunk.
            result = self._generate(messages, stop=stop, run_manager=None, **kwargs)
            yield from _result_as_chunks(result)
            return
        plan = self._plan_and_hold(messages, kwargs, streaming=True, first=plan)
        collected: list[ChatGenerationChunk] = []
        try:
            run = self._fallback_run(plan.order)
            while (attempt := run.next_attempt()) is not None:
                tier, delay = attempt
                if delay:
                    time.sleep(delay)
                try:
                    model, kw = self._tier_call_args(plan, tier, {})
                    if model.rate_limiter:
                        model.rate_limiter.acquire(blocking=True)
                    for chunk in model._stream(messages, stop=self._stop(stop), **kw):
                        collected.append(chunk)
                        yield chunk
                except Exception as exc:  # noqa: BLE001
                    if collected:
                        raise  # part of an answer is out: never answer twice
                    run.failed(exc)
                    continue
                run.succeeded()
                yield self._final_chunk(plan, tier, collected, run)
                return
            raise run.exhausted_error()
        finally:
            # An abandoned or failed stream: what was streamed is charged at the estimate.
            self._settle(plan, plan.held if collected else 0.0)

    def _final_chunk(
        self,
        plan: CallPlan,
        tier: int,
        collected: list[ChatGenerationChunk],
        run: FallbackRun,
    ) -> ChatGenerationChunk:
        rt = self._rt
        merged: AIMessageChunk | None = None
        for c in collected:
            merged = c.message if merged is None else merged + c.message  # type: ignore[assignment]
        msg = merged if merged is not None else AIMessageChunk(content="")
        call = self._tier_call(plan, tier, msg, run.failures)
        meta = self._aco_metadata(plan, call, None, None)
        rm: dict[str, Any] = {"aco": meta}
        if "model_name" not in msg.response_metadata:
            rm["model_name"] = rt.registry.model_name(tier)
        if "model_provider" not in msg.response_metadata:
            rm["model_provider"] = rt.registry.provider(tier)
        usage = None
        if msg.usage_metadata is None and call.usage is not None:
            usage = call.usage  # estimated: the tier sent none
            meta["usage_estimated"] = True
        return ChatGenerationChunk(
            message=AIMessageChunk(
                content="", response_metadata=rm, usage_metadata=usage, chunk_position="last"
            )
        )

    # -- async I/O ----------------------------------------------------------------------

    async def _acall_tiers(
        self,
        plan: CallPlan,
        order: list[int],
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_manager: AsyncCallbackManagerForLLMRun | None,
        extra: Callable[[int], dict[str, Any]] = _no_extra,
    ) -> tuple[ChatResult, TierCall]:
        run = self._fallback_run(order)
        while (attempt := run.next_attempt()) is not None:
            tier, delay = attempt
            if delay:
                await asyncio.sleep(delay)
            try:
                model, kw = self._tier_call_args(plan, tier, extra(tier))
                if model.rate_limiter:
                    await model.rate_limiter.aacquire(blocking=True)
                result = await model._agenerate(
                    messages, stop=self._stop(stop), run_manager=run_manager, **kw
                )
            except Exception as exc:  # noqa: BLE001
                run.failed(exc)
                continue
            run.succeeded()
            return result, self._tier_call(plan, tier, result.generations[0].message, run.failures)
        raise run.exhausted_error()

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        plan = self._plan_and_hold(messages, kwargs)
        flow = self._answer_flow(plan)
        order, extra = next(flow)
        try:
            while True:
                answer = await self._acall_tiers(plan, order, messages, stop, run_manager, extra)
                try:
                    order, extra = flow.send(answer)
                except StopIteration as done:
                    return done.value
        finally:
            self._settle(plan, plan.completed_usd)  # no-op once the answer settled it

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        plan = self.plan(messages, kwargs, streaming=True)
        if plan.cascade:
            result = await self._agenerate(messages, stop=stop, run_manager=None, **kwargs)
            for chunk in _result_as_chunks(result):
                yield chunk
            return
        plan = self._plan_and_hold(messages, kwargs, streaming=True, first=plan)
        collected: list[ChatGenerationChunk] = []
        try:
            run = self._fallback_run(plan.order)
            while (attempt := run.next_attempt()) is not None:
                tier, delay = attempt
                if delay:
                    await asyncio.sleep(delay)
                try:
                    model, kw = self._tier_call_args(plan, tier, {})
                    if model.rate_limiter:
                        await model.rate_limiter.aacquire(blocking=True)
                    async for chunk in model._astream(messages, stop=self._stop(stop), **kw):
                        collected.append(chunk)
                        yield chunk
                except Exception as exc:  # noqa: BLE001
                    if collected:
                        raise  # part of an answer is out: never answer twice
                    run.failed(exc)
                    continue
                run.succeeded()
                yield self._final_chunk(plan, tier, collected, run)
                return
            raise run.exhausted_error()
        finally:
            self._settle(plan, plan.held if collected else 0.0)

    # -- tools and structured output ----------------------------------------------------

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind provider-neutral tools; each call binds them to the tier it routes to.

        Tiers that cannot call tools are skipped for tool-bound calls.

        Usage::

            llm.bind_tools([get_weather], tool_choice="any").invoke("Weather in Paris?")
        """
        formatted = [convert_to_openai_tool(t, strict=kwargs.pop("strict", None)) for t in tools]
        if tool_choice is True:
            tool_choice = "any"
        return self.bind(**{_TOOLS_KEY: formatted, _TOOL_CHOICE_KEY: tool_choice}, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        include_raw: bool = False,
        method: Literal["function_calling", "json_schema", "json_mode"] = "function_calling",
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | Any]:
        """Structured output through the routed tier (tool calling, JSON schema or JSON mode).

        Usage::

            llm.with_structured_output(Answer).invoke("What is 2+2?")   # Answer(value=4)
        """
        if kwargs:
            raise ValueError(f"unsupported arguments {sorted(kwargs)}: use method= and strict=")
        is_model = isinstance(schema, type) and is_basemodel_subclass(schema)
        tool = convert_to_openai_tool(schema, strict=strict)
        name = tool["function"]["name"]
        llm: Runnable[Any, Any]
        parser: Runnable[Any, Any]
        if method == "function_calling":
            llm = self.bind_tools([schema], tool_choice=name, strict=strict)
            parser = (
                PydanticToolsParser(tools=[schema], first_tool_only=True)  # type: ignore[list-item]
                if is_model
                else JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
            )
        elif method == "json_schema":
            fmt: dict[str, Any] = {
                "type": "json_schema",
                "json_schema": {
                    "name": name,
                    "schema": tool["function"]["parameters"],
                    **({"strict": strict} if strict is not None else {}),
                },
            }
            llm = self.bind(response_format=fmt)
            parser = (
                PydanticOutputParser(pydantic_object=schema) if is_model else JsonOutputParser()
            )  # type: ignore[arg-type]
        elif method == "json_mode":
            llm = self.bind(response_format={"type": "json_object"})
            parser = (
                PydanticOutputParser(pydantic_object=schema) if is_model else JsonOutputParser()
            )  # type: ignore[arg-type]
        else:
            raise ValueError(
                f"method={method!r} is not supported: use function_calling, json_schema "
                "or json_mode"
            )
        if not include_raw:
            return llm | parser
        parser_with_fallback = RunnablePassthrough.assign(
            parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
        ).with_fallbacks(
            [RunnablePassthrough.assign(parsed=lambda _: None)], exception_key="parsing_error"
        )
        return RunnableMap(raw=llm) | parser_with_fallback


def _result_as_chunks(result: ChatResult) -> Iterator[ChatGenerationChunk]:
    """A finished (buffered) answer as stream chunks: the content, then metadata."""
    gen: ChatGeneration = result.generations[0]
    msg = gen.message
    chunk_msg = AIMessageChunk(
        content=msg.content,
        additional_kwargs=msg.additional_kwargs,
        response_metadata=msg.response_metadata,
        usage_metadata=getattr(msg, "usage_metadata", None),
        tool_call_chunks=tool_call_chunks(msg),
        id=msg.id,
        chunk_position="last",
    )
    yield ChatGenerationChunk(message=chunk_msg, generation_info=gen.generation_info)


__all__ = ["ACO_OPTIONS", "ACORouterChatModel", "CallPlan", "FallbackRun", "build_route_request"]
