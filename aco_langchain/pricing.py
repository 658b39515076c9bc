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
import time
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
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

#: Tokens a per-1k price is computed at. Large on purpose: where genai-prices has
#: long-context price tiers (Gemini 2.5 Pro above 200k prompt tokens, ...) the per-1k price
#: is the higher one, so a hold is never below what a long call settles at; a call's real
#: cost (``usage_cost_usd``) uses its real token counts.
_PRICE_PROBE_TOKENS = 1_000_000


def price_provider_id(provider: str) -> str | None:
    """genai-prices' provider id for one of our provider names (None: match by model name).

    Example:
        ```python
        price_provider_id("google_genai")   # 'google'
        ```
    """
    from aco_langchain.provider_families import family, is_family

    return family(provider).price_id if is_family(provider) else provider


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
    n = _PRICE_PROBE_TOKENS
    r = _genai_price(provider, model, {"input_tokens": n, "output_tokens": n})
    if r is None:
        return None
    return float(r.input_price) * 1000.0 / n, float(r.output_price) * 1000.0 / n


def _genai_price(provider: str, model: str, usage: Mapping[str, int]) -> Any:
    """genai-prices' PriceCalculation for ``usage``, None when it does not know the model."""
    try:
        from genai_prices import Usage, calc_price  # 0.3 s import: only when needed

        return calc_price(Usage(**usage), model_ref=model, provider_id=price_provider_id(provider))
    except (LookupError, ValueError) as err:  # genai-prices does not know the model
        logger.debug("genai-prices has no price for %s/%s: %s", provider, model, err)
        return None


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


@dataclass(frozen=True)
class TokenUsage:
    """A call's billed tokens, as LangChain's ``usage_metadata`` reports them.

    ``input`` includes ``cache_read`` and ``cache_write``; ``output`` includes ``reasoning``.

    Example:
        ```python
        TokenUsage.from_metadata(msg.usage_metadata).cache_read
        ```
    """

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    reasoning: int = 0

    @classmethod
    def from_metadata(cls, usage: Mapping[str, Any] | None) -> TokenUsage:
        """Read a ``usage_metadata`` mapping (its ``*_token_details`` too; missing is 0)."""
        if not usage:
            return cls()
        ins = usage.get("input_token_details")
        outs = usage.get("output_token_details")
        read = write = reasoning = 0
        if ins:  # most answers carry no details: nothing more to read
            read = int(ins.get("cache_read") or 0)
            write = int(ins.get("cache_creation") or 0) or sum(
                int(ins.get(k) or 0)
                for k in ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens")
            )
        if outs:
            reasoning = int(outs.get("reasoning") or 0)
        return cls(
            int(usage.get("input_tokens") or 0),
            int(usage.get("output_tokens") or 0),
            read,
            write,
            reasoning,
        )


def usage_cost_usd(spec: TierSpec, usage: TokenUsage) -> float:
    """USD of a call's real usage: the tier's configured price, else genai-prices' price of
    every token kind (cached input at the cache-read rate, cache writes, reasoning output).

    Raises:
        ConfigError: a cloud tier without a configured price that genai-prices does not know.

    Example:
        ```python
        usage_cost_usd(cfg.tier(3), TokenUsage.from_metadata(msg.usage_metadata))
        ```
    """
    configured = spec.cost_per_1k_input is not None and spec.cost_per_1k_output is not None
    if configured or spec.is_local:
        return cost_usd(spec, usage.input, usage.output)
    counts = (
        usage.input,
        usage.output,
        min(usage.cache_read, usage.input),
        min(usage.cache_write, max(0, usage.input - usage.cache_read)),
        min(usage.reasoning, usage.output),
    )
    if spec.cost_per_1k_input is None and spec.cost_per_1k_output is None:
        # A price is linear in the token counts within each input-token band (genai-prices'
        # tiers are cliffs on the input count): the band's per-token rates, read from
        # genai-prices once a minute, give the same Decimal total for ~1 us instead of
        # ~150-250 us per call. Unverifiable prices take genai-prices' own path.
        bands = _banded_rates(spec.provider, spec.provider_model, int(time.time() // 60))
        if bands is not None:
            starts, rates = bands
            return float(_linear_total(rates[bisect_left(starts, counts[0])], counts))
    found = _genai_price(spec.provider, spec.provider_model, _usage(counts))
    if found is None or spec.cost_per_1k_input is not None or spec.cost_per_1k_output is not None:
        return cost_usd(spec, usage.input, usage.output)  # half-configured: raises or mixes
    return float(found.total_price)


#: genai-prices' usage fields, in the order of ``usage_cost_usd``'s counts.
_USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "output_reasoning_tokens",
)
_PROBE = 1_000_000


def _usage(counts: tuple[int, ...]) -> dict[str, int]:
    return dict(zip(_USAGE_KEYS, counts, strict=True))


def _linear_total(rates: tuple[Decimal, ...], counts: tuple[int, ...]) -> Decimal:
    """The price of ``counts`` at per-token ``rates`` (uncached input, cache read, cache
    write, non-reasoning output, reasoning), in genai-prices' Decimal arithmetic."""
    i, o, cr, cw, r = counts
    a, b, c, d, e = rates
    if not (cr or cw or r):
        # The other terms are exact zeros: adding them changes no digit of the value.
        return a * i + d * o
    return a * (i - cr - cw) + b * cr + c * cw + d * (o - r) + e * r


@lru_cache(maxsize=64)
def _banded_rates(
    provider: str, model: str, minute: int
) -> tuple[tuple[int, ...], tuple[tuple[Decimal, ...], ...]] | None:
    """A model's per-token rates per input-token band, or None when they cannot be trusted.

    genai-prices' tiers are cliffs: once the call's input tokens exceed a tier's start, every
    token of that kind pays the tier's rate. So the price is linear in the counts within each
    band ``(start_k, start_k+1]``; a flat price is one band. Returns the sorted band starts and
    one rate tuple per band (band ``bisect_left(starts, input_tokens)``). Each band's rates are
    read at its top input count and checked against genai-prices on a mixed usage at another
    count in the band: a band whose price is not linear (a per-request fee, say) is never
    priced by them. ``minute`` keys the cache: prices that depend on the time of day
    (off-peak rates) are read again each minute.
    """
    del minute
    first = _genai_price(provider, model, _usage((1, 0, 0, 0, 0)))
    if first is None:
        return None
    starts = _tier_starts(first.model_price)
    rates = []
    for k in range(len(starts) + 1):
        low = starts[k - 1] if k else 0
        top = starts[k] if k < len(starts) else low + _PROBE
        band = _band_rates(provider, model, low, top)
        if band is None:
            return None
        rates.append(band)
    return starts, tuple(rates)


def _band_rates(provider: str, model: str, low: int, top: int) -> tuple[Decimal, ...] | None:
    """Per-token rates (see ``_linear_total``) of the band ``(low, top]``, read at ``top``
    and checked at another input count inside the band."""
    inside = top - 7919
    if inside <= low:
        return None  # a band too narrow to read rates in: genai-prices prices each call
    probes = ((1, 0, 0, 0, 0), (1, 0, 1, 0, 0), (1, 0, 0, 1, 0), (1, 1, 0, 0, 0), (1, 1, 0, 0, 1))
    totals = []
    for probe in probes:
        found = _genai_price(provider, model, _usage(tuple(n * top for n in probe)))
        if found is None:
            return None
        totals.append(Decimal(found.total_price))
    a, b, c, with_out, with_reasoning = totals
    rates = (a / top, b / top, c / top, (with_out - a) / top, (with_reasoning - a) / top)
    mixed = (inside, 1231, 1013, 557, 331)
    check = _genai_price(provider, model, _usage(mixed))
    if check is None or Decimal(check.total_price) != _linear_total(rates, mixed):
        logger.debug("genai-prices' price of %s/%s is not linear: priced per call", provider, model)
        return None
    return rates


def _tier_starts(model_price: Any) -> tuple[int, ...]:
    """The input counts where any of ``model_price``'s prices changes rate, ascending."""
    from genai_prices.types import TieredPrices

    return tuple(
        sorted(
            {
                t.start
                for v in vars(model_price).values()
                if isinstance(v, TieredPrices)
                for t in v.tiers
            }
        )
    )


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


def configured_tool_cost(tool_name: str, config: ACOConfig | None = None) -> float | None:
    """USD per call of ``tool_name`` as the user configured it (``agent.tool_costs``), or None.

    We do not guess prices for the user's tools: an unpriced tool costs $0 and the tool gate
    never declines it for its value (``agent/gates.py``).

    Usage::

        configured_tool_cost("web_search", ACOConfig(agent={"tool_costs": {"web_search": 0.01}}))
    """
    if config is not None and tool_name in config.agent.tool_costs:
        return config.agent.tool_costs[tool_name]
    return None


def tool_cost(tool_name: str, config: ACOConfig | None = None) -> float:
    """USD per call of ``tool_name``: ``config.agent.tool_costs``, else $0 (not configured).

    Usage::

        tool_cost("web_search")    # 0.0: no cost configured
    """
    configured = configured_tool_cost(tool_name, config)
    return 0.0 if configured is None else configured
