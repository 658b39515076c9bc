"""The agent's own budget on the spend ledger: a hold before every tier call of a step.

``ACOMiddleware(max_budget=...)`` (and an agent's ``max_budget`` in general) is a budget of the
run's ledger scope (``run:<run key>``). Checking "spent < budget" and then calling lets
concurrent steps of one run all pass the check and overspend it; so each tier call first
*holds* its worst case (input bound + output cap at the tier's price) on that scope, exactly as
the chat model holds ``routing.max_cost_per_task``, and concurrent calls see each other's
holds.

Where the hold lives: a direct call holds on the run's scope itself (nobody else holds for
it). A routed call is held by the router model too, on the run's scope against
``routing.max_cost_per_task``; holding there twice would count the call twice, so the agent's
hold goes on its own scope ``agent:<run key>`` with what is left of ``max_budget`` (the
budget less the run's settled spend, read just before). Concurrent steps of one run still see
each other's holds there; the one gap is a call settling between that read and the hold,
bounded by one call's worst case. After the call:

- routed (the ``ACORouterChatModel`` answered and settled its own ledger row): the hold is
  released;
- direct (the tier's own chat model answered): the hold is *settled* with the call's cost,
  priced from its usage, so the spend is on the ledger whatever happens next;
- the call failed: the hold is released (nothing was billed by us; the router records its own).

Example:
    ```python
    holds = StepHolds.for_run(llm, run_key="job-7", budget=0.5)
    got = holds.hold(tier=3, messages=msgs, tools=tools, cap=1024)
    if isinstance(got, Refusal):
        ...  # stop the run: got.reason names the budget
    ```
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.errors import GraphBubbleUp

from aco_langchain.agent.checks import StopOutcome, stop_outcome
from aco_langchain.agent.engine import TierCall
from aco_langchain.agent.events import call_cost
from aco_langchain.chat.messages import message_text
from aco_langchain.providers.tiers import input_token_bound
from aco_langchain.spend.budgets import run_scope
from aco_langchain.spend.ledger.base import Hold, Limit, Refusal, SpendRecord

if TYPE_CHECKING:
    from aco_langchain.chat.model import ACORouterChatModel

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepHolds:
    """Ledger holds of one run's tier calls against the agent's budget.

    Attributes:
        llm: The router model (its ledger, registry and config).
        run_key: The run's ledger key.
        budget: USD the run may spend (the agent's ``max_budget``).
        ttl_s: How long a hold lives if its owner dies mid-call.
    """

    llm: ACORouterChatModel
    run_key: str
    budget: float
    ttl_s: float

    @classmethod
    def for_run(cls, llm: ACORouterChatModel, run_key: str, budget: float) -> StepHolds:
        """Holds for ``run_key``; the TTL covers the call's deadline and retries (as the chat
        model's own holds do), or ``ledger.hold_ttl_s`` when set."""
        rs = llm.config.routing
        ttl = llm.config.ledger.hold_ttl_s or rs.max_latency_per_call_s * (rs.max_retries + 1) + 30
        return cls(llm, run_key, budget, float(ttl))

    def worst_case(self, tier: int, messages: Any, tools: Any, cap: int) -> tuple[float, int]:
        """(USD, tokens) of the tier call's worst case: input bound + output cap."""
        msgs = list(messages or [])
        text = "\n".join(message_text(m) for m in msgs)
        schemas = [t if isinstance(t, dict) else convert_to_openai_tool(t) for t in tools or []]
        bound = input_token_bound(text, len(msgs), schemas or None)
        return self.llm.registry.cost(tier, bound, cap), bound + cap

    def hold(
        self, tier: int, messages: Any, tools: Any, cap: int, *, routed: bool
    ) -> Hold | Refusal:
        """Hold the call's worst case against the agent's budget (atomic with concurrent
        holds of the run; see the module docstring for the scope).

        Returns:
            The hold, or the refusal whose ``reason`` names the budget and its figures.
        """
        usd, tokens = self.worst_case(tier, messages, tools, cap)
        ledger = self.llm.spend_ledger
        if routed:
            left = max(0.0, self.budget - ledger.spent(self.run_key))
            limit = Limit(f"agent:{self.run_key}", usd=left)
        else:
            limit = Limit(run_scope(self.run_key), usd=self.budget)
        got = ledger.hold([limit], usd, tokens, ttl_s=self.ttl_s, owner=self.run_key)
        if isinstance(got, Refusal):
            logger.info("run %s: tier %d not called: %s", self.run_key, tier, got.reason)
        return got

    def release(self, hold: Hold) -> None:
        """The call failed, or the router settled its own row: give the hold back."""
        self.llm.spend_ledger.release(hold)

    def settle(self, hold: Hold, tier: int, message: Any) -> float:
        """Settle a direct call: its cost priced from usage at the tier's price.

        Returns:
            The USD recorded.
        """
        usd, i, o = call_cost(message, tier, self.llm.config)
        spec = self.llm.config.tier(tier)
        self.llm.spend_ledger.settle(
            hold,
            SpendRecord(
                run_key=self.run_key,
                cost_usd=usd,
                input_tokens=i,
                output_tokens=o,
                tier=tier,
                model=spec.model_id,
                provider=str(spec.provider),
            ),
        )
        return usd


class OverBudget(Exception):
    """A tier call does not fit the run's budget (its hold was refused): the run stops."""

    def __init__(self, refusal: Refusal) -> None:
        self.stop: StopOutcome = stop_outcome(
            "budget_exhausted",
            f"the next model call does not fit the run's budget (max_budget): {refusal.reason}",
        )
        super().__init__(self.stop.event.get("reason"))


@dataclass
class GuardedCall:
    """One tier call of an agent step between its hold and its settlement.

    ``request_for(direct)`` builds the call's request (the tier's own model when direct,
    else the router model). The adapter runs::

        g = GuardedCall(holds, call, messages, tools, cap, request_for, direct)
        try:
            try:
                response = handler(g.begin())
            except Exception as exc:
                response = handler(g.fallback(exc))
        except BaseException:
            g.abort()
            raise
        g.end(answer_of(response))
    """

    holds: StepHolds
    call: TierCall
    messages: Any
    tools: Any
    cap: int
    request_for: Callable[[bool], Any]
    direct: bool
    hold: Hold | None = field(default=None, init=False)

    def _hold(self) -> None:
        got = self.holds.hold(
            self.call.tier, self.messages, self.tools, self.cap, routed=not self.direct
        )
        if isinstance(got, Refusal):
            raise OverBudget(got)
        self.hold = got

    def begin(self) -> Any:
        """Hold the call's worst case, then give its request.

        Raises:
            OverBudget: The hold was refused.
        """
        self._hold()
        return self.request_for(self.direct)

    def fallback(self, exc: Exception) -> Any:
        """A direct call failed: the same call through the router model, which retries and
        falls back (holding for itself, so ours moves to the routed scope). A routed call's
        failure, or an interrupt, is re-raised.

        Raises:
            Exception: ``exc`` when there is no fallback.
        """
        if not self.direct or isinstance(exc, GraphBubbleUp):
            raise exc
        logger.warning("direct tier %d failed (%s): routed with fallback", self.call.tier, exc)
        self.abort()
        self.direct = False
        self._hold()
        return self.request_for(False)

    def end(self, answer: Any) -> None:
        """After the call: a direct answer is settled at its cost; otherwise the hold is
        released (the router settled its own row, or nothing answered)."""
        if self.hold is None:
            return
        hold, self.hold = self.hold, None
        if self.direct and answer is not None:
            self.holds.settle(hold, self.call.tier, answer)
        else:
            self.holds.release(hold)

    def abort(self) -> None:
        """The call failed: give the hold back."""
        if self.hold is not None:
            hold, self.hold = self.hold, None
            self.holds.release(hold)


__all__ = ["GuardedCall", "OverBudget", "StepHolds"]
