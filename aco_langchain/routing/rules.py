"""Rule-based router in the spirit of seed 3: simple / moderate / complex / critical.

Keyword and structure rules decide complexity and task type; a fixed curve turns the
difficulty into a predicted success per tier so the shared policy can apply thresholds.
The learned router (router/learned.py) replaces the guessing with data; this one is the
fallback when no bundle is wanted (``ACOConfig(router="rules")``).

Usage::

    RuleRouter().assess(RouteRequest.from_text("What is 2+2?"), ACOConfig())
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from itertools import filterfalse

from aco_langchain.config import TIER_NUMBERS, ACOConfig
from aco_langchain.routing.base import Assessment, Complexity, Risk, RouteRequest
from aco_langchain.routing.features import normalize_prompt
from aco_langchain.routing.markers import CRITICAL_WORDS

# One list with per-step routing and human approval (routing/markers.py).
_CRITICAL = CRITICAL_WORDS
_COMPLEX = frozenset({
    "research", "analyze", "analyse", "compare", "design", "architect", "architecture",
    "security", "audit", "optimize", "prove", "trade-offs", "tradeoffs", "strategy",
})  # fmt: skip
_SIMPLE = frozenset(
    {"summarize", "translate", "hello", "hi", "define", "explain", "list", "what", "who"}
)
_COMPLEX_LETTERS = frozenset(filter(str.isalpha, _COMPLEX))  # the markers made of letters
_CODE_WORDS = frozenset({"code", "function"})

#: What a word is (``prompt_words`` computes exactly its matches, without the regex).
_WORD = re.compile(r"[a-z0-9][a-z0-9\-']*")
_MATH_OP = re.compile(r"\d\s*[-+*/^]\s*\d")


class _TaskRule:
    """A task type's markers: whole words, word prefixes, and literal substrings."""

    __slots__ = ("name", "words", "prefixes", "substrings", "_spaced")

    def __init__(
        self,
        name: str,
        words: str,
        prefixes: tuple[str, ...] = (),
        substrings: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.words = frozenset(words.split())
        self.prefixes = prefixes
        self.substrings = substrings
        # A word starting with a prefix: " prefix" in the words joined with a leading space
        # (a C substring search; a regex search was ~8 us and a generator over every word
        # of a long prompt ~240 Python steps per rule). Prefixes start with a letter.
        self._spaced = tuple(zip(prefixes, (" " + p for p in prefixes), strict=True))


# First match wins, in this order (a legal question about code is legal first).
_TASK_RULES = (
    _TaskRule(
        "legal_regulated",
        "legal contract contracts gdpr hipaa compliance lawsuit",
        prefixes=("regulat", "liabilit"),
    ),
    _TaskRule(
        "coding",
        "bug bugs code function exception python javascript sql api typo auth stacktrace",
        prefixes=("refactor", "implement", "compile", "debug"),
        substrings=("```", "def ", "class ", "stack trace", "unit test"),
    ),
    _TaskRule(
        "long_horizon",
        "multi-step end-to-end rollout",
        prefixes=("orchestrat", "migrat"),
        substrings=("roll out", "step by step plan"),
    ),
    _TaskRule("research", "research survey literature compare investigate advances"),
    _TaskRule(
        "summarization", "summarize summarise tldr recap", substrings=("tl;dr", "bullet points")
    ),
    _TaskRule("math", "solve equation integral calculate"),
    _TaskRule("writing", "write draft essay email story poem blog"),
    _TaskRule("reasoning", "why reason explain deduce logic"),
)


_BASE_TIER: dict[Complexity, int] = {"simple": 1, "moderate": 3, "complex": 4, "critical": 5}
_DIFFICULTY: dict[Complexity, int] = {"simple": 1, "moderate": 3, "complex": 4, "critical": 5}


#: Each rule word and the first rule (by index) that names it.
_RULE_OF_WORD = {w: i for i in reversed(range(len(_TASK_RULES))) for w in _TASK_RULES[i].words}
_RULE_WORDS = frozenset(_RULE_OF_WORD)


def _task_of(text: str, low: str, words: frozenset[str]) -> str:
    """The first rule (in ``_TASK_RULES`` order) whose words, substrings or prefixes the
    prompt has; ``words`` are ``prompt_words(low)``."""
    # the first rule matched by a whole word, from one set intersection
    hits = _RULE_WORDS.intersection(words)
    first = min(map(_RULE_OF_WORD.__getitem__, hits)) if hits else len(_TASK_RULES)
    joined = ""
    for i, rule in enumerate(_TASK_RULES):
        if i == first:
            return rule.name
        for sub in rule.substrings:
            if sub in low:
                return rule.name
        for prefix, spaced in rule._spaced:
            # a word can start with the prefix only where the prompt has it: the words are
            # joined (once) only then
            if prefix in low:
                joined = joined or " " + " ".join(words)
                if spaced in joined:
                    return rule.name
        if rule.name == "math" and _MATH_OP.search(low):
            return rule.name
    if len(text) < 120 and text.rstrip().endswith("?"):
        return "quick_answer"
    return "general"


#: Bytes that may be part of a word (``_WORD``); every other byte separates words.
_WORD_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789-'")
_SEPARATE = bytes(b if b in _WORD_BYTES else 0x20 for b in range(256))
_ALPHA_WORD = re.compile(r"[a-z][a-z\-']*")
_BELOW_DIGITS = "0".__gt__  # a run that sorts below "0" starts with "'" or "-"


def prompt_words(low: str) -> frozenset[str]:
    """The words of a lower-cased prompt, exactly ``set(_WORD.findall(low))``, in one C pass.

    A maximal run of word characters (``[a-z0-9'-]``) is one word once its leading ``-`` and
    ``'`` are dropped; splitting on everything else is a translate and a split (no regex
    step per word of a long prompt). Non-ASCII characters separate words, as in the regex.

    Example:
        ```python
        sorted(prompt_words("fix the auth-bug (2x)"))   # ['2x', 'auth-bug', 'fix', 'the']
        ```
    """
    spaced = " " + low.encode("ascii", "replace").translate(_SEPARATE).decode("ascii")
    runs = frozenset(spaced.split())
    # "'" and "-" sort below digits and letters: the runs that start with one are those
    # below "0" (a C pass over the distinct runs; a search for " -" in the prompt is
    # slower: its first character is everywhere)
    led = list(filter(_BELOW_DIGITS, runs))
    if not led:
        return runs
    fixed = {r.lstrip("-'") for r in led}
    fixed.discard("")  # a run of only "-" and "'" is no word
    return runs.difference(led).union(fixed) if fixed else runs.difference(led)


def _alpha_words(words: frozenset[str]) -> set[str]:
    """``set(_ALPHA_WORD.findall(low))`` from ``prompt_words(low)``: a word of letters is
    itself; any other word is split by the same regex (digits break it)."""
    odd = list(filterfalse(str.isalpha, words))  # a C pass; usually few or none
    out = set(words)
    if odd:
        out.difference_update(odd)
        for w in odd:
            out.update(_ALPHA_WORD.findall(w))
    return out


def text_signals(
    text: str, words: frozenset[str] | None = None, low: str | None = None
) -> tuple[str, Risk | None]:
    """(task type, inferred risk) from one pass over the prompt's words.

    Args:
        text: The prompt.
        words: ``prompt_words(text.lower())`` when the caller has them.
        low: ``text.lower()`` when the caller has it (a normalised prompt is its own).

    Usage::

        text_signals("Deploy the payment fix")   # ('general', 'critical')
    """
    low = text.lower() if low is None else low
    words = prompt_words(low) if words is None else words
    risk: Risk | None = None if _CRITICAL.isdisjoint(words) else "critical"
    return _task_of(text, low, words), risk


def classify_task(text: str) -> str:
    """The task type of a prompt by keyword rules (first match wins)."""
    return text_signals(text)[0]


def classify_complexity(text: str, words: frozenset[str] | None = None) -> Complexity:
    """Seed 3's classifier, with word boundaries and code/length signals.

    ``words`` is ``prompt_words(text.lower())`` when the caller has them.
    """
    words = prompt_words(text.lower()) if words is None else words
    # The letter words (``_alpha_words``) without copying the word set: a word of letters is
    # one of them; the others (usually few or none) are split by the regex into ``extra``.
    # Every marker below is a whole ``_ALPHA_WORD`` match, so a marker is a letter word
    # when it is in ``extra``, or in ``words`` and made of letters only.
    # (one regex pass over the odd words joined by spaces: a match never spans a space)
    odd = " ".join(filterfalse(str.isalpha, words))
    extra = set(_ALPHA_WORD.findall(odd)) if odd else set()

    def has(letters: frozenset[str], markers: frozenset[str]) -> bool:
        return not letters.isdisjoint(words) or not markers.isdisjoint(extra)

    if has(_CRITICAL, _CRITICAL):
        return "critical"
    if has(_COMPLEX_LETTERS, _COMPLEX):
        return "complex"
    if len(text) > 400 or "```" in text or has(_CODE_WORDS, _CODE_WORDS):
        return "moderate"
    if has(_SIMPLE, _SIMPLE) or len(text) <= 100:
        return "simple"
    return "moderate"


def infer_risk(text: str) -> Risk | None:
    """Seed 3's critical markers (production, deploy, payment, credentials...) mean critical."""
    return text_signals(text)[1]


def rule_difficulty(text: str, words: frozenset[str] | None = None) -> tuple[Complexity, int]:
    """Seed 3's complexity of a normalised prompt and the difficulty (1-5) it stands for.

    Example:
        ```python
        rule_difficulty("what is 2+2?")   # ('simple', 1)
        ```
    """
    complexity = classify_complexity(text, words)
    difficulty = _DIFFICULTY[complexity]
    if complexity == "simple" and len(text) > 60:
        difficulty = 2
    return complexity, difficulty


def success_curve(difficulty: int) -> dict[int, float]:
    """Heuristic P(success) per tier: a logistic in (tier - difficulty)."""
    return dict(zip(TIER_NUMBERS, _curve(difficulty), strict=True))


def success_values(difficulty: int) -> tuple[float, ...]:
    """``success_curve(difficulty)``'s values for tiers 1-5, as a tuple (computed once).

    Example:
        ```python
        success_values(1)[0] == success_curve(1)[1]   # True
        ```
    """
    return _curve(difficulty)


@lru_cache(maxsize=8)
def _curve(difficulty: int) -> tuple[float, ...]:
    # five difficulties, five exps each: computed once, not on every routing decision
    return tuple(
        round(1.0 / (1.0 + math.exp(-(1.6 * (n - difficulty) + 1.6))), 4) for n in TIER_NUMBERS
    )


class RuleRouter:
    """Seed-3 keyword rules. Fast (a few microseconds), no data needed.

    Example:
        ```python
        RuleRouter().assess(RouteRequest.from_text("Deploy the payment fix"), ACOConfig()).risk
        # 'critical'
        ```
    """

    name = "rules"

    def assess(self, request: RouteRequest, config: ACOConfig) -> Assessment:
        """Seed-3 complexity and task rules over the normalised ask (case and spacing
        cannot change the result)."""
        text = normalize_prompt(request.routing_text)
        words = prompt_words(text.lower())
        complexity, difficulty = rule_difficulty(text, words)
        task_type, risk = text_signals(text, words)
        tier = _BASE_TIER[complexity]
        p = success_curve(difficulty)
        return Assessment(
            task_type=task_type,
            difficulty=difficulty,
            complexity=complexity,
            suggested_tier=tier,
            confidence=p[tier],
            p_success=p,
            reason=f"rules: complexity={complexity}, task={task_type}",
            router=self.name,
            risk=risk,
        )
