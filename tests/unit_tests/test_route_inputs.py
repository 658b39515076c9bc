"""Routing inputs: empty prompts, bad per-call options, forced tiers, context limits."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from aco_langchain import ACOConfig, ACORouterChatModel
from aco_langchain.errors import AllTiersFailedError, ContextTooLongError, InvalidRequestError
from aco_langchain.routing import Assessment, RouteRequest, RuleRouter, decide, route
from aco_langchain.testing import ScriptedChatModel
from tests.settings import NO_WAIT, configured


class CountingRouter(RuleRouter):
    """The rule router, counting how often it is asked."""

    def __init__(self) -> None:
        self.assessed = 0

    def assess(self, request: RouteRequest, config: ACOConfig) -> Assessment:
        self.assessed += 1
        return super().assess(request, config)


def _tiers() -> dict[int, ScriptedChatModel]:
    return {n: ScriptedChatModel(model=f"fake-t{n}", script=[f"t{n}"]) for n in range(1, 6)}


def _llm(**kw) -> tuple[ACORouterChatModel, dict[int, ScriptedChatModel], CountingRouter]:
    tiers = _tiers()
    router = CountingRouter()
    return ACORouterChatModel(tier_models=tiers, router=router, **kw), tiers, router


@pytest.mark.parametrize("prompt", ["", "   ", "\n\t ", [], [HumanMessage("  ")]])
def test_empty_inputs_raise_before_any_call(prompt) -> None:
    llm, tiers, router = _llm()
    with pytest.raises(InvalidRequestError, match="empty|no messages"):
        llm.invoke(prompt)
    assert router.assessed == 0 and all(not t.calls for t in tiers.values())


def test_a_message_with_only_tool_calls_is_not_empty() -> None:
    llm, _, _ = _llm()
    msgs = [
        SystemMessage(""),
        AIMessage("", tool_calls=[{"name": "read_file", "args": {}, "id": "c1"}]),
    ]
    assert llm.invoke(msgs).content


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"force_teir": 5}, "force_teir.*force_tier"),
        ({"max_cost": 0.1}, "max_cost.*max_cost_usd"),
        ({"force_level": 2}, "force_level"),
        ({"force_tier": True}, "force_tier=True.*int tier number"),
        ({"force_tier": 9}, "force_tier=9"),
        ({"task_type": "nope"}, r"task_type \(str\).*quick_answer"),
        ({"risk": "extreme"}, r"risk \(str\).*critical"),
        ({"max_cost_usd": True}, "max_cost_usd=True"),
        ({"min_quality": 2}, "min_quality=2"),
        ({"max_tokens": 0}, "max_tokens=0"),
        ({"max_tokens": "40"}, r"max_tokens \(str\)"),
    ],
)
def test_bad_options_name_the_option_and_accepted_values(kwargs, match) -> None:
    llm, tiers, _ = _llm()
    with pytest.raises(InvalidRequestError, match=match):
        llm.invoke("What is 2+2?", **kwargs)
    assert all(not t.calls for t in tiers.values())


def test_misspelt_configurable_key_is_an_error_and_others_pass() -> None:
    llm, _, _ = _llm()
    with pytest.raises(InvalidRequestError, match="configurable key 'force_teir'"):
        llm.invoke("hi", config={"configurable": {"force_teir": 3}})
    # a graph's own configurable keys and a tier's call options pass through untouched
    ok = llm.invoke("hi", config={"configurable": {"thread_id": "t1", "user": "x"}}, top_p=0.5)
    assert ok.content


def test_forced_tier_skips_the_router_entirely() -> None:
    llm, tiers, router = _llm()
    msg = llm.invoke("Audit the payment service for security issues", force_tier=2)
    meta = msg.response_metadata["aco"]
    assert router.assessed == 0
    assert meta["tier"] == 2 and meta["predicted_success"] is None
    assert meta["reason"].startswith("forced tier 2")
    llm.invoke("What is 2+2?", force_model="medium-70b")
    assert router.assessed == 0 and len(tiers[3].calls) == 1
    llm.invoke("What is 2+2?")
    assert router.assessed == 1
    # the plain routing function skips it too
    counting = CountingRouter()
    d = route(RouteRequest.from_text("hi", force_tier=4), ACOConfig(), router=counting)
    assert d.tier == 4 and d.forced and counting.assessed == 0 and d.confidence is None


def test_long_prompt_goes_to_a_tier_whose_context_holds_it() -> None:
    local_first = Assessment(
        task_type="general",
        difficulty=1,
        complexity="simple",
        suggested_tier=1,
        confidence=0.95,
        p_success={1: 0.95, 2: 0.96, 3: 0.97, 4: 0.98, 5: 0.99},
    )
    long = "Summarize the following notes. " + "word " * 4000  # ~5,000 tokens
    d = decide(local_first, RouteRequest.from_text(long), ACOConfig())
    assert d.tier == 2 and "max_context 2048 -> tier 2" in d.reason
    # through the chat model: tiers 2-5 fail, and tier 1 (2,048 tokens) is never tried
    tiers = _tiers()
    for n in range(2, 6):
        tiers[n] = ScriptedChatModel(script=[RuntimeError("down")])
    llm = ACORouterChatModel(
        tier_models=tiers, router=RuleRouter(), config=configured(routing=NO_WAIT)
    )
    with pytest.raises(AllTiersFailedError):
        llm.invoke(long)
    assert not tiers[1].calls


def test_output_cap_counts_toward_the_context() -> None:
    req = RouteRequest(text="hi " * 600, last_user_text="hi", expected_output_tokens=1800)
    d = route(req, ACOConfig(), router=RuleRouter())
    assert d.tier >= 2 and d.context_tokens == 450 + 1800


def test_nothing_fits_raises_naming_the_sizes() -> None:
    llm, tiers, _ = _llm()
    largest = max(ACOConfig().tier(n).max_context for n in range(1, 6))
    huge = "x" * (4 * largest + 40_000)  # ~10,000 tokens more than every tier's max_context
    with pytest.raises(
        ContextTooLongError, match=f"tier 5: {ACOConfig().tier(5).max_context}"
    ) as err:
        llm.invoke(huge)
    assert err.value.needed_tokens > err.value.largest_context == largest
    with pytest.raises(ContextTooLongError, match="tier 1 is forced"):
        llm.invoke("y" * 20_000, force_tier=1)
    assert all(not t.calls for t in tiers.values())


def test_a_cascade_stream_routes_once() -> None:
    import asyncio

    tiers = _tiers()
    tiers[1] = ScriptedChatModel(model="fake-t1", script=["4"], logprob=-0.01)
    router = CountingRouter()
    cfg = configured(cascade={"enabled": True})
    llm = ACORouterChatModel(tier_models=tiers, router=router, config=cfg)
    chunks = list(llm.stream("What is 2+2?"))
    assert "".join(str(c.content) for c in chunks) == "4"
    assert router.assessed == 1

    async def astream() -> str:
        return "".join([str(c.content) async for c in llm.astream("What is 2+2?")])

    assert asyncio.run(astream()) == "4" and router.assessed == 2
