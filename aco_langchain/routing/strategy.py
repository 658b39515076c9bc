"""Which of seed 3's strategies a task needs: simple / moderate / complex / critical.

Seed 3: *simple* is one small-model call (answer, define, translate); *moderate* a sequential
chain (plan, then do: write a function, draft an email); *complex* parallel specialists
(research + build + review: compare, design, analyse, investigate); *critical* specialists,
a critic ensemble and optional human approval (production, payments, credentials, legal or
medical stakes).

The decision reads the router's assessment (its task type and inferred risk, and its
difficulty for prompts no word rule marks) and seed 3's markers, in this order:

1. critical: the assessment's risk is critical (``routing.markers``), the task is
   ``legal_regulated``, or a high-stakes domain word appears (``HIGH_STAKES``);
2. complex: one of seed 3's complex words (``COMPLEX_WORDS``), or the task is research or
   long-horizon, or it asks for three or more deliverables;
3. moderate: the task makes something (``MAKE_WORDS``: write, implement, fix, draft...),
   is coding, writing or math, or is long (> ``LONG_CHARS``), or the router rates it hard;
4. simple otherwise.

Measured on the labelled realistic tasks of ``tests/data/strategy_tasks.jsonl`` by
``benchmarks/strategy_classifier.py`` (accuracy and confusion matrix).

Example:
    ```python
    classify_strategy("Audit the payment service for security issues")   # 'critical'
    classify_strategy("What is the capital of Peru?")                     # 'simple'
    ```
"""

from __future__ import annotations

import re

from aco_langchain.routing.base import Assessment, Complexity
from aco_langchain.routing.rules import text_signals

#: High-stakes domains beyond the critical markers: regulation, health, money, breaches.
HIGH_STAKES = frozenset(
    {
        "gdpr", "hipaa", "compliance", "complies", "comply", "regulator", "regulators",
        "regulation", "regulations", "legal", "liability", "lawsuit", "contract", "licence",
        "license", "patient", "dosage", "diagnosis", "breach", "refund", "refunds",
        "billing", "compromised", "leaked", "privacy",
    }
)  # fmt: skip
#: Seed 3's complex keywords, with their usual inflections and near synonyms.
COMPLEX_WORDS = frozenset(
    {
        "research", "analyze", "analyse", "analysis", "compare", "comparison", "design",
        "architect", "architecture", "security", "audit", "optimize", "optimise",
        "investigate", "evaluate", "assess", "survey", "strategy", "trade-offs",
        "tradeoffs", "scalability", "prototype", "migration", "recommend",
    }
)  # fmt: skip
#: Verbs of tasks that produce something in a few steps (seed 3's moderate chain).
MAKE_WORDS = frozenset(
    {
        "write", "implement", "fix", "refactor", "draft", "build", "create", "convert",
        "debug", "add", "plan", "turn", "solve", "generate", "explain",
    }
)  # fmt: skip
#: Below this the "explain" verb alone stays simple ("Explain what an API is").
_SHORT_EXPLAIN = 60
LONG_CHARS = 240
_WORD = re.compile(r"[a-z][a-z\-']*")
_DELIVERABLE_SPLIT = re.compile(r",|\band\b|;")


def classify_strategy(task: str, assessment: Assessment | None = None) -> Complexity:
    """The seed-3 strategy for ``task`` (module docstring for the rules).

    Args:
        task: The task text (the user's ask).
        assessment: The router's assessment of it, when one was made; without it the
            keyword rules' task type and risk are used.

    Returns:
        ``simple``, ``moderate``, ``complex`` or ``critical``.

    Example:
        ```python
        classify_strategy("Review this vendor contract for GDPR compliance risks")  # 'critical'
        ```
    """
    low = task.lower()
    words = set(_WORD.findall(low))
    if assessment is not None:
        task_type, risk, difficulty = assessment.task_type, assessment.risk, assessment.difficulty
    else:
        (task_type, risk), difficulty = text_signals(task), None
    if risk == "critical" or task_type == "legal_regulated" or not HIGH_STAKES.isdisjoint(words):
        return "critical"
    verbs = words & (COMPLEX_WORDS | MAKE_WORDS)
    asks = len([p for p in _DELIVERABLE_SPLIT.split(low) if p.strip()])
    if (
        not COMPLEX_WORDS.isdisjoint(words)
        or task_type in ("research", "long_horizon")
        or (asks >= 3 and len(verbs) >= 2)
    ):
        return "complex"
    make = words & MAKE_WORDS
    if make == {"explain"} and len(task) < _SHORT_EXPLAIN:
        make = set()
    if (
        make
        or task_type in ("coding", "writing", "math", "summarization")
        and len(task) > 60
        or len(task) > LONG_CHARS
        or (difficulty is not None and difficulty >= 4 and len(task) > 120)
    ):
        return "moderate"
    return "simple"


__all__ = ["COMPLEX_WORDS", "HIGH_STAKES", "LONG_CHARS", "MAKE_WORDS", "classify_strategy"]
