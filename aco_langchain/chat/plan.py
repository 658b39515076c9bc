"""Deciding a call before any I/O: the route request, the tier order, the budget hold, and
the answer flow (cascade verdict, escalation) that the sync and async loops both drive."""

from __future__ import annotations

import difflib
import logging
import time
import uuid
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatResult
from langchain_core.runnables import RunnableConfig

from aco_langchain.chat.messages import message_text
from aco_langchain.errors import (
    BudgetExceededError,
    DeadlineExceededError,
    InvalidRequestError,
)
from aco_langchain.providers.deadline import Deadline, call_deadline
from aco_langchain.providers.faults import (
    TierHealth,
    fallback_order,
)
from aco_langchain.providers.tiers import (
    TierRegistry,
    estimate_tokens,
    input_token_bound,
    output_cap_kwargs,
    usage_tokens,
)
from aco_langchain.routing import RouteConstraints, RouteDecision, Router, RouteRequest, decide
from aco_langchain.routing.base import OPTION_VALUES
from aco_langchain.routing.policy import needs_assessment, tiers_that_fit
from aco_langchain.spend.budgets import CallIdentity, budget_limits
from aco_langchain.spend.ledger import Hold, Limit, Refusal, SpendLedger

if TYPE_CHECKING:
    from aco_langchain.chat.execute import FallbackRun
    from aco_langchain.chat.model import ACORouterChatModel

logger = logging.getLogger(__name__)

#: Per-call options, accepted as invoke kwargs or RunnableConfig ``configurable`` keys.
ACO_OPTIONS = tuple(RouteConstraints.model_fields)
_RUN_KEY_OPTION = "aco_run_id"
_TRACE_KEY = "aco_trace_id"
#: Who a call is for (budgets per user / API key / tag): kwargs or ``configurable`` keys.
IDENTITY_OPTIONS = ("aco_user", "aco_api_key", "aco_tags")
_TOOLS_KEY = "aco_tools"
_TOOL_CHOICE_KEY = "aco_tool_choice"
#: Prefix of a fallback-run failure line that is a budget skip, not a provider fault.
BUDGET_SKIP = "skipped, over budget: "


@dataclass
class Runtime:
    """The per-instance parts of a router model, in one plain holder (pydantic private
    attribute access costs ~1 us each on the hot path)."""

    registry: TierRegistry
    router: Router
    ledger: SpendLedger
    health: TierHealth
    identifying: dict[str, Any]
    last_run: str | None = None
    """The run key of this instance's latest call (``llm.spent()`` reads it)."""


_KNOWN_OPTIONS = (*ACO_OPTIONS, _RUN_KEY_OPTION, *IDENTITY_OPTIONS)


@lru_cache(maxsize=256)
def _misspelt_option(key: str) -> str | None:
    """The per-call option ``key`` looks like a misspelling of, else None (cached: the
    same passthrough kwargs repeat on every call)."""
    if key in _KNOWN_OPTIONS or key in (_TOOLS_KEY, _TOOL_CHOICE_KEY, _TRACE_KEY):
        return None
    close = difflib.get_close_matches(key, _KNOWN_OPTIONS, n=1, cutoff=0.8)
    if close:
        return close[0]
    if key.startswith(("force_", "aco_")):
        return ", ".join(_KNOWN_OPTIONS)
    return None


def check_option_names(keys: Iterable[str], where: str = "option") -> None:
    """Reject per-call keys that look like a misspelt aco option (``force_teir``).

    Other keys are the tier's own call options (``temperature``, ``response_format``...)
    and pass through untouched.

    Raises:
        InvalidRequestError: naming the key and the option it resembles.
    """
    for key in keys:
        near = _misspelt_option(key)
        if near is not None:
            raise InvalidRequestError(
                f"unknown {where} {key!r}: did you mean {near}? "
                f"(aco options: {', '.join(_KNOWN_OPTIONS)})"
            )


def _has_content(message: BaseMessage, text: str) -> bool:
    if text.strip() or getattr(message, "tool_calls", None):
        return True
    content = message.content
    # a non-text block (an image, a file) is content too
    return isinstance(content, list) and any(
        not (isinstance(b, str) or (isinstance(b, dict) and b.get("type") == "text"))
        for b in content
    )


def build_route_request(
    messages: Sequence[BaseMessage], options: dict[str, Any], n_tools: int
) -> RouteRequest:
    """What the router sees of a call: texts, roles, tools and the per-call options.

    Args:
        messages: the call's messages (at least one with content).
        options: per-call options (``RouteConstraints`` fields and ``max_tokens``); popped.
        n_tools: how many tools are bound.

    Returns:
        The request the router assesses and the policy decides on.

    Raises:
        InvalidRequestError: no messages, only blank ones, or a bad option value.

    Example:
        ```python
        build_route_request([HumanMessage("What is 2+2?")], {"max_tokens": 40}, 0)
        ```
    """
    if not messages:
        raise InvalidRequestError(
            "no messages to answer: pass a prompt string or a non-empty list of messages"
        )
    texts = [message_text(m) for m in messages]
    if not any(_has_content(m, t) for m, t in zip(messages, texts, strict=True)):
        raise InvalidRequestError(
            f"the prompt is empty ({len(messages)} message(s), all blank): pass the text to answer"
        )
    last_user = next(
        (t for m, t in zip(reversed(messages), reversed(texts), strict=True) if m.type == "human"),
        None,
    )
    max_tokens = options.pop("max_tokens", None)
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens <= 0
    ):
        shown = (
            f"={max_tokens!r}"
            if isinstance(max_tokens, bool | int | float)
            else f" ({type(max_tokens).__name__})"
        )
        raise InvalidRequestError(
            f"option max_tokens{shown} is not accepted: give {OPTION_VALUES['max_tokens']}"
        )
    # Validation is cheaper than model_construct in pydantic 2.13 (measured: 2.4 vs 4.0 us),
    # and it checks the user's per-call options (force_tier=9 is a clear error).
    return RouteRequest(
        text="\n".join(texts),
        last_user_text=last_user,
        roles=[m.type for m in messages],
        n_tools=n_tools,
        expected_output_tokens=max_tokens,
        constraints=RouteConstraints.from_options(options),
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
    who: CallIdentity
    limits: list[Limit]
    cap: int
    """Output tokens the tier is told to stop at (sent as max_tokens / num_predict / ...)."""
    in_bound: int
    """Upper bound on the call's input tokens (what a hold counts)."""
    ttl_s: float
    forced: bool = False
    escalating: bool = False
    """The cascade's escalated call is in flight: its ledger row says ``escalated``."""
    started: float = field(default_factory=time.perf_counter)
    hold: Hold | None = None
    """The hold of the tier being called, while it is in flight."""
    hold_tier: int | None = None
    hold_started: float = 0.0
    completed_usd: float = 0.0
    """USD of the tier calls that answered so far."""
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

    def _options_from_config(
        self: ACORouterChatModel, config: RunnableConfig | None, kwargs: dict[str, Any]
    ) -> RunnableConfig:
        """Per-call options from ``configurable``, and the run key: ``aco_run_id``, else
        ``thread_id``, else the root run of the LangChain call tree (see ``chat/runs.py``).
        Returns the config to run with (it may carry the call's run id)."""
        from aco_langchain.chat.runs import call_run_key

        configurable = (config or {}).get("configurable") or {}
        check_option_names(configurable, "configurable key")
        for key in (*ACO_OPTIONS, _RUN_KEY_OPTION, *IDENTITY_OPTIONS):
            if key in configurable and key not in kwargs:
                kwargs[key] = configurable[key]
        if self.run_key is not None and _RUN_KEY_OPTION not in kwargs:
            kwargs[_RUN_KEY_OPTION] = self.run_key
        cfg, trace = call_run_key(config, kwargs, _RUN_KEY_OPTION)
        kwargs.setdefault(_TRACE_KEY, trace)
        if cfg.get("tags") and "aco_tags" not in kwargs:
            kwargs["aco_tags"] = list(cfg["tags"])
        return cfg

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
        run_key = str(
            kw.pop(_RUN_KEY_OPTION, None) or self.run_key or f"aco-{uuid.uuid4().hex[:12]}"
        )
        rt.last_run = run_key
        tags = kw.pop("aco_tags", None) or ()
        who = CallIdentity(
            run_key=run_key,
            user=_opt_str(kw.pop("aco_user", None)),
            api_key=_opt_str(kw.pop("aco_api_key", None)),
            tags=tuple(str(t) for t in ([tags] if isinstance(tags, str) else tags)),
            trace_id=_opt_str(kw.pop(_TRACE_KEY, None)),
        )
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
        max_tokens = kw.pop("max_tokens", self.max_tokens)
        if max_tokens is not None:
            options["max_tokens"] = max_tokens
        forced = "force_tier" in options or "force_model" in options
        check_option_names(kw)
        request = build_route_request(messages, options, len(tools or []))
        unavailable = {**rt.registry.unavailable(request.routing_text), **rt.health.cooling()}
        # A forced tier skips the router entirely (its assessment could not change it).
        assessment = rt.router.assess(request, self.config) if needs_assessment(request) else None
        try:
            decision = decide(
                assessment,
                request,
                self.config,
                unavailable=unavailable,
                spent_usd=rt.ledger.spent(run_key),
            )
        except BudgetExceededError as err:
            raise BudgetExceededError(
                f"run {run_key!r}: {err}",
                scope=f"run:{run_key}",
                limit_usd=err.limit_usd,
                spent_usd=err.spent_usd,
                held_usd=err.held_usd,
            ) from err
        fit = tiers_that_fit(self.config, request)
        candidates = {
            n
            for n in range(1, 6)
            if n not in unavailable and n in fit and (not tools or rt.registry.takes_tools(n))
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
        if self.temperature is not None:
            kw.setdefault("temperature", self.temperature)
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
        rs = self.config.routing
        ttl = self.config.ledger.hold_ttl_s or rs.max_latency_per_call_s * (rs.max_retries + 1) + 30
        return CallPlan(
            decision,
            order,
            run_key,
            request,
            tools,
            tool_choice,
            kw,
            cascade,
            who=who,
            limits=budget_limits(self.config, who),
            cap=int(max_tokens or rs.max_output_tokens),
            in_bound=input_token_bound(request.text, len(messages), tools),
            ttl_s=ttl,
            forced=forced,
            deadline=deadline,
        )

    def _tier_call_args(
        self: ACORouterChatModel, plan: CallPlan, tier: int, extra: dict[str, Any]
    ) -> tuple[BaseChatModel, dict[str, Any]]:
        """The tier's model and the kwargs for its call (tools bound for this tier)."""
        model = self._rt.registry.model(tier)
        kw = {**plan.passthrough, **output_cap_kwargs(model, plan.cap), **extra}
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
            cost_usd=self._rt.registry.call_cost(tier, result_msg, i, o),
            usage=usage,
            failures=dict(failures),
        )
        plan.completed_usd += call.cost_usd
        self._settle_tier(plan, tier, i, o, call.cost_usd, "escalated" if plan.escalating else "ok")
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

    # -- budget holds: one per tier call ----------------------------------------------------

    def _worst_case(self: ACORouterChatModel, plan: CallPlan, tier: int) -> float:
        """USD of the tier's worst case: the input bound and the output cap at its price."""
        return self._rt.registry.cost(tier, plan.in_bound, plan.cap)

    def _hold_tier(self: ACORouterChatModel, plan: CallPlan, tier: int) -> str | None:
        """Hold ``tier``'s worst case on every budget of the call before calling it.

        Returns None when held (a retry on the same tier keeps its hold), or the reason the
        tier is skipped. A forced tier that does not fit raises under
        ``on_budget_exceeded: raise``: it is never silently served by another tier.

        Raises:
            BudgetExceededError: the forced tier does not fit and the policy is ``raise``.
        """
        if plan.hold is not None and plan.hold_tier == tier:
            return None
        self._release_hold(plan)
        usd = self._worst_case(plan, tier)
        got = self._rt.ledger.hold(
            plan.limits,
            usd,
            plan.in_bound + plan.cap,
            ttl_s=plan.ttl_s,
            owner=plan.who.trace_id or "",
        )
        if isinstance(got, Refusal):
            if plan.forced and self.config.routing.on_budget_exceeded == "raise":
                raise _budget_error(plan, got)
            logger.info("run %s: tier %d skipped: %s", plan.run_key, tier, got.reason)
            return BUDGET_SKIP + got.reason
        plan.hold, plan.hold_tier, plan.hold_started = got, tier, time.perf_counter()
        return None

    def _release_hold(self: ACORouterChatModel, plan: CallPlan) -> None:
        """Give back the hold of a tier call that did not answer."""
        if plan.hold is not None:
            hold, plan.hold, plan.hold_tier = plan.hold, None, None
            self._rt.ledger.release(hold)

    def _finish(self: ACORouterChatModel, plan: CallPlan, *, partial: bool = False) -> None:
        """End of a call: a hold still open means its tier did not answer. A stream that
        already sent chunks was (probably) billed: it is charged its worst case."""
        if plan.hold is None:
            return
        if partial and plan.hold_tier is not None:
            tier = plan.hold_tier
            self._settle_tier(plan, tier, plan.in_bound, plan.cap, plan.hold.usd, "partial")
        else:
            self._release_hold(plan)

    def _exhausted(self: ACORouterChatModel, plan: CallPlan, run: FallbackRun) -> Exception:
        """The error when no tier answered: over budget when every tier was skipped for it,
        else the fallback run's own error (all tiers failed, or the deadline)."""
        failures = run.failures
        if failures and all(v.startswith(BUDGET_SKIP) for v in failures.values()):
            lines = "; ".join(
                f"tier {n}: {v.removeprefix(BUDGET_SKIP)}" for n, v in failures.items()
            )
            return BudgetExceededError(
                f"run {plan.run_key!r}: no tier fits the budget ({lines}); raise "
                "routing.max_cost_per_task (or the budget named) or start a new run",
                scope=plan.limits[0].scope,
                limit_usd=plan.limits[0].usd,
                spent_usd=self._rt.ledger.spent(plan.run_key),
            )
        return run.exhausted_error()

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
        try:
            plan.escalating = True
            final_result, final = yield self._escalation_plan(plan, verdict), _no_extra
        except DeadlineExceededError as exc:
            # Degrade: no time left to escalate, so the cheap answer stands (and says so).
            logger.warning(
                "deadline %gs (%s) spent escalating from tier %s: answering with its answer",
                exc.deadline_s,
                exc.source,
                cheap.tier,
            )
            out = self._decorate(result, plan, cheap, None, verdict)
            out.generations[0].message.response_metadata["aco"]["escalation_skipped"] = (
                f"deadline {exc.deadline_s:g}s ({exc.source}) spent"
            )
            return out
        return self._decorate(final_result, plan, final, cheap, verdict)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _budget_error(plan: CallPlan, refusal: Refusal) -> BudgetExceededError:
    return BudgetExceededError(
        f"run {plan.run_key!r}: forced tier does not fit: {refusal.reason} "
        "(on_budget_exceeded: raise; raise the budget or start a new run)",
        scope=refusal.scope,
        limit_usd=refusal.limit_usd,
        spent_usd=refusal.spent_usd,
        held_usd=refusal.held_usd,
    )
