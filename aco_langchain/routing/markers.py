"""The critical markers: one word list for routing risk, critical agent steps and approval.

A prompt with one of these words is inferred ``critical`` risk by the routers
(``routing/rules.text_signals``); an agent step whose action has one is a ``critical`` step
(``agent/per_step.classify_action``); a tool call whose name or arguments have one waits for a
human's approval when ``human_approval`` is on (``agent/engine.is_critical_call``). One list,
so routing risk and human approval cannot disagree.

The list keeps words that mark an irreversible or high-stakes action or domain in any
context; words that are everyday English in prompts (``merge``, ``release``, ``transfer``,
``rotate``, ``pay``, ``drop``, ``publish``) are left out, as they would send ordinary
questions ("merge two sorted lists") to the top tier.

Example:
    ```python
    from aco_langchain.routing.markers import CRITICAL_WORDS, has_critical_marker

    "deploy" in CRITICAL_WORDS                      # True
    has_critical_marker("Wipe the staging volume")  # True
    ```
"""

from __future__ import annotations

import re

CRITICAL_WORDS: frozenset[str] = frozenset(
    {
        # irreversible actions
        "deploy", "delete", "truncate", "wipe", "rm", "rollback", "revoke", "migrate",
        # high-stakes domains
        "production", "prod", "admin", "payment", "payments", "credential", "credentials",
        "secret", "secrets", "outage", "incident", "critical",
    }
)  # fmt: skip

_WORD = re.compile(r"[a-z]+")


def has_critical_marker(text: str) -> bool:
    """Does ``text`` contain a critical marker (a whole word, any case; ``_`` splits words)?

    Args:
        text: A prompt, a step's action, or a tool call rendered as text.

    Returns:
        True when one of ``CRITICAL_WORDS`` is a word of ``text``.

    Example:
        ```python
        has_critical_marker("deploy_service billing")   # True: words split at non-letters
        has_critical_marker("Merge the two lists")      # False
        ```
    """
    return not CRITICAL_WORDS.isdisjoint(_WORD.findall(text.lower()))


__all__ = ["CRITICAL_WORDS", "has_critical_marker"]
