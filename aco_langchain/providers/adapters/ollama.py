"""Ollama: ``ChatOllama`` against a local (or ``base_url``) Ollama server.

Ollama's API takes no per-request timeout: the config's deadline bounds each request through
the client's own timeout. Its logprobs come as a list of ``{token, logprob, top_logprobs}``.

Example:
    ```python
    OllamaAdapter(family("ollama")).build(TierSpec(model="ollama:qwen3:1.7b"), cfg)
    ```
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aco_langchain.config import ACOConfig, TierSpec
from aco_langchain.providers.adapters.base import ProviderAdapter

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel


class OllamaAdapter(ProviderAdapter):
    """``ollama``: ChatOllama; no key; its server is not probed (routing stays offline)."""

    def build(self, spec: TierSpec, config: ACOConfig) -> BaseChatModel:
        kwargs: dict[str, Any] = {
            "model": spec.provider_model,
            "client_kwargs": {"timeout": config.routing.max_latency_per_call_s},
        }
        if spec.base_url:
            kwargs["base_url"] = spec.base_url
        return self.chat_class()(**{**kwargs, **spec.kwargs})


__all__ = ["OllamaAdapter"]
