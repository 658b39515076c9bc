"""Real prices by default (genai-prices), the seed's illustrative table as an example config."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aco_langchain.cli import app
from aco_langchain.cli.init_cmds import list_price
from aco_langchain.config import SEED_PRICES, TIER_NUMBERS, ACOConfig, load_config
from aco_langchain.pricing import genai_price_per_1k, price_per_1k
from aco_langchain.provider_families import family, model_profile

SEED_CONFIG = Path(__file__).resolve().parents[2] / "examples" / "seed-config.yaml"


def test_default_tiers_are_priced_by_genai_prices() -> None:
    cfg = ACOConfig()
    for n in TIER_NUMBERS[1:]:
        spec = cfg.tier(n)
        assert spec.cost_per_1k_input is None and spec.provider == "openai"
        real = genai_price_per_1k("openai", spec.provider_model)
        assert real is not None and price_per_1k(spec) == real
    # the real list price, not the seed's illustrative $1/$3 per 1K
    assert price_per_1k(cfg.tier(4)) != SEED_PRICES["tier4"]
    assert price_per_1k(cfg.tier(1)) == (0.0, 0.0)


def test_default_ladder_rises_in_price_and_context() -> None:
    """Each tier costs strictly more than the one below, input and output, as the router
    weighs it and at short-prompt list prices: no tier is a free upgrade. A tier holds at
    least the context of the one below (a long prompt never has to skip to a dearer tier
    than its size needs), and claims no more context or tools than its model's profile."""
    cfg = ACOConfig()
    specs = [cfg.tier(n) for n in TIER_NUMBERS]
    prices = [price_per_1k(spec) for spec in specs]
    listed = [(0.0, 0.0)] + [list_price(f"openai:{s.provider_model}") for s in specs[1:]]
    for ladder in (prices, listed):
        for low, high in pairwise(ladder):
            assert high is not None and low is not None
            assert high[0] > low[0] and high[1] > low[1], ladder
    for low, high in pairwise(specs):
        assert high.max_context >= low.max_context, (low.model_id, high.model_id)
    for spec in specs[1:]:
        profile = model_profile(family(spec.provider), spec.provider_model)
        assert profile is not None, spec.provider_model
        assert spec.max_context <= profile["max_input_tokens"]
        assert spec.supports_tools == bool(profile["tool_calling"])


def test_seed_config_gives_the_seed_table() -> None:
    cfg = load_config(SEED_CONFIG)
    for key, prices in SEED_PRICES.items():
        n = int(key[-1])
        assert price_per_1k(cfg.tier(n)) == prices


def test_seed_config_reproduces_the_seed_route_figures() -> None:
    prompt = "Debug this critical production bug in the payment service"
    runner = CliRunner()
    seed = json.loads(
        runner.invoke(app, ["route", prompt, "--json", "--config", str(SEED_CONFIG)]).stdout
    )
    real = json.loads(runner.invoke(app, ["route", prompt, "--json"]).stdout)
    assert seed["tier"] == real["tier"] == 5  # critical: the specialist, by either price
    tokens = max(1, int(len(prompt) / 4 + 0.5))
    assert seed["cost_estimate"] == pytest.approx((tokens * 1.5 + 256 * 1.5) / 1000, abs=1e-6)
    p_in, p_out = price_per_1k(ACOConfig().tier(5))  # genai-prices' price of tier 5's model
    assert real["cost_estimate"] == pytest.approx((tokens * p_in + 256 * p_out) / 1000, abs=1e-6)


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-4o-mini"),
        ("openai", "o3"),
        ("google", "gemini-2.5-flash"),
        ("anthropic", "claude-3-5-haiku-latest"),
        ("anthropic", "claude-sonnet-4-5"),  # tiered above 200k input: genai-prices per call
        ("google", "gemini-2.5-pro"),  # tiered
        ("openai", "gpt-5.5"),  # tiered above 272k input: the default tier 5
    ],
)
def test_usage_cost_equals_genai_prices_own_total(provider: str, model: str) -> None:
    """The cached per-token rates price a call exactly as genai-prices does (cached input,
    cache writes and reasoning included), tiered prices too (they are not linearised)."""
    import random
    from decimal import Decimal

    from aco_langchain.config import TierSpec
    from aco_langchain.pricing import TokenUsage, _genai_price, usage_cost_usd

    spec = TierSpec(provider=provider, model=model, model_id=model)
    rnd = random.Random(18)
    # random counts, and counts at and around every tier start (a cliff on the input count)
    edges = [s + d for s in (128_000, 200_000, 272_000) for d in (-1, 0, 1)]
    for n in range(200 + len(edges)):
        i, o = (edges[n - 200] if n >= 200 else rnd.randint(0, 400_000)), rnd.randint(0, 30_000)
        cr = rnd.randint(0, i)
        cw, r = rnd.randint(0, i - cr), rnd.randint(0, o)
        usage = TokenUsage(input=i, output=o, cache_read=cr, cache_write=cw, reasoning=r)
        want = _genai_price(
            provider,
            model,
            {
                "input_tokens": i,
                "output_tokens": o,
                "cache_read_tokens": cr,
                "cache_write_tokens": cw,
                "output_reasoning_tokens": r,
            },
        )
        assert want is not None
        assert usage_cost_usd(spec, usage) == float(Decimal(want.total_price))
