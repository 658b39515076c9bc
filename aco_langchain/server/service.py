"""What the server does for a request, apart from HTTP: build the router call, serve it from
the cache or the router, hold the key's budget, keep the deadline, record spend and traces.

One :class:`ServerState` per worker process holds one ``ACORouterChatModel`` (its ledger may
be shared by every worker), the response cache and the keys. The routes in ``app.py`` only
parse, call these methods and write the answer.

Example:
    ```python
    state = ServerState(ACOConfig())
    call = state.chat_call(body, run_key="run-1", principal=ANONYMOUS)
    msg = await state.answer(call)           # an AIMessage, cache_hit in its aco metadata
    ```
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration
from pydantic import ValidationError

from aco_langchain.call_info import AcoCallInfo
from aco_langchain.chat.messages import message_text
from aco_langchain.chat.model import ACORouterChatModel
from aco_langchain.chat.options import NEW_RUN_OPTION
from aco_langchain.config import TASK_TYPES, TIER_NUMBERS, ACOConfig
from aco_langchain.errors import ACOError, ConfigError
from aco_langchain.providers.tiers import estimate_tokens
from aco_langchain.server.auth import KeyRing, Principal
from aco_langchain.server.errors import APIError, from_aco_error, validation_error
from aco_langchain.server.hygiene import check_identifier
from aco_langchain.server.schemas import ChatCompletionRequest
from aco_langchain.server.wire import ChunkWriter, aco_object, sse, to_messages
from aco_langchain.spend.budgets import run_scope
from aco_langchain.spend.cache import ResponseCache, as_hit_of, cache_from_url, full_quality
from aco_langchain.spend.ledger.base import Limit, Refusal, SpendRecord

logger = logging.getLogger(__name__)

#: Header naming the run (the budget key) of a request; ``user`` is the fallback.
RUN_HEADER = "x-aco-run-id"
#: ``model`` values that mean "route it".
ROUTED_MODELS = ("aco", "aco-router")
_TIER_ALIAS = re.compile(r"tier-?([1-5])")
#: Request fields passed to the routed tier as they are.
_PASSTHROUGH = (
    "temperature",
    "top_p",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "response_format",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "parallel_tool_calls",
    "reasoning_effort",
)
#: Request fields that are the router's per-call constraints.
_CONSTRAINTS = ("max_cost_usd", "max_latency_ms", "min_quality", "task_type", "risk")
#: Fields that do not change the answer: left out of the cache key.
#: How long after the call's deadline the server's own timer cuts a request.
_BACKSTOP_GRACE_S = 1.0
_NOT_IN_KEY = {"stream", "stream_options", "user", "cache", "metadata", "store", "service_tier"}


@dataclass
class RouterCall:
    """One request as a router call, decided before any I/O."""

    messages: list[BaseMessage]
    kwargs: dict[str, Any]
    stop: list[str] | None
    model: str
    principal: Principal
    run_key: str = ""
    user: str | None = None
    cache_key: str | None = None
    started: float = field(default_factory=time.perf_counter)


class ServerState:
    """The per-worker parts of ``aco serve``.

    Args:
        config: the effective config.
        llm: the router (default: one built from ``config``).
        cache: the response cache (default: ``config.cache.url``, or none).
        keys: the bearer keys (default: ``server.api_keys`` + ``ACO_SERVER_API_KEYS``).
        allow_unauthenticated: override ``server.allow_unauthenticated``.

    Raises:
        ConfigError: the cache or the router cannot be set up from the config.
    """

    def __init__(
        self,
        config: ACOConfig,
        *,
        llm: ACORouterChatModel | None = None,
        cache: ResponseCache | None = None,
        keys: KeyRing | None = None,
        allow_unauthenticated: bool | None = None,
    ) -> None:
        self.config = config
        self.timeout_s = config.routing.max_latency_per_call_s
        # The request's deadline is the call's: the router stops trying tiers at it and says
        # so (DeadlineExceededError, 504); the server's own timer is a backstop just after.
        # The server caches whole requests itself (below), not the model's calls.
        self.llm = llm if llm is not None else ACORouterChatModel(config=config, cache=False)
        self._backstop_s = self.timeout_s + _BACKSTOP_GRACE_S
        if cache is None and config.cache.url:
            cache = cache_from_url(config.cache.url, ttl_s=config.cache.ttl_s)
        self.cache = cache
        self.keys = keys or KeyRing.from_config(
            config.server, allow_unauthenticated=allow_unauthenticated
        )
        self.max_context = max(config.tier(n).max_context for n in TIER_NUMBERS)
        self._sink: Any = None
        if config.trace_path:
            from aco_langchain.tracing.sinks import JsonlTraceSink

            self._sink = JsonlTraceSink(config.trace_path)
        tiers = config.model_dump(mode="json", include={"models", "router", "router_model_path"})
        # Entries made under another tier table are not answers of this one.
        self._cache_scope = (
            "aco-server/1:"
            + hashlib.sha256(json.dumps(tiers, sort_keys=True).encode()).hexdigest()[:16]
        )

    def close(self) -> None:
        """Release the cache's connections."""
        if self.cache is not None:
            self.cache.close()

    # -- building calls (pure) ------------------------------------------------------------

    def model_options(self, model: str, *, param: str = "model") -> dict[str, Any]:
        """The router options a ``model`` value asks for (route, or force a tier).

        Raises:
            APIError: 404 (or 400 for ``force_model``) naming the models that exist.
        """
        if model in ROUTED_MODELS or model == self.llm.model_name:
            return {}
        m = _TIER_ALIAS.fullmatch(model)
        if m:
            return {"force_tier": int(m.group(1))}
        tier = self.config.tier_of_model(model)
        if tier is not None:
            return {"force_tier": tier}
        known = ", ".join(
            ["aco", *(self.config.tier(n).model_id for n in TIER_NUMBERS), "tier-1..tier-5"]
        )
        status, code = (404, "model_not_found") if param == "model" else (400, "invalid_value")
        raise APIError(
            status,
            f"{param} {model!r} does not exist: use one of {known} (GET /v1/models)",
            param=param,
            code=code,
        )

    def chat_call(
        self, body: ChatCompletionRequest, *, run_key: str | None, principal: Principal
    ) -> RouterCall:
        """The router call for a chat completions request (no I/O).

        Raises:
            APIError: 4xx naming the field (unknown model, prompt too long, bad option).
        """
        check_identifier(body.model, "model")
        check_identifier(body.user, "user")
        check_identifier(run_key, RUN_HEADER)
        kwargs = self.model_options(body.model)
        try:
            messages = to_messages(body.messages)
        except (ValueError, TypeError, KeyError) as err:
            raise APIError(400, f"messages: {err}", param="messages") from err
        self._check_length(messages)
        for name in _CONSTRAINTS:
            value = getattr(body, name)
            if value is not None:
                kwargs[name] = value
        if body.task_type is not None and body.task_type not in TASK_TYPES:
            raise APIError(
                400,
                f"task_type {body.task_type!r} is unknown: use one of {', '.join(TASK_TYPES)}",
                param="task_type",
            )
        for name in _PASSTHROUGH:
            value = getattr(body, name)
            if value is not None:
                kwargs[name] = value
        max_tokens = body.max_completion_tokens or body.max_tokens
        if max_tokens is not None:
            kwargs["max_tokens"] = max_tokens
        if body.tools:
            tools = [t.model_dump(exclude_none=True) for t in body.tools]
            bound = self.llm.bind_tools(tools, tool_choice=body.tool_choice)
            kwargs.update(getattr(bound, "kwargs", {}))
        stop = [body.stop] if isinstance(body.stop, str) else body.stop
        call = RouterCall(messages, kwargs, stop, body.model, principal)
        _identity(call, run_key or body.user, body.user)
        wanted = body.cache is True or (body.cache is None and body.temperature == 0)
        if self.cache is not None and wanted:
            call.cache_key = self._key(
                body.model_dump(exclude=_NOT_IN_KEY, exclude_none=True), principal, body.user
            )
        return call

    def generate_call(
        self,
        prompt: str,
        constraints: dict[str, Any],
        force_model: str | None,
        *,
        run_key: str | None,
        principal: Principal,
    ) -> RouterCall:
        """Seed 2's ``/generate`` as a router call: one user turn at temperature 0 (so the
        cache may answer it)."""
        check_identifier(force_model, "force_model")
        check_identifier(run_key, RUN_HEADER)
        kwargs = self.model_options(force_model, param="force_model") if force_model else {}
        messages: list[BaseMessage] = [HumanMessage(prompt)]
        self._check_length(messages, param="prompt")
        kwargs.update({k: v for k, v in constraints.items() if v is not None})
        kwargs["temperature"] = 0
        call = RouterCall(messages, kwargs, None, force_model or "aco", principal)
        _identity(call, run_key, None)
        if self.cache is not None:
            call.cache_key = self._key(
                {"generate": prompt, "force_model": force_model, **constraints}, principal, None
            )
        return call

    def _key(self, request: dict[str, Any], principal: Principal, user: str | None) -> str:
        # Partitioned by tenant (the key) and user: an answer made for one caller is never
        # served to another, even for the same request.
        partition = {"tenant": principal.name if principal.tenant else None, "user": user}
        return json.dumps(
            {"request": request, "partition": partition},
            sort_keys=True,
            separators=(",", ":"),
            default=str,
        )

    def _check_length(self, messages: list[BaseMessage], *, param: str = "messages") -> None:
        tokens = estimate_tokens("".join(message_text(m) for m in messages))
        if tokens > self.max_context:
            raise APIError(
                400,
                f"{param}: about {tokens} tokens, more than the largest tier context "
                f"({self.max_context} tokens): shorten the prompt",
                param=param,
                code="context_length_exceeded",
            )

    # -- answering ------------------------------------------------------------------------

    async def cached(self, call: RouterCall) -> AIMessage | None:
        """The cached answer of ``call``, as this call's (its run key, ``cache_hit``, cost
        0), its hit recorded on the ledger (a $0 row with outcome ``cache_hit``, so the
        dashboard, ``/v1/spend`` and ``aco stats`` count the same hits); None on a miss."""
        if self.cache is None or call.cache_key is None:
            return None
        return await asyncio.to_thread(self._hit, call)

    def _hit(self, call: RouterCall) -> AIMessage | None:
        assert self.cache is not None and call.cache_key is not None  # noqa: S101 - cached()
        found = self.cache.lookup(call.cache_key, self._cache_scope)
        if not found or not isinstance(found[0], ChatGeneration):
            return None
        msg = found[0].message
        if not isinstance(msg, AIMessage):
            return None
        hit = as_hit_of(msg, call.run_key)
        self._record_hit(call, hit)
        return hit

    def _record_hit(self, call: RouterCall, msg: AIMessage) -> None:
        info = AcoCallInfo.from_message(msg) or AcoCallInfo()
        usage: dict[str, Any] = dict(msg.usage_metadata or {})
        record = SpendRecord(
            run_key=call.run_key,
            cost_usd=0.0,
            tier=info.tier if info.tier in TIER_NUMBERS else None,
            model=info.model_id,
            outcome="cache_hit",
            baseline_usd=self._baseline(
                int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
            )
            or 0.0,
            user=call.user,
            api_key=call.principal.name if call.principal.tenant else None,
        )
        ledger = self.llm.spend_ledger
        try:
            got = ledger.hold([Limit(run_scope(call.run_key))], 0.0, 0, ttl_s=60.0)
            if isinstance(got, Refusal):  # a $0 hold passes even a blocked scope
                logger.warning("cache hit of run %s not recorded: %s", call.run_key, got.reason)
                return
            ledger.settle(got, record)
        except ACOError as err:  # the answer is free and ready: a ledger hiccup costs a count
            logger.warning("cache hit of run %s not recorded: %s", call.run_key, err)

    def _store(self, call: RouterCall, msg: AIMessage) -> None:
        if self.cache is None or call.cache_key is None:
            return
        why = full_quality(AcoCallInfo.from_message(msg))
        if why is not None:
            logger.info("answer of run %s not cached: %s", call.run_key, why)
            return
        self.cache.update(call.cache_key, self._cache_scope, [ChatGeneration(message=msg)])

    # The cache (SQLite, Redis) and the trace file are synchronous I/O: async request paths
    # run them on a worker thread, so one slow disk or Redis never stalls other requests.

    async def _astore(self, call: RouterCall, msg: AIMessage) -> None:
        if self.cache is not None and call.cache_key is not None:
            await asyncio.to_thread(self._store, call, msg)

    async def afinish(self, call: RouterCall, msg: AIMessage) -> dict[str, Any]:
        """:meth:`finish` off the event loop when it writes a trace."""
        if self._sink is None:
            return self.finish(call, msg)
        return await asyncio.to_thread(self.finish, call, msg)

    async def answer(self, call: RouterCall) -> AIMessage:
        """Answer a call from the router, within the request deadline. The router holds the
        call's worst case on every budget it counts against (run, key, user) on the ledger.

        Raises:
            APIError: the mapped router error, 504 past the deadline, 402 over a budget.
        """
        try:
            async with asyncio.timeout(self._backstop_s):
                msg = await self.llm.ainvoke(call.messages, stop=call.stop, **call.kwargs)
        except ACOError as err:  # before TimeoutError: DeadlineExceededError is both
            raise from_aco_error(err) from err
        except TimeoutError as err:
            raise self._deadline_error() from err
        except ValidationError as err:
            raise validation_error(err.errors()) from err  # type: ignore[arg-type]
        await self._astore(call, msg)
        return msg

    def _deadline_error(self) -> APIError:
        return APIError(
            504,
            f"no answer within the request deadline ({self.timeout_s:g}s): raise "
            "routing.max_latency_per_call_s",
            type="timeout",
            code="timeout",
            headers={"x-should-retry": "false"},
        )

    def finish(self, call: RouterCall, msg: AIMessage) -> dict[str, Any]:
        """Record the answer (trace) and return its ``aco`` object."""
        info = AcoCallInfo.from_message(msg) or AcoCallInfo()
        usage: dict[str, Any] = dict(msg.usage_metadata or {})
        i, o = int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
        baseline = self._baseline(i, o)
        saved = round(baseline - info.cost_usd, 8) if baseline is not None else None
        hit = bool(info.cache_hit)
        if self._sink is not None:
            self._trace(call, info, i, o)
        return aco_object(msg, saved_cost_usd=saved, cache_hit=hit)

    def _baseline(self, input_tokens: int, output_tokens: int) -> float | None:
        try:
            return self.llm.registry.cost(
                self.config.ledger.baseline_tier, input_tokens, output_tokens
            )
        except ConfigError:
            return None

    def spend(self, principal: Principal) -> dict[str, Any]:
        """The caller's spend and savings (``aco spend --json``'s fields over its own rows;
        every row for an admin key or a keyless server), its key budget, and its cache hits
        (ledger rows with outcome ``cache_hit``: the dashboard's count). Never the ledger's
        URL.

        Args:
            principal: the caller.

        Returns:
            The ``/v1/spend`` body.
        """
        from aco_langchain.dashboard.data import call_rates
        from aco_langchain.spend.budgets import period
        from aco_langchain.spend.ledger.base import summarize

        ledger = self.llm.spend_ledger
        rows = tenant_rows(ledger.records(), principal)
        out: dict[str, Any] = summarize(rows).to_dict()
        out["scope"] = "all keys" if principal.sees_all else f"key {principal.name}"
        if principal.tenant:
            scope = f"key:{principal.name}@{period(self.config)}"
            used = ledger.usage(scope)
            out["key"] = {
                "name": principal.name,
                "budget_usd": self.config.budgets.keys.get(principal.name),
                "spent_usd": round(used.spent_usd, 10),
                "held_usd": round(used.held_usd, 10),
                "period": self.config.budgets.budget_duration,
            }
        rates = call_rates(rows)
        out["cache"] = {
            "hits": rates["cache_hits"],
            "calls": rates["calls"],
            "hit_rate": rates["cache_hit_rate"],
        }
        return out

    def _trace(self, call: RouterCall, info: AcoCallInfo, i: int, o: int) -> None:
        from aco_langchain.tracing.trace import TraceRecorder

        tier = info.tier if info.tier in TIER_NUMBERS else 1
        rec = TraceRecorder(
            request=message_text(call.messages[-1])[:2000],
            task_type=info.task_type or "general",
            difficulty=info.difficulty or 1,
            predicted_tier=info.routed_tier or tier,
        )
        fb = info.fallback_from
        rec.record_model_call(
            model_id=info.model_id or self.config.tier(tier).model_id,
            tier=tier,
            input_tokens=i,
            output_tokens=o,
            cost=info.cost_usd,
            escalated=info.escalated,
            cache_hit=bool(info.cache_hit),
            fallback_from=fb if fb in TIER_NUMBERS else None,
            latency_ms=round((time.perf_counter() - call.started) * 1000, 2),
        )
        try:
            self._sink.write(rec.finish(task_success=True))
        except OSError as err:
            logger.warning("could not write the trace to %s: %s", self.config.trace_path, err)

    # -- streaming ------------------------------------------------------------------------

    async def stream(self, call: RouterCall, *, include_usage: bool) -> AsyncIterator[bytes]:
        """SSE events of a streamed answer. Errors before the first chunk are raised (an
        HTTP error); after it, they are an ``error`` event (the status is already sent).

        Raises:
            APIError: the call failed before anything was streamed.
        """
        writer = ChunkWriter(call.model, include_usage=include_usage)
        hit = await self.cached(call)
        if hit is not None:
            aco = await self.afinish(call, hit)
            events = [writer.first(), *writer.replay(hit), *writer.end(aco)]
            return _iterate(events)
        agen: Any = self.llm.astream(call.messages, stop=call.stop, **call.kwargs).__aiter__()
        deadline = asyncio.get_running_loop().time() + self._backstop_s
        try:
            async with asyncio.timeout_at(deadline):
                first = await agen.__anext__()
        except StopAsyncIteration:
            first = None
        except BaseException as err:
            await agen.aclose()
            if isinstance(err, ACOError):
                raise from_aco_error(err) from err
            if isinstance(err, TimeoutError):
                raise self._deadline_error() from err
            raise
        return self._events(call, writer, agen, first, deadline)

    async def _events(
        self,
        call: RouterCall,
        writer: ChunkWriter,
        agen: AsyncIterator[Any],
        first: Any,
        deadline: float,
    ) -> AsyncIterator[bytes]:
        try:
            yield writer.first()
            chunk = first
            while chunk is not None:
                for event in writer.chunk(chunk):
                    yield event
                # The deadline guards each wait for the tier, never a write to the client.
                async with asyncio.timeout_at(deadline):
                    chunk = await anext(agen, None)
            msg = writer.answer()
            await self._astore(call, msg)
            for event in writer.end(await self.afinish(call, msg)):
                yield event
        except ACOError as err:
            yield sse(from_aco_error(err).body())
        except TimeoutError:
            yield sse(self._deadline_error().body())
        except Exception as err:  # noqa: BLE001 - the client gets an error event, we a log
            logger.exception("stream failed after its first chunk")
            failed = APIError(500, f"the stream failed: {type(err).__name__}", type="server_error")
            yield sse(failed.body())
        finally:
            aclose = getattr(agen, "aclose", None)
            if aclose is not None:
                await aclose()


def _identity(call: RouterCall, run_key: str | None, user: str | None) -> None:
    """Who a call is for, in its caller's namespace: the run key (``<key>/<run>``), the user
    (``<key>/<user>``) and the caller's key, i.e. every budget it counts against. A key can
    neither spend nor read another key's runs and users, whatever ids it sends."""
    principal = call.principal
    call.run_key = principal.scoped(run_key or f"req-{uuid.uuid4().hex[:16]}")
    call.kwargs["aco_run_id"] = call.run_key
    if not run_key:
        call.kwargs[NEW_RUN_OPTION] = True  # minted here: nothing spent on it yet
    if principal.tenant:
        call.kwargs["aco_api_key"] = principal.name
    if user:
        call.user = principal.scoped(user)
        call.kwargs["aco_user"] = call.user


def tenant_rows(rows: list[SpendRecord], principal: Principal) -> list[SpendRecord]:
    """The spend rows ``principal`` may read: its key's, or all for an admin or the keyless
    server's caller (pure).

    Example:
        ```python
        tenant_rows(ledger.records(), Principal("team-a"))   # team-a's rows only
        ```
    """
    if principal.sees_all:
        return rows
    return [r for r in rows if r.api_key == principal.name]


async def _iterate(events: list[bytes]) -> AsyncIterator[bytes]:
    for e in events:
        yield e


__all__ = [
    "ROUTED_MODELS",
    "RUN_HEADER",
    "RouterCall",
    "ServerState",
    "tenant_rows",
]
