"""Unit tests of aco_langchain.chat.cascade (pure, offline)."""

from __future__ import annotations

import json
import math
from importlib import resources

import pytest
from langchain_core.messages import AIMessage

from aco_langchain.chat import cascade as cs
from aco_langchain.config import ACOConfig, CascadeSettings

OPENAI_META = {
    "content": [
        {
            "token": "Par",
            "logprob": -0.05,
            "bytes": [80, 97, 114],
            "top_logprobs": [
                {"token": "Par", "logprob": -0.05},
                {"token": "Lyon", "logprob": -3.2},
            ],
        },
        {"token": "is", "logprob": -0.01, "top_logprobs": []},
    ],
    "refusal": None,
}
OLLAMA_META = [
    {"token": "Par", "logprob": -0.05, "top_logprobs": [{"token": "Par", "logprob": -0.05}]},
    {"token": "is", "logprob": -0.01},
]


# ----------------------------------------------------------------- normalize_logprobs


def test_normalize_openai_shape() -> None:
    toks = cs.normalize_logprobs(OPENAI_META, "openai")
    assert [t.token for t in toks] == ["Par", "is"]
    assert toks[0].logprob == pytest.approx(-0.05)
    assert toks[0].top == (("Par", -0.05), ("Lyon", -3.2))
    assert toks[0].prob == pytest.approx(math.exp(-0.05))
    assert cs.normalize_logprobs(OPENAI_META["content"], "openai") == toks


def test_normalize_ollama_shape_dicts_and_models() -> None:
    toks = cs.normalize_logprobs(OLLAMA_META, "ollama")
    assert [t.token for t in toks] == ["Par", "is"]
    from ollama._types import Logprob

    models = [Logprob(**e) for e in OLLAMA_META]
    assert cs.normalize_logprobs(models, "ollama") == toks


def test_normalize_message_and_metadata() -> None:
    msg = AIMessage(content="Paris", response_metadata={"logprobs": OPENAI_META})
    assert len(cs.normalize_logprobs(msg, "openai")) == 2
    assert len(cs.normalize_logprobs({"logprobs": OLLAMA_META}, "ollama")) == 2
    assert cs.normalize_logprobs(AIMessage(content="x"), "openai") == []


def test_normalize_floats_legacy_and_edge_values() -> None:
    toks = cs.normalize_logprobs([-0.1, -2, float("nan"), float("-inf")], "openai")
    assert [t.logprob for t in toks] == [-0.1, -2.0, cs.MIN_LOGPROB]
    legacy = {"tokens": ["a", "b"], "token_logprobs": [-0.5, None]}
    assert cs.normalize_logprobs(legacy, "openai") == [cs.TokenLogprob("a", -0.5)]
    assert cs.normalize_logprobs(None, "openai") == []
    assert cs.normalize_logprobs({"content": None}, "openai") == []
    # positive logprobs (rounding noise) are clipped to 0
    assert cs.normalize_logprobs([0.001], "openai")[0].logprob == 0.0


def test_normalize_openai_sdk_objects() -> None:
    from openai.types.chat.chat_completion import ChoiceLogprobs
    from openai.types.chat.chat_completion_token_logprob import ChatCompletionTokenLogprob

    lp = ChoiceLogprobs(
        content=[ChatCompletionTokenLogprob(token="a", logprob=-0.2, bytes=None, top_logprobs=[])]
    )
    assert cs.normalize_logprobs(lp, "openai") == [cs.TokenLogprob("a", -0.2)]


@pytest.mark.parametrize("bad", ["text", {"foo": 1}, [object()], [True]])
def test_normalize_rejects_unknown_shapes(bad: object) -> None:
    with pytest.raises(ValueError, match="ollama|logprob"):
        cs.normalize_logprobs(bad, "ollama")


# ----------------------------------------------------------------- confidence


def test_confidence_formula() -> None:
    lps = [-0.01, -0.02, -0.05, -2.0, -0.01, -0.03, -0.01, -0.02, -0.04, -0.01, -0.02]
    est = cs.confidence_from_logprobs(lps)
    probs = sorted(math.exp(v) for v in lps)
    geo = math.exp(sum(lps) / len(lps))
    pos = 0.1 * (len(probs) - 1)
    p10 = probs[0] + (probs[1] - probs[0]) * pos
    assert est.method == "logprobs" and est.n_tokens == len(lps)
    assert est.details["geo_mean_prob"] == pytest.approx(geo)
    assert est.details["p10_prob"] == pytest.approx(p10)
    assert est.value == pytest.approx(math.sqrt(geo * p10))


def test_confidence_certain_and_uncertain() -> None:
    assert cs.confidence_from_logprobs([0.0, 0.0]).value == pytest.approx(1.0)
    sure = cs.confidence_from_logprobs([-0.01] * 5).value
    unsure = cs.confidence_from_logprobs([-0.01, -0.01, -3.0, -0.01, -0.01]).value
    assert sure > 0.95 > 0.5 > unsure


def test_confidence_is_length_robust() -> None:
    # Same per-token certainty, very different lengths: similar confidence (unlike joint prob).
    short = cs.confidence_from_logprobs([-0.05] * 3).value
    long = cs.confidence_from_logprobs([-0.05] * 300).value
    assert short == pytest.approx(long)
    # One shaky token among many long confident ones still shows (p10 term / mean term).
    mixed = cs.confidence_from_logprobs([-0.01] * 20 + [-4.0] * 3).value
    assert mixed < 0.75


def test_confidence_empty() -> None:
    est = cs.confidence_from_logprobs([])
    assert est.value == 0.0 and est.n_tokens == 0 and "reason" in est.details


def test_confidence_alpha_extremes() -> None:
    lps = [-0.1, -1.0, -0.2]
    geo = math.exp(sum(lps) / 3)
    assert cs.confidence_from_logprobs(lps, alpha=0.0).value == pytest.approx(geo)


# ----------------------------------------------------------------- format check


@pytest.mark.parametrize(
    ("text", "request_", "check", "value"),
    [
        ("", "Hi?", "empty", 0.0),
        ("   ", "Hi?", "empty", 0.0),
        ("I'm sorry, but I can't help with that.", "Q", "refusal", 0.1),
        ("As an AI I cannot answer", "Q", "refusal", 0.1),
        ("```python\nprint(1)", "code please", "truncated", 0.2),
        ("spam\nspam\nspam\nspam\nspam\nspam", "Q", "repetition", 0.2),
        ("The answer is big.", "What is 17 * 23?", "no_number", 0.3),
        ("I'm not sure, maybe Lyon.", "Capital of France?", "hedging", 0.4),
    ],
)
def test_format_check_failures(text: str, request_: str, check: str, value: float) -> None:
    est = cs.answer_format_confidence(text, request_)
    assert est.method == "format_check"
    assert check in est.details["checks"]
    assert est.value == pytest.approx(value)


def test_format_check_pass_is_capped() -> None:
    est = cs.answer_format_confidence("Paris.", "What is the capital of France?")
    assert est.details["checks"] == ["passed"]
    assert est.value == cs.FORMAT_CHECK_MAX < 1.0
    assert cs.answer_format_confidence("391", "What is 17 * 23?").value == cs.FORMAT_CHECK_MAX
    assert cs.answer_format_confidence("seven", "How many days in a week?").value > 0.7


def test_format_check_finish_reason_length() -> None:
    est = cs.answer_format_confidence("The list is: a, b, c", "List", finish_reason="length")
    assert "truncated" in est.details["checks"]


def test_format_check_request_shapes() -> None:
    msgs = [{"role": "user", "content": "What is 2+2?"}]
    assert "no_number" in cs.answer_format_confidence("dunno", msgs).details["checks"]
    assert (
        "no_number" in cs.answer_format_confidence("x", {"prompt": "How many?"}).details["checks"]
    )


def test_response_text_shapes() -> None:
    assert cs.response_text("a") == "a"
    assert cs.response_text(AIMessage(content="b")) == "b"
    blocks = AIMessage(content=[{"type": "text", "text": "c"}, {"type": "image_url"}, "d"])
    assert cs.response_text(blocks) == "cd"
    assert cs.response_text({"content": "e"}) == "e"
    assert cs.response_text(None) == ""


# ----------------------------------------------------------------- threshold


def test_shipped_calibration_file_has_provenance() -> None:
    path = resources.files("aco_langchain").joinpath("data", "cascade_calibration.json")
    data = json.loads(path.read_text("utf-8"))
    assert 0.0 < data["threshold"] < 1.0
    for key in ("date", "n", "method", "auc", "model"):
        assert key in data, key
    assert cs.calibrated_threshold() == pytest.approx(data["threshold"])


def test_threshold_precedence() -> None:
    cfg = ACOConfig(cascade=CascadeSettings(confidence_threshold=0.9))
    lps = [-0.2, -0.2]  # confidence ~0.82
    assert cs.cascade_step("Q", 1, lps, "A", config=cfg).escalated
    assert not cs.cascade_step("Q", 1, lps, "A", config=cfg, threshold=0.5).escalated
    res = cs.cascade_step("Q", 1, lps, "A", config=ACOConfig())
    assert res.threshold == pytest.approx(cs.calibrated_threshold())
    with pytest.raises(ValueError, match="outside"):
        cs.cascade_step("Q", 1, lps, "A", threshold=1.5)


def test_missing_calibration_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cs, "_load_calibration", lambda: None)
    with pytest.warns(RuntimeWarning, match="uncalibrated"):
        assert cs.calibrated_threshold() == cs.FALLBACK_THRESHOLD


# ----------------------------------------------------------------- cascade_step


def test_confident_answer_is_kept() -> None:
    msg = AIMessage(content="Paris", response_metadata={"logprobs": OPENAI_META})
    res = cs.cascade_step(
        request="Capital of France?", initial_tier=1, cheap_logprobs=None, cheap_response=msg
    )
    assert not res.escalated and res.final_tier == 1
    assert res.model_id == ACOConfig().tier(1).model_id
    assert res.method == "logprobs" and "keep" in res.reason
    assert res.to_dict()["confidence"] == pytest.approx(res.confidence)


def test_unsure_answer_escalates_to_next_tier() -> None:
    cfg = ACOConfig()
    res = cs.cascade_step("Q?", 2, [-2.5, -3.0, -1.0], "maybe", config=cfg, threshold=0.5)
    assert res.escalated and res.final_tier == 3
    assert res.model_id == cfg.tier(3).model_id
    assert "escalate tier 2 -> 3" in res.reason


def test_available_tiers_skip_missing_ones() -> None:
    res = cs.cascade_step("Q?", 1, [-3.0], "x", threshold=0.5, available_tiers=[1, 4, 5])
    assert res.escalated and res.final_tier == 4
    res = cs.cascade_step("Q?", 1, [-3.0], "x", threshold=0.5, available_tiers=[1])
    assert not res.escalated and "no higher tier" in res.reason


def test_top_tier_never_escalates() -> None:
    res = cs.cascade_step("Q?", 5, [-3.0], "x", threshold=0.5)
    assert not res.escalated and res.final_tier == 5 and "tier 5 is the top" in res.reason


def test_no_logprobs_uses_format_check_and_says_so() -> None:
    res = cs.cascade_step("What is 6*7?", 1, None, "42", threshold=0.5)
    assert res.method == "format_check" and not res.escalated
    assert "format check only" in res.reason
    res = cs.cascade_step("What is 6*7?", 1, [], "", threshold=0.5)
    assert res.escalated and res.confidence == 0.0 and "empty" in res.reason


def test_unreadable_logprobs_fall_back_loudly() -> None:
    res = cs.cascade_step("Q", 1, {"weird": 1}, "Fine answer.", threshold=0.5)
    assert res.method == "format_check" and "logprobs unreadable" in res.reason


def test_hard_format_failure_caps_logprob_confidence() -> None:
    res = cs.cascade_step("Q", 1, [-0.001] * 5, "I'm sorry, I can't help with that.", threshold=0.5)
    assert res.escalated and res.confidence == pytest.approx(0.1)
    assert "refusal" in res.reason
    msg = AIMessage(
        content="a b c", response_metadata={"logprobs": OPENAI_META, "finish_reason": "length"}
    )
    res = cs.cascade_step("Q", 1, None, msg, threshold=0.5)
    assert res.escalated and "truncated" in res.reason


def test_ollama_message_metadata_provider() -> None:
    msg = AIMessage(
        content="Paris",
        response_metadata={"logprobs": OLLAMA_META, "model_provider": "ollama"},
    )
    res = cs.cascade_step("Capital?", 1, None, msg, threshold=0.5)
    assert res.method == "logprobs" and not res.escalated


def test_bad_tier_is_an_error() -> None:
    with pytest.raises(ValueError, match="tiers are 1 to 5"):
        cs.cascade_step("Q", 0, [-0.1], "x")
