"""The provider adapter: how one family's tiers are built, checked and read.

An adapter knows four things about its family and nothing else does: how to build the tier's
chat model, whether the tier can be called now (package installed, key set, server running),
how its answers' usage and logprobs are read, and the name its answers report as
``model_provider``. ``PackageAdapter`` covers a LangChain partner package whose class takes
the usual ``model`` / ``api_key`` / ``base_url`` / ``timeout`` / ``max_retries`` (Anthropic,
Groq, Mistral, Bedrock); the other modules here subclass it where a family differs.

Example:
    ```python
    from aco_langchain.providers.registry import adapter_for
    adapter_for(cfg.tier(2)).availability(cfg.tier(2), cfg)   # 'no ANTHROPIC_API_KEY'
    ```
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aco_langchain.config import ACOConfig, TierSpec
from aco_langchain.errors import ConfigError
from aco_langchain.pricing import TokenUsage
from aco_langchain.provider_families import ProviderFamily

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import BaseMessage

logger = logging.getLogger(__name__)


def accepts(cls: type, name: str) -> bool:
    """Does the pydantic model class ``cls`` take a field named (or aliased) ``name``?"""
    fields: Mapping[str, Any] = getattr(cls, "model_fields", {})
    return any(name == key or name == getattr(f, "alias", None) for key, f in fields.items())


class ProviderAdapter:
    """The generic adapter: a LangChain partner package's chat model class.

    Args:
        family: The family this adapter serves (its package, class, key variable).

    Example:
        ```python
        adapter = ProviderAdapter(family("anthropic"))
        adapter.build(spec, cfg)        # ChatAnthropic(model=..., api_key=..., max_retries=0)
        ```
    """

    def __init__(self, family: ProviderFamily) -> None:
        self.family = family

    # -- availability ---------------------------------------------------------------------

    def missing_package(self) -> str | None:
        """Why the family's package cannot be imported (with the pip command), or None."""
        pkg = self.family.package
        if pkg is None or importlib.util.find_spec(pkg) is not None:
            return None
        hint = self.family.install_hint or f"pip install {pkg.replace('_', '-')}"
        return f"{pkg} is not installed: {hint}"

    def availability(self, spec: TierSpec, config: ACOConfig) -> str | None:
        """Why the tier cannot be called now, or None. Cheap local facts only (no network).

        Args:
            spec: The tier.
            config: The whole config (the local server's state lives there).

        Returns:
            A short reason (``"no ANTHROPIC_API_KEY"``), or None when the tier can be called.
        """
        if (why := self.missing_package()) is not None:
            return why
        if spec.api_key_env and not os.environ.get(spec.api_key_env):
            return f"no {spec.api_key_env}"
        return None

    def follows_local_server(self, spec: TierSpec) -> bool:
        """Is the tier's address the running local server's (rebuilt when it moves)?"""
        return False

    #: Can the tier answer only some prompts (a recording)? Then ``miss_reason`` is asked
    #: per call, which builds the tier's model.
    answers_per_prompt: bool = False

    def miss_reason(self, model: BaseChatModel, prompt: str | Sequence[BaseMessage]) -> str | None:
        """Why the tier's ``model`` cannot answer ``prompt`` (a text, or the call's messages);
        None: it can."""
        return None

    # -- building -------------------------------------------------------------------------

    def chat_class(self) -> type[BaseChatModel]:
        """The family's chat model class, imported now.

        Raises:
            ConfigError: its package is not installed (the message has the pip command).
        """
        if (why := self.missing_package()) is not None:
            raise ConfigError(f"provider {self.family.name!r}: {why}")
        assert self.family.package and self.family.class_name  # a package family
        try:
            module = importlib.import_module(self.family.package)
            cls: type[BaseChatModel] = getattr(module, self.family.class_name)
        except (ImportError, AttributeError) as err:
            fix = self.family.install_hint or f"pip install -U {self.family.package}"
            raise ConfigError(
                f"provider {self.family.name!r}: cannot import "
                f"{self.family.package}.{self.family.class_name} ({err}); reinstall it: {fix}"
            ) from err
        return cls

    def api_key(self, spec: TierSpec) -> str | None:
        """The tier's key from ``api_key_env`` (None when the tier names no variable).

        Raises:
            ConfigError: the variable is named but not set.
        """
        if not spec.api_key_env:
            return None
        key = os.environ.get(spec.api_key_env)
        if not key:
            raise ConfigError(
                f"tier {spec.model_id!r} needs an API key: set {spec.api_key_env} "
                "or change models.<tier>.api_key_env"
            )
        return key

    def model_kwargs(self, spec: TierSpec, config: ACOConfig, cls: type) -> dict[str, Any]:
        """Keyword arguments for the class: model, key, base_url, timeout, no retries of its
        own (retries and fallback are the router's), then the tier's ``kwargs`` on top."""
        ours: dict[str, Any] = {
            "model": spec.provider_model,
            "timeout": config.routing.max_latency_per_call_s,
            "max_retries": 0,
        }
        key = self.api_key(spec)
        if key is not None:
            ours["api_key"] = key
        if spec.base_url:
            ours["base_url"] = spec.base_url
        kwargs = {k: v for k, v in ours.items() if k == "model" or accepts(cls, k)}
        for dropped in sorted(set(ours) - set(kwargs)):
            logger.debug("%s takes no %r: not passed", cls.__name__, dropped)
        return {**kwargs, **spec.kwargs}

    def build(self, spec: TierSpec, config: ACOConfig) -> BaseChatModel:
        """Build the tier's chat model.

        Raises:
            ConfigError: the package is missing or the key is not set (the message says how).
        """
        cls = self.chat_class()
        return cls(**self.model_kwargs(spec, config, cls))

    # -- reading answers ------------------------------------------------------------------

    def read_usage(self, message: Any) -> TokenUsage:
        """The answer's billed tokens (cached input and reasoning output included)."""
        return TokenUsage.from_metadata(getattr(message, "usage_metadata", None))

    def read_logprobs(self, message: Any, generation_info: Mapping[str, Any] | None = None) -> Any:
        """The answer's raw token logprobs (for ``chat.cascade.normalize_logprobs``), or None."""
        info = generation_info or {}
        meta = getattr(message, "response_metadata", None) or {}
        return info.get("logprobs") or meta.get("logprobs")

    def recorded_cost(self, message: Any) -> float | None:
        """The answer's cost as recorded by its source (replay), None: price its usage."""
        return None

    def recorded_prompt_cost(self, model: BaseChatModel, prompt: str) -> float | None:
        """The cost the tier's ``model`` recorded for ``prompt`` before the call (replay:
        what settlement will charge), None when it records none."""
        return None

    def provider_name(self, spec: TierSpec) -> str:
        """The ``model_provider`` the tier's answers report."""
        return self.family.provider_name


#: The generic adapter under the name the family table uses for package families.
PackageAdapter = ProviderAdapter


class InstanceAdapter(ProviderAdapter):
    """``provider: instance``: the user passes the model object (``tier_models={N: model}``)."""

    def availability(self, spec: TierSpec, config: ACOConfig) -> str | None:
        return None

    def build(self, spec: TierSpec, config: ACOConfig) -> BaseChatModel:
        raise ConfigError(
            f"tier {spec.model_id!r} has provider 'instance': pass the model object "
            "as ACORouterChatModel(tier_models={N: model})"
        )

    def recorded_cost(self, message: Any) -> float | None:
        # A passed-in model may be a ReplayChatModel: its answers carry their recorded cost.
        return _replay_recorded_cost()(message)


@functools.cache
def _replay_recorded_cost() -> Callable[[Any], float | None]:
    """``providers.replay.recorded_cost``, imported on first use (replay imports the
    recordings, which import routing) and not again per call."""
    from aco_langchain.providers.replay import recorded_cost

    return recorded_cost


__all__ = ["InstanceAdapter", "PackageAdapter", "ProviderAdapter", "accepts"]
