"""Provider families: the facts about each LangChain provider a tier may name, as plain data.

A tier names its provider either as ``provider:`` or as the prefix of an ``init_chat_model``
string (``model: "anthropic:claude-haiku-4-5"``). This module is the one table of those names:
the LangChain package and class, the pip extra that installs it, the env var of its key, its
genai-prices provider id, whether it runs on the user's machine, and which adapter (in
``aco_langchain.providers.adapters``) builds and reads it. It sits beside ``config`` (pure
data, no imports of provider packages) so config validation and pricing can use it; building
models lives in ``aco_langchain.providers.registry``.

Usage::

    from aco_langchain.provider_families import family, split_model_string
    split_model_string("ollama:qwen3:1.7b")     # ('ollama', 'qwen3:1.7b')
    family("anthropic").price_id                 # 'anthropic'
    family("cloud").name                         # 'openai' (an old name)
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import re
from collections.abc import Mapping, Set
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from aco_langchain.errors import ConfigError

logger = logging.getLogger(__name__)

_ADAPTERS = "aco_langchain.providers.adapters"


@dataclass(frozen=True)
class ProviderFamily:
    """One provider family: what a tier naming it needs and how it is priced.

    Attributes:
        name: The ``init_chat_model`` provider id (``"anthropic"``, ``"google_genai"``).
        adapter: ``"module:Class"`` of the adapter that builds and reads its models.
        package: The importable LangChain package (``"langchain_anthropic"``); None: ours.
        class_name: The chat model class in ``package``.
        extra: The ``aco-langchain[extra]`` that installs ``package``; None: a core dependency.
        key_env: The env var holding its API key by default; None: no key.
        price_id: Its genai-prices provider id; None: let genai-prices match the model name.
        aliases: Older names that mean this family (``cloud`` for ``openai``).
        local: Runs on the user's machine: no key, $0 unless the tier is priced.
        logprobs: Its answers can carry token logprobs (the cascade needs them).
        reported_as: The ``model_provider`` its answers report; None: ``name``.
        requires: Tier fields only this family takes, each with what to put there
            (``("recording", "PATH ...")`` for ``replay``): required on its tiers, refused
            on others.
    """

    name: str
    adapter: str
    package: str | None = None
    class_name: str | None = None
    extra: str | None = None
    key_env: str | None = None
    price_id: str | None = None
    aliases: tuple[str, ...] = ()
    local: bool = False
    logprobs: bool = False
    reported_as: str | None = None
    requires: tuple[tuple[str, str], ...] = ()

    @property
    def install_hint(self) -> str:
        """The pip command that installs the family's package (``""`` for core ones)."""
        return f'pip install "aco-langchain[{self.extra}]"' if self.extra else ""

    @property
    def provider_name(self) -> str:
        """The ``model_provider`` its answers report."""
        return self.reported_as or self.name


_FAMILIES: dict[str, ProviderFamily] = {}
_ALIASES: dict[str, str] = {}


def register_family(fam: ProviderFamily) -> ProviderFamily:
    """Add (or replace) a provider family; its name and aliases become valid ``provider:``s.

    Args:
        fam: The family; its ``adapter`` is imported only when a tier of it is built or checked.

    Returns:
        ``fam``, so a module can keep it as a constant.

    Raises:
        ConfigError: an alias already names another family.

    Example:
        ```python
        register_family(
            ProviderFamily("replay", "aco_langchain.providers.replay:ReplayAdapter", local=True)
        )
        ```
    """
    for alias in fam.aliases:
        owner = _ALIASES.get(alias)
        if owner is not None and owner != fam.name:
            raise ConfigError(f"provider alias {alias!r} already names {owner!r}")
    _FAMILIES[fam.name] = fam
    _ALIASES[fam.name] = fam.name
    for alias in fam.aliases:
        _ALIASES[alias] = fam.name
    return fam


def families() -> tuple[ProviderFamily, ...]:
    """Every registered family, in registration order."""
    return tuple(_FAMILIES.values())


def known_names() -> tuple[str, ...]:
    """Every name a tier's ``provider`` may take (families and their aliases), sorted."""
    return tuple(sorted(_ALIASES))


def is_family(name: str) -> bool:
    """Is ``name`` a family or an alias of one?"""
    return name in _ALIASES


def family(name: str) -> ProviderFamily:
    """The family ``name`` (or an alias) names.

    Raises:
        ConfigError: ``name`` is no family; the message lists the known ones.
    """
    try:
        return _FAMILIES[_ALIASES[name]]
    except KeyError:
        raise ConfigError(
            f"unknown provider {name!r}: use one of {', '.join(known_names())}, or write the "
            'model as an init_chat_model string ("anthropic:claude-haiku-4-5")'
        ) from None


def split_model_string(model: str) -> tuple[str | None, str]:
    """``"family:model"`` -> ``(family name, model)``; no known prefix -> ``(None, model)``.

    Only a known family (or alias) counts as a prefix, so Ollama tags (``qwen3:1.7b``) and
    Bedrock ids (``...-v1:0``) stay whole.

    Example:
        ```python
        split_model_string("anthropic:claude-haiku-4-5")   # ('anthropic', 'claude-haiku-4-5')
        split_model_string("qwen3:1.7b")                   # (None, 'qwen3:1.7b')
        ```
    """
    head, sep, rest = model.partition(":")
    if sep and rest and head in _ALIASES:
        return _ALIASES[head], rest
    return None, model


@lru_cache(maxsize=16)
def _profile_table(package: str) -> Mapping[str, Any]:
    """The package's shipped profile data (``<package>/data/_profiles.py``), read without
    importing the package itself: langchain-anthropic and langchain-google-genai take seconds
    to import, and a config is validated on every ``aco`` command."""
    try:
        found = importlib.util.find_spec(package)  # a top-level name: not imported
    except (ImportError, ValueError):
        return {}
    if found is None or not found.submodule_search_locations:
        return {}
    for root in found.submodule_search_locations:
        path = Path(root) / "data" / "_profiles.py"
        if not path.is_file():
            continue
        spec = importlib.util.spec_from_file_location(f"_aco_profiles_{package}", path)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as err:  # a damaged data file must not break config loading
            logger.warning("could not read %s's model profiles (%s): %s", package, path, err)
            return {}
        table = getattr(module, "_PROFILES", None)
        return table if isinstance(table, Mapping) else {}
    logger.debug("%s ships no model profiles (data/_profiles.py)", package)
    return {}


def _profile(package: str, model: str) -> Mapping[str, Any] | None:
    table = _profile_table(package)
    # Dated or versioned ids fall back to their family's entry, as the classes do.
    for name in (model, re.sub(r"-\d{3}$", "", model), re.sub(r"-\d{8}$", "", model)):
        if isinstance(table.get(name), Mapping):
            return dict(table[name])
    return None


def model_profile(fam: ProviderFamily, model: str) -> Mapping[str, Any] | None:
    """The model's LangChain profile (what ``chat_model.profile`` starts from), None if unknown
    or the package is not installed.

    Read from the family's installed package data; never the network, never an import of
    the provider package.

    Example:
        ```python
        model_profile(family("openai"), "gpt-4.1")["max_input_tokens"]   # 1047576
        ```
    """
    if not fam.package or not fam.class_name:
        return None
    return _profile(fam.package, model)


def profile_fields(fam: ProviderFamily, model: str, unset: Set[str]) -> dict[str, Any]:
    """Tier fields from the model's profile, for those of ``unset`` the profile says.

    ``max_context`` from ``max_input_tokens``; ``capabilities`` from ``tool_calling`` /
    ``structured_output`` (plus ``logprobs`` when the family returns them).

    Example:
        ```python
        profile_fields(family("openai"), "gpt-3.5-turbo", {"capabilities"})
        # {'capabilities': ['chat']}   (its profile says no tool calling)
        ```
    """
    profile = model_profile(fam, model)
    if not profile:
        return {}
    out: dict[str, Any] = {}
    if "max_context" in unset and isinstance(profile.get("max_input_tokens"), int):
        out["max_context"] = profile["max_input_tokens"]
    if "capabilities" in unset and "tool_calling" in profile:
        caps = ["chat"]
        if profile.get("tool_calling"):
            caps.append("tools")
        if profile.get("structured_output"):
            caps.append("structured_output")
        if fam.logprobs:
            caps.append("logprobs")
        out["capabilities"] = caps
    return out


def split_tier_model(data: Any) -> Any:
    """A tier mapping with ``model: "family:name"`` split into ``provider`` and ``model``.

    Raises:
        ValueError: the string's family differs from the tier's ``provider``.

    Example:
        ```python
        split_tier_model({"model": "groq:llama-3.1-8b-instant"})
        # {'model': 'llama-3.1-8b-instant', 'provider': 'groq'}
        ```
    """
    if not isinstance(data, dict) or not isinstance(data.get("model"), str):
        return data
    prefix, name = split_model_string(data["model"])
    if prefix is None:
        return data
    given = data.get("provider")
    if given is not None and family(str(given)).name != prefix:
        raise ValueError(
            f"model {data['model']!r} names provider {prefix!r} but provider is {given!r}: "
            "drop one of them"
        )
    return {**data, "provider": prefix, "model": name}


def family_updates(spec: Any) -> dict[str, Any]:
    """The fields a tier spec takes from its family, for those it leaves unset: ``model_id``
    (the model's name), ``is_local``, ``api_key_env`` (the family's variable, unless the tier
    has its own ``base_url``), ``max_context`` and ``capabilities`` (the model's profile).

    Args:
        spec: A ``TierSpec`` (read by attribute; ``model_fields_set`` says what was given).

    Returns:
        {field: value} to set on the spec.

    Raises:
        ConfigError: an unknown provider (the message lists the known ones).
        ValueError: no model name, or a family's own field missing or misplaced.
    """
    fam = family(spec.provider)
    given = spec.model_fields_set
    out: dict[str, Any] = {}
    if not spec.model_id:
        if not spec.model:
            raise ValueError("a tier needs model_id or model: name the model")
        out["model_id"] = spec.model
    if "is_local" not in given and fam.local and not spec.is_local:
        out["is_local"] = True
    # A gateway at base_url may take another key, or none: then only api_key_env says.
    unnamed = spec.api_key_env is None and "api_key_env" not in given
    if unnamed and fam.key_env and spec.base_url is None:
        out["api_key_env"] = fam.key_env
    unset = {"max_context", "capabilities"} - given
    if unset and fam.package:
        out.update(profile_fields(fam, spec.model or spec.model_id, unset))
    _check_family_fields(spec, fam, out.get("model_id", spec.model_id))
    return out


def _check_family_fields(spec: Any, fam: ProviderFamily, model_id: str) -> None:
    """A family's own fields (``recording`` for ``replay``): required there, refused elsewhere."""
    for name, what in fam.requires:
        if not getattr(spec, name):
            raise ValueError(f"tier {model_id!r}: provider {fam.name} needs {name}: {what}")
    own = dict(fam.requires)
    for other in families():
        for name, _ in other.requires:
            if other.name != fam.name and name not in own and getattr(spec, name):
                raise ValueError(
                    f"tier {model_id!r}: {name} is only for provider: {other.name} "
                    f"(this tier's provider is {spec.provider})"
                )


def same_default_model(spec: Mapping[str, Any], default: Mapping[str, Any]) -> bool:
    """Does a user's tier mapping describe the default tier's model (so the default tier's
    other fields apply)? Another model_id, model or provider starts the tier clean."""
    if spec.get("model_id", default["model_id"]) != default["model_id"]:
        return False
    prefix, name = split_model_string(str(spec.get("model") or default["model"] or ""))
    provider = spec.get("provider") or prefix or default["provider"]
    return bool(name == (default["model"] or "") and provider == default["provider"])


for _fam in (
    ProviderFamily(
        "openai",
        f"{_ADAPTERS}.openai:OpenAIAdapter",
        "langchain_openai",
        "ChatOpenAI",
        key_env="OPENAI_API_KEY",
        price_id="openai",
        aliases=("cloud",),
        logprobs=True,
    ),
    ProviderFamily(
        "openai-compatible",
        f"{_ADAPTERS}.openai:OpenAICompatibleAdapter",
        "langchain_openai",
        "ChatOpenAI",
        logprobs=True,
    ),
    ProviderFamily(
        "local",
        f"{_ADAPTERS}.openai:LocalServerAdapter",
        "langchain_openai",
        "ChatOpenAI",
        local=True,
        logprobs=True,
        reported_as="llama.cpp",
    ),
    ProviderFamily(
        "ollama",
        f"{_ADAPTERS}.ollama:OllamaAdapter",
        "langchain_ollama",
        "ChatOllama",
        local=True,
        logprobs=True,
    ),
    ProviderFamily("instance", f"{_ADAPTERS}.base:InstanceAdapter"),
    ProviderFamily(
        "anthropic",
        f"{_ADAPTERS}.base:PackageAdapter",
        "langchain_anthropic",
        "ChatAnthropic",
        extra="anthropic",
        key_env="ANTHROPIC_API_KEY",
        price_id="anthropic",
    ),
    ProviderFamily(
        "google_genai",
        f"{_ADAPTERS}.google:GoogleGenAIAdapter",
        "langchain_google_genai",
        "ChatGoogleGenerativeAI",
        extra="google",
        key_env="GOOGLE_API_KEY",
        price_id="google",
        aliases=("google",),
    ),
    ProviderFamily(
        "groq",
        f"{_ADAPTERS}.base:PackageAdapter",
        "langchain_groq",
        "ChatGroq",
        extra="groq",
        key_env="GROQ_API_KEY",
        price_id="groq",
        logprobs=True,
    ),
    ProviderFamily(
        "mistralai",
        f"{_ADAPTERS}.base:PackageAdapter",
        "langchain_mistralai",
        "ChatMistralAI",
        extra="mistralai",
        key_env="MISTRAL_API_KEY",
        price_id="mistral",
        aliases=("mistral",),
    ),
    ProviderFamily(
        "bedrock_converse",
        f"{_ADAPTERS}.base:PackageAdapter",
        "langchain_aws",
        "ChatBedrockConverse",
        extra="bedrock",
        # boto3 finds credentials itself (env, profile, instance role): no single key to check.
        price_id="aws",
        aliases=("bedrock",),
    ),
    ProviderFamily(
        "replay",
        f"{_ADAPTERS}.replay:ReplayAdapter",
        requires=(
            (
                "recording",
                "PATH (a RouterBench CSV or a replay JSONL) and model: the recorded model",
            ),
        ),
    ),
):
    register_family(_fam)


__all__ = [
    "ProviderFamily",
    "families",
    "family",
    "family_updates",
    "is_family",
    "known_names",
    "model_profile",
    "profile_fields",
    "register_family",
    "same_default_model",
    "split_model_string",
    "split_tier_model",
]
