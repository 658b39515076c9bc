"""The call loops of :class:`ACORouterChatModel`: sync and async tier calls with retries,
fallback and streaming. Every decision comes from ``plan``; only the I/O is here."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult

from aco_langchain.chat.metadata import _result_as_chunks
from aco_langchain.chat.plan import CallPlan, TierCall, _no_extra
from aco_langchain.errors import AllTiersFailedError
from aco_langchain.providers.faults import (
    TierHealth,
    backoff_delay,
    classify_error,
    describe_error,
)

if TYPE_CHECKING:
    from aco_langchain.chat.model import ACORouterChatModel


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


class ExecuteMixin:
    """The sync and async I/O around the shared decisions."""

    def _retries(self: ACORouterChatModel) -> int:
        return self.config.routing.max_retries if self.max_retries is None else self.max_retries

    def _fallback_run(self: ACORouterChatModel, order: list[int]) -> FallbackRun:
        return FallbackRun(order, self._retries(), self._rt.health, self.retry_base_delay_s)

    def _call_tiers(
        self: ACORouterChatModel,
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
        self: ACORouterChatModel,
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
        self: ACORouterChatModel,
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

    async def _acall_tiers(
        self: ACORouterChatModel,
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
        self: ACORouterChatModel,
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
        self: ACORouterChatModel,
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
