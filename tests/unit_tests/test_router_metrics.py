"""Router metrics on tiny hand-computed sets: AIQ, cost reduction at 95%, APGR, CPT."""

from __future__ import annotations

import numpy as np
import pytest

from aco_langchain.routing.training import evaluate as ev


def test_aiq_of_two_points_is_the_trapezoid() -> None:
    # Line from (1, 0.5) to (3, 0.9): mean height over [1, 3] is 0.7.
    assert ev.aiq([(1.0, 0.5), (3.0, 0.9)], 1.0, 3.0) == pytest.approx(0.7)


def test_aiq_hull_ignores_points_below_and_is_flat_beyond_ends() -> None:
    pts = [(1.0, 0.5), (2.0, 0.6), (3.0, 0.9)]  # (2, 0.6) lies under the chord (0.7)
    assert ev.aiq(pts, 1.0, 3.0) == pytest.approx(0.7)
    # A cheap point at 0.8: hull (1,.8)->(3,.9) = mean .85; flat from 0 to 1 at .8.
    pts2 = [(1.0, 0.8), (3.0, 0.9)]
    assert ev.aiq(pts2, 0.0, 3.0) == pytest.approx((0.8 * 1 + 0.85 * 2) / 3)
    # Non-decreasing: a costlier but worse point does not pull the hull down.
    assert ev.aiq([(1.0, 0.9), (3.0, 0.5)], 1.0, 3.0) == pytest.approx(0.9)


def test_singles_oracle_and_cost_reduction() -> None:
    correct = np.array([[1, 1], [0, 1], [1, 1], [0, 0]], dtype=float)
    cost = np.array([[1, 10], [1, 10], [1, 10], [1, 10]], dtype=float)
    assert ev.single_model_points(correct, cost) == [(1.0, 0.5), (10.0, 0.75)]
    orc = ev.oracle(correct, cost)
    assert orc == {"accuracy": 0.75, "mean_cost": (1 + 10 + 1 + 1) / 4}
    # Router choices: point 0 always cheap, point 1 routes prompt 1 to the strong model.
    choices = np.array([[0, 0, 0, 0], [0, 1, 0, 0]])
    pts = ev.choices_points(choices, correct, cost)
    assert pts == [(1.0, 0.5), (pytest.approx(13 / 4), 0.75)]
    red, idx = ev.cost_reduction_at(pts, correct, cost, 0.95)
    assert idx == 1
    assert red == pytest.approx(1 - (13 / 4) / 10)


def test_apgr_and_cpt_by_hand() -> None:
    # weak = 0, strong = 1. Gains (strong - weak) per prompt: +1, 0, +1, 0.
    correct = np.array([[0, 1], [1, 1], [0, 1], [1, 1]], dtype=float)
    perfect = np.array([1.0, 0.0, 0.9, 0.1])  # routes the two gain prompts first
    out = ev.apgr(perfect, correct, strong=1, weak=0)
    # PGR over k = 0..4 strong calls: 0, .5, 1, 1, 1 -> trapezoid area = 0.75
    assert out["apgr"] == pytest.approx(0.75)
    assert out["cpt_50"] == pytest.approx(0.25)
    assert out["cpt_80"] == pytest.approx(0.5)
    worst = ev.apgr(-perfect, correct, strong=1, weak=0)
    # PGR: 0, 0, 0, .5, 1 -> area = 0.25
    assert worst["apgr"] == pytest.approx(0.25)


def test_report_shape_for_two_models() -> None:
    correct = np.array([[0, 1], [1, 1], [0, 1], [1, 0]], dtype=float)
    cost = np.array([[1, 5]] * 4, dtype=float)
    p = np.array([[0.2, 0.9], [0.8, 0.9], [0.3, 0.8], [0.9, 0.4]])
    knobs = ev.default_lambdas(11)
    rep = ev.report(
        ["weak", "strong"],
        correct,
        cost,
        ev.sweep_choices(p, cost / 5, knobs),
        knobs,
        p[:, 1] - p[:, 0],
    )
    assert set(rep) >= {"models", "oracle", "zero_router", "router"}
    assert {"aiq", "cost_reduction_at_95", "apgr", "curve"} <= set(rep["router"])
    # order 0, 2, 1, 3; gains +1, +1, 0, -1 -> PGR 0, 1, 2, 2, 1 (beats the strong model)
    assert rep["router"]["apgr"] == pytest.approx(1.375)
