"""Packed n-gram hashing and mixed operating points of the learned router."""

from __future__ import annotations

import zlib

import numpy as np

from aco_langchain.config import ACOConfig
from aco_langchain.routing import learned
from aco_langchain.routing.base import RouteRequest
from aco_langchain.routing.bundle import OperatingPoint
from aco_langchain.routing.features import FeatureSpec, Featurizer, normalize_prompt
from aco_langchain.routing.learned import load_router
from aco_langchain.routing.training import evaluate as ev


def test_packed_hash_counts_every_4gram_once() -> None:
    fz = Featurizer(FeatureSpec())
    idx, w = fz.hashed("Hello World")  # 11 bytes -> 8 four-grams of "hello world"
    assert idx.shape == (8,) and w.shape == (8,)
    assert np.allclose(w, 1 / np.sqrt(8))
    assert idx.min() >= 0 and idx.max() < FeatureSpec().n_buckets
    # a bag of n-grams: the same 4-grams in another order hash to the same buckets
    idx2, _ = fz.hashed("hello world")
    assert sorted(idx.tolist()) == sorted(idx2.tolist())
    # repeated 4-grams stay repeated ("aaaaa" has "aaaa" twice)
    idx3, _ = fz.hashed("aaaaa")
    assert idx3.shape == (2,) and idx3[0] == idx3[1]
    assert fz.hashed("abc")[0].shape == (0,)


def test_mixed_sweep_interpolates_between_neighbours() -> None:
    # two prompts per "format", identical predictions: the plain grid jumps both at once
    p = np.array([[0.9, 0.6]] * 200)
    c = np.array([[1.0, 0.1]] * 200)
    correct = np.column_stack([np.ones(200), np.r_[np.ones(100), np.zeros(100)]])
    u = np.array([ev.prompt_uniform(f"prompt {i}") for i in range(200)])
    lams = np.array([0.0, 1.0])
    choices, lam_idx, fracs = ev.mixed_sweep(p, c, lams, u)
    assert choices.shape == (2 + 19, 200)
    assert (fracs[:2] == 0).all() and np.allclose(fracs[2:], np.arange(0.05, 0.951, 0.05))
    assert (lam_idx[2:] == 0).all()
    # a mixed point routes exactly the prompts whose coin is below frac to the next knob
    k = 2 + 9  # frac 0.5
    assert np.array_equal(choices[k] == 1, u < fracs[k])
    share = [float((ch == 1).mean()) for ch in choices[2:]]
    assert share == sorted(share)  # more prompts move as frac grows
    pts = ev.choices_points(choices, correct, c)
    assert all(pts[1][0] <= cst <= pts[0][0] for cst, _ in pts[2:])


def test_learned_router_applies_the_mixed_point(monkeypatch) -> None:
    # the calibrated knob (and its mixed point) decides for prompts like the training ones;
    # count these short questions as such here
    monkeypatch.setattr(learned, "FAMILIAR_DISTANCE", 1e9)
    router = load_router()
    cfg = ACOConfig()
    texts = [f"Question {i}: what is the capital of country number {i}?" for i in range(40)]
    op = OperatingPoint(
        quality_target=1.0, lam=0.0, lam_next=1e9, mix=0.5, val_accuracy=1, val_cost_share=1
    )
    router._points = [op]
    router._cfg_cache.clear()
    try:
        for t in texts:
            a = router.assess(RouteRequest.from_text(t), cfg)
            coin = zlib.crc32(normalize_prompt(t).encode()) / 2**32  # the ask, normalised
            p = router.predict(RouteRequest.from_text(t))[0]
            if coin < 0.5:  # lam_next = 1e9: the cheapest configured tier
                assert a.suggested_tier == 1
            else:  # lam = 0: the most likely tier to succeed
                assert a.suggested_tier == int(np.argmax(p)) + 1
    finally:
        router._points = router.bundle.manifest.tier_operating_points
        router._cfg_cache.clear()
