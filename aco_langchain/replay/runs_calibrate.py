"""Choose a run-level policy on a training split and measure it on the held-out tasks.

The search is small on purpose so that what is chosen on one split holds on another: the
ladder ends with a strong model (the training split's best, or one within a few points of
it), below it at most ``max_cheap`` cheaper models in cheap-first order, and each cheap
rung's step cap is one of a few quantiles of that model's call counts (or none). Among
the policies whose *expected* training resolved rate keeps ``target`` of the best single
model's, minus nothing, plus a safety margin of ``margin_se`` standard errors of the
difference, the cheapest in expectation wins.

Example:
    ```python
    from aco_langchain.replay.runs import load_runs, parse_verifier
    from aco_langchain.replay.runs_calibrate import calibrate, split_tasks

    table = load_runs("runs.csv")
    train, heldout = split_tasks(table.tasks, 0.5, seed=0)
    chosen = calibrate(table.subset(train), parse_verifier("recall=0.8,false_reject=0.1"), 0.99)
    print(chosen.policy, chosen.train_resolved_rate, chosen.train_cost_usd)
    ```
"""

from __future__ import annotations

import itertools
import logging
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from aco_langchain.errors import DataError
from aco_langchain.replay.runs import (
    RunPolicy,
    RunTable,
    TaskOutcome,
    VerifierSpec,
    capped,
    simulate_task,
)

logger = logging.getLogger(__name__)

CAP_QUANTILES = (0.5, 0.75, 0.9)


@dataclass(frozen=True)
class Figures:
    """A policy's figures over a set of tasks (simulated with the seed, and expected)."""

    tasks: int
    resolved: int
    resolved_rate: float
    cost_usd: float
    expected_resolved_rate: float
    expected_cost_usd: float
    resolved_rate_ci95: tuple[float, float]
    cost_usd_ci95: tuple[float, float]


@dataclass(frozen=True)
class Calibration:
    """The chosen policy and what it did on the training split (in expectation)."""

    policy: RunPolicy
    train_tasks: int
    train_resolved_rate: float
    train_cost_usd: float
    best_single_model: str
    best_single_resolved_rate: float
    best_single_cost_usd: float
    candidates: int


def split_tasks(tasks: Sequence[str], train_split: float, seed: int) -> tuple[list[str], list[str]]:
    """A seeded random split of the tasks: (train, held-out).

    Raises:
        DataError: ``train_split`` is not in (0, 1) or leaves a side empty.
    """
    if not 0.0 < train_split < 1.0:
        raise DataError(f"--train-split {train_split}: give a share in (0, 1), e.g. 0.5")
    order = sorted(tasks)
    random.Random(seed).shuffle(order)
    cut = round(len(order) * train_split)
    if cut == 0 or cut == len(order):
        raise DataError(
            f"--train-split {train_split} over {len(order)} tasks leaves a side empty; "
            "give more tasks or a split nearer 0.5"
        )
    return sorted(order[:cut]), sorted(order[cut:])


def _interval(values: np.ndarray, stat: str, seed: int, draws: int = 2000) -> tuple[float, float]:
    """A 95% bootstrap interval over tasks of the mean (``rate``) or the total (``sum``)."""
    n = len(values)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n, size=(draws, n))
    sample = values[picks].mean(axis=1) if stat == "rate" else values[picks].sum(axis=1)
    low, high = np.quantile(sample, [0.025, 0.975])
    return float(low), float(high)


def figures_of(outcomes: Sequence[TaskOutcome], seed: int) -> Figures:
    """Sum up per-task outcomes, with 95% bootstrap intervals over tasks."""
    resolved = np.array([o.resolved for o in outcomes], dtype=float)
    cost = np.array([o.cost_usd for o in outcomes], dtype=float)
    n = len(outcomes)
    return Figures(
        tasks=n,
        resolved=int(resolved.sum()),
        resolved_rate=float(resolved.mean()),
        cost_usd=float(cost.sum()),
        expected_resolved_rate=float(np.mean([o.expected_resolved for o in outcomes])),
        expected_cost_usd=float(sum(o.expected_cost_usd for o in outcomes)),
        resolved_rate_ci95=_interval(resolved, "rate", seed),
        cost_usd_ci95=_interval(cost, "sum", seed),
    )


def evaluate(
    table: RunTable, policy: RunPolicy, verifier: VerifierSpec, seed: int
) -> tuple[Figures, list[TaskOutcome]]:
    """Run ``policy`` on every task of ``table``: figures and per-task outcomes."""
    outcomes = [simulate_task(table, t, policy, verifier, seed) for t in table.tasks]
    return figures_of(outcomes, seed), outcomes


def single(model: str) -> RunPolicy:
    """Always ``model``, no cap (the single-model baseline)."""
    return RunPolicy(ladder=(model,), step_caps=(None,))


def oracle_outcomes(table: RunTable) -> list[TaskOutcome]:
    """Hindsight oracle: the cheapest model that resolved each task (else the cheapest run)."""
    outcomes = []
    for task in table.tasks:
        runs = [table.run(task, m) for m in table.models]
        good = [r for r in runs if r.resolved]
        pick = min(good or runs, key=lambda r: r.cost_usd)
        outcomes.append(
            TaskOutcome(task, (), pick.resolved, pick.cost_usd, float(pick.resolved), pick.cost_usd)
        )
    return outcomes


def best_single(table: RunTable) -> tuple[str, float, float]:
    """(model, resolved rate, total cost) of the best single model: highest rate, then cheapest."""
    rows = []
    for model in table.models:
        runs = [table.run(t, model) for t in table.tasks]
        rows.append(
            (model, sum(r.resolved for r in runs) / len(runs), sum(r.cost_usd for r in runs))
        )
    return max(rows, key=lambda r: (r[1], -r[2]))


@dataclass(frozen=True)
class _Arrays:
    resolved: np.ndarray  # per task: resolved after the cap
    cost: np.ndarray  # per task: cost after the cap
    accept: np.ndarray  # per task: P(verifier accepts)


def _arrays(table: RunTable, model: str, cap: int | None, verifier: VerifierSpec) -> _Arrays:
    rows = [capped(table.run(t, model), cap) for t in table.tasks]
    resolved = np.array([r[0] for r in rows], dtype=float)
    stopped = np.array([r[3] for r in rows], dtype=bool)
    accept = np.where(resolved > 0, 1.0 - verifier.false_reject, 1.0 - verifier.recall)
    return _Arrays(
        resolved=resolved,
        cost=np.array([r[1] for r in rows], dtype=float),
        accept=np.where(stopped, 0.0, accept),
    )


def _expected(rungs: Sequence[_Arrays]) -> tuple[np.ndarray, np.ndarray]:
    """Per-task expected resolved and cost of a ladder (same walk as ``simulate_task``)."""
    reach = np.ones_like(rungs[0].cost)
    resolved = np.zeros_like(reach)
    cost = np.zeros_like(reach)
    for index, rung in enumerate(rungs):
        cost += reach * rung.cost
        keep = 1.0 if index == len(rungs) - 1 else rung.accept
        resolved += reach * keep * rung.resolved
        reach = reach * (1.0 - rung.accept)
    return resolved, cost


def cap_choices(table: RunTable, model: str) -> list[int | None]:
    """None, and a few quantiles of the model's call counts on these tasks."""
    calls = sorted(table.run(t, model).calls for t in table.tasks)
    caps = {max(1, int(math.ceil(np.quantile(calls, q)))) for q in CAP_QUANTILES}
    return [None, *sorted(caps)]


def calibrate(
    train: RunTable,
    verifier: VerifierSpec,
    target: float,
    *,
    max_cheap: int = 2,
    top_within: float = 0.05,
    margin_se: float = 1.0,
) -> Calibration:
    """The cheapest policy (in expectation on ``train``) that keeps ``target`` of the best
    single model's resolved rate.

    A policy qualifies when its expected resolved rate, less ``margin_se`` standard errors
    of its per-task difference from the best single model, reaches ``target`` x the best
    single's rate; the margin guards against choosing a policy that only looks good on
    these tasks. The best single model always qualifies, so there is always an answer.

    Args:
        train: The training split.
        verifier: The verifier's quality.
        target: Share of the best single model's resolved rate to keep, in (0, 1].
        max_cheap: At most this many cheaper rungs below the top one.
        top_within: A top rung may be any model within this resolved rate of the best.
        margin_se: Safety margin in standard errors (0: none).

    Returns:
        The chosen policy and its training figures.

    Raises:
        DataError: ``target`` is not in (0, 1].

    Example:
        ```python
        calibrate(table.subset(train), VerifierSpec(0.8, 0.1), 0.99).policy
        ```
    """
    if not 0.0 < target <= 1.0:
        raise DataError(f"--target {target}: give a share of the best model's rate in (0, 1]")
    best_model, best_rate, best_cost = best_single(train)
    n = len(train.tasks)
    best_arr = _arrays(train, best_model, None, verifier).resolved
    mean_cost = {m: sum(train.run(t, m).cost_usd for t in train.tasks) / n for m in train.models}
    rate = {m: sum(train.run(t, m).resolved for t in train.tasks) / n for m in train.models}
    arrays = {
        (m, c): _arrays(train, m, c, verifier) for m in train.models for c in cap_choices(train, m)
    }
    caps = {m: [c for (mm, c) in arrays if mm == m] for m in train.models}
    chosen = single(best_model)
    chosen_cost, chosen_rate, count = best_cost, best_rate, 0
    for top in (m for m in train.models if rate[m] >= best_rate - top_within):
        cheaper = sorted(
            (m for m in train.models if mean_cost[m] < mean_cost[top]), key=mean_cost.__getitem__
        )
        for size in range(0, max_cheap + 1):
            for rungs in itertools.combinations(cheaper, size):
                for cap_set in itertools.product(*(caps[m] for m in rungs)):
                    count += 1
                    ladder = (*rungs, top)
                    parts = [arrays[(m, c)] for m, c in zip(rungs, cap_set, strict=True)]
                    resolved, cost = _expected([*parts, arrays[(top, None)]])
                    diff = resolved - best_arr
                    se = float(diff.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
                    rate_hat = float(resolved.mean())
                    if rate_hat - margin_se * se < target * best_rate - 1e-12:
                        continue
                    total = float(cost.sum())
                    if total < chosen_cost - 1e-12:
                        chosen = RunPolicy(ladder=ladder, step_caps=(*cap_set, None))
                        chosen_cost, chosen_rate = total, rate_hat
    logger.info("calibrated over %d candidate policies on %d tasks", count, n)
    return Calibration(
        policy=chosen,
        train_tasks=n,
        train_resolved_rate=chosen_rate,
        train_cost_usd=chosen_cost,
        best_single_model=best_model,
        best_single_resolved_rate=best_rate,
        best_single_cost_usd=best_cost,
        candidates=count,
    )
