"""LearnedRouter: per-tier P(success) from prompt features, cost-aware tier choice.

Decision rule (the knob ``lam`` is calibrated from data, see ``train.py``)::

    suggested_tier = argmax_t  p(t) - lam * cost(t) / cost_ref

A calibrated operating point may be *mixed*: a share ``mix`` of prompts (those whose
crc32 coin ``crc32(text) / 2**32 < mix``) use the next, cheaper knob value ``lam_next``.
That is the deterministic version of mixing two operating points, so the quality target
is met on the chord between them rather than at the next grid point (many prompts of one
format share a prediction, and the plain rule would move them all at once).

``p(t)`` is the bundle model mapped to tier t (manifest ``tier_map``); ``cost(t)`` is the
price of tier t (``cost_per_1k_input/output``, else genai-prices) times the prompt's estimated
input tokens and the predicted output tokens; ``cost_ref`` is the top tier's cost for an
average training prompt, so ``lam`` is in "accuracy per top-tier call" and carries over
to any price list. ``lam`` is the value that kept ``config.routing.quality_target`` of the
best tier's accuracy at the lowest cost on the out-of-fold validation predictions.

How the seed's thresholds act (in ``policy.decide``, on ``Assessment.p_success``): a
tier whose predicted success is below ``safety_threshold`` is never trusted (the policy
escalates past it), and when a cheaper tier's predicted success reaches
``downgrade_threshold`` the policy may take it. Task floors, per-call constraints
(``max_cost_usd``, ``max_latency_ms``, ``min_quality`` against ``p_success``) and
local-first also apply there, on top of this assessment.

Usage::

    from aco_langchain.routing.learned import load_router
    router = load_router()                      # shipped bundle
    a = router.assess(RouteRequest.from_text("Write a quicksort in Rust"), ACOConfig())
    a.suggested_tier, a.p_success
"""

from __future__ import annotations

import math
import zlib
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from aco_langchain.providers.tiers import price_per_1k
from aco_langchain.routing.base import Assessment, Complexity, RouteRequest
from aco_langchain.routing.bundle import Bundle, OperatingPoint, load_bundle
from aco_langchain.routing.features import DENSE_CLIP, Featurizer
from aco_langchain.routing.rules import text_signals
from aco_langchain.routing.training.datasets import CHARS_PER_TOKEN

if TYPE_CHECKING:
    from aco_langchain.config import ACOConfig

_TIERS = (1, 2, 3, 4, 5)
_COMPLEXITY: dict[int, Complexity] = {
    1: "simple",
    2: "simple",
    3: "moderate",
    4: "complex",
    5: "critical",
}


def _pick_operating_point(points: list[OperatingPoint], target: float) -> OperatingPoint:
    """The calibrated point for the smallest quality target >= ``target``."""
    above = [p for p in points if p.quality_target >= target - 1e-9]
    if above:
        return min(above, key=lambda p: p.quality_target)
    return max(points, key=lambda p: p.quality_target)


class LearnedRouter:
    """Router backed by a trained bundle (numpy only at inference; no I/O in ``assess``)."""

    name = "learned"

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        man = bundle.manifest
        a = bundle.arrays
        self.featurizer = Featurizer(man.feature_spec)
        cols = [man.models.index(man.tier_model(t)) for t in _TIERS]
        self.tier_models = [man.tier_model(t) for t in _TIERS]
        # Per-tier contiguous weights: the gather touches 5 columns, not all models.
        self._w_hash = np.ascontiguousarray(a["w_hash"][:, cols], dtype=np.float32)
        # dense weights of the 5 tiers and the output-token regression: one matvec
        self._w_dense = np.ascontiguousarray(
            np.hstack([a["w_dense"][:, cols], a["out_w"][:-1, None]]), dtype=np.float64
        )
        self._bias = np.append(a["bias"][cols], a["out_w"][-1]).astype(np.float64)
        self._mean = a["dense_mean"].astype(np.float64)
        self._inv_std = 1.0 / a["dense_std"].astype(np.float64)
        self._edges = list(man.difficulty_edges)
        self._points = man.tier_operating_points or man.operating_points
        self._tok_in = man.token_reference.get("input", 500.0)
        self._tok_out = man.token_reference.get("output", 100.0)
        self._cfg_cache: dict[
            tuple[float, ...], tuple[np.ndarray, np.ndarray, float, float, float, float]
        ] = {}

    # -- per-config precomputation (prices, knob), cached on the instance
    def _config_terms(
        self, config: ACOConfig
    ) -> tuple[np.ndarray, np.ndarray, float, float, float, float]:
        prices = [price_per_1k(config.tier(t)) for t in _TIERS]  # config, else genai-prices
        pin = [p[0] for p in prices]
        pout = [p[1] for p in prices]
        key = (config.routing.quality_target, *pin, *pout)
        hit = self._cfg_cache.get(key)
        if hit is not None:
            return hit
        pin_a = np.array(pin) / 1000.0
        pout_a = np.array(pout) / 1000.0
        ref_costs = pin_a * self._tok_in + pout_a * self._tok_out
        ref = float(ref_costs[-1]) if ref_costs[-1] > 0 else float(ref_costs.max())
        op = _pick_operating_point(self._points, config.routing.quality_target)
        lam_next = op.lam_next if op.lam_next is not None else op.lam
        terms = (pin_a, pout_a, ref if ref > 0 else 1.0, op.lam, lam_next, op.mix)
        if len(self._cfg_cache) > 32:
            self._cfg_cache.clear()
        self._cfg_cache[key] = terms
        return terms

    def predict(self, request: RouteRequest) -> tuple[np.ndarray, float, float]:
        """P(success) per tier (array of 5), estimated input and output tokens."""
        text = request.text
        low = text.lower()
        fz = self.featurizer
        idx, w = fz.hashed(text, low)
        dense = fz.dense(text, request.roles, request.n_tools, request.last_user_text, low)
        dz = (dense - self._mean) * self._inv_std
        np.clip(dz, -DENSE_CLIP, DENSE_CLIP, out=dz)
        zd = dz @ self._w_dense + self._bias
        z = w @ np.take(self._w_hash, idx, axis=0) + zd[:5]
        p = 1.0 / (1.0 + np.exp(-z))
        tok_in = max(1.0, len(text) / CHARS_PER_TOKEN)
        if request.expected_output_tokens is not None:
            tok_out = float(request.expected_output_tokens)
        else:
            tok_out = math.exp(min(12.0, float(zd[5])))
        return p, tok_in, tok_out

    def assess(self, request: RouteRequest, config: ACOConfig) -> Assessment:
        """Per-tier success, difficulty and the cost-aware suggested tier (no I/O)."""
        p, tok_in, tok_out = self.predict(request)
        pin, pout, ref, lam, lam_next, mix = self._config_terms(config)
        if mix > 0.0 and zlib.crc32(request.text.encode("utf-8", "replace")) < mix * 2**32:
            lam = lam_next  # mixed operating point: this prompt's coin takes the next knob
        cost = pin * tok_in + pout * tok_out
        util = p - lam * cost / ref
        best = int(np.argmax(util))
        tier = best + 1
        mean_p = float(p.mean())
        difficulty = 1 + sum(1 for e in self._edges if mean_p < e)
        target = config.routing.quality_target
        task_type, risk = text_signals(request.routing_text)
        reason = (
            f"learned: tier {tier} maximises p - {lam:.3g} x cost/ref "
            f"(p(t{tier})={p[best]:.2f}, p(t5)={p[-1]:.2f}, "
            f"lam calibrated for {target:.0%} of best-tier quality)"
        )
        return Assessment(
            task_type=task_type,
            difficulty=min(5, max(1, difficulty)),
            complexity=_COMPLEXITY[min(5, max(1, difficulty))],
            suggested_tier=tier,
            confidence=float(min(1.0, max(0.0, p[best]))),
            p_success=dict(zip(_TIERS, p.tolist(), strict=True)),
            reason=reason,
            router=self.name,
            risk=risk,
        )


@lru_cache(maxsize=8)
def _load_cached(path: str | None) -> LearnedRouter:
    return LearnedRouter(load_bundle(path))


def load_router(path: str | None = None) -> LearnedRouter:
    """The learned router of bundle directory ``path`` (None: the shipped default).

    Loaded once per path (``functools.lru_cache``); raises ``BundleError`` for a
    missing, tampered or unknown-version bundle.

    Usage::

        router = load_router()            # or load_router("my_bundle/")
    """
    return _load_cached(path)
