"""What a call reports: each tier call's usage and cost (:class:`TierCall`), its ledger row,
and the answer's :class:`~aco_langchain.call_info.AcoCallInfo` (serialised into
``response_metadata["aco"]``), on a result or on a stream's final chunk.

Pure: the run's spend after the call is read by the caller and handed in.

Example:
    ```python
    reporter = Reporter(config, registry)
    call = reporter.tier_call(plan, tier=2, message=answer, failures={})
    info = reporter.info(plan, call, None, None, run_spent_usd=0.01)
    ```
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata, add_usage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from aco_langchain.call_info import AcoCallInfo, AcoTierCall
from aco_langchain.chat.cascade import CascadeResult
from aco_langchain.chat.messages import message_text, tool_call_chunks
from aco_langchain.chat.planner import CallPlan
from aco_langchain.config import ACOConfig
from aco_langchain.errors import ConfigError, DegradedAnswerWarning
from aco_langchain.pricing import estimate_tokens, usage_tokens
from aco_langchain.providers.tiers import TierRegistry
from aco_langchain.routing import RouteDecision
from aco_langchain.routing.online import cluster_key
from aco_langchain.spend.ledger.base import SpendRecord

logger = logging.getLogger(__name__)

#: Degradation causes already warned about (one warning per cause, not per call).
_WARNED: set[tuple[int, int, str]] = set()
_WARNED_MAX = 1024


@dataclass
class TierCall:
    """One tier's answer inside a call (the cheap one of a cascade, or the final one)."""

    tier: int
    model_id: str
    cost_usd: float
    usage: UsageMetadata | None
    failures: dict[int, str]
    input_tokens: int = 0
    output_tokens: int = 0


def _warn_degraded(
    decided: int, served: int, decision: RouteDecision, failures: dict[int, str]
) -> None:
    cause = (
        decision.unavailable.get(decided)
        or failures.get(decided)
        or ("the run's budget" if decision.budget_exceeded or "budget" in decision.reason else "")
        or "failed"
    )
    key = (decided, served, cause.split(":")[0])
    if key in _WARNED:
        return
    if len(_WARNED) >= _WARNED_MAX:
        _WARNED.clear()
    _WARNED.add(key)
    fix = (
        "raise the budget named, or set routing.on_budget_exceeded: raise to refuse instead"
        if "budget" in cause
        else f"make tier {decided} available, or set routing.allow_degrade: false to raise instead"
    )
    text = (
        f"answered by tier {served}, below the decided tier {decided} ({cause}); metadata says "
        f"degraded_from. To avoid it: {fix}"
    )
    logger.warning("%s", text)
    if decision.forced:
        # The caller forced the tier: also a Python warning, which shows without any logging
        # set up (the package's logger has only a NullHandler).
        warnings.warn(text, DegradedAnswerWarning, stacklevel=2)


def logprob_confidence(raw: Any, provider: str) -> float | None:
    """An answer's confidence from its token logprobs (None when it carries none)."""
    if not raw:
        return None
    from aco_langchain.chat.cascade import confidence_from_logprobs, normalize_logprobs

    tokens = normalize_logprobs(raw, provider)  # every shape is read; the name labels errors
    return confidence_from_logprobs(tokens).value if tokens else None


class Reporter:
    """Prices tier calls and builds each answer's :class:`AcoCallInfo`.

    Args:
        config: the model's config (tier ids, providers, the baseline tier).
        registry: the tiers (prices, concrete model names and providers).
    """

    def __init__(self, config: ACOConfig, registry: TierRegistry) -> None:
        self.config = config
        self.registry = registry

    def names(self, tier: int) -> tuple[str, str]:
        """(concrete model name, provider) of the tier's answers (the registry reads a given
        instance's names once)."""
        return self.registry.model_name(tier), self.registry.provider(tier)

    def tier_call(
        self, plan: CallPlan, tier: int, message: BaseMessage, failures: dict[int, str]
    ) -> TierCall:
        """The usage and cost of ``tier``'s answer (usage estimated when the tier sent none).

        Args:
            plan: the call's plan.
            tier: the tier that answered.
            message: its answer.
            failures: {tier: why} of the tiers tried before it.

        Returns:
            The tier call, priced at the tier's price (a replay tier: its recorded cost).
        """
        usage = getattr(message, "usage_metadata", None)
        if usage is None:
            # No usage from the provider: estimate, so spend is never silently zero.
            out = estimate_tokens(message_text(message))
            inp = estimate_tokens(plan.request.text)
            usage = UsageMetadata(input_tokens=inp, output_tokens=out, total_tokens=inp + out)
        i, o = usage_tokens(usage)
        return TierCall(
            tier=tier,
            model_id=self.config.tier(tier).model_id,
            cost_usd=self.registry.call_cost(tier, message, i, o),
            usage=usage,
            failures=dict(failures),
            input_tokens=i,
            output_tokens=o,
        )

    @staticmethod
    def cluster(plan: CallPlan) -> str | None:
        """The prompt cluster online learning pools this call's outcome in (the routed
        decision's task type and difficulty, as ``response_metadata["aco"]`` says them);
        None for a forced tier, which no router assessed."""
        d = plan.decision
        if d.forced or d.difficulty is None or not d.task_type:
            return None
        return cluster_key(d.task_type, d.difficulty)

    def record(
        self,
        plan: CallPlan,
        tier: int,
        input_tokens: int,
        output_tokens: int,
        cost: float,
        outcome: str = "ok",
    ) -> SpendRecord:
        """The ledger row of one tier call (latency and over-cap are the gateway's)."""
        who = plan.who
        model, provider = self.names(tier)
        return SpendRecord(
            run_key=plan.run_key,
            cost_usd=cost,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            tier=tier,
            model=model,
            provider=provider,
            outcome=outcome,
            baseline_usd=self._baseline_cost(plan, input_tokens, output_tokens),
            trace_id=who.trace_id,
            user=who.user,
            api_key=who.api_key,
            tags=who.tags,
        )

    def _baseline_cost(self, plan: CallPlan, input_tokens: int, output_tokens: int) -> float:
        try:
            return self.registry.baseline_cost(
                input_tokens, output_tokens, plan.request.routing_text
            )
        except ConfigError:
            return 0.0  # the baseline tier has no price: savings are not known

    def info(
        self,
        plan: CallPlan,
        final: TierCall,
        cheap: TierCall | None,
        verdict: CascadeResult | None,
        *,
        run_spent_usd: float,
        final_logprobs: Any = None,
        usage_estimated: bool | None = None,
        escalation_skipped: str | None = None,
    ) -> AcoCallInfo:
        """The record of an answer.

        Args:
            plan: the call's plan (its decision: routed tier, reason, prediction).
            final: the tier call that answered.
            cheap: the cascade's cheap call when it escalated, else None.
            verdict: the cascade's verdict when a cascade ran.
            run_spent_usd: the run's settled spend after the call.
            final_logprobs: the answer's logprobs (its own confidence), if any.
            usage_estimated: True when the tier sent no usage (the cost is an estimate).
            escalation_skipped: why a cascade did not escalate although it wanted to.

        Returns:
            The typed record (``to_metadata()`` gives ``response_metadata["aco"]``).
        """
        calls = [final] if cheap is None else [cheap, final]
        # the sum of the calls' costs, in call order (as sum() would add them)
        cost = final.cost_usd if cheap is None else cheap.cost_usd + final.cost_usd
        decision = plan.decision
        routed = decision.tier
        failures = final.failures if cheap is None else {**cheap.failures, **final.failures}
        first = cheap.tier if cheap else final.tier  # the first tier that answered
        escalated = bool(cheap is not None and final.tier != cheap.tier)
        confidence = first_confidence = None
        if verdict is not None and not escalated:
            confidence = round(verdict.confidence, 4)
        elif final_logprobs is not None:
            measured = logprob_confidence(final_logprobs, self.registry.provider(final.tier))
            if measured is not None:
                confidence = round(measured, 4)
        if verdict is not None and escalated:
            first_confidence = round(verdict.confidence, 4)
        # A forced tier the budget pushed down (force_local) is the decided one too: the
        # caller asked for it, so a cheaper answer says so (degraded_from and a warning).
        forced = plan.request.constraints.force_tier if decision.forced else None
        decided = max(decision.degraded_from or routed, forced or 0)
        degraded_from = None
        if final.tier < decided:
            degraded_from = decided
            _warn_degraded(decided, final.tier, decision, failures)
        # Built from our own typed values: no validation pass on the hot path.
        return AcoCallInfo.trusted(
            dict(
                tier=final.tier,
                model_id=final.model_id,
                predicted_success=(
                    None if decision.confidence is None else round(decision.confidence, 4)
                ),
                reason=decision.reason + (f"; cascade: {verdict.reason}" if verdict else ""),
                cost_usd=round(cost, 8),
                estimated_cost_usd=decision.cost_estimate,
                escalated=escalated,
                fallback_from=routed if first != routed else None,
                routed_tier=routed,
                task_type=decision.task_type,
                difficulty=decision.difficulty,
                run_key=plan.run_key,
                run_spent_usd=round(run_spent_usd, 8),
                latency_ms=round((time.perf_counter() - plan.started) * 1000, 2),
                confidence=confidence,
                first_confidence=first_confidence,
                degraded_from=degraded_from,
                failures={str(k): v for k, v in failures.items()} if failures else None,
                # Always present (one entry when nothing escalated): the keys never depend on
                # the path.
                calls=[
                    AcoTierCall.trusted(
                        {
                            "tier": c.tier,
                            "model_id": c.model_id,
                            "cost_usd": round(c.cost_usd, 8),
                            "usage": dict(c.usage or {}),
                        }
                    )
                    for c in calls
                ],
                first_tier=cheap.tier if cheap else routed,
                usage_estimated=usage_estimated,
                escalation_skipped=escalation_skipped,
                cache_hit=None,
                cached_cost_usd=None,
                saved_cost_usd=None,
            )
        )

    def decorate(
        self,
        result: ChatResult,
        plan: CallPlan,
        final: TierCall,
        cheap: TierCall | None,
        verdict: CascadeResult | None,
        *,
        run_spent_usd: float,
        escalation_skipped: str | None = None,
    ) -> ChatResult:
        """Put the answer's record in ``response_metadata["aco"]`` and ``llm_output["aco"]``
        and name the concrete model and provider that answered.

        Returns:
            ``result``, decorated in place.
        """
        gen = result.generations[0]
        msg = gen.message
        estimated = None
        if isinstance(msg, AIMessage):
            if msg.usage_metadata is None:
                # The tier reported no usage: carry the estimate the cost was computed from.
                msg.usage_metadata = final.usage
                estimated = True
            if cheap is not None and cheap.usage:
                # Both calls were really spent through this model: report their sum.
                msg.usage_metadata = add_usage(cheap.usage, msg.usage_metadata)
        info = self.info(
            plan,
            final,
            cheap,
            verdict,
            run_spent_usd=run_spent_usd,
            final_logprobs=self.registry.logprobs(final.tier, msg, gen.generation_info),
            usage_estimated=estimated,
            escalation_skipped=escalation_skipped,
        )
        model, provider = self.names(final.tier)
        msg.response_metadata.setdefault("model_name", model)
        msg.response_metadata["model_provider"] = provider
        meta = info.to_metadata()
        msg.response_metadata["aco"] = meta
        if result.llm_output is None:
            result.llm_output = {}
        result.llm_output["aco"] = meta
        return result

    def final_chunk(
        self,
        plan: CallPlan,
        message: AIMessageChunk,
        call: TierCall,
        *,
        run_spent_usd: float,
    ) -> ChatGenerationChunk:
        """The last chunk of a stream: no content, the record, the model that answered, and
        the estimated usage when the tier sent none."""
        usage = None
        if message.usage_metadata is None and call.usage is not None:
            usage = call.usage  # estimated: the tier sent none
        info = self.info(
            plan,
            call,
            None,
            None,
            run_spent_usd=run_spent_usd,
            final_logprobs=message.response_metadata.get("logprobs"),
            usage_estimated=True if usage is not None else None,
        )
        rm: dict[str, Any] = {"aco": info.to_metadata()}
        model, provider = self.names(call.tier)
        if "model_name" not in message.response_metadata:
            rm["model_name"] = model
        if "model_provider" not in message.response_metadata:
            rm["model_provider"] = provider
        return ChatGenerationChunk(
            message=AIMessageChunk(
                content="", response_metadata=rm, usage_metadata=usage, chunk_position="last"
            )
        )


def merge_chunks(collected: list[ChatGenerationChunk]) -> AIMessageChunk:
    """The streamed chunks as one message (empty when nothing came)."""
    merged: AIMessageChunk | None = None
    for c in collected:
        merged = c.message if merged is None else merged + c.message  # type: ignore[assignment]
    return merged if merged is not None else AIMessageChunk(content="")


def result_as_chunks(result: ChatResult) -> Iterator[ChatGenerationChunk]:
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


__all__ = [
    "Reporter",
    "TierCall",
    "logprob_confidence",
    "merge_chunks",
    "result_as_chunks",
]
