"""The provider registry: the adapter of each provider family, looked up by a tier's provider.

Nothing else in the package compares provider names: ask the tier's adapter. The families
(names, packages, pip extras, key variables, genai-prices ids) are the table in
``aco_langchain.provider_families``; each family names its adapter class by import path, so
a provider package is imported only when one of its tiers is built.

Adding a provider is one family entry and one adapter::

    from aco_langchain.provider_families import ProviderFamily
    from aco_langchain.providers.registry import register_provider

    register_provider(
        ProviderFamily("replay", "aco_langchain.providers.replay:ReplayAdapter", local=True)
    )

Usage::

    adapter = adapter_for(cfg.tier(2))
    adapter.availability(cfg.tier(2), cfg)     # 'no ANTHROPIC_API_KEY' or None
    model = adapter.build(cfg.tier(2), cfg)    # ChatAnthropic(...)
    adapter.read_usage(answer)                 # TokenUsage(input=..., cache_read=..., ...)
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

from aco_langchain.config import TierSpec
from aco_langchain.errors import ConfigError
from aco_langchain.provider_families import ProviderFamily, family, register_family
from aco_langchain.providers.adapters.base import ProviderAdapter


@cache
def _adapter(fam: ProviderFamily) -> ProviderAdapter:
    module_name, _, attr = fam.adapter.partition(":")
    try:
        cls: Any = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise ConfigError(
            f"provider {fam.name!r}: its adapter {fam.adapter!r} cannot be imported ({err})"
        ) from err
    adapter = cls(fam)
    if not isinstance(adapter, ProviderAdapter):
        raise ConfigError(f"provider {fam.name!r}: {fam.adapter!r} is not a ProviderAdapter")
    return adapter


def adapter_for(provider: str | TierSpec) -> ProviderAdapter:
    """The adapter of a tier (or of a provider name or alias).

    Args:
        provider: A tier spec, or a provider name (``"anthropic"``, ``"cloud"``, ...).

    Returns:
        The family's adapter (one instance per family).

    Raises:
        ConfigError: an unknown provider name (the message lists the known ones).

    Example:
        ```python
        adapter_for("google").family.name     # 'google_genai'
        ```
    """
    name = provider.provider if isinstance(provider, TierSpec) else provider
    return _adapter(family(name))


def register_provider(fam: ProviderFamily) -> ProviderAdapter:
    """Add a provider family and return its adapter (imported now, so a bad path fails here).

    Args:
        fam: The family; ``fam.adapter`` is ``"module:ProviderAdapterSubclass"``.

    Returns:
        The family's adapter.

    Raises:
        ConfigError: the adapter cannot be imported, or an alias is taken.

    Example:
        ```python
        register_provider(ProviderFamily("replay", "my_pkg.replay:ReplayAdapter", local=True))
        ```
    """
    register_family(fam)
    _adapter.cache_clear()  # a re-registered family gets its new adapter
    return _adapter(fam)


__all__ = ["ProviderAdapter", "adapter_for", "register_provider"]
