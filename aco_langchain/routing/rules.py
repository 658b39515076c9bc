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

from aco_langchain.config import TIER_NUMBERS, ACOConfig
from aco_langchain.routing.base import Assessment, Complexity, Risk, RouteRequest
from aco_langchain.routing.features import normalize_prompt
from aco_langchain.routing.markers import CRITICAL_WORDS

# One list with per-step routing and human approval (routing/markers.py).
_CRITICAL = CRITICAL_WORDS
_COMPLEX = {
    "research", "analyze", "analyse", "compare", "design", "architect", "architecture",
    "security", "audit", "optimize", "prove", "trade-offs", "tradeoffs", "strategy",
}  # fmt: skip
_SIMPLE = {"summarize", "translate", "hello", "hi", "define", "explain", "list", "what", "who"}

_WORD = re.compile(r"[a-z0-9][a-z0-9\-']*")
_MATH_OP = re.compile(r"\d\s*[-+*/^]\s*\d")


class _TaskRule:
    """A task type's markers: whole words, word prefixes, and literal substrings."""

    __slots__ = ("name", "words", "prefixes", "substrings")

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

    def matches(self, low: str, words: frozenset[str] | set[str]) -> bool:
        if not self.words.isdisjoint(words):
            return True
        if any(sub in low for sub in self.substrings):
            return True
        return bool(self.prefixes) and any(w.startswith(self.prefixes) for w in words)


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


def _task_of(text: str, low: str, words: frozenset[str] | set[str]) -> str:
    for rule in _TASK_RULES:
        if rule.matches(low, words) or (rule.name == "math" and _MATH_OP.search(low)):
            return rule.name
    if len(text) < 120 and text.rstrip().endswith("?"):
        return "quick_answer"
    return "general"


def text_signals(text: str) -> tuple[str, Risk | None]:
    """(task type, inferred risk) from one pass over the prompt's words.

    Usage::

        text_signals("Deploy the payment fix")   # ('general', 'critical')
    """
    low = text.lower()
    words = set(_WORD.findall(low))
    risk: Risk | None = None if _CRITICAL.isdisjoint(words) else "critical"
    return _task_of(text, low, words), risk


def classify_task(text: str) -> str:
    """The task type of a prompt by keyword rules (first match wins)."""
    return text_signals(text)[0]


def classify_complexity(text: str) -> Complexity:
    """Seed 3's classifier, with word boundaries and code/length signals."""
    low = text.lower()
    words = set(re.findall(r"[a-z][a-z\-']*", low))
    if words & _CRITICAL:
        return "critical"
    if words & _COMPLEX:
        return "complex"
    if len(text) > 400 or "```" in text or "code" in words or "function" in words:
        return "moderate"
    if words & _SIMPLE or len(text) <= 100:
        return "simple"
    return "moderate"


def infer_risk(text: str) -> Risk | None:
    """Seed 3's critical markers (production, deploy, payment, credentials...) mean critical."""
    return text_signals(text)[1]


def success_curve(difficulty: int) -> dict[int, float]:
    """Heuristic P(success) per tier: a logistic in (tier - difficulty)."""
    return {
        n: round(1.0 / (1.0 + math.exp(-(1.6 * (n - difficulty) + 1.6))), 4) for n in TIER_NUMBERS
    }


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
        complexity = classify_complexity(text)
        task_type, risk = text_signals(text)
        difficulty = _DIFFICULTY[complexity]
        if complexity == "simple" and len(text) > 60:
            difficulty = 2
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
