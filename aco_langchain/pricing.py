"""Prices and token estimates: what a call costs, before and after it runs.

One home for every price a decision needs (routing, agent steps, gates, events, traces):
the tier's configured price, else genai-prices' bundled list price, else $0 for a local
tier. Pure functions over config records; nothing here builds a chat model or does I/O
beyond reading genai-prices' bundled data once per model.

Usage::

    from aco_langchain.pricing import cost_usd, estimate_tokens, input_token_bound
    cost_usd(cfg.tier(4), input_tokens=1000, output_tokens=200)    # USD
    estimate_tokens("What is 2+2?")                                  # 3
    cost_usd(cfg.tier(4), input_token_bound(text, 2), 1024)          # a call's worst case
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from aco_langchain.config import TIER_NUMBERS, ACOConfig, TierSpec
from aco_langchain.errors import ConfigError

logger = logging.getLogger(__name__)

#: Rough chars-per-token ratio for estimates before a call (tiktoken cannot fetch its
#: files offline; this matches langchain_core's count_tokens_approximately).
CHARS_PER_TOKEN = 4.0
#: Output tokens assumed for a cost estimate when the call sets no ``max_tokens``.
DEFAULT_OUTPUT_TOKENS = 256

#: Our provider names -> genai-prices' provider ids (None: let genai-prices match the model).
_PROVIDER_IDS = {"openai": "openai", "cloud": "openai", "openai-compatible": None}


#: Tokens a chat template adds per message (role markers, separators).
MESSAGE_OVERHEAD_TOKENS = 8
#: Tokens a chat template adds once per call (a default system prompt, generation prompt).
CALL_OVERHEAD_TOKENS = 48
#: Tokens of framing per tool schema (the template's tool preamble and markers).
TOOL_OVERHEAD_TOKENS = 16


def estimate_tokens(text: str) -> int:
    """Approximate token count of ``text`` (chars / 4, at least 1).

    Example:
        ```python
        estimate_tokens("What is 2+2?")   # 3
        ```
    """
    return max(1, int(len(text) / CHARS_PER_TOKEN + 0.5))


@lru_cache(maxsize=256)
def genai_price_per_1k(provider: str, model: str) -> tuple[float, float] | None:
    """USD per 1k input/output tokens from genai-prices' bundled data, None if unknown.

    Example:
        ```python
        genai_price_per_1k("openai", "gpt-4.1")   # (0.002, 0.008)
        ```
    """
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

    Raises:
        ConfigError: a cloud tier without a configured price that genai-prices does not know.

    Example:
        ```python
        price_per_1k(ACOConfig().tier(1))   # (0.0, 0.0)
        ```
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


def resolve_prices(config: ACOConfig) -> dict[int, tuple[float, float]]:
    """Each priced tier's (input, output) USD per 1k tokens, looked up now (and cached).

    A tier with no price anywhere is left out and logged: the call that needs its price
    raises ``ConfigError`` naming the fix, as it would without this lookup.

    Example:
        ```python
        resolve_prices(ACOConfig())[1]   # (0.0, 0.0): the local tier
        ```
    """
    out: dict[int, tuple[float, float]] = {}
    for n in TIER_NUMBERS:
        try:
            out[n] = price_per_1k(config.tier(n))
        except ConfigError as err:
            logger.info("tier %d has no price yet: %s", n, err)
    return out


def cost_usd(spec: TierSpec, input_tokens: int, output_tokens: int) -> float:
    """USD for a call with the given token counts at the tier's price.

    Example:
        ```python
        cost_usd(cfg.tier(4), 1000, 200)
        ```
    """
    p_in, p_out = price_per_1k(spec)
    return (input_tokens * p_in + output_tokens * p_out) / 1000.0


def usage_tokens(usage: Mapping[str, Any] | None) -> tuple[int, int]:
    """(input, output) tokens from a usage_metadata mapping (missing counts as 0)."""
    if not usage:
        return 0, 0
    return int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)


def input_token_bound(text: str, n_messages: int, tools: Any = None) -> int:
    """An upper bound on the input tokens of a call as the provider counts them: its UTF-8
    bytes (a byte-level BPE token is at least one byte), each message's framing, the chat
    template's own text (a default system prompt: SmolLM2's adds ~25 tokens, so "Hi" is
    billed 31), and the tool schemas' bytes with their framing.

    Budgets hold this, not the chars/4 estimate, so a provider's real count never exceeds it.

    Example:
        ```python
        input_token_bound("Hi", 1)   # 58
        ```
    """
    tool_bytes = len(json.dumps(tools).encode("utf-8")) if tools else 0
    n_tools = len(tools) if isinstance(tools, list) else (1 if tools else 0)
    return (
        len(text.encode("utf-8"))
        + MESSAGE_OVERHEAD_TOKENS * max(1, n_messages)
        + CALL_OVERHEAD_TOKENS
        + tool_bytes
        + TOOL_OVERHEAD_TOKENS * n_tools
    )


#: Default USD per call for well-known tools (override with config.agent.tool_costs).
DEFAULT_TOOL_COSTS: dict[str, float] = {
    "web_search": 0.01,
    "search": 0.01,
    "code_search": 0.01,
    "fetch_url": 0.005,
    "browse": 0.02,
    "read_file": 0.0,
    "list_files": 0.0,
    "grep": 0.0,
    "run_tests": 0.02,
    "python": 0.005,
    "calculator": 0.0,
    "sql_query": 0.005,
}
UNKNOWN_TOOL_COST = 0.01


def tool_cost(tool_name: str, config: ACOConfig | None = None) -> float:
    """USD per call of ``tool_name``: config.agent.tool_costs, the defaults, else 0.01.

    Usage::

        tool_cost("web_search")    # 0.01
    """
    if config is not None and tool_name in config.agent.tool_costs:
        return config.agent.tool_costs[tool_name]
    return DEFAULT_TOOL_COSTS.get(tool_name, UNKNOWN_TOOL_COST)
