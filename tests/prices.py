"""The seed's illustrative prices, passed in by the tests that assert figures at them.

The shipped tiers 2-5 are priced by genai-prices (real list prices, which move with its data).
A test that asserts dollar figures builds its config with the seed's table instead
(``SEED_PRICES``, the same as ``examples/seed-config.yaml``), explicitly:

    cfg = at_seed_prices(router="rules")                       # ACOConfig at the seed's prices
    cfg = config_at_seed_prices({"routing": {"max_cost_per_task": 1.0}})
    data = with_seed_prices({"models": {"tier1": {...}}})      # a mapping, e.g. for a YAML file

A tier the test names keeps its own fields; the seed's prices fill only the prices it leaves
out, and only while it is the default tier's model (another model starts clean, as in a
user's file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from aco_langchain.config import SEED_PRICES, ACOConfig, config_from_dict, default_models
from aco_langchain.provider_families import same_default_model

#: ``examples/seed-config.yaml``: the seed's tiers and prices, for CLI and subprocess runs.
SEED_CONFIG = Path(__file__).resolve().parents[1] / "examples" / "seed-config.yaml"


def with_seed_prices(data: dict[str, Any] | None = None) -> dict[str, Any]:
    """``data`` (a config mapping) with the seed's prices under its ``models``."""
    data = dict(data or {})
    defaults = {key: spec.model_dump() for key, spec in default_models().items()}
    models: dict[str, Any] = {}
    for key, (cost_in, cost_out) in SEED_PRICES.items():
        seed = {"cost_per_1k_input": cost_in, "cost_per_1k_output": cost_out}
        spec = (data.get("models") or {}).get(key)
        if spec is None:
            models[key] = seed
        elif isinstance(spec, dict) and same_default_model(spec, defaults[key]):
            models[key] = {**seed, **spec}
        else:
            models[key] = spec
    extra = {k: v for k, v in (data.get("models") or {}).items() if k not in models}
    return {**data, "models": {**models, **extra}}


def config_at_seed_prices(data: dict[str, Any] | None = None) -> ACOConfig:
    """``config_from_dict(data)`` at the seed's prices."""
    return config_from_dict(with_seed_prices(data))


def at_seed_prices(**fields: Any) -> ACOConfig:
    """``ACOConfig(**fields)`` at the seed's prices (``at_seed_prices(router="rules")``)."""
    return config_at_seed_prices(fields)


def write_seed_config(path: Path, data: dict[str, Any] | None = None) -> Path:
    """Write ``data`` at the seed's prices as a YAML config file; returns ``path``."""
    path.write_text(yaml.safe_dump(with_seed_prices(data)))
    return path
