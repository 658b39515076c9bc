"""The tier caller: deadline, retries, fallback, cascade and budget holds of one call, as ONE
flow shared by sync and async.

The flows here are generators that decide and *yield* the I/O they need as typed ops
(``chat/ops.py``: hold, call, sleep, settle, ...); the sync and async drivers
(``chat/drivers.py``) perform them and send the results back. So every decision (which tier
next, retry or fall back, escalate, what to hold and settle) is written once.

Each tier call is built (tier model, tool binding, config errors) *outside* the ``try`` that
classifies provider faults, as langchain's ``model_fallback`` middleware does: a bug or a
config error surfaces as itself, never as "tier failed". Every reply is checked
(:func:`check_result`): no choices, or no content and no tool calls, is a tier fault like any
other. One deadline covers the call (``providers/deadline.py``).

Example:
    ```python
    caller = TierCaller(config, registry, reporter, health, retries=2, base_delay_s=0.5)
    flow = caller.answer(plan, plan.new_tab())     # a generator of ops
    result = SyncDriver(gateway, messages, stop, run_manager).run(flow, ...)
    ```
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.outputs import ChatGenerationChunk, ChatResult

from aco_langchain.chat.cascade import CascadeResult, cascade_step
from aco_langchain.chat.fallback import (
    Delivered,
    FallbackRun,
    check_result,
    takes_request_timeout,
)
from aco_langchain.chat.ops import (
    CallOp,
    HoldOp,
    NoteOp,
    Op,
    ReleaseOp,
    RunNotes,
    SettleOp,
    SleepOp,
    SpentOp,
    StreamOp,
)
from aco_langchain.chat.planner import CallPlan
from aco_langchain.chat.reporter import Reporter, TierCall, merge_chunks
from aco_langchain.config import ACOConfig
from aco_langchain.errors import (
    BudgetExceededError,
    DeadlineExceededError,
    InvalidRequestError,
    TierReplyError,
    UnparsedReplyError,
)
from aco_langchain.providers.deadline import MIN_ATTEMPT_S
from aco_langchain.providers.faults import (
    TierHealth,
    Unparsed,
    caller_mistake,
    describe_error,
    unparsed_reply,
)
from aco_langchain.providers.tiers import TierRegistry, output_cap_kwargs
from aco_langchain.spend.gateway import Tab
from aco_langchain.spend.ledger.base import Refusal

logger = logging.getLogger(__name__)

#: Prefix of a fallback-run failure line that is a budget skip, not a provider fault.
BUDGET_SKIP = "skipped, over budget: "


def _no_extra(_tier: int) -> dict[str, Any]:
    return {}


def _budget_error(plan: CallPlan, refusal: Refusal) -> BudgetExceededError:
    return BudgetExceededError(
        f"run {plan.run_key!r}: forced tier does not fit: {refusal.reason} "
        "(on_budget_exceeded: raise; raise the budget or start a new run)",
        scope=refusal.scope,
        limit_usd=refusal.limit_usd,
        spent_usd=refusal.spent_usd,
        held_usd=refusal.held_usd,
    )


class TierCaller:
    """Calls the planned tiers: holds, retries, fallback, cascade, settlement, as op flows.

    Args:
        config: the model's config.
        registry: the tiers (models built on first use, prices).
        reporter: prices answers and builds their records.
        health: the tiers' fault counts and cooldowns (shared by the model's calls).
        retries: retries per tier for retryable faults.
        base_delay_s: the first retry's backoff.
        notes: online learning's run notes (``learning.online``); None: nothing is noted
            and no op is yielded for it.
    """

    def __init__(
        self,
        config: ACOConfig,
        registry: TierRegistry,
        reporter: Reporter,
        health: TierHealth,
        *,
        retries: int,
        base_delay_s: float,
        notes: RunNotes | None = None,
    ) -> None:
        self.config = config
        self.registry = registry
        self.reporter = reporter
        self.health = health
        self.retries = retries
        self.base_delay_s = base_delay_s
        self.notes = notes
        self._caps: dict[tuple[int, int, int], dict[str, Any]] = {}

    # -- the flows ------------------------------------------------------------------------

    def answer(self, plan: CallPlan, tab: Tab) -> Generator[Op, Any, ChatResult]:
        """The flow of one answer. Without a cascade: one fallback run. With one: the cheap
        call with logprobs, the verdict, and the escalated call when the verdict asks for it.

        Returns (as the generator's value):
            The decorated result (``response_metadata["aco"]`` set).
        """
        if not plan.cascade:
            result, call = yield from self._stage(plan, tab, plan.order, _no_extra)
            return (yield from self._report(result, plan, tab, call, None, None))
        result, cheap = yield from self._stage(plan, tab, plan.order, self._logprob_kwargs)
        verdict = self._cascade_verdict(plan, cheap, result)
        if not verdict.escalated:
            return (yield from self._report(result, plan, tab, cheap, None, verdict))
        up = [n for n in plan.order if n >= verdict.final_tier] or [verdict.final_tier]
        try:
            tab.escalating = True
            final_result, final = yield from self._stage(plan, tab, up, _no_extra)
        except DeadlineExceededError as exc:
            # Degrade: no time left to escalate, so the cheap answer stands (and says so).
            logger.warning(
                "deadline %gs (%s) spent escalating from tier %s: answering with its answer",
                exc.deadline_s,
                exc.source,
                cheap.tier,
            )
            skipped = f"deadline {exc.deadline_s:g}s ({exc.source}) spent"
            return (yield from self._report(result, plan, tab, cheap, None, verdict, skipped))
        return (yield from self._report(final_result, plan, tab, final, cheap, verdict))

    def stream(self, plan: CallPlan, tab: Tab) -> Generator[Op, Any, ChatGenerationChunk]:
        """The flow of a stream with no cascade: stream ops per attempt; an answer already
        partly handed out is never answered twice (a fault then ends the stream).

        Returns (as the generator's value):
            The stream's last chunk (the record, no content).

        Raises:
            StreamInterruptedError: the tier failed after part of its answer was out.
        """
        run = self._fallback_run(plan, plan.order)
        while (attempt := run.next_attempt()) is not None:
            tier, delay = attempt
            if (skip := (yield from self._hold(plan, tab, tier))) is not None:
                run.skip(skip)
                continue
            if delay:
                yield SleepOp(delay)
            model, kw = self._attempt_args(plan, tier, {}, run)
            out = Delivered()
            try:
                yield StreamOp(tier, model, kw, run.deadline, out)
                if not out.answered:
                    raise TierReplyError(tier, "the stream ended without any content")
            except Exception as exc:  # noqa: BLE001 - provider faults: classified below
                if out.answered:
                    # Part of an answer is out: never answer twice.
                    self.health.failed(tier)
                    raise out.interrupted(tier, exc, run.deadline) from exc
                run.failed(exc)
                continue
            run.succeeded()
            message = merge_chunks(out.chunks)
            call = yield from self._settle(plan, tab, tier, message, run.failures)
            spent = yield from self._run_spent(plan, tab)
            if self.notes is not None:
                yield from self._note(plan, call.tier)
            return self.reporter.final_chunk(plan, message, call, run_spent_usd=spent)
        err = yield from self._exhausted(plan, run)
        raise err from run.last

    def closing(self, plan: CallPlan, tab: Tab, *, partial: bool = False) -> Op | None:
        """The op that ends a call: a hold still open means its tier did not answer (release
        it). A stream that already handed out chunks was (probably) billed: it is charged its
        worst case (outcome ``partial``)."""
        if tab.hold is None:
            return None
        if partial and tab.hold_tier is not None:
            tier, usd = tab.hold_tier, tab.hold.usd
            cap = plan.cap_for(tier)
            record = self.reporter.record(plan, tier, plan.in_bound, cap, usd, "partial")
            return SettleOp(tab, tier, record)
        return ReleaseOp(tab)

    # -- one fallback run ---------------------------------------------------------------

    def _expected_s(self, tier: int) -> float:
        """The tier's expected latency in seconds (``avg_latency_ms``)."""
        return self.config.tier(tier).avg_latency_ms / 1000.0

    def _fallback_run(self, plan: CallPlan, order: list[int]) -> FallbackRun:
        return FallbackRun(
            order,
            self.retries,
            self.health,
            self.base_delay_s,
            plan.deadline,
            lowest=plan.decision.lowest_tier,
            share=plan.attempt_share,
            expected_s=self._expected_s,
        )

    def _stage(
        self,
        plan: CallPlan,
        tab: Tab,
        order: list[int],
        extra: Callable[[int], dict[str, Any]],
    ) -> Generator[Op, Any, tuple[ChatResult, TierCall]]:
        """One fallback run over ``order``: the first tier that answers, settled."""
        run = self._fallback_run(plan, order)
        while (attempt := run.next_attempt()) is not None:
            tier, delay = attempt
            if (skip := (yield from self._hold(plan, tab, tier))) is not None:
                run.skip(skip)
                continue
            if delay:
                yield SleepOp(delay)
            model, kw = self._attempt_args(plan, tier, extra(tier), run)
            try:
                op = CallOp(tier, model, kw, run.deadline, run.attempt_budget())
                result = check_result(tier, (yield op))
            except Exception as exc:  # noqa: BLE001 - provider faults: classified by FallbackRun
                yield from self._not_a_fault(plan, tab, tier, exc)
                run.failed(exc)
                continue
            run.succeeded()
            message = result.generations[0].message
            call = yield from self._settle(plan, tab, tier, message, run.failures)
            return result, call
        err = yield from self._exhausted(plan, run)
        raise err from run.last

    def _not_a_fault(
        self, plan: CallPlan, tab: Tab, tier: int, exc: Exception
    ) -> Generator[Op, Any, None]:
        """Errors that are no tier's fault end the call here, never a fallback: the caller's
        request shape (a provider's 400 about ``response_format``: every tier would refuse
        it) and a reply the provider billed that the client could not parse (settled as
        ``unparsed``; no cooldown, and a pricier tier would be billed for the same).

        Raises:
            InvalidRequestError: the provider refused the request's shape.
            UnparsedReplyError: the reply was billed and recorded but could not be parsed.
        """
        if (param := caller_mistake(exc)) is not None:
            raise InvalidRequestError(
                f"{param}: tier {tier} refused the request ({describe_error(exc)}): fix "
                f"{param}; no other tier was tried (each would refuse it alike)"
            ) from exc
        billed = unparsed_reply(exc)
        if billed is None:
            return
        yield from self._settle_unparsed(plan, tab, tier, billed)
        logger.warning(
            "run %s: tier %d billed a reply it could not parse: %s", plan.run_key, tier, billed.why
        )
        raise UnparsedReplyError(tier, billed.why, recorded=billed.usage_known) from exc

    def _settle_unparsed(
        self, plan: CallPlan, tab: Tab, tier: int, billed: Unparsed
    ) -> Generator[Op, Any, None]:
        """Settle a billed, unparsed reply: its real usage, else the hold's worst case."""
        if not tab.holds(tier):
            return
        if billed.input_tokens is not None and billed.output_tokens is not None:
            i, o = billed.input_tokens, billed.output_tokens
            usd = self.registry.cost(tier, i, o)
        else:
            i, o = plan.in_bound, plan.cap_for(tier)
            usd = tab.hold.usd if tab.hold is not None else self.registry.cost(tier, i, o)
        yield SettleOp(tab, tier, self.reporter.record(plan, tier, i, o, usd, "unparsed"))

    def _attempt_args(
        self, plan: CallPlan, tier: int, extra: dict[str, Any], run: FallbackRun
    ) -> tuple[BaseChatModel, dict[str, Any]]:
        """The tier's model and call kwargs (tools bound for this tier), with its slice of the
        time left as the request timeout for clients that take one (ChatOpenAI). Built
        outside the fault ``try``: a config error or a tool-binding bug is raised as itself.
        Building a tier's client the first time counts against the deadline: the clock
        started at the call."""
        model = self.registry.model(tier)
        kw = {**plan.passthrough, **self._cap_kwargs(tier, model, plan.cap_for(tier)), **extra}
        if plan.tools:
            bound = model.bind_tools(plan.tools, tool_choice=plan.tool_choice)
            kw.update(getattr(bound, "kwargs", {}))
        if takes_request_timeout(model):
            kw["timeout"] = max(MIN_ATTEMPT_S, run.attempt_budget())  # the attempt's slice
        return model, kw

    def _cap_kwargs(self, tier: int, model: BaseChatModel, cap: int) -> dict[str, Any]:
        """``output_cap_kwargs`` of a tier model, computed once per model and cap (the
        provider checks are isinstance tests against optional packages)."""
        key = (tier, id(model), cap)
        got = self._caps.get(key)
        if got is None:
            if len(self._caps) >= 256:
                self._caps.clear()
            got = self._caps[key] = output_cap_kwargs(model, cap)
        return got

    # -- budget ----------------------------------------------------------------------------

    def _hold(self, plan: CallPlan, tab: Tab, tier: int) -> Generator[Op, Any, str | None]:
        """Hold ``tier``'s worst case on every budget of the call before calling it.

        Returns None when held (a retry on the same tier keeps its hold), or the reason the
        tier is skipped. A forced tier that does not fit raises under
        ``on_budget_exceeded: raise``: it is never silently served by another tier.

        Raises:
            BudgetExceededError: the forced tier does not fit and the policy is ``raise``.
        """
        if tab.holds(tier):
            return None
        tab.cap = plan.cap_for(tier)  # what this tier is told and held for
        usd = self.registry.worst_case(tier, plan.in_bound, tab.cap, plan.request.routing_text)
        got: Refusal | None = yield HoldOp(tab, tier, usd)
        if got is None:
            return None
        if plan.forced and self.config.routing.on_budget_exceeded == "raise":
            raise _budget_error(plan, got)
        logger.info("run %s: tier %d skipped: %s", plan.run_key, tier, got.reason)
        return BUDGET_SKIP + got.reason

    def _settle(
        self, plan: CallPlan, tab: Tab, tier: int, message: Any, failures: dict[int, str]
    ) -> Generator[Op, Any, TierCall]:
        """Price the tier's answer and settle its hold (one ledger row per tier call)."""
        call = self.reporter.tier_call(plan, tier, message, failures)
        if tab.holds(tier):
            record = self.reporter.record(
                plan, tier, call.input_tokens, call.output_tokens, call.cost_usd
            )
            yield SettleOp(tab, tier, record)
        return call

    def _exhausted(self, plan: CallPlan, run: FallbackRun) -> Generator[Op, Any, Exception]:
        """The error when no tier answered: over budget when every tier was skipped for it,
        else the fallback run's own error (all tiers failed, or the deadline)."""
        failures = run.failures
        if failures and all(v.startswith(BUDGET_SKIP) for v in failures.values()):
            lines = "; ".join(
                f"tier {n}: {v.removeprefix(BUDGET_SKIP)}" for n, v in failures.items()
            )
            spent = yield SpentOp(plan.run_key)
            return BudgetExceededError(
                f"run {plan.run_key!r}: no tier fits the budget ({lines}); raise "
                "routing.max_cost_per_task (or the budget named) or start a new run",
                scope=plan.limits[0].scope,
                limit_usd=plan.limits[0].usd,
                spent_usd=spent,
            )
        return run.exhausted_error()

    # -- cascade -----------------------------------------------------------------------------

    def _logprob_kwargs(self, tier: int) -> dict[str, Any]:
        spec = self.config.tier(tier)
        if self.registry.has_instance(tier) or "logprobs" not in spec.capabilities:
            return {}
        k = self.config.cascade.top_logprobs
        return {"logprobs": True, **({"top_logprobs": k} if k else {})}

    def _cascade_verdict(
        self, plan: CallPlan, cheap: TierCall, result: ChatResult
    ) -> CascadeResult:
        gen = result.generations[0]
        info = gen.generation_info or {}
        logprobs = self.registry.logprobs(cheap.tier, gen.message, info)
        provider = self.registry.provider(cheap.tier)  # labels the normaliser's errors
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

    # -- report ------------------------------------------------------------------------------

    def _run_spent(self, plan: CallPlan, tab: Tab) -> Generator[Op, Any, float]:
        """The run's settled USD after the call: as its settlement read it (same ledger
        transaction), else one read."""
        if tab.run_spent is not None:
            return tab.run_spent
        spent: float = yield SpentOp(plan.run_key)
        return spent

    def _report(
        self,
        result: ChatResult,
        plan: CallPlan,
        tab: Tab,
        final: TierCall,
        cheap: TierCall | None,
        verdict: CascadeResult | None,
        escalation_skipped: str | None = None,
    ) -> Generator[Op, Any, ChatResult]:
        spent = yield from self._run_spent(plan, tab)
        if self.notes is not None:
            yield from self._note(plan, final.tier)
        return self.reporter.decorate(
            result,
            plan,
            final,
            cheap,
            verdict,
            run_spent_usd=spent,
            escalation_skipped=escalation_skipped,
        )

    def _note(self, plan: CallPlan, tier: int) -> Generator[Op, Any, None]:
        """Note the run's cluster and answering tier (online learning is on)."""
        cluster = self.reporter.cluster(plan)
        if cluster is not None and self.notes is not None:
            yield NoteOp(self.notes, plan.run_key, cluster, tier)


__all__ = ["BUDGET_SKIP", "TierCaller"]
