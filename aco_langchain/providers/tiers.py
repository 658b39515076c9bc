"""Tiers: building each tier's chat model and its availability (prices: ``aco_langchain.pricing``).

Usage::

    from aco_langchain.providers.tiers import TierRegistry
    reg = TierRegistry(ACOConfig())
    reg.unavailable()          # {2: 'no OPENAI_API_KEY', ...} on a machine without keys
    model = reg.model(1)       # the tier's BaseChatModel (built once, lazily)
    reg.cost(4, input_tokens=1000, output_tokens=200)   # USD from config or genai-prices
"""

from __future__ import annotations

import asyncio
import logging
import sys
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aco_langchain.config import TIER_NUMBERS, ACOConfig, TierSpec
from aco_langchain.errors import ConfigError
from aco_langchain.pricing import (  # noqa: F401 - re-exported for callers outside decisions
    CHARS_PER_TOKEN,
    DEFAULT_OUTPUT_TOKENS,
    TokenUsage,
    cost_usd,
    estimate_tokens,
    genai_price_per_1k,
    input_token_bound,
    price_per_1k,
    resolve_prices,
    usage_cost_usd,
    usage_tokens,
)
from aco_langchain.providers.adapters.openai import local_base_url  # noqa: F401 - re-export
from aco_langchain.providers.registry import ProviderAdapter, adapter_for
from aco_langchain.redact import register_config

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import BaseMessage


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def availability(spec: TierSpec, config: ACOConfig) -> str | None:
    """Why the tier cannot be called now (package missing, key missing, server down), or None.

    Checks only cheap local facts (installed packages, env vars, the local server's state
    file), never the network, so a routing decision stays fast. The tier's provider adapter
    decides (``aco_langchain.providers.registry``).
    """
    return adapter_for(spec).availability(spec, config)


def build_chat_model(spec: TierSpec, config: ACOConfig) -> BaseChatModel:
    """Build a tier's chat model with its provider's adapter.

    ``openai`` / ``cloud``: ChatOpenAI; ``openai-compatible``: ChatOpenAI at ``base_url``;
    ``local``: the embedded llama.cpp server's ``ChatLlamaServer``; ``ollama``: ChatOllama;
    ``anthropic``, ``google_genai``, ``groq``, ``mistralai``, ``bedrock_converse``: their
    LangChain class (installed by ``pip install "aco-langchain[<extra>]"``). Every tier gets
    ``max_retries=0`` (fallback is the router's) and the config's per-call timeout.

    Raises:
        ConfigError: the package or key is missing, the local server is down, or the tier is
            an ``instance`` with no model passed.
    """
    return adapter_for(spec).build(spec, config)


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
        self._names: dict[int, tuple[str, str | None]] = {}
        self._instance_adapter = adapter_for("instance")  # given tiers' (read per answer)
        for n in self._instances:
            if n not in TIER_NUMBERS:
                raise ConfigError(f"tier_models key {n!r} is not a tier: use 1 to 5")
        # Every call prices the tiers: look the prices up now, not on the first request
        # (an unpriced cloud tier loads genai-prices' bundled data, ~0.1 s once per process).
        resolve_prices(config)

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

    def unavailable(self, prompt: str | Sequence[BaseMessage] | None = None) -> dict[int, str]:
        """{tier: why} for tiers that cannot be called now; with ``prompt`` (the call's last
        user message, or its messages), also the tiers that cannot answer it (a replay tier's
        miss).

        Example:
            ```python
            reg.unavailable()        # {2: 'no ANTHROPIC_API_KEY'} on a machine without it
            ```
        """
        out: dict[int, str] = {}
        for n in TIER_NUMBERS:
            if n in self._given:
                continue
            why = availability(self.spec(n), self.config)
            if why is None and prompt is not None:
                adapter = adapter_for(self.spec(n))
                if adapter.answers_per_prompt:
                    why = adapter.miss_reason(self.model(n), prompt)
            if why:
                out[n] = why
        return out

    def warm(self) -> None:
        """Import the chat model classes the built tiers will need, without building a
        client. The router model does it when it is made, so the first call's deadline,
        which counts building a tier's client, is not spent on imports (seconds on a busy
        machine). A tier whose package is missing says so when it is built."""
        for n in TIER_NUMBERS:
            if n in self._given:
                continue
            adapter = adapter_for(self.spec(n))
            if not (adapter.family.package and adapter.family.class_name):
                continue  # no package to import (recordings, instances)
            try:
                adapter.chat_class()
            except ConfigError as err:  # the tier says so again when it is built
                logger.debug("tier %d: cannot import its class ahead of use: %s", n, err)

    def is_built(self, tier: int) -> bool:
        """Is the tier's chat model ready (given, or built by an earlier call)?"""
        return tier in self._instances

    def model(self, tier: int) -> BaseChatModel:
        """The tier's chat model, built on first use (and once per event loop when called
        from async code, so a closed loop's connections are never reused)."""
        if tier not in self._given:
            spec = self.spec(tier)
            if adapter_for(spec).follows_local_server(spec):
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

    def _given_names(self, tier: int) -> tuple[str, str | None]:
        """(provider, model name) a given instance reports, read once per tier: its
        ``_get_ls_params()`` builds a dict per call (~0.6 ms for ChatOpenAI) and a given
        instance never changes for the registry's life."""
        names = self._names.get(tier)
        if names is None:
            model = self._instances[tier]
            ls = model._get_ls_params()
            name = ls.get("ls_model_name") or getattr(model, "model_name", None)
            names = (str(ls.get("ls_provider") or model._llm_type), str(name) if name else None)
            self._names[tier] = names
        return names

    def provider(self, tier: int) -> str:
        """The provider name reported as ``model_provider`` for the tier's answers."""
        if tier in self._given:
            return self._given_names(tier)[0]
        spec = self.spec(tier)
        return adapter_for(spec).provider_name(spec)

    def model_name(self, tier: int) -> str:
        """The concrete model's name reported as ``model_name`` for the tier's answers."""
        if tier in self._given:
            name = self._given_names(tier)[1]
            if name:
                return name
        return self.spec(tier).provider_model

    def cost(self, tier: int, input_tokens: int, output_tokens: int) -> float:
        """USD of ``input_tokens`` + ``output_tokens`` at the tier's price."""
        return cost_usd(self.spec(tier), input_tokens, output_tokens)

    def _adapter(self, tier: int) -> ProviderAdapter:
        """The adapter reading the tier's answers (a passed-in model: the instance adapter)."""
        if tier in self._given:
            return self._instance_adapter
        return adapter_for(self.spec(tier))

    def usage(self, tier: int, message: Any) -> TokenUsage:
        """The tier's answer's billed tokens, read by its provider's adapter."""
        return self._adapter(tier).read_usage(message)

    def recorded_cost(self, tier: int, prompt: str) -> float | None:
        """The USD the tier's source recorded for ``prompt`` (a replay tier's recorded
        answer); None: the tier records none, or has no answer to it."""
        if tier in self._given:
            return None
        adapter = adapter_for(self.spec(tier))
        if not adapter.answers_per_prompt:
            return None
        return adapter.recorded_prompt_cost(self.model(tier), prompt)

    def worst_case(self, tier: int, input_bound: int, output_cap: int, prompt: str) -> float:
        """USD a call may cost: the input bound and output cap at the tier's price, and never
        less than a replay tier's recorded cost (what its settlement will charge)."""
        usd = self.cost(tier, input_bound, output_cap)
        recorded = self.recorded_cost(tier, prompt)
        return usd if recorded is None else max(usd, recorded)

    def baseline_cost(self, input_tokens: int, output_tokens: int, prompt: str) -> float:
        """What the baseline tier (``ledger.baseline_tier``) would have cost: its recorded
        cost when it is a replay tier with an answer to ``prompt``, else the tokens at its
        price.

        Raises:
            ConfigError: the baseline tier has no price.
        """
        tier = self.config.ledger.baseline_tier
        recorded = self.recorded_cost(tier, prompt)
        return recorded if recorded is not None else self.cost(tier, input_tokens, output_tokens)

    def call_cost(
        self, tier: int, message: BaseMessage, input_tokens: int, output_tokens: int
    ) -> float:
        """USD of an answered call: a recorded cost when the answer carries one (replay),
        else its usage at the tier's price, with cached input and reasoning tokens priced by
        genai-prices when the tier has no configured price.

        ``input_tokens`` / ``output_tokens`` are the counts settled (estimated by the caller
        when the provider reported none); the message's usage details say which are cached.

        Example:
            ```python
            usd = reg.call_cost(2, ai_message, 1200, 80)
            ```
        """
        adapter = self._adapter(tier)
        recorded = adapter.recorded_cost(message)
        if recorded is not None:
            return recorded
        read = adapter.read_usage(message)  # cached and reasoning tokens: its own counts
        used = TokenUsage(
            input_tokens, output_tokens, read.cache_read, read.cache_write, read.reasoning
        )
        return usage_cost_usd(self.spec(tier), used)

    def logprobs(self, tier: int, message: Any, generation_info: Any = None) -> Any:
        """The raw token logprobs of the tier's answer, read by its provider's adapter."""
        return self._adapter(tier).read_logprobs(message, generation_info)


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
    # A model is an instance of a class whose module is already imported: look the classes
    # up in sys.modules rather than importing langchain-openai / langchain-ollama (~0.7 s,
    # hundreds of modules) for tiers that use neither.
    openai_base = sys.modules.get("langchain_openai.chat_models.base")
    if openai_base is not None and isinstance(model, openai_base.BaseChatOpenAI):
        return {"max_tokens": cap}
    ollama = sys.modules.get("langchain_ollama.chat_models")
    if ollama is not None and isinstance(model, ollama.ChatOllama):
        opts = {k: v for k in _OLLAMA_OPTIONS if (v := getattr(model, k, None)) is not None}
        return {"options": {**opts, "num_predict": cap}}
    fields = type(model).model_fields
    for name in _CAP_FIELDS:
        if name in fields:
            return {name: cap}
    return {}
