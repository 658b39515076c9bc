"""`aco init --preset ...`: commented config files whose five tiers rise in price and
capability, with models genai-prices prices and LangChain profiles describe."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from aco_langchain.cli import app
from aco_langchain.cli.init_cmds import PRESETS, list_price
from aco_langchain.config import TIER_NUMBERS, load_config
from aco_langchain.pricing import price_per_1k

runner = CliRunner()


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_each_preset_writes_a_valid_rising_ladder(tmp_path: Path, preset: str) -> None:
    out = tmp_path / "config.yaml"
    res = runner.invoke(app, ["init", "--preset", preset, "--output", str(out)])
    assert res.exit_code == 0, res.output
    text = out.read_text()
    assert text.startswith("# aco-langchain config") and "tier5:" in text
    cfg = load_config(out)
    assert runner.invoke(app, ["config", "validate", str(out)]).exit_code == 0
    assert price_per_1k(cfg.tier(1)) == (0.0, 0.0)
    cloud = [cfg.tier(n) for n in TIER_NUMBERS[1:] if not cfg.tier(n).is_local]
    if preset == "local":
        assert cloud == []
        return
    # every cloud model is priced by genai-prices, and short prompts cost more up the ladder
    blended = []
    for spec in cloud:
        price = list_price(f"{spec.provider}:{spec.provider_model}")
        assert price is not None
        blended.append(3 * price[0] + price[1])
        assert f"${price[0]:g} / ${price[1]:g} per M" in text
        assert spec.supports_tools and spec.max_context >= 128_000  # from the model's profile
    assert blended == sorted(blended) and len(set(blended)) == len(blended), blended


def test_mixed_preset_names_three_providers(tmp_path: Path) -> None:
    out = tmp_path / "mixed.yaml"
    runner.invoke(app, ["init", "--preset", "mixed", "-o", str(out)])
    cfg = load_config(out)
    assert {cfg.tier(n).provider for n in (2, 3, 4, 5)} == {"openai", "google_genai", "anthropic"}


def test_init_refuses_to_overwrite_and_unknown_presets(tmp_path: Path) -> None:
    out = tmp_path / "config.yaml"
    out.write_text("mine")
    res = runner.invoke(app, ["init", "-o", str(out)])
    assert res.exit_code == 1 and "--force" in res.output and out.read_text() == "mine"
    assert runner.invoke(app, ["init", "-o", str(out), "--force"]).exit_code == 0
    res = runner.invoke(app, ["init", "--preset", "azure", "-o", str(tmp_path / "x.yaml")])
    assert res.exit_code == 1 and "openai, anthropic, google, mixed, local" in res.output
    assert "Traceback" not in res.output


def test_readme_mixed_provider_example_loads_as_written(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start = readme.index("# config.yaml — mixed providers")
    block = readme[start : readme.index("```", start)]
    path = tmp_path / "config.yaml"
    path.write_text(block)
    cfg = load_config(path)
    assert [cfg.tier(n).provider for n in TIER_NUMBERS] == [
        "local",
        "openai",
        "google_genai",
        "anthropic",
        "openai",
    ]
    # it is the mixed preset, comments trimmed
    preset = tmp_path / "preset.yaml"
    runner.invoke(app, ["init", "--preset", "mixed", "-o", str(preset)])
    assert load_config(preset).models == cfg.models
