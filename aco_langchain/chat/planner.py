"""Deciding a call before any I/O: messages + options + a budget snapshot → a :class:`CallPlan`.

The planner is pure: the run's spend and the tiers' availability are read by the caller (the
budget gateway, the tier registry) and handed in as a :class:`BudgetSnapshot`, so the same
plan comes out of the sync and the async path.

Example:
    ```python
    planner = Planner(config, registry, router)
    call = split_call_options(kwargs, model_name="aco-router", fixed_run_key=None)
    plan = planner.plan(messages, call, BudgetSnapshot(spent_usd=0.0, unavailable={}))
    plan.decision.tier, plan.order, plan.deadline.budget_s
    ```
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import BaseMessage

from aco_langchain.chat.messages import message_text
from aco_langchain.chat.options import CallOptions
from aco_langchain.config import ACOConfig
from aco_langchain.errors import BudgetExceededError, InvalidRequestError, RoutingError
from aco_langchain.pricing import DEFAULT_OUTPUT_TOKENS, estimate_tokens, input_token_bound
from aco_langchain.providers.deadline import Deadline, call_deadline
from aco_langchain.providers.faults import fallback_order
from aco_langchain.providers.tiers import TierRegistry
from aco_langchain.routing import RouteConstraints, RouteDecision, Router, RouteRequest, decide
from aco_langchain.routing.base import OPTION_VALUES
from aco_langchain.routing.policy import needs_assessment
from aco_langchain.spend.budgets import (
    MIN_OUTPUT_TOKENS,
    CallIdentity,
    budget_limits,
    caps_within_cost,
)
from aco_langchain.spend.gateway import Tab
from aco_langchain.spend.ledger.base import Limit

logger = logging.getLogger(__name__)

_TIERS = (1, 2, 3, 4, 5)


def _has_content(message: BaseMessage, text: str) -> bool:
    if (text and not text.isspace()) or getattr(message, "tool_calls", None):  # no copy
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
    roles = [m.type for m in messages]
    last_user = None
    for i in range(len(roles) - 1, -1, -1):  # the latest human turn
        if roles[i] == "human":
            last_user = texts[i]
            break
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
    # The user's per-call options are validated (force_tier=9 is a clear error); the rest
    # is what this function built and checked, so the request skips a second pass.
    return RouteRequest.trusted(
        text="\n".join(texts),
        last_user_text=last_user,
        roles=roles,
        n_tools=n_tools,
        expected_output_tokens=max_tokens,
        constraints=RouteConstraints.from_options(options),
    )


@dataclass(frozen=True)
class BudgetSnapshot:
    """What the planner knows of the world, read before planning (the only inputs from I/O).

    Args:
        spent_usd: the run's settled spend (``BudgetGateway.spent``).
        unavailable: {tier: why} for tiers that cannot be called now (no credentials, server
            down, cooling down after faults).
    """

    spent_usd: float = 0.0
    unavailable: Mapping[int, str] = field(default_factory=dict)


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
    """Output tokens a tier is told to stop at when it has no cap of its own (the call's
    ``max_tokens``, else ``routing.max_output_tokens``); see :meth:`cap_for`."""
    in_bound: int
    """Upper bound on the call's input tokens (what a hold counts)."""
    ttl_s: float
    forced: bool = False
    started: float = field(default_factory=time.perf_counter)
    deadline: Deadline = field(default_factory=lambda: Deadline.start(float("inf"), "none"))
    """The call's one deadline: every attempt, retry, fallback and cascade step shares it."""
    caps: dict[int, int] = field(default_factory=dict)
    """Output cap per tier (the tier's ``max_output_tokens`` default when the call set no
    ``max_tokens``); tiers not named use :attr:`cap`, or :attr:`tier_cap` when it is set."""
    tier_cap: Callable[[int], int] | None = None
    """The call set no ``max_tokens``: each tier's own default cap
    (``ACOConfig.output_cap``), read for the tiers a call holds and calls (one or two), not
    for all five up front."""
    attempt_share: float = 1.0
    """``routing.attempt_share``: the deadline's share an attempt with a fallback may take."""

    def cap_for(self, tier: int) -> int:
        """Output tokens ``tier`` is told to stop at (sent, and held at its price)."""
        got = self.caps.get(tier)
        if got is None:
            got = self.cap if self.tier_cap is None else self.tier_cap(tier)
            self.caps[tier] = got
        return got

    def new_tab(self) -> Tab:
        """The call's budget tab (its holds live there, not in the plan)."""
        return Tab(
            run_key=self.run_key,
            limits=self.limits,
            in_bound=self.in_bound,
            cap=self.cap,
            ttl_s=self.ttl_s,
            owner=self.who.trace_id or "",
        )


class Planner:
    """Routes a call and fixes its fallback order, output cap, budgets and deadline; pure.

    Args:
        config: the model's config.
        registry: the tiers (names, tool support; no model is built).
        router: the router that assesses requests.
    """

    def __init__(self, config: ACOConfig, registry: TierRegistry, router: Router) -> None:
        self.config = config
        self.registry = registry
        self.router = router
        self._local = [n for n in _TIERS if config.tier(n).is_local]
        rs = config.routing
        self._ttl = (
            config.ledger.hold_ttl_s or rs.max_latency_per_call_s * (rs.max_retries + 1) + 30
        )

    def _decide(
        self,
        assessment: Any,
        request: RouteRequest,
        unavailable: dict[int, str],
        spent_usd: float,
        max_tokens: int | None,
    ) -> tuple[RouteDecision, RouteRequest, int | None]:
        """Route the request; when its ``max_cost_usd`` fits no tier at the default output cap
        and the call set no ``max_tokens``, lower the output cap until a tier fits (down to
        ``MIN_OUTPUT_TOKENS``) before refusing.

        Returns:
            The decision, the request it was made for, and the call's output cap (lowered or
            as given).

        Raises:
            RoutingError: no tier fits the cost cap even at the minimum output cap (the
                message says so).
        """
        config = self.config
        try:
            return (
                decide(assessment, request, config, unavailable=unavailable, spent_usd=spent_usd),
                request,
                max_tokens,
            )
        except BudgetExceededError:
            raise
        except RoutingError as err:
            cost_cap = request.constraints.max_cost_usd
            if cost_cap is None or max_tokens is not None:
                raise
            ceiling = request.expected_output_tokens or DEFAULT_OUTPUT_TOKENS
            tokens = estimate_tokens(request.text)
            for cap in caps_within_cost(config, tokens, cost_cap, ceiling):
                lowered = request.model_copy(update={"expected_output_tokens": cap})
                try:
                    decision = decide(
                        assessment, lowered, config, unavailable=unavailable, spent_usd=spent_usd
                    )
                except BudgetExceededError:
                    raise
                except RoutingError:
                    continue
                reason = f"output cap lowered to {cap} tokens to fit max_cost_usd {cost_cap}"
                logger.info("%s", reason)
                decision = decision.model_copy(update={"reason": f"{decision.reason}; {reason}"})
                return decision, lowered, cap
            raise RoutingError(
                f"{err} (even at the minimum output cap of {MIN_OUTPUT_TOKENS} tokens)"
            ) from err

    def plan(
        self,
        messages: Sequence[BaseMessage],
        call: CallOptions,
        snapshot: BudgetSnapshot,
        *,
        streaming: bool = False,
    ) -> CallPlan:
        """The plan of one call.

        Args:
            messages: the call's messages.
            call: its sorted options (``split_call_options``).
            snapshot: the run's spend and the tiers that cannot be called now.
            streaming: a stream (a cascade then runs only when streams are buffered).

        Returns:
            The typed plan: decision, tier order, cap, budgets, deadline.

        Raises:
            InvalidRequestError: a bad prompt or option.
            BudgetExceededError: the run is over budget and the policy is ``raise``.
        """
        config = self.config
        options = dict(call.options)
        override = call.model_override
        if override:
            # A concrete tier model name (e.g. "gpt-4.1") or a tier's model_id.
            by_name = [n for n in _TIERS if self.registry.model_name(n) == override]
            if by_name and "force_tier" not in options:
                options["force_tier"] = by_name[0]
            else:
                options["force_model"] = override
        max_tokens = options.get("max_tokens")
        forced = "force_tier" in options or "force_model" in options
        tools = call.tools
        request = build_route_request(messages, options, len(tools or []))
        unavailable = dict(snapshot.unavailable)
        run_key = call.run_key
        # A forced tier skips the router entirely (its assessment could not change it).
        assessment = self.router.assess(request, config) if needs_assessment(request) else None
        try:
            decision, request, max_tokens = self._decide(
                assessment, request, unavailable, snapshot.spent_usd, max_tokens
            )
        except BudgetExceededError as err:
            raise BudgetExceededError(
                f"run {run_key!r}: {err}",
                scope=f"run:{run_key}",
                limit_usd=err.limit_usd,
                spent_usd=err.spent_usd,
                held_usd=err.held_usd,
            ) from err
        # tiers_that_fit(config, request), from the need the decision already sized
        need = decision.context_tokens
        candidates = {
            n
            for n in _TIERS
            if n not in unavailable
            and need <= config.tier(n).max_context
            and (not tools or self.registry.takes_tools(n))
        }
        if decision.budget_exceeded:
            candidates = {n for n in candidates if config.tier(n).is_local}
        order = fallback_order(
            decision.tier,
            candidates,
            allow_cloud=config.routing.allow_cloud_fallback,
            local=self._local,
        )
        cascade = (
            config.cascade.enabled
            and decision.tier < 5
            and not (streaming and not config.cascade.buffer_stream)
            and options.get("force_tier") is None
            and options.get("force_model") is None
        )
        deadline = call_deadline(
            config.routing.max_latency_per_call_s, request.constraints.max_latency_ms
        )
        if logger.isEnabledFor(logging.DEBUG):  # no argument packing per call when off
            logger.debug(
                "tier %s (order %s, deadline %gs by %s): %s",
                decision.tier,
                order,
                deadline.budget_s,
                deadline.source,
                decision.reason,
            )
        return CallPlan(
            decision,
            order,
            run_key,
            request,
            tools,
            call.tool_choice,
            call.passthrough,
            cascade,
            who=call.who,
            limits=budget_limits(config, call.who),
            cap=int(max_tokens or config.routing.max_output_tokens),
            tier_cap=None if max_tokens else config.output_cap,
            attempt_share=config.routing.attempt_share,
            in_bound=input_token_bound(request.text, len(messages), tools),
            ttl_s=self._ttl,
            forced=forced,
            deadline=deadline,
        )


__all__ = ["BudgetSnapshot", "CallPlan", "Planner", "build_route_request"]
