"""OpenAI, OpenAI-compatible servers and the embedded llama.cpp server: all ``ChatOpenAI``.

- ``openai`` (old name ``cloud``): ChatOpenAI, key from ``api_key_env`` (OPENAI_API_KEY).
- ``openai-compatible``: ChatOpenAI at ``base_url`` (a key only if ``api_key_env`` names one).
- ``local``: ``ChatLlamaServer`` (tool calls and JSON by constrained decoding) at the running
  local llama.cpp server, or ChatOpenAI at ``base_url`` when one is set. A tier of another
  OpenAI family marked ``is_local`` without a ``base_url`` also follows the local server.

Every request keeps the call's deadline (``transport.DeadlineTransport``).

Example:
    ```python
    OpenAIAdapter(family("openai")).build(cfg.tier(3), cfg)   # ChatOpenAI(model="gpt-4.1-mini")
    ```
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aco_langchain.config import ACOConfig, TierSpec
from aco_langchain.errors import ConfigError
from aco_langchain.providers.adapters.base import ProviderAdapter

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel


def local_base_url(config: ACOConfig) -> str | None:
    """Base URL of the running local llama.cpp server, or None if none is running."""
    try:
        from aco_langchain.providers.local import running_base_url
    except ImportError:  # pragma: no cover - local_model ships with the package
        return None
    return running_base_url(config.local_model)


class OpenAIAdapter(ProviderAdapter):
    """``openai``: ChatOpenAI with the call's deadline on every request."""

    def serves_local(self, spec: TierSpec) -> bool:
        """Does the tier talk to the embedded local server (no base_url of its own)?"""
        return spec.is_local and not spec.base_url

    def follows_local_server(self, spec: TierSpec) -> bool:
        return self.serves_local(spec)

    def availability(self, spec: TierSpec, config: ACOConfig) -> str | None:
        if self.serves_local(spec):
            if local_base_url(config) is None:
                return "local model not running (aco local-model start)"
            return None
        return super().availability(spec, config)

    def api_key(self, spec: TierSpec) -> str | None:
        if self.serves_local(spec):
            return "local"  # llama-server takes any key
        return super().api_key(spec)

    def chat_class_for(self, spec: TierSpec) -> type[BaseChatModel]:
        """ChatOpenAI (``LocalServerAdapter``: the local server's own subclass)."""
        return self.chat_class()

    def build(self, spec: TierSpec, config: ACOConfig) -> BaseChatModel:
        from aco_langchain.providers.transport import async_http_client, deadline_http_client

        base_url = spec.base_url
        if self.serves_local(spec):
            base_url = local_base_url(config)
            if base_url is None:
                raise ConfigError(
                    "the local tier is not running: start it with `aco local-model start` "
                    "(build it once with `aco local-model build`)"
                )
        timeout = config.routing.max_latency_per_call_s
        kwargs: dict[str, Any] = {
            "model": spec.provider_model,
            "base_url": base_url,
            "api_key": self.api_key(spec),
            "timeout": timeout,
            # Retries and fallback are the router's job (one place, one policy).
            "max_retries": 0,
            "stream_usage": True,
            # Each request's timeout is a total deadline (a trickling server is cut).
            "http_client": deadline_http_client(timeout),
            # Its own async client (connection pool), never langchain_openai's process-wide
            # one: a pool is bound to the event loop that first used it (TierRegistry.model).
            "http_async_client": async_http_client(timeout),
            **spec.kwargs,
        }
        return self.chat_class_for(spec)(**kwargs)


class OpenAICompatibleAdapter(OpenAIAdapter):
    """``openai-compatible``: any server speaking OpenAI's chat completions at ``base_url``."""

    def availability(self, spec: TierSpec, config: ACOConfig) -> str | None:
        if not spec.base_url and not spec.is_local:
            return "openai-compatible tier has no base_url"
        return super().availability(spec, config)

    def api_key(self, spec: TierSpec) -> str | None:
        key = super().api_key(spec)
        return "none" if key is None else key  # the client insists on some key


class LocalServerAdapter(OpenAIAdapter):
    """``local``: the embedded llama.cpp server (``aco local-model start``)."""

    def serves_local(self, spec: TierSpec) -> bool:
        return not spec.base_url

    def api_key(self, spec: TierSpec) -> str | None:
        return "local"

    def availability(self, spec: TierSpec, config: ACOConfig) -> str | None:
        if spec.base_url:
            return None
        return super().availability(spec, config)

    def chat_class_for(self, spec: TierSpec) -> type[BaseChatModel]:
        if spec.base_url:
            return self.chat_class()
        # The embedded llama-server: tool calls and JSON output by constrained decoding.
        from aco_langchain.providers.local.chat import ChatLlamaServer

        return ChatLlamaServer


__all__ = ["LocalServerAdapter", "OpenAIAdapter", "OpenAICompatibleAdapter", "local_base_url"]
