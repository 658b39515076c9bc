"""Google's Gemini API: ``ChatGoogleGenerativeAI`` (``pip install "aco-langchain[google]"``).

Its class takes ``base_url`` for a gateway (or a loopback fake) and reads ``GOOGLE_API_KEY``
or ``GEMINI_API_KEY``; a tier with the default variable is available with either (its
reason, when neither is set, names GOOGLE_API_KEY).

Example:
    ```python
    spec = TierSpec(model="google_genai:gemini-2.5-flash")
    GoogleGenAIAdapter(family("google_genai")).build(spec, cfg)   # ChatGoogleGenerativeAI
    ```
"""

from __future__ import annotations

import os

from aco_langchain.config import ACOConfig, TierSpec
from aco_langchain.providers.adapters.base import ProviderAdapter

#: Variables the Gemini client reads a key from, in its own order.
_KEY_VARS = ("GOOGLE_API_KEY", "GEMINI_API_KEY")


class GoogleGenAIAdapter(ProviderAdapter):
    """``google_genai``: Gemini through the Gemini API (not Vertex AI)."""

    def availability(self, spec: TierSpec, config: ACOConfig) -> str | None:
        if (why := self.missing_package()) is not None:
            return why
        if spec.api_key_env == "GOOGLE_API_KEY":
            # The default variable: the client takes either of its two names.
            if not any(os.environ.get(v) for v in _KEY_VARS):
                return "no GOOGLE_API_KEY"  # GEMINI_API_KEY would do too
            return None
        return super().availability(spec, config)

    def api_key(self, spec: TierSpec) -> str | None:
        default = spec.api_key_env == "GOOGLE_API_KEY" and not os.environ.get("GOOGLE_API_KEY")
        if default and (key := os.environ.get("GEMINI_API_KEY")):
            return key
        return super().api_key(spec)


__all__ = ["GoogleGenAIAdapter"]
