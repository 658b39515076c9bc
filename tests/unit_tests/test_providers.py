"""Tiers from any LangChain provider: init_chat_model strings, availability with the reason,
real calls through ChatAnthropic / ChatGoogleGenerativeAI against loopback fakes of their wire
protocols, prices from genai-prices (cached input, reasoning), the ledger, and cross-provider
fallback."""

from __future__ import annotations

import pytest

from aco_langchain import ACORouterChatModel
from aco_langchain.config import TierSpec, config_from_dict
from aco_langchain.errors import ConfigError
from aco_langchain.pricing import TokenUsage, usage_cost_usd
from aco_langchain.provider_families import known_names, split_model_string
from aco_langchain.providers.registry import adapter_for
from aco_langchain.providers.tiers import TierRegistry
from aco_langchain.routing import RuleRouter
from aco_langchain.spend.ledger import MemoryLedger
from tests.fault_server import Fault, FaultServer
from tests.provider_fakes import AnthropicUsage, FakeAnthropic, FakeGemini, GeminiUsage

KEY_VARS = ("ANTHROPIC_API_KEY", "GOOGLE_API_KEY", "GEMINI_API_KEY", "GROQ_API_KEY")


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for var in KEY_VARS:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def _router(models: dict, ledger: MemoryLedger, **routing) -> ACORouterChatModel:
    cfg = config_from_dict({"routing": {"max_retries": 0, **routing}, "models": models})
    return ACORouterChatModel(config=cfg, router=RuleRouter(), ledger=ledger)


# -- names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "provider", "name"),
    [
        ("anthropic:claude-haiku-4-5", "anthropic", "claude-haiku-4-5"),
        ("google_genai:gemini-2.5-flash", "google_genai", "gemini-2.5-flash"),
        ("groq:llama-3.1-8b-instant", "groq", "llama-3.1-8b-instant"),
        ("mistralai:mistral-small-latest", "mistralai", "mistral-small-latest"),
        ("bedrock_converse:amazon.nova-lite-v1:0", "bedrock_converse", "amazon.nova-lite-v1:0"),
        ("ollama:qwen3:1.7b", "ollama", "qwen3:1.7b"),
        ("openai:gpt-4.1-mini", "openai", "gpt-4.1-mini"),
    ],
)
def test_a_model_string_names_the_provider(model: str, provider: str, name: str) -> None:
    spec = TierSpec(model=model)
    assert (spec.provider, spec.provider_model, spec.model_id) == (provider, name, name)


def test_ollama_tags_and_old_names_stay_whole() -> None:
    assert split_model_string("qwen3:1.7b") == (None, "qwen3:1.7b")
    for old in ("openai", "cloud", "openai-compatible", "ollama", "local", "instance"):
        assert old in known_names()
    assert TierSpec(model_id="x", provider="cloud", model="gpt-4.1").provider == "cloud"
    assert TierSpec(model_id="x", provider="ollama", model="qwen3:1.7b").is_local  # $0, local


def test_a_user_tier_by_string_replaces_the_default_tier_cleanly() -> None:
    cfg = config_from_dict({"models": {"tier2": {"model": "anthropic:claude-haiku-4-5"}}})
    spec = cfg.tier(2)
    assert (spec.provider, spec.model_id, spec.api_key_env) == (
        "anthropic",
        "claude-haiku-4-5",
        "ANTHROPIC_API_KEY",
    )
    # unchanged tiers keep their defaults
    assert cfg.tier(3).model_id == "medium-70b"


def test_bad_provider_names_are_config_errors_naming_the_fix() -> None:
    with pytest.raises(ConfigError, match="unknown provider 'anthropc'.*anthropic"):
        config_from_dict({"models": {"tier2": {"model_id": "c", "provider": "anthropc"}}})
    with pytest.raises(ConfigError, match="names provider 'anthropic' but provider is 'openai'"):
        config_from_dict(
            {"models": {"tier2": {"model": "anthropic:claude-haiku-4-5", "provider": "openai"}}}
        )


# -- availability ------------------------------------------------------------------------


def test_without_a_key_a_tier_is_unavailable_with_the_reason(no_keys) -> None:
    cfg = config_from_dict(
        {
            "models": {
                "tier2": {"model": "anthropic:claude-haiku-4-5"},
                "tier3": {"model": "google_genai:gemini-2.5-flash"},
                "tier4": {"model": "openai:gpt-4.1", "api_key_env": "MY_UNSET_OPENAI_KEY"},
            }
        }
    )
    why = TierRegistry(cfg).unavailable()
    assert why[2] == "no ANTHROPIC_API_KEY"
    assert why[3] == "no GOOGLE_API_KEY"
    assert why[4] == "no MY_UNSET_OPENAI_KEY"
    no_keys.setenv("GEMINI_API_KEY", "fake")  # Gemini's other variable counts too
    assert 3 not in TierRegistry(cfg).unavailable()


def test_a_missing_package_names_the_pip_install(no_keys) -> None:
    pytest.importorskip("langchain_core")
    import importlib.util

    if importlib.util.find_spec("langchain_groq") is not None:
        pytest.skip("langchain-groq is installed here")
    no_keys.setenv("GROQ_API_KEY", "fake")
    cfg = config_from_dict(
        {
            "models": {
                "tier2": {
                    "model": "groq:llama-3.1-8b-instant",
                    "cost_per_1k_input": 0.1,
                    "cost_per_1k_output": 0.1,
                }
            }
        }
    )
    why = TierRegistry(cfg).unavailable()[2]
    assert 'pip install "aco-langchain[groq]"' in why
    with pytest.raises(ConfigError, match=r"aco-langchain\[groq\]"):
        TierRegistry(cfg).model(2)


# -- profiles ----------------------------------------------------------------------------


def test_capabilities_and_context_come_from_the_profile_when_unset() -> None:
    # gpt-3.5-turbo's LangChain profile says: no tool calling, 16385 input tokens.
    old = TierSpec(model="openai:gpt-3.5-turbo")
    assert old.max_context == 16385 and not old.supports_tools
    haiku = TierSpec(model="anthropic:claude-haiku-4-5")
    assert haiku.max_context == 200_000 and haiku.supports_tools
    # what the config says wins over the profile
    said = TierSpec(model="openai:gpt-3.5-turbo", max_context=4096, capabilities=["tools"])
    assert said.max_context == 4096 and said.supports_tools


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-3.5-turbo"),
        ("openai", "gpt-4.1-mini"),
        ("anthropic", "claude-haiku-4-5"),
        ("anthropic", "claude-opus-5-5"),
        ("google_genai", "gemini-2.5-flash"),
        ("google_genai", "gemini-2.5-flash-image"),
    ],
)
def test_profiles_read_without_importing_match_the_models_own(provider: str, model: str) -> None:
    import importlib

    from aco_langchain.provider_families import family, model_profile

    fam = family(provider)
    assert fam.package and fam.class_name
    cls = getattr(importlib.import_module(fam.package), fam.class_name)
    own = cls(model=model, api_key="fake").profile
    ours = model_profile(fam, model)
    assert ours is not None
    for key in ("max_input_tokens", "tool_calling", "structured_output"):
        assert ours.get(key) == own.get(key), key


def test_a_tier_whose_profile_says_no_tools_is_not_given_tool_calls(monkeypatch) -> None:
    from langchain_core.tools import tool

    @tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
    with (
        FaultServer(default=Fault("ok", text="from tier 3")) as s2,
        FaultServer(default=Fault("ok", text="from tier 3")) as s3,
    ):
        models = {
            "tier2": {
                "model": "openai:gpt-3.5-turbo",
                "base_url": s2.base_url,
                "api_key_env": "OPENAI_API_KEY",
            },
            "tier3": {
                "model": "openai:gpt-4.1-mini",
                "base_url": s3.base_url,
                "api_key_env": "OPENAI_API_KEY",
            },
        }
        llm = _router(models, MemoryLedger())
        assert not llm.registry.takes_tools(2)
        msg = llm.bind_tools([add]).invoke("add 2 and 3", aco_run_id="tools")
        assert msg.response_metadata["aco"]["tier"] != 2
        assert s2.requests == []


# -- real calls against the fakes ---------------------------------------------------------


def test_anthropic_tier_real_call_priced_settled_and_reported(no_keys) -> None:
    no_keys.setenv("ANTHROPIC_API_KEY", "fake-anthropic-key")
    usage = AnthropicUsage(input_tokens=40, output_tokens=12, cache_read_input_tokens=2000)
    ledger = MemoryLedger()
    with FakeAnthropic(text="Bonjour.", usage=usage) as srv:
        models = {"tier2": {"model": "anthropic:claude-haiku-4-5", "base_url": srv.base_url}}
        llm = _router(models, ledger)
        # a long shared context: the part Anthropic serves from its prompt cache
        prompt = "Say hello in French. " + "Context line. " * 600
        msg = llm.invoke(prompt, force_tier=2, aco_run_id="anth")
        assert [s.path for s in srv.seen] == ["/v1/messages"] and srv.seen[0].had_key
        assert srv.seen[0].body["max_tokens"] == 1024  # the output cap the hold assumed
    assert msg.content == "Bonjour."
    assert msg.response_metadata["model_provider"] == "anthropic"
    assert msg.usage_metadata["input_tokens"] == 2040  # Anthropic's input excludes the cache
    (row,) = ledger.records(run="anth")
    assert (row.tier, row.provider, row.input_tokens, row.output_tokens) == (
        2,
        "anthropic",
        2040,
        12,
    )
    # genai-prices: 40 fresh input tokens at $1/M, 2000 cached at $0.10/M, 12 output at $5/M
    expected = (40 * 1.0 + 2000 * 0.10 + 12 * 5.0) / 1e6
    assert row.cost_usd == pytest.approx(expected)
    assert msg.response_metadata["aco"]["cost_usd"] == pytest.approx(expected, abs=1e-8)


async def test_anthropic_tier_async_and_stream_settle_from_usage(no_keys) -> None:
    no_keys.setenv("ANTHROPIC_API_KEY", "fake-anthropic-key")
    ledger = MemoryLedger()
    with FakeAnthropic(text="Bonjour tout le monde.", usage=AnthropicUsage(30, 9)) as srv:
        models = {"tier2": {"model": "anthropic:claude-haiku-4-5", "base_url": srv.base_url}}
        llm = _router(models, ledger)
        prompt = "Say hello, politely, to a whole room of people."  # >= 30 tokens' bytes
        msg = await llm.ainvoke(prompt, force_tier=2, aco_run_id="a1")
        chunks = [c async for c in llm.astream(prompt, force_tier=2, aco_run_id="a2")]
        assert [s.body.get("stream", False) for s in srv.seen] == [False, True]
    assert msg.content == "Bonjour tout le monde."
    assert "".join(str(c.content) for c in chunks).strip() == "Bonjour tout le monde."
    for run in ("a1", "a2"):
        (row,) = ledger.records(run=run)
        assert (row.provider, row.input_tokens, row.output_tokens) == ("anthropic", 30, 9)
        assert row.cost_usd == pytest.approx((30 * 1.0 + 9 * 5.0) / 1e6)


def test_gemini_tier_real_call_priced_settled_and_reported(no_keys) -> None:
    no_keys.setenv("GOOGLE_API_KEY", "fake-google-key")
    ledger = MemoryLedger()
    with FakeGemini(text="Hallo.", usage=GeminiUsage(prompt=30, candidates=5, thoughts=20)) as srv:
        models = {"tier3": {"model": "google_genai:gemini-2.5-flash", "base_url": srv.base_url}}
        llm = _router(models, ledger)
        prompt = "Say hello in German, in one short and friendly sentence."
        msg = llm.invoke(prompt, force_tier=3, aco_run_id="gem")
        assert srv.seen[0].path.endswith("/models/gemini-2.5-flash:generateContent")
        assert srv.seen[0].body["generationConfig"]["maxOutputTokens"] == 1024  # the cap held
    assert msg.content == "Hallo."
    assert msg.response_metadata["model_provider"] == "google_genai"
    (row,) = ledger.records(run="gem")
    assert (row.provider, row.input_tokens, row.output_tokens) == ("google_genai", 30, 25)
    # thinking tokens are billed as output: 30 in at $0.30/M, 5 + 20 out at $2.50/M
    assert row.cost_usd == pytest.approx((30 * 0.30 + 25 * 2.50) / 1e6)


def test_gemini_stream_settles_from_its_usage(no_keys) -> None:
    no_keys.setenv("GOOGLE_API_KEY", "fake-google-key")
    ledger = MemoryLedger()
    with FakeGemini(text="Hallo.", usage=GeminiUsage(prompt=30, candidates=5)) as srv:
        models = {"tier3": {"model": "google_genai:gemini-2.5-flash", "base_url": srv.base_url}}
        llm = _router(models, ledger)
        prompt = "Say hello in German, in one short and friendly sentence."
        text = "".join(str(c.content) for c in llm.stream(prompt, force_tier=3, aco_run_id="gs"))
    assert text == "Hallo."
    (row,) = ledger.records(run="gs")
    assert (row.provider, row.input_tokens, row.output_tokens) == ("google_genai", 30, 5)


def test_anthropic_529_falls_back_to_an_openai_compatible_tier(no_keys) -> None:
    no_keys.setenv("ANTHROPIC_API_KEY", "fake-anthropic-key")
    ledger = MemoryLedger()
    with (
        FakeAnthropic(statuses=[529, 529]) as claude,
        FaultServer(default=Fault("ok", text="from the gpt tier")) as gpt,
    ):
        models = {
            "tier3": {"model": "anthropic:claude-sonnet-4-6", "base_url": claude.base_url},
            "tier4": {
                "model_id": "gpt-fallback",
                "provider": "openai-compatible",
                "model": "gpt-4.1",
                "base_url": gpt.base_url,
                "cost_per_1k_input": 0.002,
                "cost_per_1k_output": 0.008,
            },
        }
        llm = _router(models, ledger, max_retries=1)
        msg = llm.invoke("Summarise the report.", force_tier=3, aco_run_id="fb")
        assert [s.status for s in claude.seen] == [529, 529]  # one try + one retry
        assert len(gpt.requests) == 1
    meta = msg.response_metadata
    assert msg.content == "from the gpt tier"
    assert (meta["aco"]["tier"], meta["aco"]["fallback_from"]) == (4, 3)
    assert meta["model_provider"] == "openai-compatible"
    rows = ledger.records(run="fb")
    assert [(r.tier, r.provider) for r in rows] == [(4, "openai-compatible")]  # 529s not billed
    assert ledger.usage("run:fb").held_usd == 0.0


# -- prices ------------------------------------------------------------------------------


def test_cached_input_and_reasoning_are_priced_from_the_usage_details() -> None:
    spec = TierSpec(model="openai:gpt-4.1")
    plain = usage_cost_usd(spec, TokenUsage(input=1000, output=100))
    cached = usage_cost_usd(spec, TokenUsage(input=1000, output=100, cache_read=800))
    assert plain == pytest.approx((1000 * 2.0 + 100 * 8.0) / 1e6)
    assert cached == pytest.approx((200 * 2.0 + 800 * 0.5 + 100 * 8.0) / 1e6)
    read = TokenUsage.from_metadata(
        {
            "input_tokens": 10,
            "output_tokens": 30,
            "total_tokens": 40,
            "input_token_details": {"cache_read": 4, "cache_creation": 3},
            "output_token_details": {"reasoning": 25},
        }
    )
    assert read == TokenUsage(input=10, output=30, cache_read=4, cache_write=3, reasoning=25)


def test_an_unknown_model_needs_a_configured_price() -> None:
    cfg = config_from_dict({"models": {"tier2": {"model": "anthropic:claude-unreleased-9"}}})
    with pytest.raises(ConfigError, match="cost_per_1k_input and cost_per_1k_output"):
        TierRegistry(cfg).cost(2, 100, 10)


def test_every_family_has_an_importable_adapter() -> None:
    for name in known_names():
        assert adapter_for(name).family.name


def test_api_key_env_and_kwargs_reach_the_provider_class(no_keys) -> None:
    no_keys.setenv("MY_CLAUDE_KEY", "fake-key-from-my-variable")
    ledger = MemoryLedger()
    with FakeAnthropic() as srv:
        models = {
            "tier2": {
                "model": "anthropic:claude-haiku-4-5",
                "base_url": srv.base_url,
                "api_key_env": "MY_CLAUDE_KEY",
                "kwargs": {"temperature": 0.25, "top_k": 7},
            }
        }
        llm = _router(models, ledger)
        assert llm.registry.unavailable().get(2) is None  # ANTHROPIC_API_KEY is not needed
        llm.invoke("What is the capital of France?", force_tier=2, aco_run_id="kw")
        (seen,) = srv.seen
    assert seen.had_key and (seen.body["temperature"], seen.body["top_k"]) == (0.25, 7)
    no_keys.delenv("MY_CLAUDE_KEY")
    assert TierRegistry(llm.config).unavailable()[2] == "no MY_CLAUDE_KEY"


def test_ollama_tier_passes_its_options_through() -> None:
    cfg = config_from_dict(
        {"models": {"tier2": {"model": "ollama:qwen3:1.7b", "kwargs": {"num_ctx": 16384}}}}
    )
    reg = TierRegistry(cfg)
    assert 2 not in reg.unavailable() and cfg.tier(2).is_local  # no key; priced $0
    model = reg.model(2)
    assert (type(model).__name__, model.model, model.num_ctx) == ("ChatOllama", "qwen3:1.7b", 16384)
    assert reg.cost(2, 1000, 1000) == 0.0
    assert reg.provider(2) == "ollama"
