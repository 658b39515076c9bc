"""What a call reports: ``response_metadata["aco"]`` (tier, cost, reason, escalation,
fallback) and the final stream chunk that carries it."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.messages.ai import add_usage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from aco_langchain.chat.messages import tool_call_chunks
from aco_langchain.chat.plan import CallPlan, TierCall
from aco_langchain.errors import ConfigError
from aco_langchain.routing import RouteDecision
from aco_langchain.spend.ledger import SpendRecord

if TYPE_CHECKING:
    from aco_langchain.chat.execute import FallbackRun
    from aco_langchain.chat.model import ACORouterChatModel


logger = logging.getLogger(__name__)

#: Degradation causes already warned about (one warning per cause, not per call).
_WARNED: set[tuple[int, int, str]] = set()
_WARNED_MAX = 1024


def _warn_degraded(
    decided: int, served: int, decision: RouteDecision, failures: dict[int, str]
) -> None:
    cause = decision.unavailable.get(decided) or failures.get(decided) or "failed"
    key = (decided, served, cause.split(":")[0])
    if key in _WARNED:
        return
    if len(_WARNED) >= _WARNED_MAX:
        _WARNED.clear()
    _WARNED.add(key)
    logger.warning(
        "answered by tier %d, below the decided tier %d (%s); metadata says degraded_from. "
        "Make tier %d available, or set routing.allow_degrade: false to raise instead",
        served,
        decided,
        cause,
        decided,
    )


def logprob_confidence(raw: Any, provider: str) -> float | None:
    """An answer's confidence from its token logprobs (None when it carries none)."""
    if not raw:
        return None
    from aco_langchain.chat.cascade import confidence_from_logprobs, normalize_logprobs

    tokens = normalize_logprobs(raw, "ollama" if provider == "ollama" else "openai")
    return confidence_from_logprobs(tokens).value if tokens else None


class MetadataMixin:
    """Builds the ``aco`` metadata of an answer and settles the call's spend."""

    def _settle_tier(
        self: ACORouterChatModel,
        plan: CallPlan,
        tier: int,
        input_tokens: int,
        output_tokens: int,
        cost: float,
        outcome: str = "ok",
    ) -> None:
        """Write the answered tier call's row and move its hold to spent (one transaction).

        Usage over what was held (more output than the cap sent, more input than the bound)
        is recorded as ``over_cap`` and blocks the call's budgets: never absorbed silently.
        """
        hold = plan.hold
        if hold is None or plan.hold_tier != tier:
            return
        plan.hold, plan.hold_tier = None, None
        block = None
        if output_tokens > plan.cap or input_tokens > plan.in_bound:
            outcome = "over_cap"
            block = (
                f"tier {tier} reported {input_tokens} input / {output_tokens} output tokens, "
                f"over the {plan.in_bound} / {plan.cap} held (its provider ignores the output "
                "cap?); reset the budget to go on"
            )
            logger.warning("run %s: %s", plan.run_key, block)
        record = SpendRecord(
            run_key=plan.run_key,
            cost_usd=cost,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            tier=tier,
            model=self._rt.registry.model_name(tier),
            provider=self._rt.registry.provider(tier),
            latency_ms=round((time.perf_counter() - plan.hold_started) * 1000, 3),
            outcome=outcome,
            baseline_usd=self._baseline_cost(input_tokens, output_tokens),
            trace_id=plan.who.trace_id,
            user=plan.who.user,
            api_key=plan.who.api_key,
            tags=plan.who.tags,
        )
        self._rt.ledger.settle(hold, record, block=block)

    def _baseline_cost(self: ACORouterChatModel, input_tokens: int, output_tokens: int) -> float:
        try:
            return self._rt.registry.cost(
                self.config.ledger.baseline_tier, input_tokens, output_tokens
            )
        except ConfigError:
            return 0.0  # the baseline tier has no price: savings are not known

    def _aco_metadata(
        self: ACORouterChatModel,
        plan: CallPlan,
        final: TierCall,
        cheap: TierCall | None,
        cascade_info: Any,
        final_logprobs: Any = None,
    ) -> dict[str, Any]:
        """The ``aco`` metadata of an answer (and the call's settlement).

        ``predicted_success`` is the router's prediction for the routed tier;
        ``confidence`` is the answer's own (the cascade's measure of a kept answer, or the
        final answer's token logprobs) and is absent when nothing measured it.
        """
        rt = self._rt
        calls = [c for c in (cheap, final) if c is not None]
        total = sum(c.cost_usd for c in calls)
        decision = plan.decision
        routed = decision.tier
        first_tier = cheap.tier if cheap else routed
        fallback_from = None
        failures = {**(cheap.failures if cheap else {}), **final.failures}
        if cheap is None and final.tier != routed or cheap is not None and cheap.tier != routed:
            fallback_from = routed
        decided = decision.degraded_from or routed
        meta: dict[str, Any] = {
            "tier": final.tier,
            "model_id": final.model_id,
            "predicted_success": (
                None if decision.confidence is None else round(decision.confidence, 4)
            ),
            "reason": decision.reason
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
        if cascade_info is not None and not meta["escalated"]:
            meta["confidence"] = round(cascade_info.confidence, 4)
        elif final_logprobs is not None:
            measured = logprob_confidence(final_logprobs, self.config.tier(final.tier).provider)
            if measured is not None:
                meta["confidence"] = round(measured, 4)
        if cascade_info is not None and meta["escalated"]:
            meta["first_confidence"] = round(cascade_info.confidence, 4)
        if final.tier < decided:
            meta["degraded_from"] = decided
            _warn_degraded(decided, final.tier, decision, failures)
        if failures:
            meta["failures"] = {str(k): v for k, v in failures.items()}
        # Always present (one entry when nothing escalated): the keys never depend on the path.
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
        self: ACORouterChatModel,
        result: ChatResult,
        plan: CallPlan,
        final: TierCall,
        cheap: TierCall | None,
        cascade_info: Any,
    ) -> ChatResult:
        rt = self._rt
        gen = result.generations[0]
        info = gen.generation_info or {}
        logprobs = info.get("logprobs") or gen.message.response_metadata.get("logprobs")
        meta = self._aco_metadata(plan, final, cheap, cascade_info, logprobs)
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

    def _final_chunk(
        self: ACORouterChatModel,
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
        meta = self._aco_metadata(plan, call, None, None, msg.response_metadata.get("logprobs"))
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
