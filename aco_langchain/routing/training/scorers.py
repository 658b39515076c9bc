"""Scorers for ``aco collect``: how good an answer is, in [0, 1], against a reference.

Spec strings (``--scorer``):

* ``exact``: the answer equals the reference (case, surrounding space and a final period
  ignored);
* ``contains``: the reference appears in the answer (case ignored);
* ``regex:PAT``: with a group, group 1 of the first match equals the reference (as
  ``exact``); without one, the answer matches ``PAT`` (no reference needed);
* ``numeric[:tol]``: the last number in the answer is within ``tol`` (default 1e-6,
  relative to the reference's size when that is above 1) of the reference number;
* ``module:function``: your callable ``f(answer, reference, prompt) -> float | bool``;
* ``judge:TIER``: an LLM judge on tier TIER (``collect.py`` runs it: it is a billed call);
* ``recorded``: the score a replay tier's recording holds for the answer (replay tiers
  only: ``response_metadata["replay"]["score"]``).

Usage::

    from aco_langchain.routing.training.scorers import parse_scorer
    score = parse_scorer("numeric:0.01")
    score("The answer is 3.14", "3.14159", "pi?")   # 1.0
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from aco_langchain.errors import DataError

ScoreFn = Callable[[str, str | None, str], float]

_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?(?:[eE][-+]?\d+)?")


@dataclass(frozen=True)
class RecordedSpec:
    """``recorded``: the replay recording's own score of the answer."""


@dataclass(frozen=True)
class JudgeSpec:
    """``judge:TIER``: the answer is graded by tier ``tier`` (a billed call)."""

    tier: int


def _norm(text: str) -> str:
    return " ".join(text.strip().casefold().rstrip(".").split())


def _need_reference(reference: str | None, name: str) -> str:
    if reference is None:
        raise DataError(
            f"scorer {name!r} needs a reference answer: give each prompt a 'reference' "
            "(or 'answer'/'expected') field, or use regex:PAT without a group"
        )
    return reference


def exact(answer: str, reference: str | None, prompt: str = "") -> float:
    """1.0 when the answer equals the reference (normalised), else 0.0."""
    return float(_norm(answer) == _norm(_need_reference(reference, "exact")))


def contains(answer: str, reference: str | None, prompt: str = "") -> float:
    """1.0 when the reference appears in the answer (case ignored), else 0.0."""
    ref = _norm(_need_reference(reference, "contains"))
    return float(bool(ref) and ref in _norm(answer))


def _last_number(text: str) -> float | None:
    found = _NUMBER.findall(text)
    return float(found[-1].replace(",", "")) if found else None


def numeric(tol: float) -> ScoreFn:
    """A scorer: the answer's last number within ``tol`` of the reference's."""

    def score(answer: str, reference: str | None, prompt: str = "") -> float:
        ref = _last_number(_need_reference(reference, "numeric"))
        if ref is None:
            raise DataError(f"numeric scorer: the reference {reference!r} holds no number")
        got = _last_number(answer)
        return float(got is not None and abs(got - ref) <= tol * max(1.0, abs(ref)))

    return score


def regex(pattern: str) -> ScoreFn:
    """A scorer: group 1 equals the reference, or (no group) the answer matches."""
    try:
        rx = re.compile(pattern, re.IGNORECASE | re.DOTALL)
    except re.error as err:
        raise DataError(
            f"--scorer regex:{pattern}: not a valid regular expression ({err})"
        ) from err

    def score(answer: str, reference: str | None, prompt: str = "") -> float:
        m = rx.search(answer)
        if rx.groups == 0:
            return float(m is not None)
        return float(m is not None and _norm(m.group(1) or "") == _norm(
            _need_reference(reference, "regex")
        ))  # fmt: skip

    return score


def _callable(spec: str) -> ScoreFn:
    module, _, name = spec.partition(":")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise DataError(
            f"--scorer {spec}: cannot import {name!r} from module {module!r} ({err}): "
            "give module:function importable from the current directory or PYTHONPATH"
        ) from err
    if not callable(fn):
        raise DataError(f"--scorer {spec}: {name!r} is not callable")

    def score(answer: str, reference: str | None, prompt: str = "") -> float:
        value = float(fn(answer, reference, prompt))
        if not 0.0 <= value <= 1.0:
            raise DataError(f"--scorer {spec} returned {value}: a score must be in [0, 1]")
        return value

    return score


Scorer = ScoreFn | JudgeSpec | RecordedSpec


def parse_scorer(spec: str) -> Scorer:
    """The scorer a ``--scorer`` spec names (see the module docstring).

    Raises:
        DataError: an unknown spec, a bad regex, tolerance or tier, an unimportable callable.
    """
    if spec == "exact":
        return exact
    if spec == "contains":
        return contains
    if spec == "recorded":
        return RecordedSpec()
    if spec.startswith("regex:"):
        return regex(spec[len("regex:") :])
    if spec == "numeric" or spec.startswith("numeric:"):
        raw = spec.partition(":")[2] or "1e-6"
        try:
            tol = float(raw)
        except ValueError:
            raise DataError(f"--scorer {spec}: tolerance {raw!r} is not a number") from None
        if tol < 0:
            raise DataError(f"--scorer {spec}: tolerance must be >= 0")
        return numeric(tol)
    if spec.startswith("judge:"):
        raw = spec[len("judge:") :]
        if raw not in {"1", "2", "3", "4", "5"}:
            raise DataError(f"--scorer {spec}: the judge tier must be 1 to 5 (judge:5)")
        return JudgeSpec(int(raw))
    if ":" in spec and all(part.strip() for part in spec.split(":", 1)):
        return _callable(spec)
    raise DataError(
        f"--scorer {spec!r} is unknown: use exact, contains, regex:PAT, numeric[:tol], "
        "module:function, judge:TIER or recorded"
    )


JUDGE_PROMPT = (
    "You grade answers. Question:\n{prompt}\n\nReference answer:\n{reference}\n\n"
    "Candidate answer:\n{answer}\n\nIs the candidate answer correct? Reply with one "
    "digit: 1 for correct, 0 for wrong."
)


def judge_verdict(text: str) -> float | None:
    """The judge's 0/1 from its reply (the first 0 or 1 in it); None when it gave none."""
    m = re.search(r"[01]", text)
    return float(m.group(0)) if m else None
