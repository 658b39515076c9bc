"""``aco init``: write a commented ``config.yaml`` from a preset ladder of five tiers.

Each preset's tiers rise in price and capability: tier 1 is the embedded local model ($0),
tiers 2-5 are real 2026 models that genai-prices prices and LangChain profiles describe
(their context size and tool calling come from the profile). ``local`` keeps everything on
the machine (Ollama). Prices in the comments are genai-prices' list prices per million
tokens for short prompts; the router prices every call from its real usage.

Usage::

    aco init                          # --preset openai, writes ./config.yaml
    aco init --preset mixed -o my.yaml
    aco init --preset anthropic --force   # overwrite an existing file
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer

from aco_langchain.cli.common import fail


@dataclass(frozen=True)
class PresetTier:
    """One tier of a preset: an ``init_chat_model`` string, what it is for, extra fields."""

    model: str
    why: str
    extra: str = ""


#: Tier 1 of every cloud preset: the embedded llama.cpp model (`aco local-model start`).
_LOCAL_TIER1 = PresetTier(
    "",
    "the embedded llama.cpp model; quick answers and first tries",
    "model_id: tiny-local-3b\n    provider: local\n    model: smollm2-135m-instruct",
)

#: The preset ladders, tier 1 to 5.
PRESETS: dict[str, tuple[PresetTier, ...]] = {
    "openai": (
        _LOCAL_TIER1,
        PresetTier("openai:gpt-6-luna", "high-volume, simple tasks"),
        PresetTier("openai:gpt-6.1-terra", "fast, efficient everyday work"),
        PresetTier("openai:gpt-6-sol", "complex coding and agentic work"),
        PresetTier("openai:gpt-6-astra", "OpenAI's most capable, hardest work"),
    ),
    "anthropic": (
        _LOCAL_TIER1,
        PresetTier("anthropic:claude-haiku-5-5", "classification, routing"),
        PresetTier("anthropic:claude-sonnet-5-5", "standard tasks, most coding"),
        PresetTier("anthropic:claude-opus-5-5", "long-running agentic work"),
        PresetTier("anthropic:claude-fable-5-1", "demanding reasoning, long horizons"),
    ),
    "google": (
        _LOCAL_TIER1,
        PresetTier("google_genai:gemini-2.5-flash-lite", "high volume, simple tasks"),
        PresetTier("google_genai:gemini-3.1-flash-lite", "everyday tasks at low latency"),
        PresetTier("google_genai:gemini-3.8-flash", "Google's strongest Flash: agents, coding"),
        PresetTier("google_genai:gemini-4-argon", "Google's frontier model, long horizons"),
    ),
    "mixed": (
        _LOCAL_TIER1,
        PresetTier("openai:gpt-6-luna", "cheapest capable cloud model"),
        PresetTier("google_genai:gemini-3.8-flash", "agents, coding"),
        PresetTier("anthropic:claude-sonnet-5-5", "complex tasks, critical paths"),
        PresetTier("openai:gpt-6-astra", "the hardest work"),
    ),
    "local": (
        _LOCAL_TIER1,
        PresetTier("ollama:qwen3:1.7b", "quick answers", "max_context: 32768"),
        PresetTier("ollama:qwen3:8b", "standard tasks", "max_context: 32768"),
        PresetTier("ollama:qwen3:32b", "complex tasks", "max_context: 32768"),
        PresetTier("ollama:gpt-oss:120b", "the largest", "max_context: 32768"),
    ),
}

_HEADER = """\
# aco-langchain config: five tiers, cheapest first ({preset} preset, written by `aco init`).
# A tier is an init_chat_model string: "provider:model" (anthropic, google_genai, groq,
# mistralai, bedrock_converse, ollama, openai, ...). Its key comes from the provider's own
# variable (OPENAI_API_KEY, ANTHROPIC_API_KEY, GOOGLE_API_KEY, ...) unless api_key_env says
# another; base_url points it at a gateway; kwargs are passed to the model class.
# Tool calling, structured output and max_context come from the model's LangChain profile
# unless set here; prices come from genai-prices (set cost_per_1k_input/output to override).
# A tier whose package is missing says which `pip install "aco-langchain[...]"` it needs.
# Check it with `aco config validate config.yaml`; see what routing does with `aco route`.
routing:
  max_cost_per_task: 5.0          # USD budget per task
  max_output_tokens: 1024         # output cap sent with every call
models:
"""

_OLLAMA_NOTE = """\
    # Ollama's own context is small by default: this asks for the tier's max_context.
    kwargs: {num_ctx: 32768}
"""


def list_price(model: str) -> tuple[float, float] | None:
    """USD per million input / output tokens of a short prompt (genai-prices), None if local
    or unknown."""
    from aco_langchain.config import TierSpec
    from aco_langchain.pricing import TokenUsage, usage_cost_usd

    spec = TierSpec(model=model, api_key_env=None)
    if spec.is_local:
        return None
    m = 1_000_000
    per_in = usage_cost_usd(spec, TokenUsage(input=1000)) * m / 1000
    per_out = usage_cost_usd(spec, TokenUsage(output=1000)) * m / 1000
    return round(per_in, 4), round(per_out, 4)


def _comment(tier: PresetTier) -> str:
    price = list_price(tier.model) if tier.model else None
    if price is None:
        return f"$0, runs locally: {tier.why}"
    return f"${price[0]:g} / ${price[1]:g} per M tokens in / out: {tier.why}"


def render_preset(name: str) -> str:
    """The commented config.yaml text of preset ``name``.

    Raises:
        KeyError: no such preset.

    Example:
        ```python
        Path("config.yaml").write_text(render_preset("mixed"))   # five tiers, 3 providers
        ```
    """
    lines = [_HEADER.format(preset=name)]
    for n, tier in enumerate(PRESETS[name], start=1):
        lines.append(f"  tier{n}:  # {_comment(tier)}\n")
        if tier.model:
            lines.append(f'    model: "{tier.model}"\n')
        if tier.extra:
            lines.append("".join(f"    {line.strip()}\n" for line in tier.extra.splitlines()))
        if tier.model.startswith("ollama:"):
            lines.append(_OLLAMA_NOTE)
    return "".join(lines)


def register(app: typer.Typer) -> None:
    """Add ``aco init`` to ``app``."""

    @app.command("init")
    def init(
        preset: str = typer.Option(
            "openai", "--preset", "-p", help=f"The ladder: {' | '.join(PRESETS)}."
        ),
        output: str = typer.Option("config.yaml", "--output", "-o", help="Where to write it."),
        force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
    ) -> None:
        """Write a commented config.yaml whose five tiers rise in price and capability."""
        if preset not in PRESETS:
            fail(f"--preset {preset!r} is unknown: use one of {', '.join(PRESETS)}")
        path = Path(output)
        if path.is_dir():
            fail(f"{path}: is a directory: give a file path with --output")
        if path.exists() and not force:
            fail(f"{path} already exists: pass --force to overwrite it, or --output another path")
        text = render_preset(preset)
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as err:
            fail(f"{path}: cannot write ({err.strerror}): choose another --output")
        typer.echo(f"wrote {path} ({preset} preset); check it with `aco config validate {path}`")


__all__ = ["PRESETS", "PresetTier", "register", "render_preset"]
