"""Cost-quality metrics of routers (definitions as in the routing data README).

* curve: sweep the router's knob; each point is (mean cost per query, mean accuracy);
* AIQ: area under the non-decreasing convex hull of the curve over
  [cheapest single model's mean cost, most expensive single model's mean cost] / range,
  the hull flat beyond its ends;
* cost reduction at 95%: 1 - (lowest mean cost of one operating point whose accuracy is
  >= 0.95 x the best single model's accuracy) / (that best model's mean cost);
* APGR, CPT(x) for two-model sets (RouteLLM): performance gap recovered against the
  share of calls sent to the strong model.

Usage::

    from aco_langchain.routing.training.evaluate import aiq, zero_router_points
    pts = zero_router_points(data.correct, data.cost)
    aiq(pts, c_lo, c_hi)
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

Point = tuple[float, float]  # (mean cost, accuracy)


def upper_hull(points: list[Point]) -> list[Point]:
    """The non-decreasing concave envelope of ``points`` (cost ascending)."""
    if not points:
        raise ValueError("no points")
    pts = sorted(set(points), key=lambda p: (p[0], -p[1]))
    # Cut everything past the cheapest point of maximal accuracy: beyond it the hull is flat.
    best = max(p[1] for p in pts)
    cut = next(i for i, p in enumerate(pts) if p[1] == best)
    pts = pts[: cut + 1]
    hull: list[Point] = []
    for p in pts:
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            # drop the middle point when it lies on or below the chord from hull[-2] to p
            if (y2 - y1) * (p[0] - x1) <= (p[1] - y1) * (x2 - x1):
                hull.pop()
            else:
                break
        if hull and p[0] == hull[-1][0]:
            continue
        hull.append(p)
    # The leftmost point may be beaten by a costlier one only through the chord; keep
    # the envelope non-decreasing by construction (concave up to its maximum).
    return hull


def hull_value(hull: list[Point], cost: float) -> float:
    """The hull's accuracy at ``cost`` (flat beyond its ends)."""
    xs = np.array([p[0] for p in hull])
    ys = np.array([p[1] for p in hull])
    return float(np.interp(cost, xs, ys))


def aiq(points: list[Point], c_lo: float, c_hi: float) -> float:
    """Average hull accuracy over [c_lo, c_hi] (RouterBench's AIQ)."""
    if c_hi <= c_lo:
        raise ValueError("AIQ needs c_hi > c_lo")
    hull = upper_hull(points)
    xs = np.array([p[0] for p in hull])
    ys = np.array([p[1] for p in hull])
    grid = np.unique(np.concatenate([[c_lo, c_hi], xs[(xs > c_lo) & (xs < c_hi)]]))
    vals = np.interp(grid, xs, ys)
    area = float(np.sum((vals[1:] + vals[:-1]) * np.diff(grid) / 2.0))
    return area / (c_hi - c_lo)


def single_model_points(correct: np.ndarray, cost: np.ndarray) -> list[Point]:
    """(mean cost, accuracy) of always using each model."""
    return [(float(cost[:, j].mean()), float(correct[:, j].mean())) for j in range(cost.shape[1])]


def best_single(correct: np.ndarray, cost: np.ndarray) -> tuple[int, float, float]:
    """Index, accuracy and mean cost of the most accurate model (ties: the cheaper)."""
    pts = single_model_points(correct, cost)
    j = min(range(len(pts)), key=lambda k: (-pts[k][1], pts[k][0]))
    return j, pts[j][1], pts[j][0]


def oracle(correct: np.ndarray, cost: np.ndarray) -> dict[str, float]:
    """The cheapest correct model per prompt (the cheapest model when none is correct)."""
    ok = correct >= 0.5
    masked = np.where(ok, cost, np.inf)
    pick = np.where(ok.any(axis=1), masked.argmin(axis=1), cost.argmin(axis=1))
    rows = np.arange(cost.shape[0])
    return {
        "accuracy": float(correct[rows, pick].mean()),
        "mean_cost": float(cost[rows, pick].mean()),
    }


def choices_points(choices: np.ndarray, correct: np.ndarray, cost: np.ndarray) -> list[Point]:
    """(mean cost, accuracy) of each row of ``choices`` (points x prompts, model indices)."""
    rows = np.arange(correct.shape[0])
    return [
        (float(cost[rows, c].mean()), float(correct[rows, c].mean())) for c in np.asarray(choices)
    ]


def cost_reduction_at(
    points: list[Point], correct: np.ndarray, cost: np.ndarray, level: float = 0.95
) -> tuple[float, int | None]:
    """1 - cheapest point with acc >= level x best single accuracy / best single cost.

    Returns (reduction, index of that point); (0.0, None) when no point reaches it... a
    negative reduction is possible when the only qualifying point costs more.
    """
    _, best_acc, best_cost = best_single(correct, cost)
    i = cheapest_at(points, level * best_acc)
    if i is None:
        return 0.0, None
    return 1.0 - points[i][0] / best_cost, i


def cheapest_at(points: list[Point], accuracy: float) -> int | None:
    """Index of the cheapest point whose accuracy reaches ``accuracy`` (None: no point does).

    Ties in cost go to the earlier point.
    """
    target = accuracy - 1e-12
    ok = [(c, i) for i, (c, a) in enumerate(points) if a >= target]
    return min(ok)[1] if ok else None


def pgr_curve(scores: np.ndarray, correct: np.ndarray, strong: int, weak: int) -> np.ndarray:
    """PGR for each number of strong calls k = 0..n (prompts ranked by ``scores``, high first).

    Ties in ``scores`` are broken by prompt order (stable), so the curve is deterministic.
    """
    order = np.argsort(-scores, kind="stable")
    gain = (correct[:, strong] - correct[:, weak])[order]
    n = correct.shape[0]
    acc = (correct[:, weak].sum() + np.concatenate([[0.0], np.cumsum(gain)])) / n
    a_w, a_s = correct[:, weak].mean(), correct[:, strong].mean()
    if a_s == a_w:
        return np.zeros(n + 1)
    share: np.ndarray = (acc - a_w) / (a_s - a_w)
    return share


def apgr(scores: np.ndarray, correct: np.ndarray, strong: int, weak: int) -> dict[str, float]:
    """APGR (area under PGR vs strong-call share) and CPT(50%), CPT(80%)."""
    pgr = pgr_curve(scores, correct, strong, weak)
    n = correct.shape[0]
    share = np.arange(n + 1) / n
    area = float(np.sum((pgr[1:] + pgr[:-1]) * np.diff(share) / 2.0))
    out = {"apgr": area}
    for lvl in (0.5, 0.8):
        hit = np.flatnonzero(pgr >= lvl)
        out[f"cpt_{int(lvl * 100)}"] = float(share[hit[0]]) if hit.size else 1.0
    return out


def sweep_choices(p: np.ndarray, c_norm: np.ndarray, lambdas: np.ndarray) -> np.ndarray:
    """Choices (len(lambdas) x n) of the rule argmax_m p[i, m] - lambda * c_norm[i, m]."""
    return np.stack([np.argmax(p - lam * c_norm, axis=1) for lam in lambdas])


def prompt_uniform(text: str) -> float:
    """A deterministic number in [0, 1) from the prompt (crc32): the coin of mixed points."""
    return zlib.crc32(text.encode("utf-8", "replace")) / 4294967296.0


def mixed_sweep(
    p: np.ndarray,
    c_norm: np.ndarray,
    lambdas: np.ndarray,
    u: np.ndarray,
    fracs: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Choices of the knob grid plus mixed points between neighbouring knob values.

    A mixed point (lam_i, frac) sends a prompt through ``lam_{i+1}`` when its coin
    ``u < frac`` and through ``lam_i`` otherwise: the derandomised mix of two operating
    points, so the router's curve follows the chord between them (what AIQ's hull
    assumes) instead of jumping when many prompts share a prediction. The coin is a
    hash of the prompt, independent of the outcome. Returns (choices, lam index, frac)
    with frac = 0 for the plain grid points.
    """
    fracs = np.arange(0.05, 0.951, 0.05) if fracs is None else fracs
    base = sweep_choices(p, c_norm, lambdas)
    out = [base]
    idx = [np.arange(len(lambdas))]
    fr = [np.zeros(len(lambdas))]
    for i in range(len(lambdas) - 1):
        a, b = base[i], base[i + 1]
        if np.array_equal(a, b):
            continue
        out.append(np.where(u[None, :] < fracs[:, None], b[None, :], a[None, :]))
        idx.append(np.full(len(fracs), i))
        fr.append(fracs)
    return np.concatenate(out), np.concatenate(idx), np.concatenate(fr)


def default_lambdas(n: int = 161) -> np.ndarray:
    """The knob grid: 0, then log-spaced 1e-4 .. 1e3, then infinity-like (cheapest)."""
    return np.concatenate([[0.0], np.logspace(-4, 3, n - 2), [1e9]])


def report(
    models: list[str],
    correct: np.ndarray,
    cost: np.ndarray,
    choices: np.ndarray,
    knobs: np.ndarray,
    pair_scores: np.ndarray | None = None,
    mixes: np.ndarray | None = None,
) -> dict[str, Any]:
    """The full metrics dict ``aco eval --json`` writes.

    ``mixes`` (from ``mixed_sweep``): per curve point, the share of prompts moved to the
    next knob value (0 for plain points); reported beside each knob.
    """
    mixes = np.zeros(len(knobs)) if mixes is None else mixes
    singles = single_model_points(correct, cost)
    c_lo = min(p[0] for p in singles)
    c_hi = max(p[0] for p in singles)
    pts = choices_points(choices, correct, cost)
    red, idx = cost_reduction_at(pts, correct, cost)
    j_best, best_acc, best_cost = best_single(correct, cost)
    orc = oracle(correct, cost)
    router: dict[str, Any] = {
        "aiq": aiq(pts, c_lo, c_hi),
        "cost_reduction_at_95": red,
        "point_at_95": None
        if idx is None
        else {
            "knob": float(knobs[idx]),
            "mix": float(mixes[idx]),
            "mean_cost": pts[idx][0],
            "accuracy": pts[idx][1],
        },
        "curve": [
            {"knob": float(k), "mix": float(f), "mean_cost": c, "accuracy": a}
            for k, f, (c, a) in zip(knobs, mixes, pts, strict=True)
        ],
    }
    zr_red, _ = cost_reduction_at(singles, correct, cost)
    out: dict[str, Any] = {
        "n_prompts": int(correct.shape[0]),
        "models": {
            m: {"accuracy": a, "mean_cost": c} for m, (c, a) in zip(models, singles, strict=True)
        },
        "best_single": {
            "model": models[j_best],
            "accuracy": best_acc,
            "mean_cost": best_cost,
            "cost_usd_mean": best_cost,
        },
        "oracle": {**orc, "aiq": aiq([*singles, (orc["mean_cost"], orc["accuracy"])], c_lo, c_hi)},
        "zero_router": {"aiq": aiq(singles, c_lo, c_hi), "cost_reduction_at_95": zr_red},
        "router": router,
    }
    if len(models) == 2 and pair_scores is not None:
        strong = int(np.argmax([p[1] for p in singles]))
        weak = 1 - strong
        router.update(apgr(pair_scores, correct, strong, weak))
        rng = np.random.default_rng(0)
        coins = np.asarray(rng.random(correct.shape[0]))
        out["random_router"] = apgr(coins, correct, strong, weak)
    return out
