"""Property tests (hypothesis): no config and no per-call option gives anything but a result
or an ACOError. A crash with a bare KeyError/TypeError/ValidationError is a bug."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage

from aco_langchain import ACORouterChatModel
from aco_langchain.config import (
    TASK_TYPES,
    TIER_KEYS,
    ACOConfig,
    RoutingSettings,
    TierSpec,
    config_from_dict,
    load_config,
)
from aco_langchain.errors import ACOError
from aco_langchain.routing import RuleRouter
from aco_langchain.testing import ScriptedChatModel
from tests.settings import NO_WAIT, configured

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _fields(names: list[str], extra: st.SearchStrategy[Any]) -> st.SearchStrategy[dict]:
    """Mappings over the real field names (plus an unknown one) with values of any type."""
    return st.dictionaries(st.sampled_from([*names, "not_a_field"]), extra, max_size=5)


tier_values = st.one_of(
    values,
    st.sampled_from(["local", "openai", "ollama", "instance", "openai-compatible"]),
    st.floats(min_value=0, max_value=10),
)
configs = st.fixed_dictionaries(
    {},
    optional={
        "routing": st.one_of(values, _fields(list(RoutingSettings.model_fields), values)),
        "models": st.one_of(
            values,
            st.dictionaries(
                st.sampled_from([*TIER_KEYS, "tier9"]),
                st.one_of(values, _fields(list(TierSpec.model_fields), tier_values)),
                max_size=3,
            ),
        ),
        "task_floors": st.one_of(
            values,
            st.dictionaries(
                st.sampled_from([*TASK_TYPES, "gardening"]), st.integers(-1, 7), max_size=3
            ),
        ),
        "router": st.one_of(values, st.sampled_from(["learned", "rules"])),
        "cascade": st.one_of(values, _fields(["enabled", "top_logprobs"], values)),
        "unknown_block": values,
    },
)


@SETTINGS
@given(configs)
def test_config_dicts_give_a_config_or_a_config_error(data: dict[str, Any]) -> None:
    try:
        cfg = config_from_dict(data)
    except ACOError:
        return
    assert isinstance(cfg, ACOConfig)


@SETTINGS
@given(configs)
def test_router_model_from_any_config_dict(data: dict[str, Any]) -> None:
    try:
        llm = ACORouterChatModel(config=data, router=RuleRouter())
    except ACOError:
        return
    assert isinstance(llm.config, ACOConfig)


@SETTINGS
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_config_file_bytes(tmp_path_factory: pytest.TempPathFactory, raw: bytes) -> None:
    path = Path(tmp_path_factory.mktemp("cfg")) / "c.yaml"
    path.write_bytes(raw)
    try:
        cfg = load_config(path)
    except ACOError:
        return
    assert isinstance(cfg, ACOConfig)


option_values = st.one_of(
    scalars,
    st.integers(min_value=-3, max_value=8),
    st.floats(min_value=-1, max_value=1e5),
    st.sampled_from(["low", "medium", "high", "critical", "coding", "t2", "gpt-4.1"]),
)
options = st.dictionaries(
    st.sampled_from(
        [
            "force_tier",
            "force_model",
            "max_cost_usd",
            "max_latency_ms",
            "min_quality",
            "task_type",
            "risk",
            "max_tokens",
            "aco_run_id",
        ]
    ),
    option_values,
    max_size=4,
)

_TIERS = {n: ScriptedChatModel(model=f"t{n}", script=[f"answer {n}"]) for n in range(1, 6)}
_LLM = ACORouterChatModel(
    tier_models=_TIERS, router=RuleRouter(), config=configured(routing=NO_WAIT)
)


def _an_answer(text: str) -> bool:
    """One tier's scripted answer, possibly cut by an output cap (max_tokens)."""
    return bool(text) and any(f"answer {n}".startswith(text) for n in range(1, 6))


def _check(outcome: Any) -> None:
    assert isinstance(outcome, AIMessage), outcome
    assert _an_answer(str(outcome.content)), outcome.content
    cost = outcome.response_metadata["aco"]["cost_usd"]
    assert cost >= 0 and math.isfinite(cost)


@SETTINGS
@given(options)
def test_per_call_options_as_kwargs(opts: dict[str, Any]) -> None:
    _LLM.reset_budget()
    try:
        msg = _LLM.invoke("Fix the parse bug in utils.py", **opts)
    except ACOError:
        return
    _check(msg)


@SETTINGS
@given(options)
def test_per_call_options_as_configurable(opts: dict[str, Any]) -> None:
    _LLM.reset_budget()
    try:
        msg = _LLM.invoke("What is 2+2?", config={"configurable": opts})
    except ACOError:
        return
    _check(msg)


@SETTINGS
@given(options)
def test_per_call_options_async_stream(opts: dict[str, Any]) -> None:
    async def run() -> str:
        return "".join([str(c.content) async for c in _LLM.astream("Summarize this", **opts)])

    _LLM.reset_budget()
    try:
        text = asyncio.run(run())
    except ACOError:
        return
    assert _an_answer(text), text
