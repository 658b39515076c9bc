"""The keyword rules' word split: the fast path reads exactly the words the regex would."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from aco_langchain.routing import rules
from aco_langchain.routing.rules import classify_complexity, prompt_words, text_signals

_TEXT = st.text(alphabet=st.sampled_from(list("abkz09-' \n\t.,_!?`éİK€")), max_size=60)


def _complexity_by_regex(text: str) -> str:
    """Seed 3's classifier as it read words before (one regex over the whole prompt)."""
    words = set(re.findall(r"[a-z][a-z\-']*", text.lower()))
    if words & rules._CRITICAL:
        return "critical"
    if words & rules._COMPLEX:
        return "complex"
    if len(text) > 400 or "```" in text or "code" in words or "function" in words:
        return "moderate"
    if words & rules._SIMPLE or len(text) <= 100:
        return "simple"
    return "moderate"


@settings(max_examples=400, deadline=None)
@given(_TEXT)
def test_prompt_words_are_the_regex_words(text: str) -> None:
    low = text.lower()
    assert prompt_words(low) == set(rules._WORD.findall(low))
    assert classify_complexity(text) == _complexity_by_regex(text)


def test_edge_words() -> None:
    assert prompt_words("-implement 'x 2-deploy x-y 'it's -- é") == {
        "implement", "x", "2-deploy", "x-y", "it's",
    }  # fmt: skip
    assert classify_complexity("2-deploy now") == "critical"  # digits break a word
    assert text_signals("Please refactor this module")[0] == "coding"  # a prefix rule
    assert text_signals("the regulators asked")[0] == "legal_regulated"
