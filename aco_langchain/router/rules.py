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
from aco_langchain.router.base import Assessment, Complexity, Risk, RouteRequest

_CRITICAL = {
    "deploy", "production", "prod", "delete", "admin", "payment", "payments", "credential",
    "credentials", "secret", "secrets", "outage", "incident", "critical",
}  # fmt: skip
_COMPLEX = {
    "research", "analyze", "analyse", "compare", "design", "architect", "architecture",
    "security", "audit", "optimize", "prove", "trade-offs", "tradeoffs", "strategy",
}  # fmt: skip
_SIMPLE = {"summarize", "translate", "hello", "hi", "define", "explain", "list", "what", "who"}

_TASK_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (
        "legal_regulated",
        re.compile(r"\b(legal|contract|gdpr|hipaa|compliance|regulat\w*|lawsuit|liabilit\w*)\b"),
    ),
    (
        "coding",
        re.compile(
            r"(```|\bdef |\bclass |\bbug\b|\bcode\b|\bfunction\b|\brefactor|\bimplement"
            r"|\bcompile|\bstack ?trace|\bexception\b|\bpython\b|\bjavascript\b|\bsql\b"
            r"|\bapi\b|\bunit tests?\b|\btypo\b|\bauth\b|\bdebug)"
        ),
    ),
    (
        "long_horizon",
        re.compile(
            r"\b(multi-step|orchestrat\w*|migrat\w*|roll ?out|end-to-end|step by step plan)\b"
        ),
    ),
    ("research", re.compile(r"\b(research|survey|literature|compare|investigate|advances)\b")),
    ("summarization", re.compile(r"\b(summari[sz]e|tl;?dr|bullet points|recap)\b")),
    ("math", re.compile(r"(\d\s*[-+*/^]\s*\d|\bsolve\b|\bequation\b|\bintegral\b|\bcalculate\b)")),
    ("writing", re.compile(r"\b(write|draft|essay|email|story|poem|blog)\b")),
    ("reasoning", re.compile(r"\b(why|reason|explain|deduce|logic)\b")),
]

_BASE_TIER: dict[Complexity, int] = {"simple": 1, "moderate": 3, "complex": 4, "critical": 5}
_DIFFICULTY: dict[Complexity, int] = {"simple": 1, "moderate": 3, "complex": 4, "critical": 5}


def classify_task(text: str) -> str:
    """The task type of a prompt by keyword rules (first match wins)."""
    low = text.lower()
    for task, pattern in _TASK_PATTERNS:
        if pattern.search(low):
            return task
    if len(text) < 120 and text.rstrip().endswith("?"):
        return "quick_answer"
    return "general"


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


_CRITICAL_SCAN = re.compile(r"\b(" + "|".join(sorted(_CRITICAL, key=len, reverse=True)) + r")\b")


def infer_risk(text: str) -> Risk | None:
    """Seed 3's critical markers (production, deploy, payment, credentials...) mean critical."""
    return "critical" if _CRITICAL_SCAN.search(text.lower()) else None


def success_curve(difficulty: int) -> dict[int, float]:
    """Heuristic P(success) per tier: a logistic in (tier - difficulty)."""
    return {
        n: round(1.0 / (1.0 + math.exp(-(1.6 * (n - difficulty) + 1.6))), 4) for n in TIER_NUMBERS
    }


class RuleRouter:
    """Seed-3 keyword rules. Fast (a few microseconds), no data needed."""

    name = "rules"

    def assess(self, request: RouteRequest, config: ACOConfig) -> Assessment:
        text = request.routing_text
        complexity = classify_complexity(text)
        task_type = classify_task(text)
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
            risk=infer_risk(text),
        )
