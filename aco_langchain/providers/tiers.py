"""Tiers: building each tier's chat model, availability, and pricing.

Usage::

    from aco_langchain.providers.tiers import TierRegistry
    reg = TierRegistry(ACOConfig())
    reg.unavailable()          # {2: 'no OPENAI_API_KEY', ...} on a machine without keys
    model = reg.model(1)       # the tier's BaseChatModel (built once, lazily)
    reg.cost(4, input_tokens=1000, output_tokens=200)   # USD from config or genai-prices
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import weakref
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from aco_langchain.config import TIER_NUMBERS, ACOConfig, TierSpec
from aco_langchain.errors import ConfigError
from aco_langchain.redact import register_config

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

#: Rough chars-per-token ratio for estimates before a call (tiktoken cannot fetch its
#: files offline; this matches langchain_core's count_tokens_approximately).
CHARS_PER_TOKEN = 4.0
DEFAULT_OUTPUT_TOKENS = 256

_PROVIDER_IDS = {"openai": "openai", "cloud": "openai", "openai-compatible": None}


#: Tokens a chat template adds per message (role markers, separators).
MESSAGE_OVERHEAD_TOKENS = 8
#: Tokens a chat template adds once per call (a default system prompt, generation prompt).
CALL_OVERHEAD_TOKENS = 48
#: Tokens of framing per tool schema (the template's tool preamble and markers).
TOOL_OVERHEAD_TOKENS = 16


def estimate_tokens(text: str) -> int:
    """Approximate token count of ``text`` (chars / 4, at least 1)."""
    return max(1, int(len(text) / CHARS_PER_TOKEN + 0.5))


@lru_cache(maxsize=256)
def genai_price_per_1k(provider: str, model: str) -> tuple[float, float] | None:
    """USD per 1k input/output tokens from genai-prices' bundled data, None if unknown."""
    provider_id = _PROVIDER_IDS.get(provider, provider)
    try:
        from genai_prices import Usage, calc_price  # 0.3 s import: only when needed

        r = calc_price(
            Usage(input_tokens=1_000_000, output_tokens=1_000_000),
            model_ref=model,
            provider_id=provider_id,
        )
    except (LookupError, ValueError) as err:  # genai-prices does not know the model
        logger.debug("genai-prices has no price for %s/%s: %s", provider, model, err)
        return None
    return float(r.input_price) / 1000.0, float(r.output_price) / 1000.0


def price_per_1k(spec: TierSpec) -> tuple[float, float]:
    """(input, output) USD per 1k tokens: config, else genai-prices, else $0 for local tiers.

    A cloud tier with no configured price and none known to genai-prices is a config error:
    we would rather say so than bill it as free.
    """
    if spec.cost_per_1k_input is not None and spec.cost_per_1k_output is not None:
        return spec.cost_per_1k_input, spec.cost_per_1k_output
    if spec.is_local:
        return (spec.cost_per_1k_input or 0.0, spec.cost_per_1k_output or 0.0)
    found = genai_price_per_1k(spec.provider, spec.provider_model)
    if found is None:
        raise ConfigError(
            f"no price for tier model {spec.provider_model!r} (provider {spec.provider}): "
            "set cost_per_1k_input and cost_per_1k_output in config.yaml"
        )
    return (
        spec.cost_per_1k_input if spec.cost_per_1k_input is not None else found[0],
        spec.cost_per_1k_output if spec.cost_per_1k_output is not None else found[1],
    )


def cost_usd(spec: TierSpec, input_tokens: int, output_tokens: int) -> float:
    """USD for a call with the given token counts at the tier's price."""
    p_in, p_out = price_per_1k(spec)
    return (input_tokens * p_in + output_tokens * p_out) / 1000.0


def usage_tokens(usage: Mapping[str, Any] | None) -> tuple[int, int]:
    """(input, output) tokens from a usage_metadata mapping (missing counts as 0)."""
    if not usage:
        return 0, 0
    return int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)


def local_base_url(config: ACOConfig) -> str | None:
    """Base URL of the running local llama.cpp server, or None if none is running."""
    try:
        from aco_langchain.providers.local import running_base_url
    except ImportError:  # pragma: no cover - local_model ships with the package
        return None
    return running_base_url(config.local_model)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _follows_local_server(spec: TierSpec) -> bool:
    return (
        spec.base_url is None
        and (spec.provider == "local" or spec.is_local)
        and (spec.provider not in ("ollama", "instance"))
    )


def availability(spec: TierSpec, config: ACOConfig) -> str | None:
    """Why the tier cannot be called now (missing key, server down), or None if it can.

    Checks only cheap local facts (env vars, the local server's state file), never the
    network, so a routing decision stays fast.
    """
    if spec.provider == "instance":
        return None
    if spec.provider == "local" or (spec.is_local and spec.base_url is None):
        if spec.base_url:
            return None
        if local_base_url(config) is None:
            return "local model not running (aco local-model start)"
        return None
    if spec.provider == "ollama":
        return None
    if spec.api_key_env and not os.environ.get(spec.api_key_env):
        return f"no {spec.api_key_env}"
    if spec.provider == "openai-compatible" and not spec.base_url:
        return "openai-compatible tier has no base_url"
    return None


def build_chat_model(spec: TierSpec, config: ACOConfig) -> BaseChatModel:
    """Build a tier's chat model from its provider.

    - ``openai`` / ``cloud``: ChatOpenAI, key from ``api_key_env``.
    - ``openai-compatible``: ChatOpenAI at ``base_url``.
    - ``local``: ``ChatLlamaServer`` (ChatOpenAI with tool calls and JSON output by
      constrained decoding) at the running local llama.cpp server; ChatOpenAI at ``base_url``
      when one is set (any OpenAI-compatible server).
    - ``ollama``: ChatOllama.
    """
    timeout = config.routing.max_latency_per_call_s
    if spec.provider == "ollama":
        from langchain_ollama import ChatOllama

        # ollama's API takes no per-request timeout: the config's deadline bounds each request.
        kwargs: dict[str, Any] = {
            "model": spec.provider_model,
            "client_kwargs": {"timeout": timeout},
        }
        if spec.base_url:
            kwargs["base_url"] = spec.base_url
        return ChatOllama(**kwargs)
    if spec.provider == "instance":
        raise ConfigError(
            f"tier {spec.model_id!r} has provider 'instance': pass the model object "
            "as ACORouterChatModel(tier_models={N: model})"
        )
    from langchain_openai import ChatOpenAI

    from aco_langchain.providers.transport import async_http_client, deadline_http_client

    base_url = spec.base_url
    api_key: str | None = None
    if spec.provider == "local" or (spec.is_local and not base_url):
        base_url = base_url or local_base_url(config)
        if base_url is None:
            raise ConfigError(
                "the local tier is not running: start it with `aco local-model start` "
                "(build it once with `aco local-model build`)"
            )
        api_key = "local"
    elif spec.api_key_env:
        api_key = os.environ.get(spec.api_key_env)
        if not api_key:
            raise ConfigError(
                f"tier {spec.model_id!r} needs an API key: set {spec.api_key_env} "
                "or change models.<tier>.api_key_env"
            )
    elif spec.provider == "openai-compatible":
        api_key = "none"
    cls: type[ChatOpenAI] = ChatOpenAI
    if spec.provider == "local" and not spec.base_url:
        # The embedded llama-server: tool calls and JSON output by constrained decoding.
        from aco_langchain.providers.local.chat import ChatLlamaServer

        cls = ChatLlamaServer
    return cls(
        model=spec.provider_model,
        base_url=base_url,
        api_key=api_key,  # type: ignore[arg-type]
        timeout=timeout,
        # Retries and fallback are the router's job (one place, one policy).
        max_retries=0,
        stream_usage=True,
        # Each request's timeout is a total deadline (a trickling server is cut).
        http_client=deadline_http_client(timeout),
        # Its own async client (connection pool), never langchain_openai's process-wide one:
        # a pool is bound to the event loop that first used it (see TierRegistry.model).
        http_async_client=async_http_client(timeout),
    )


class TierRegistry:
    """The five tiers of one config, their models built lazily and kept per registry.

    Example:
        ```python
        reg = TierRegistry(cfg, instances={1: my_local_model})
        reg.model(1).invoke("hi")
        ```
    """

    def __init__(
        self, config: ACOConfig, instances: Mapping[int, BaseChatModel] | None = None
    ) -> None:
        self.config = config
        register_config(config)  # the tiers' key values are masked wherever text leaves us
        self._instances: dict[int, BaseChatModel] = dict(instances or {})
        # Tiers the user handed over as objects; the others are built from config on use
        # and keep config semantics (availability, capabilities, provider names).
        self._given = frozenset(self._instances)
        self._built_urls: dict[int, str | None] = {}
        # Tiers built for each running event loop: an async HTTP client's connections belong
        # to one loop, so a second ``asyncio.run`` (scripts, notebooks) gets its own models
        # instead of "Event loop is closed" from the first loop's pool.
        self._per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, Any]] = (
            weakref.WeakKeyDictionary()
        )
        self._loop_bound: set[int] = set()  # shared instances an event loop has used
        for n in self._instances:
            if n not in TIER_NUMBERS:
                raise ConfigError(f"tier_models key {n!r} is not a tier: use 1 to 5")

    def spec(self, tier: int) -> TierSpec:
        return self.config.tier(tier)

    def has_instance(self, tier: int) -> bool:
        """Was the tier given as a ready-made model (rather than built from config)?"""
        return tier in self._given

    def takes_tools(self, tier: int) -> bool:
        """Can the tier call tools? A given instance: does it implement ``bind_tools``.

        A ready-made ChatOpenAI pointed at a server without tool calling still says yes:
        set the tier's ``capabilities`` (or the agent's ``tool_tiers``) to say otherwise.
        """
        if tier in self._given:
            from langchain_core.language_models import BaseChatModel

            return type(self._instances[tier]).bind_tools is not BaseChatModel.bind_tools
        return self.spec(tier).supports_tools

    def unavailable(self) -> dict[int, str]:
        """{tier: why} for tiers that cannot be called now."""
        out: dict[int, str] = {}
        for n in TIER_NUMBERS:
            if n in self._given:
                continue
            why = availability(self.spec(n), self.config)
            if why:
                out[n] = why
        return out

    def warm(self) -> None:
        """Import the provider libraries the built tiers will need (``langchain_openai``,
        ``langchain_ollama``), without building a client. The router model does it when it
        is made, so the first call's deadline, which counts building a tier's client, is not
        spent on imports (seconds on a busy machine)."""
        providers = {self.spec(n).provider for n in TIER_NUMBERS if n not in self._given}
        modules = []
        if providers - {"ollama", "instance"}:
            modules.append("langchain_openai")
        if "ollama" in providers:
            modules.append("langchain_ollama")
        for name in modules:
            try:
                importlib.import_module(name)
            except ImportError as err:  # the tier says so when it is built
                logger.debug("cannot import %s ahead of use: %s", name, err)

    def is_built(self, tier: int) -> bool:
        """Is the tier's chat model ready (given, or built by an earlier call)?"""
        return tier in self._instances

    def model(self, tier: int) -> BaseChatModel:
        """The tier's chat model, built on first use (and once per event loop when called
        from async code, so a closed loop's connections are never reused)."""
        if tier not in self._given:
            spec = self.spec(tier)
            if _follows_local_server(spec):
                # The local server may have restarted on another port since we built it.
                url = local_base_url(self.config)
                if url != self._built_urls.get(tier):
                    self._instances.pop(tier, None)
                    self._loop_bound.discard(tier)
                    for models in self._per_loop.values():
                        models.pop(tier, None)
                    self._built_urls[tier] = url
            loop = _running_loop()
            if loop is not None:
                return self._loop_model(tier, loop)
        if tier not in self._instances:
            self._instances[tier] = build_chat_model(self.spec(tier), self.config)
        return self._instances[tier]

    def _loop_model(self, tier: int, loop: asyncio.AbstractEventLoop) -> BaseChatModel:
        """The tier's model for ``loop``: the shared instance for the first loop that asks
        (its sync client serves sync calls either way), a fresh one for any other."""
        models = self._per_loop.setdefault(loop, {})
        if tier not in models:
            if tier not in self._instances:
                self._instances[tier] = build_chat_model(self.spec(tier), self.config)
            if tier not in self._loop_bound:
                self._loop_bound.add(tier)
                models[tier] = self._instances[tier]
            else:
                logger.debug("tier %d: a model of its own for event loop %#x", tier, id(loop))
                models[tier] = build_chat_model(self.spec(tier), self.config)
        return models[tier]  # type: ignore[no-any-return]

    def provider(self, tier: int) -> str:
        """The provider name reported as ``model_provider`` for the tier's answers."""
        if tier in self._given:
            ls = self._instances[tier]._get_ls_params()
            return str(ls.get("ls_provider") or self._instances[tier]._llm_type)
        spec = self.spec(tier)
        return {"local": "llama.cpp", "cloud": "openai"}.get(spec.provider, spec.provider)

    def model_name(self, tier: int) -> str:
        """The concrete model's name reported as ``model_name`` for the tier's answers."""
        if tier in self._given:
            ls = self._instances[tier]._get_ls_params()
            name = ls.get("ls_model_name") or getattr(self._instances[tier], "model_name", None)
            if name:
                return str(name)
        return self.spec(tier).provider_model

    def cost(self, tier: int, input_tokens: int, output_tokens: int) -> float:
        return cost_usd(self.spec(tier), input_tokens, output_tokens)


#: ChatOllama's own option fields: passing ``options`` replaces them all, so they are copied.
_OLLAMA_OPTIONS = (
    "mirostat", "mirostat_eta", "mirostat_tau", "num_ctx", "num_gpu", "num_thread",
    "repeat_last_n", "repeat_penalty", "temperature", "seed", "tfs_z", "top_k", "top_p",
)  # fmt: skip
#: Output-cap fields of other chat models, in the order they are looked for.
_CAP_FIELDS = ("max_tokens", "max_output_tokens", "max_tokens_to_sample", "max_new_tokens")


def output_cap_kwargs(model: BaseChatModel, cap: int) -> dict[str, Any]:
    """The call kwargs that make ``model`` stop after ``cap`` output tokens.

    ``max_tokens`` for OpenAI-compatible models (langchain-openai sends it as
    ``max_completion_tokens``), ``options.num_predict`` for Ollama, else the model's own cap
    field (``max_tokens``, ``max_output_tokens``, ...). ``{}`` when the model has none: its
    answers are then checked against the cap after the call (over-cap usage is recorded and
    blocks further spend).

    Example:
        ```python
        output_cap_kwargs(ChatOpenAI(model="gpt-4.1"), 512)   # {"max_tokens": 512}
        ```
    """
    try:
        from langchain_openai.chat_models.base import BaseChatOpenAI

        if isinstance(model, BaseChatOpenAI):
            return {"max_tokens": cap}
    except ImportError:  # pragma: no cover - langchain-openai is a dependency
        pass
    try:
        from langchain_ollama import ChatOllama

        if isinstance(model, ChatOllama):
            opts = {k: v for k in _OLLAMA_OPTIONS if (v := getattr(model, k, None)) is not None}
            return {"options": {**opts, "num_predict": cap}}
    except ImportError:  # pragma: no cover - langchain-ollama is a dependency
        pass
    fields = type(model).model_fields
    for name in _CAP_FIELDS:
        if name in fields:
            return {name: cap}
    return {}


def input_token_bound(text: str, n_messages: int, tools: Any = None) -> int:
    """An upper bound on the input tokens of a call as the provider counts them: its UTF-8
    bytes (a byte-level BPE token is at least one byte), each message's framing, the chat
    template's own text (a default system prompt: SmolLM2's adds ~25 tokens, so "Hi" is
    billed 31), and the tool schemas' bytes with their framing.

    Budgets hold this, not the chars/4 estimate, so a provider's real count never exceeds it.
    """
    import json

    tool_bytes = len(json.dumps(tools).encode("utf-8")) if tools else 0
    n_tools = len(tools) if isinstance(tools, list) else (1 if tools else 0)
    return (
        len(text.encode("utf-8"))
        + MESSAGE_OVERHEAD_TOKENS * max(1, n_messages)
        + CALL_OVERHEAD_TOKENS
        + tool_bytes
        + TOOL_OVERHEAD_TOKENS * n_tools
    )
