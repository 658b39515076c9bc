"""Property tests of routing on chat-style prompts (hypothesis), with the shipped learned
router and all five tiers available: what a user would notice if it broke."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from aco_langchain import ACOConfig
from aco_langchain.chat.planner import build_route_request
from aco_langchain.errors import ContextTooLongError, InvalidRequestError
from aco_langchain.routing import RouteDecision, RouteRequest, get_router, route
from aco_langchain.routing.policy import context_tokens

CFG = ACOConfig()
ROUTER = get_router(CFG)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TASKS = [
    json.loads(line)["task"]
    for line in (Path(__file__).parents[1] / "data" / "strategy_tasks.jsonl")
    .read_text(encoding="utf-8")
    .splitlines()
    if line
]
TRIVIAL = [
    "hi",
    "hello",
    "Hi there!",
    "thanks",
    "What is 2+2?",
    "What is the capital of France?",
    "How many days are in a week?",
    "Translate 'cat' into French.",
    "Who wrote Hamlet?",
    "What does CPU stand for?",
]
SYSTEM_PROMPTS = [
    "Answer the task directly and concisely.",
    "You are a helpful assistant.",
    "You are a helpful, harmless and honest assistant. Think step by step.",
    "Reply in English. Be brief.",
]
CRITICAL = [
    "Deploy the new build to production",
    "Rotate the leaked credentials now",
    "Fix the payments outage",
    "delete the admin account on prod",
]


def _decide(messages: list[BaseMessage], **options: object) -> RouteDecision:
    req = build_route_request(messages, dict(options), 0)
    return route(req, CFG, router=ROUTER)


def _tier(prompt: str, **options: object) -> int:
    return _decide([HumanMessage(prompt)], **options).tier


# spacing, not structure: line breaks inside a prompt are structure (lists, code) and may
# count; spaces, tabs and the ends may not
spaces = st.sampled_from([" ", "  ", "\t", " \t  "])


@st.composite
def respaced(draw: st.DrawFn, prompt: str) -> str:
    words = prompt.split(" ")
    seps = [draw(spaces) if draw(st.booleans()) else " " for _ in words[1:]]
    body = words[0] + "".join(s + w for s, w in zip(seps, words[1:], strict=True))
    ends = st.sampled_from(["", " ", "\n", "  \n\n"])
    return draw(ends) + body + draw(ends)


def recased(prompt: str, how: str) -> str:
    return {"lower": prompt.lower(), "upper": prompt.upper(), "title": prompt.title()}.get(
        how, prompt
    )


@SETTINGS
@given(st.sampled_from(TASKS + TRIVIAL).flatmap(lambda p: st.tuples(st.just(p), respaced(p))))
def test_tier_is_invariant_under_whitespace(pair: tuple[str, str]) -> None:
    prompt, variant = pair
    assert _tier(variant) == _tier(prompt)


@SETTINGS
@given(st.sampled_from(TASKS + TRIVIAL), st.sampled_from(["lower", "upper", "title"]))
def test_tier_is_invariant_under_case(prompt: str, how: str) -> None:
    assert _tier(recased(prompt, how)) == _tier(prompt)


@SETTINGS
@given(st.sampled_from(TASKS + TRIVIAL), st.sampled_from(SYSTEM_PROMPTS))
def test_a_generic_system_prompt_moves_at_most_one_tier(prompt: str, system: str) -> None:
    plain = _tier(prompt)
    with_system = _decide([SystemMessage(system), HumanMessage(prompt)]).tier
    assert abs(with_system - plain) <= 1


@SETTINGS
@given(
    st.sampled_from(TASKS + TRIVIAL),
    st.integers(min_value=1, max_value=4000),
    st.integers(min_value=1, max_value=4000),
)
def test_a_lower_output_cap_never_raises_the_tier(prompt: str, a: int, b: int) -> None:
    # a budget that does not bind: a hard cost constraint may of course push a long cap down
    low, high = sorted((a, b))
    roomy = ACOConfig(routing={"max_cost_per_task": 1000.0})

    def tier(cap: int) -> int:
        req = build_route_request([HumanMessage(prompt)], {"max_tokens": cap}, 0)
        return route(req, roomy, router=ROUTER).tier

    assert tier(low) <= tier(high)


@SETTINGS
@given(st.sampled_from(TRIVIAL), st.sampled_from(["same", "lower", "upper", "title"]))
def test_trivial_prompts_stay_on_the_two_cheapest_tiers(prompt: str, how: str) -> None:
    assert _tier(recased(prompt, how)) <= 2


@SETTINGS
@given(st.sampled_from(CRITICAL + TASKS), st.sampled_from(["high", "critical", None]))
def test_critical_prompts_reach_their_floor(prompt: str, risk: str | None) -> None:
    d = _decide([HumanMessage(prompt)], **({"risk": risk} if risk else {}))
    if risk == "critical" or (risk is None and prompt in CRITICAL):
        assert d.tier == 5
    elif risk == "high":
        assert d.tier >= 3


@SETTINGS
@given(st.integers(min_value=1, max_value=1_000_000), st.integers(min_value=1, max_value=8000))
def test_context_limits_hold(chars: int, cap: int) -> None:
    req = RouteRequest(text="a " * (chars // 2), last_user_text="a", expected_output_tokens=cap)
    try:
        d = route(req, CFG, router=ROUTER)
    except ContextTooLongError as err:
        assert all(err.needed_tokens > CFG.tier(n).max_context for n in range(1, 6))
        return
    assert context_tokens(req, CFG) <= CFG.tier(d.tier).max_context


@SETTINGS
@given(st.text(alphabet=" \t\n\r\u00a0\u2003", max_size=20))
def test_empty_inputs_raise(blank: str) -> None:
    with pytest.raises(InvalidRequestError):
        build_route_request([HumanMessage(blank)], {}, 0)
    with pytest.raises(InvalidRequestError):
        build_route_request([SystemMessage(blank), HumanMessage(blank)], {}, 0)
    with pytest.raises(InvalidRequestError):
        build_route_request([], {}, 0)
