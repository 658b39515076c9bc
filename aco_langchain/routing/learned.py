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

import bisect
import math
import zlib
from collections.abc import Sequence
from functools import lru_cache
from operator import attrgetter
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from aco_langchain.config import TIER_KEYS
from aco_langchain.pricing import price_per_1k
from aco_langchain.routing.base import Assessment, Complexity, RouteRequest
from aco_langchain.routing.bundle import Bundle, OperatingPoint, load_bundle
from aco_langchain.routing.features import DENSE_CLIP, Featurizer, normalize_prompt
from aco_langchain.routing.rules import (
    prompt_words,
    rule_difficulty,
    success_values,
    text_signals,
)
from aco_langchain.routing.training.datasets import CHARS_PER_TOKEN

if TYPE_CHECKING:
    from aco_langchain.config import ACOConfig

_TIERS = (1, 2, 3, 4, 5)
#: What a tier's price per token is computed from (``price_per_1k``).
_PRICED_BY = attrgetter(
    "cost_per_1k_input", "cost_per_1k_output", "is_local", "provider", "model", "model_id"
)
_COMPLEXITY: dict[int, Complexity] = {
    1: "simple",
    2: "simple",
    3: "moderate",
    4: "complex",
    5: "critical",
}


class _ConfigTerms(NamedTuple):
    """What ``assess`` needs of a config, computed once per distinct config."""

    pin: list[float]  # USD per input token, tiers 1-5
    pout: list[float]  # USD per output token
    ref: float  # the top tier's cost of an average training prompt
    lam: float
    lam_next: float  # the mixed share's knob (lam when not mixed)
    mix: float
    lam_s: str  # lam as the reason prints it
    next_s: str
    target: float  # routing.quality_target
    target_s: str


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
        self._normalize = man.feature_spec.normalize
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
        # Familiarity reads the features that varied in training (a constant one, such as
        # has_system on single-turn benchmark prompts, was stored with std 1 and says
        # nothing about how unlike the training prompts a prompt is).
        self._varied = a["dense_std"] != 1.0
        # the same features by index (a take is cheaper than a boolean mask per call)
        self._varied_at = np.flatnonzero(self._varied)
        self._n_varied = max(1, int(self._varied_at.shape[0]))
        self._edges = list(man.difficulty_edges)
        self._edges_sorted = sorted(self._edges)  # for a bisect: how many edges are above
        self._n_edges = len(self._edges_sorted)
        self._points = man.tier_operating_points or man.operating_points
        self._tok_in = man.token_reference.get("input", 500.0)
        self._tok_out = man.token_reference.get("output", 100.0)
        self._cfg_cache: dict[tuple[object, ...], _ConfigTerms] = {}

    # -- per-config precomputation (prices, knob), cached on the instance
    def _config_terms(self, config: ACOConfig) -> _ConfigTerms:
        # The key is what the terms are computed from (a config is mutable, so not its
        # identity): each tier's prices and what an unpriced tier's price is looked up by,
        # the quality target and the calibrated knob.
        models = config.models
        try:
            specs = [models[k] for k in TIER_KEYS]
        except KeyError:
            specs = list(map(config.tier, _TIERS))  # raises the ConfigError naming the tier
        key: tuple[object, ...] = tuple(map(_PRICED_BY, specs))
        target = config.routing.quality_target
        cal = config.learning.calibration  # aco calibrate's knob, on the user's own data
        key += (target, cal.lam, cal.lam_next, cal.mix) if cal else (target,)
        hit = self._cfg_cache.get(key)
        if hit is not None:
            return hit
        pin: list[float] = []
        pout: list[float] = []
        for spec in specs:
            i, o = spec.cost_per_1k_input, spec.cost_per_1k_output
            if i is None or o is None:
                i, o = price_per_1k(spec)  # genai-prices (cached), $0 for a local tier
            pin.append(i)
            pout.append(o)
        pin_a = np.array(pin) / 1000.0
        pout_a = np.array(pout) / 1000.0
        ref_costs = pin_a * self._tok_in + pout_a * self._tok_out
        ref = float(ref_costs[-1]) if ref_costs[-1] > 0 else float(ref_costs.max())
        if cal is not None:
            lam, lam_next, mix = cal.lam, cal.lam_next, cal.mix
        else:
            op = _pick_operating_point(self._points, target)
            lam, lam_next, mix = op.lam, op.lam_next, op.mix
        nxt = lam_next if lam_next is not None else lam
        # USD per token as Python floats: the five-tier arithmetic per call is Python's (the
        # same IEEE operations numpy did, without its per-call overhead on 5 numbers); the
        # knobs and the target as the reason prints them
        terms = _ConfigTerms(
            pin_a.tolist(),
            pout_a.tolist(),
            ref if ref > 0 else 1.0,
            lam,
            nxt,
            mix,
            f"{lam:.3g}",
            f"{nxt:.3g}",
            target,
            f"{target:.0%}",
        )
        if len(self._cfg_cache) > 32:
            self._cfg_cache.clear()
        self._cfg_cache[key] = terms
        return terms

    def ask_text(self, request: RouteRequest) -> str:
        """What the router judges: the latest user turn (else the whole text), normalised
        (``normalize_prompt``) when the bundle was trained that way. A system prompt, the
        history and tool results are not the ask; they enter as structure (roles, turns,
        tools) and as the input tokens that are priced."""
        ask = request.routing_text
        return normalize_prompt(ask) if self.featurizer.spec.normalize else ask

    def predict(self, request: RouteRequest) -> tuple[np.ndarray, float, float]:
        """P(success) per tier (array of 5), the ask's input tokens and *predicted* output
        tokens.

        The output tokens are the model's prediction, never the call's cap: a cap bounds
        what an answer may cost, it does not make a stronger tier preferable.
        """
        p, tok_in, tok_out, _, _ = self._predict(request, self.ask_text(request))
        return np.array(p, dtype=np.float64), tok_in, tok_out

    def _predict(
        self, request: RouteRequest, ask: str
    ) -> tuple[list[float], float, float, float, bytes]:
        """P(success) per tier, input and predicted output tokens, structure distance, and
        the ask's UTF-8 bytes."""
        fz = self.featurizer
        if self._normalize:  # a normalised ask is lower-cased already: one encoding
            idx, w, dz, raw = fz.lowered_features(ask, request.roles, request.n_tools)
        else:
            idx, w = fz.hashed(ask)
            dz = fz.dense(ask, request.roles, request.n_tools, ask)
            raw = ask.encode("utf-8", "replace")
        # a fresh array: standardised in place (the same two operations)
        dz -= self._mean
        dz *= self._inv_std
        # np.clip's Python wrapper costs ~2 us on 16 numbers; the two ufuncs do the same
        np.minimum(np.maximum(dz, -DENSE_CLIP, out=dz), DENSE_CLIP, out=dz)
        zd = dz @ self._w_dense
        zd += self._bias
        zh = w @ self._w_hash.take(idx, axis=0)  # float32 (the same gather and sgemv)
        z = zh + zd[:5]  # float32 + float64: float64
        np.negative(z, out=z)
        np.exp(z, out=z)  # numpy's exp (its SIMD exp may differ from libm's in the last bit)
        # 1 / (1 + e) in Python floats: the same two correctly rounded IEEE operations
        p = [1.0 / (1.0 + e) for e in z.tolist()]
        # the ask's tokens: what the trade-off was trained on; a system prompt or history
        # is priced by the policy's constraints, it does not change which tier is right
        tok_in = max(1.0, len(ask) / CHARS_PER_TOKEN)
        tok_out = math.exp(min(12.0, float(zd[5])))
        # distance from the training prompts: mean squared z of the structure features
        # (about 1 on the training data by construction, see familiarity())
        dv = dz.take(self._varied_at)
        return p, tok_in, tok_out, float(dv @ dv) / self._n_varied, raw

    def assess(self, request: RouteRequest, config: ACOConfig) -> Assessment:
        """Per-tier success, difficulty and the cost-aware suggested tier (no I/O).

        A prompt unlike the training prompts (``familiarity`` below 1) has its predictions
        blended toward the rule router's, by ``1 - familiarity``; the reason says so.
        """
        ask = self.ask_text(request)
        ps, tok_in, tok_out, dist, raw = self._predict(request, ask)
        terms = self._config_terms(config)
        pin, pout, ref, lam, lam_next, mix, lam_s, next_s, target, target_s = terms
        if mix > 0.0 and zlib.crc32(raw) < mix * 2**32:
            # mixed operating point: this prompt's coin takes the next knob
            lam, lam_s = lam_next, next_s
        # The keyword rules read the normalised ask once: task type and risk always, the
        # complexity curve only when the prediction is blended toward it.
        norm = ask if self._normalize else normalize_prompt(request.routing_text)
        # norm is lower-cased already (normalize_prompt); lowering ASCII again is a no-op
        low = norm if norm.isascii() else norm.lower()
        words = prompt_words(low)
        task_type, risk = text_signals(norm, words, low)
        fam = familiarity(dist)
        # Python floats: five numbers each, the same IEEE operations in the same order as
        # numpy's elementwise ones (bit for bit), without numpy's per-call overhead
        blend = ""
        if fam < 1.0:
            curve = success_values(rule_difficulty(norm, words)[1])
            keep = 1.0 - fam
            ps = [fam * a + keep * c for a, c in zip(ps, curve, strict=True)]
            blend = (
                f"; unlike the training prompts (structure distance {dist:.1f}): "
                f"{keep:.0%} rule-router prior"
            )
        # predicted output: a cap never enters
        cost = [i * tok_in + o * tok_out for i, o in zip(pin, pout, strict=True)]
        scores = [a - lam * c / ref for a, c in zip(ps, cost, strict=True)]
        best = scores.index(max(scores))  # the first best, as argmax
        reason = (
            f"learned: tier {best + 1} maximises p - {lam_s} x cost/ref "
            f"(p(t{best + 1})={ps[best]:.2f}, p(t5)={ps[-1]:.2f}, "
            f"lam calibrated for {target_s} of best-tier quality){blend}"
        )
        if fam < 1.0:
            # The calibrated knob was measured on prompts like the training ones; for the
            # others the cheapest tier predicted to meet the quality target is taken when it
            # is cheaper than the knob's choice (cost only orders the tiers there).
            cheap = cheapest_meeting(ps, cost, target)
            if cost[cheap] < cost[best]:
                best = cheap
                reason += (
                    f"; tier {best + 1} is the cheapest predicted to reach {target_s} "
                    f"of the best tier (p={ps[best]:.2f}, max {max(ps):.2f})"
                )
        mean_p = sum(ps) / 5
        above = self._n_edges - bisect.bisect_right(self._edges_sorted, mean_p)
        difficulty = min(5, max(1, 1 + above))  # 1 + the edges mean_p is below
        # Built from validated parts (tiers 1-5, probabilities in [0, 1]): no re-validation
        # on the routing hot path.
        return Assessment.trusted(
            task_type=task_type,
            difficulty=difficulty,
            complexity=_COMPLEXITY[difficulty],
            suggested_tier=best + 1,
            confidence=min(1.0, max(0.0, ps[best])),
            p_success=dict(zip(_TIERS, ps, strict=True)),
            reason=reason,
            router=self.name,
            risk=risk,
        )


#: Structure distance (mean squared z of the dense features that varied in training) up
#: to which a prompt counts as like the training prompts, and the distance at which only
#: the rule-router prior is left. On the shipped bundle's training prompts the distance
#: has median 0.25, 90th percentile 3.7, 99th 4.8; on the labelled chat tasks of
#: tests/data median 4.1 (measured by benchmarks/router_quality.py).
FAMILIAR_DISTANCE = 3.7
UNFAMILIAR_DISTANCE = 6.0


def cheapest_meeting(
    p: Sequence[float] | np.ndarray, cost: Sequence[float] | np.ndarray, share: float
) -> int:
    """Index of the cheapest tier whose ``p`` reaches ``share`` of the best ``p`` (ties:
    the lower tier).

    Example:
        ```python
        cheapest_meeting(np.array([0.8, 0.96, 0.99]), np.array([0.0, 1.0, 2.0]), 0.95)  # 1
        ```
    """
    need = share * float(max(p))
    best = -1
    for i in range(len(p)):  # the lowest cost among those meeting it; ties: the lower i
        if p[i] >= need and (best < 0 or float(cost[i]) < float(cost[best])):
            best = i
    if best < 0:
        raise ValueError(f"no tier reaches {share} of the best p")
    return best


def familiarity(distance: float) -> float:
    """1 for a prompt like the training prompts, falling linearly to 0 between
    ``FAMILIAR_DISTANCE`` and ``UNFAMILIAR_DISTANCE`` (mean squared z of the structure
    features; the training prompts average about 1)."""
    if distance <= FAMILIAR_DISTANCE:
        return 1.0
    return max(
        0.0, 1.0 - (distance - FAMILIAR_DISTANCE) / (UNFAMILIAR_DISTANCE - FAMILIAR_DISTANCE)
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
