"""The figures of a replay: the router's choices beside each single tier, always-the-top-tier
and the hindsight oracle, all from the recorded outcomes and costs (pure functions, no I/O).

Usage::

    from aco_langchain.replay.figures import Choice, replay_report
    rep = replay_report(choices, prompts, tier_models, top_tier=5, ledger_total_usd=0.41)
    rep.to_dict()["accuracy"], rep.to_dict()["tiers"]["5"]["cost_usd_mean"]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aco_langchain.replay.recording import RecordedPrompt


@dataclass(frozen=True)
class Choice:
    """What the product did with one recorded prompt (one ``--choices-out`` line)."""

    id: str
    tier: int | None
    """The tier that answered; None when no tier could (an error)."""
    model: str | None
    cost_usd: float
    correct: bool
    reason: str
    run_key: str = ""
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "tier": self.tier,
            "model": self.model,
            "cost_usd": round(self.cost_usd, 10),
            "correct": self.correct,
            "reason": self.reason,
            "run_key": self.run_key,
        }
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass(frozen=True)
class Point:
    """Accuracy and cost of one way of answering every prompt."""

    accuracy: float
    cost_usd_mean: float
    cost_usd_total: float
    cost_rel_top: float

    def to_dict(self) -> dict[str, float]:
        return {
            "accuracy": round(self.accuracy, 6),
            "cost_usd_mean": round(self.cost_usd_mean, 10),
            "cost_usd_total": round(self.cost_usd_total, 10),
            "cost_rel_top": round(self.cost_rel_top, 6),
        }


@dataclass(frozen=True)
class ReplayReport:
    """Every figure ``aco replay`` prints (``to_dict`` is its ``--json``)."""

    n: int
    router: Point
    tiers: dict[int, tuple[str, Point]]
    top_tier: int
    oracle: Point
    quality_target: float
    ledger_total_usd: float
    errors: int
    accuracy_rel_top: float

    def to_dict(self) -> dict[str, Any]:
        top = self.tiers[self.top_tier][1]
        return {
            "n": self.n,
            "accuracy": round(self.router.accuracy, 6),
            "cost_usd_mean": round(self.router.cost_usd_mean, 10),
            "cost_usd_total": round(self.router.cost_usd_total, 10),
            "cost_rel_top": round(self.router.cost_rel_top, 6),
            "accuracy_rel_top": round(self.accuracy_rel_top, 6),
            "quality_target": self.quality_target,
            "ledger_total_usd": round(self.ledger_total_usd, 10),
            "errors": self.errors,
            "tiers": {
                str(t): {"model": m, **p.to_dict()} for t, (m, p) in sorted(self.tiers.items())
            },
            "top_tier": {"tier": self.top_tier, "model": self.tiers[self.top_tier][0]}
            | top.to_dict(),
            "oracle": self.oracle.to_dict(),
        }


def _point(correct: Sequence[bool], costs: Sequence[float], top_total: float) -> Point:
    n = max(1, len(costs))
    total = float(sum(costs))
    return Point(
        accuracy=sum(1 for c in correct if c) / n,
        cost_usd_mean=total / n,
        cost_usd_total=total,
        cost_rel_top=total / top_total if top_total > 0 else float("nan"),
    )


def oracle_pick(prompt: RecordedPrompt, models: Sequence[str]) -> tuple[str, bool, float]:
    """Hindsight: the cheapest model that was right, else the cheapest (wrong) one."""
    answers = [prompt.answers[m] for m in models if m in prompt.answers]
    right = [a for a in answers if a.correct]
    pool = right or answers
    best = min(pool, key=lambda a: a.cost_usd)
    return best.model, best.correct, best.cost_usd


def replay_report(
    choices: Sequence[Choice],
    prompts: Sequence[RecordedPrompt],
    tier_models: Mapping[int, str],
    *,
    top_tier: int,
    ledger_total_usd: float,
    quality_target: float,
) -> ReplayReport:
    """The figures of a replay (see the module docstring).

    Args:
        choices: what the product did, one per prompt, in the order of ``prompts``.
        prompts: the replayed prompts with every recorded answer.
        tier_models: tier -> the recorded model it plays (replay tiers only).
        top_tier: the tier the costs are relative to (the baseline).
        ledger_total_usd: what the ledger recorded for the replay's runs.
        quality_target: the router's ``routing.quality_target`` (the operating point).

    Returns:
        The report.

    Raises:
        ValueError: choices and prompts differ in length, or the top tier plays no model.
    """
    if len(choices) != len(prompts):
        raise ValueError(f"{len(choices)} choices for {len(prompts)} prompts")
    if top_tier not in tier_models:
        raise ValueError(f"the top tier {top_tier} is not a replay tier")

    def single(model: str) -> tuple[list[bool], list[float]]:
        answers = [p.answers.get(model) for p in prompts]
        return (
            [a is not None and a.correct for a in answers],
            [a.cost_usd if a is not None else 0.0 for a in answers],
        )

    top_ok, top_cost = single(tier_models[top_tier])
    top_total = float(sum(top_cost))
    tiers = {t: (m, _point(*single(m), top_total)) for t, m in tier_models.items()}
    picks = [oracle_pick(p, list(tier_models.values())) for p in prompts]
    router = _point([c.correct for c in choices], [c.cost_usd for c in choices], top_total)
    top_acc = tiers[top_tier][1].accuracy
    return ReplayReport(
        n=len(prompts),
        router=router,
        tiers=tiers,
        top_tier=top_tier,
        oracle=_point([p[1] for p in picks], [p[2] for p in picks], top_total),
        quality_target=quality_target,
        ledger_total_usd=ledger_total_usd,
        errors=sum(1 for c in choices if c.tier is None),
        accuracy_rel_top=router.accuracy / top_acc if top_acc > 0 else float("nan"),
    )
