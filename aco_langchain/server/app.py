"""The FastAPI app of ``aco serve``: ``create_app(config)`` with one router per face.

Routes:

- ``POST /v1/chat/completions`` (OpenAI-compatible, streaming SSE), ``GET /v1/models``,
  ``GET /v1/spend`` (:data:`openai_router`);
- ``POST /generate``, ``POST /route``: seed 2's API, field for field (:data:`seed_router`);
- ``GET /healthz`` (no auth) (:data:`ops_router`).

More pages (a dashboard) plug in as routers: ``app.include_router(my_router)``; handlers
reach the worker's :class:`~aco_langchain.server.service.ServerState` with
``Depends(get_state)`` and the caller with ``Depends(get_principal)``.

Example:
    ```python
    from aco_langchain.server import create_app
    import uvicorn

    app = create_app("config.yaml")
    uvicorn.run(app, host="127.0.0.1", port=8000)
    ```
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from aco_langchain.config import TIER_NUMBERS, ACOConfig, config_from_dict, load_config
from aco_langchain.errors import ACOError
from aco_langchain.server.dashboard import dashboard_router
from aco_langchain.server.deps import Caller, State, get_principal, get_state
from aco_langchain.server.errors import APIError, error_body, from_aco_error, validation_error
from aco_langchain.server.hygiene import check_text
from aco_langchain.server.limits import BodyLimit
from aco_langchain.server.schemas import (
    ChatCompletionRequest,
    GenerateRequest,
    GenerateResponse,
    RouteRequestBody,
    RouteResponse,
)
from aco_langchain.server.service import RUN_HEADER, ServerState
from aco_langchain.server.wire import completion

logger = logging.getLogger(__name__)

#: Env vars the multi-worker factory reads (set by ``aco serve``).
ENV_CONFIG = "ACO_CONFIG"
ENV_ALLOW_UNAUTHENTICATED = "ACO_SERVE_ALLOW_UNAUTHENTICATED"


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(payload, separators=(",", ":")),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


openai_router = APIRouter(prefix="/v1")
seed_router = APIRouter()
ops_router = APIRouter()


@openai_router.post("/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, state: State, caller: Caller
) -> Response:
    """OpenAI's chat completions, routed (``model: aco``) or forced to a tier."""
    check_text(body.model_dump(exclude_none=True))
    call = state.chat_call(body, run_key=request.headers.get(RUN_HEADER), principal=caller)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        events = await state.stream(call, include_usage=include_usage)
        return StreamingResponse(
            events,
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )
    msg = await state.cached(call)
    if msg is None:
        msg = await state.answer(call)
    return _json(completion(msg, model=body.model, aco=await state.afinish(call, msg)))


@openai_router.get("/models")
async def list_models(state: State, caller: Caller) -> Response:
    """``aco`` (routed) and the five tiers (forced), in OpenAI's list format."""
    cfg = state.config
    data = [{"id": "aco", "object": "model", "created": 0, "owned_by": "aco"}]
    for n in TIER_NUMBERS:
        spec = cfg.tier(n)
        data.append(
            {
                "id": spec.model_id,
                "object": "model",
                "created": 0,
                "owned_by": spec.provider,
                "aco_tier": n,
                "aliases": [f"tier-{n}"],
            }
        )
    return _json({"object": "list", "data": data})


@openai_router.get("/spend")
async def spend(state: State, caller: Caller) -> Response:
    """The ledger's spend and savings (``aco spend --json``), shared by every worker."""
    # The summary reads every row (sync SQL): off the event loop, other requests go on.
    return _json(await asyncio.to_thread(state.spend, caller))


@seed_router.post("/generate", response_model=GenerateResponse)
async def generate(
    body: GenerateRequest, request: Request, state: State, caller: Caller
) -> GenerateResponse:
    """Seed 2's ``POST /generate``: route under the constraints, answer, say what it cost."""
    check_text(body.model_dump(exclude_none=True))
    call = state.generate_call(
        body.prompt,
        {
            "max_cost_usd": body.max_cost_usd,
            "max_latency_ms": body.max_latency_ms,
            "min_quality": body.min_quality,
        },
        body.force_model,
        run_key=request.headers.get(RUN_HEADER),
        principal=caller,
    )
    msg = await state.cached(call)
    if msg is None:
        msg = await state.answer(call)
    aco = await state.afinish(call, msg)
    usage: dict[str, Any] = dict(msg.usage_metadata or {})
    return GenerateResponse(
        text=msg.text,
        chosen_model=str(aco.get("model_id", "")),
        tokens_in=int(usage.get("input_tokens") or 0),
        tokens_out=int(usage.get("output_tokens") or 0),
        latency_ms=round((time.perf_counter() - call.started) * 1000, 2),
        estimated_cost_usd=float(aco.get("estimated_cost_usd") or 0.0),
        # The answer's own confidence when measured (logprobs), else the router's prediction.
        quality_proxy=next(
            (aco[k] for k in ("confidence", "predicted_success") if aco.get(k) is not None), None
        ),
        route_reason=str(aco.get("reason", "")),
        cache_hit=bool(aco.get("cache_hit")),
        saved_cost_usd=float(aco.get("saved_cost_usd") or 0.0),
    )


@seed_router.post("/route", response_model=RouteResponse)
async def route(body: RouteRequestBody, state: State, caller: Caller) -> RouteResponse:
    """Seed 2's ``POST /route``: the decision only, no model is called. It is made whatever
    the tiers' availability (as ``aco route``); ``unavailable`` says which cannot be called
    now and why."""
    from langchain_core.messages import HumanMessage

    from aco_langchain.chat.planner import build_route_request

    check_text(body.model_dump(exclude_none=True))
    options: dict[str, Any] = {}
    if body.max_cost is not None:
        options["max_cost_usd"] = body.max_cost
    if body.max_latency is not None:
        options["max_latency_ms"] = body.max_latency * 1000.0
    llm = state.llm
    try:
        request = build_route_request([HumanMessage(body.prompt)], options, 0)
        d = await llm.aroute(request)  # the router the model routes with, read off the loop
    except ACOError as err:
        raise from_aco_error(err) from err
    down = llm.registry.unavailable()
    return RouteResponse(
        chosen_model=d.model_id,
        tier=d.tier,
        estimated_cost_usd=d.cost_estimate,
        quality_proxy=None if d.confidence is None else round(d.confidence, 4),
        route_reason=d.reason,
        unavailable={str(k): v for k, v in down.items()} or None,
    )


docs_router = APIRouter()


@docs_router.get("/openapi.json", include_in_schema=False)
async def openapi_schema(request: Request, caller: Caller) -> Response:
    """The OpenAPI schema (``server.docs: true``; a bearer key when keys are set)."""
    return _json(request.app.openapi())


@docs_router.get("/docs", include_in_schema=False)
async def docs_page(caller: Caller) -> Response:
    """Swagger UI over ``/openapi.json`` (``server.docs: true``)."""
    from fastapi.openapi.docs import get_swagger_ui_html

    return get_swagger_ui_html(openapi_url="/openapi.json", title="aco-langchain router")


@ops_router.get("/healthz")
async def healthz(state: State) -> Response:
    """Liveness: ``{"status": "ok"}`` (no auth, no details)."""
    return _json({"status": "ok"})


def _install_error_handlers(app: FastAPI) -> None:
    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, APIError)  # noqa: S101 - registered for APIError only
        return _json(exc.body(), exc.status, exc.headers or None)

    async def bad_request(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)  # noqa: S101
        err = validation_error(list(exc.errors()))
        return _json(err.body(), err.status)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)  # noqa: S101
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}: see GET /v1/models"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        return _json(error_body(message, code=str(exc.status_code)), exc.status_code)

    async def aco_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ACOError)  # noqa: S101
        err = from_aco_error(exc)
        return _json(err.body(), err.status, err.headers or None)

    async def unexpected(request: Request, exc: Exception) -> Response:
        logger.exception("unexpected error answering %s %s", request.method, request.url.path)
        return _json(
            error_body("internal server error (logged on the server)", type="server_error"), 500
        )

    app.add_exception_handler(APIError, api_error)
    app.add_exception_handler(RequestValidationError, bad_request)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(ACOError, aco_error)
    app.add_exception_handler(Exception, unexpected)


def freeze_startup_objects() -> None:
    """For a process that only serves (``aco serve``): move what startup made (modules,
    config, the router model: ~150k objects) out of the garbage collector's sight, so a
    full collection walks only what requests allocate. Measured in process: a full
    collection stalled every request for ~56 ms once per ~1,000 requests; after
    ``gc.freeze()`` none ran in 1,000. Garbage is collected first, so only live objects are
    frozen (a frozen object is never freed: not for apps embedded in a larger process).

    Example:
        ```python
        app = create_app("config.yaml")
        freeze_startup_objects()
        uvicorn.run(app)
        ```
    """
    gc.collect()
    gc.freeze()
    logger.debug("server start: %d objects frozen out of the collector", gc.get_freeze_count())


def create_app(
    config: ACOConfig | str | Path | dict[str, Any] | None = None,
    *,
    state: ServerState | None = None,
    allow_unauthenticated: bool | None = None,
) -> FastAPI:
    """The ``aco serve`` app for one worker.

    Args:
        config: an ACOConfig, a YAML path, a mapping, or None (``$ACO_CONFIG`` or defaults).
        state: a ready :class:`ServerState` (tests, embedding); built from ``config`` if None.
        allow_unauthenticated: serve non-loopback clients without keys.

    Returns:
        The FastAPI app; add routers to extend it.

    Raises:
        ConfigError: the config, the cache or the router cannot be set up.

    Example:
        ```python
        app = create_app({"cache": {"url": "sqlite:///tmp/aco-cache.db"}})
        ```
    """
    if state is None:
        if isinstance(config, ACOConfig):
            cfg = config
        elif isinstance(config, dict):
            cfg = config_from_dict(config)
        else:
            cfg = load_config(config)
        state = ServerState(cfg, allow_unauthenticated=allow_unauthenticated)
    ready = state

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        ready.close()

    app = FastAPI(
        title="aco-langchain router",
        summary="OpenAI-compatible router: each call goes to the cheapest capable tier.",
        lifespan=lifespan,
        # Off by default; with server.docs they are routes behind the keys (below).
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.aco = ready
    if ready.config.server.docs:
        app.include_router(docs_router)
    app.include_router(openai_router)
    app.include_router(seed_router)
    app.include_router(ops_router)
    app.include_router(dashboard_router)
    _install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=ready.config.server.max_body_bytes)
    return app


def app_from_env() -> FastAPI:
    """The app of one worker of ``aco serve --workers N`` (config from ``$ACO_CONFIG``)."""
    allow = os.environ.get(ENV_ALLOW_UNAUTHENTICATED) == "1"
    app = create_app(os.environ.get(ENV_CONFIG) or None, allow_unauthenticated=allow or None)
    freeze_startup_objects()  # a worker process only serves
    return app


__all__ = [
    "RUN_HEADER",
    "app_from_env",
    "create_app",
    "freeze_startup_objects",
    "get_principal",
    "get_state",
    "openai_router",
    "ops_router",
    "seed_router",
]
