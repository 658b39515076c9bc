"""The strategy classifier on the labelled realistic tasks of tests/data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aco_langchain.routing.strategy import classify_strategy

ROWS = [
    json.loads(line)
    for line in (Path(__file__).parents[1] / "data" / "strategy_tasks.jsonl")
    .read_text(encoding="utf-8")
    .splitlines()
    if line
]


def test_labelled_set_is_big_and_balanced_enough() -> None:
    labels = [r["label"] for r in ROWS]
    assert len(ROWS) >= 60
    assert all(labels.count(lab) >= 12 for lab in ("simple", "moderate", "complex", "critical"))


def test_accuracy_on_the_labelled_tasks_is_at_least_80_percent() -> None:
    right = sum(classify_strategy(r["task"]) == r["label"] for r in ROWS)
    assert right / len(ROWS) >= 0.80


@pytest.mark.parametrize(
    ("task", "label"),
    [
        ("Audit the payment service for security issues", "critical"),
        ("Review this vendor contract for GDPR compliance risks", "critical"),
        ("What is 2+2?", "simple"),
        ("Design the architecture for a multi-region chat service", "complex"),
        ("Write a function that parses ISO dates", "moderate"),
    ],
)
def test_the_issue_examples(task: str, label: str) -> None:
    assert classify_strategy(task) == label
