"""The keyword rules' word split: the fast path reads exactly the words the regex would."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from aco_langchain.routing import rules
from aco_langchain.routing.features import normalize_prompt
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
    # markers reached only through a word the regex splits (digits, a leading quote), or
    # hidden in a longer word
    for text in ("weigh the trade-offs2 now", "x9trade-offs", "'deploy it", "rm-rf it", "4code"):
        assert classify_complexity(text) == _complexity_by_regex(text), text
    assert classify_complexity("weigh the trade-offs2 now") == "complex"
    assert classify_complexity("rm-rf it") == "simple"


def _normalize_by_loop(text: str) -> str:
    """``normalize_prompt`` as it was written first: one Python step per line."""
    out: list[str] = []
    for line in text.lower().splitlines():
        line = " ".join(line.split())
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


_SPACED = st.text(
    alphabet=st.sampled_from(list("ab Z9-'\n\n\t\r\x0b\x0c\x1c\x1f\x85\u2028\xa0é")), max_size=40
)


_ASCII_SPACED = st.text(alphabet=st.sampled_from(list("aZ9-' \t\n")), max_size=40)


@settings(max_examples=600, deadline=None)
@given(_SPACED | _ASCII_SPACED)
def test_normalize_prompt_is_the_per_line_rule(text: str) -> None:
    # both ways: any whitespace (the general path) and ASCII spaces/tabs/newlines (the fast one)
    assert normalize_prompt(text) == _normalize_by_loop(text)


def test_normalize_prompt_edges() -> None:
    for text in ("", "\n\n\n", "  a \n\n\n\n b  ", "\r\n\r\nx\r\n", "a\u2028\u2028\u2028b"):
        assert normalize_prompt(text) == _normalize_by_loop(text)
    assert normalize_prompt("  What IS  2+2? \n\n\n\nNext\tline ") == "what is 2+2?\n\nnext line"


def _task_by_rules(text: str) -> str:
    """The task rules read one by one, as first written: whole words, substrings, then any
    word starting with a prefix (and the math operator pattern), first match wins."""
    low = text.lower()
    words = set(rules._WORD.findall(low))
    for rule in rules._TASK_RULES:
        if (
            rule.words & words
            or any(sub in low for sub in rule.substrings)
            or any(w.startswith(p) for w in words for p in rule.prefixes)
            or (rule.name == "math" and rules._MATH_OP.search(low))
        ):
            return rule.name
    if len(text) < 120 and text.rstrip().endswith("?"):
        return "quick_answer"
    return "general"


_MARKERS = sorted(
    {w for r in rules._TASK_RULES for w in r.words}
    | {p + "x" for r in rules._TASK_RULES for p in r.prefixes}
    | {s for r in rules._TASK_RULES for s in r.substrings}
    | {"the", "-regulation", "'debugging", "x9refactor", "2 + 3", "why?", "Bug", "?"}
)
_TASK_TEXT = st.lists(
    st.sampled_from(_MARKERS) | st.text(alphabet="ab -'\n?", max_size=4), max_size=6
).map(" ".join)


@settings(max_examples=600, deadline=None)
@given(_TASK_TEXT)
def test_task_type_is_the_first_matching_rule(text: str) -> None:
    assert text_signals(text)[0] == _task_by_rules(text)
    # the lower-cased text passed in gives the same answer
    assert text_signals(text, None, text.lower()) == text_signals(text)
