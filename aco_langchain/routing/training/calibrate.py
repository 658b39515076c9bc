"""Calibrate the router's thresholds to a quality target on the user's own outcome data.

What ``aco calibrate`` and ``aco eval --config`` run. The router's decision on a prompt is
simulated from the bundle's predictions, the way ``LearnedRouter.assess`` and
``policy.decide`` take it at run time:

1. knob: the bundle's operating point for ``routing.quality_target`` gives ``lam`` (and,
   for a mixed point, ``lam_next`` for prompts whose crc32 coin is below ``mix``); the
   model maximising ``p - lam * cost / cost_reference`` is suggested;
2. ``safety_threshold``: a suggestion whose predicted success is below it moves up the
   price ladder to the first model that clears it (the top one when none does);
3. ``downgrade_threshold`` (with ``prefer_local``): when the cheapest model's predicted
   success reaches it, that model answers;
4. cascade (only when the data carries the cheapest model's answer confidence and the
   setting has a ``cascade_threshold``): the cheapest model answers first and the call
   escalates to the suggestion when its confidence is below the threshold (both billed).

The routed models are the data's models the bundle knows (with ``aco collect`` data:
the config's tiers, what runs); the price ladder is their mean cost on the data.

Choosing (``calibrate``): the data is split (stratified by task, seeded) into a
calibration part and a held-out part. On the calibration part every setting of the grid
(the bundle's quality targets x safety x downgrade [x cascade]) is simulated, and the
cheapest whose *lower* one-sided 95% confidence bound of ``accuracy - target x
best_accuracy`` (paired per prompt) is >= 0 is chosen: the bound, not the point
estimate, so selection over many settings does not overfit the calibration part.
Before/after are then measured on the held-out part with bootstrap 95% intervals, and
the guard rail (``is_worse``) refuses a choice that is worse there than the current one.

Usage::

    from aco_langchain.routing.training.calibrate import calibrate, Setting
    result = calibrate(bundle, data, target=0.95, config=cfg)
    result.chosen, result.after.quality_share, result.refused
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from aco_langchain.errors import TrainError
from aco_langchain.routing.training import evaluate as ev

if TYPE_CHECKING:
    from aco_langchain.config import ACOConfig
    from aco_langchain.routing.bundle import Bundle, OperatingPoint
    from aco_langchain.routing.training.datasets import OutcomeSet

log = logging.getLogger(__name__)

SAFETY_GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
DOWNGRADE_GRID = (0.8, 0.85, 0.9, 0.95, 1.0)
CASCADE_GRID = (None, 0.3, 0.5, 0.7, 0.9)
#: One-sided 95% normal quantile: the lower bound the chosen setting must clear.
Z_LOWER = 1.645
HELDOUT_SHARE = 0.3
BOOTSTRAP = 1000


@dataclass(frozen=True)
class Setting:
    """The thresholds calibrated (the config fields they are written to).

    The knob (``lam``, ``lam_next``, ``mix``) goes to ``learning.calibration``; without
    one the config runs the bundle's operating point for ``routing.quality_target``.
    """

    lam: float
    lam_next: float | None
    mix: float
    safety_threshold: float  # routing.safety_threshold
    downgrade_threshold: float  # routing.downgrade_threshold
    prefer_local: bool = True  # routing.prefer_local (read, never changed)
    cascade_threshold: float | None = None  # cascade.confidence_threshold (cascade on)

    @classmethod
    def from_config(cls, config: ACOConfig, points: list[OperatingPoint]) -> Setting:
        """The setting a config runs with now (``points``: the bundle's operating points)."""
        rs = config.routing
        cal = config.learning.calibration
        if cal is not None:
            lam, lam_next, mix = cal.lam, cal.lam_next, cal.mix
        else:
            op = _point_for(points, rs.quality_target)
            lam, lam_next, mix = op.lam, op.lam_next, op.mix
        cascade = config.cascade.confidence_threshold if config.cascade.enabled else None
        return cls(
            lam=lam,
            lam_next=lam_next,
            mix=mix,
            safety_threshold=rs.safety_threshold,
            downgrade_threshold=rs.downgrade_threshold,
            prefer_local=rs.prefer_local,
            cascade_threshold=cascade,
        )


@dataclass
class Predictions:
    """The bundle's view of a data set, restricted to the routed models."""

    models: list[str]  # routed models, price-ladder order (cheapest first)
    p: np.ndarray  # n x k predicted success
    c_norm: np.ndarray  # n x k predicted cost / cost_reference
    u: np.ndarray  # n prompt coins
    correct: np.ndarray  # n x k observed
    cost: np.ndarray  # n x k observed USD
    confidence: np.ndarray | None  # n cheapest model's answer confidence (None: no data)
    best_correct: np.ndarray  # n outcomes of the data's best single model
    best_cost: np.ndarray  # n its cost
    best_model: str
    points: list[OperatingPoint]

    def rows(self, idx: np.ndarray) -> Predictions:
        """The prompts ``idx`` only."""
        return Predictions(
            models=self.models,
            p=self.p[idx],
            c_norm=self.c_norm[idx],
            u=self.u[idx],
            correct=self.correct[idx],
            cost=self.cost[idx],
            confidence=None if self.confidence is None else self.confidence[idx],
            best_correct=self.best_correct[idx],
            best_cost=self.best_cost[idx],
            best_model=self.best_model,
            points=self.points,
        )


def predictions(bundle: Bundle, data: OutcomeSet) -> Predictions:
    """Predict every prompt of ``data`` with ``bundle`` (see the module docstring).

    Raises:
        TrainError: fewer than two of the data's models are known to the bundle.
    """
    from aco_langchain.routing.training.train import Fitted, coin_text, featurize

    man = bundle.manifest
    routed = [m for m in data.models if m in man.models]
    points = man.operating_points
    if len(routed) < 2:
        raise TrainError(
            f"the bundle knows {len(routed)} of the data's models {data.models}: train a "
            "bundle on this data first (aco train --data FILES --out DIR)"
        )
    if not points:
        raise TrainError("the bundle has no calibrated operating points: retrain it")
    dcols = [data.models.index(m) for m in routed]
    ladder = np.argsort([data.cost[:, j].mean() for j in dcols], kind="stable")
    routed = [routed[i] for i in ladder]
    dcols = [dcols[i] for i in ladder]
    bcols = [man.models.index(m) for m in routed]
    x, dense = featurize(data.prompts, man.feature_spec)
    p, c_hat = Fitted(bundle.arrays).predict(x, dense)
    j_best = ev.best_single(data.correct, data.cost)[0]
    conf = None
    if data.confidence is not None and np.isfinite(data.confidence[:, dcols[0]]).all():
        conf = data.confidence[:, dcols[0]]
    return Predictions(
        models=routed,
        p=p[:, bcols],
        c_norm=c_hat[:, bcols] / man.cost_reference,
        u=np.array([ev.prompt_uniform(coin_text(t, man.feature_spec)) for t in data.prompts]),
        correct=data.correct[:, dcols],
        cost=data.cost[:, dcols],
        confidence=conf,
        best_correct=data.correct[:, j_best],
        best_cost=data.cost[:, j_best],
        best_model=data.models[j_best],
        points=list(points),
    )


def _point_for(points: list[OperatingPoint], target: float) -> OperatingPoint:
    # the run-time choice of operating point, so simulation and routing agree
    from aco_langchain.routing.learned import _pick_operating_point

    return _pick_operating_point(points, target)


def knob_choices(pred: Predictions, s: Setting) -> np.ndarray:
    """The knob's suggestion per prompt (step 1)."""
    lam_next = s.lam_next if s.lam_next is not None else s.lam
    lam = np.where(pred.u < s.mix, lam_next, s.lam)
    choices: np.ndarray = np.argmax(pred.p - lam[:, None] * pred.c_norm, axis=1)
    return choices


def apply_thresholds(
    p: np.ndarray, picks: np.ndarray, safety: float, downgrade: float, prefer_local: bool
) -> np.ndarray:
    """Steps 2-3 on suggestions ``picks`` (n, or K x n for K knob values at once)."""
    k = p.shape[1]
    p_pick = np.take_along_axis(p, picks.T if picks.ndim == 2 else picks[:, None], axis=1)
    p_pick = p_pick.T if picks.ndim == 2 else p_pick[:, 0]
    unsafe = p_pick < safety
    if unsafe.any():
        ok = p >= safety  # n x k
        # first model above the pick that clears the bar: k - 1 when none does
        first_ok_from = np.full((p.shape[0], k + 1), k - 1)
        for j in range(k - 1, -1, -1):
            first_ok_from[:, j] = np.where(ok[:, j], j, first_ok_from[:, j + 1])
        nxt = np.minimum(picks + 1, k)
        up = np.take_along_axis(first_ok_from, nxt.T if picks.ndim == 2 else nxt[:, None], 1)
        up = up.T if picks.ndim == 2 else up[:, 0]
        picks = np.where(unsafe, up, picks)
    if prefer_local:
        picks = np.where(p[:, 0] >= downgrade, 0, picks)
    return picks


def choose(pred: Predictions, s: Setting) -> np.ndarray:
    """The routed model index per prompt under setting ``s`` (steps 1-3, pure)."""
    return apply_thresholds(
        pred.p, knob_choices(pred, s), s.safety_threshold, s.downgrade_threshold, s.prefer_local
    )


@dataclass(frozen=True)
class Outcome:
    """Per-prompt result of a setting: correct (0..1) and USD billed."""

    correct: np.ndarray
    cost: np.ndarray


def simulate(pred: Predictions, s: Setting) -> Outcome:
    """What setting ``s`` would have scored and cost on every prompt (step 4 included)."""
    correct, cost = _cascade(pred, choose(pred, s), s.cascade_threshold)
    return Outcome(correct=correct, cost=cost)


@dataclass
class Measured:
    """A setting measured on a split (what ``--json`` prints as ``before``/``heldout``)."""

    n: int
    accuracy: float
    cost_usd_mean: float
    quality_share: float  # accuracy / best single model's accuracy on the same prompts
    cost_share: float  # mean cost / best single model's mean cost
    ci95: list[float]  # bootstrap 95% interval of quality_share
    cost_share_ci95: list[float]
    meets_target: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-able."""
        return asdict(self)


def measure(pred: Predictions, s: Setting, target: float, seed: int = 0) -> Measured:
    """Quality and cost share of ``s`` on ``pred``'s prompts, with bootstrap intervals."""
    out = simulate(pred, s)
    n = out.correct.shape[0]
    b_acc, b_cost = float(pred.best_correct.mean()), float(pred.best_cost.mean())
    acc, cost = float(out.correct.mean()), float(out.cost.mean())
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(BOOTSTRAP, n))
    q = out.correct[idx].mean(axis=1) / np.maximum(pred.best_correct[idx].mean(axis=1), 1e-12)
    c = out.cost[idx].mean(axis=1) / np.maximum(pred.best_cost[idx].mean(axis=1), 1e-18)
    share = acc / b_acc if b_acc > 0 else 1.0
    return Measured(
        n=n,
        accuracy=acc,
        cost_usd_mean=cost,
        quality_share=share,
        cost_share=cost / b_cost if b_cost > 0 else 0.0,
        ci95=[float(np.quantile(q, 0.025)), float(np.quantile(q, 0.975))],
        cost_share_ci95=[float(np.quantile(c, 0.025)), float(np.quantile(c, 0.975))],
        meets_target=share >= target - 1e-12,
    )


def _cascade(
    pred: Predictions, picks: np.ndarray, threshold: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """(correct, cost) of ``picks`` (any leading shape, prompts last), cascade applied."""
    rows = np.arange(pred.p.shape[0])
    correct = pred.correct[rows, picks]
    cost = pred.cost[rows, picks]
    if threshold is not None and pred.confidence is not None:
        keep = (pred.confidence >= threshold) | (picks == 0)
        correct = np.where(keep, pred.correct[:, 0], correct)
        cost = np.where(keep, pred.cost[:, 0], pred.cost[:, 0] + cost)
    return correct, cost


def pick_setting(pred: Predictions, base: Setting, target: float) -> tuple[Setting, bool]:
    """The cheapest setting whose lower bound meets ``target`` on ``pred``.

    The grid: the knob sweep (``evaluate.mixed_sweep`` over ``default_lambdas``, mixed
    points included) x ``SAFETY_GRID`` x ``DOWNGRADE_GRID`` (x ``CASCADE_GRID`` when the
    data carries confidence). ``prefer_local`` is kept from ``base``.

    Returns (setting, met): when none meets it, the one with the highest lower bound
    (ties: cheaper) and ``met`` False.
    """
    lams = ev.default_lambdas()
    knobs, lam_idx, fracs = ev.mixed_sweep(pred.p, pred.c_norm, lams, pred.u)
    cascades = CASCADE_GRID if pred.confidence is not None else (base.cascade_threshold,)
    n = pred.p.shape[0]
    best_ok: tuple[float, Setting] | None = None
    best_any: tuple[float, float, Setting] | None = None
    for sf in SAFETY_GRID:
        for dg in DOWNGRADE_GRID:
            if sf > dg:
                continue
            picks = apply_thresholds(pred.p, knobs, sf, dg, base.prefer_local)
            for cc in cascades:
                correct, cost = _cascade(pred, picks, cc)
                d = correct - target * pred.best_correct[None, :]
                sd = d.std(axis=1, ddof=1) if n > 1 else np.zeros(d.shape[0])
                lb = d.mean(axis=1) - Z_LOWER * sd / np.sqrt(n)
                mean_cost = cost.mean(axis=1)
                passing = np.flatnonzero(lb >= 0.0)
                if passing.size:
                    # cheapest passing; among equal costs the first (smaller knob: safer)
                    k = int(passing[np.argmin(mean_cost[passing])])
                    if best_ok is None or mean_cost[k] < best_ok[0] - 1e-15:
                        best_ok = (
                            float(mean_cost[k]),
                            _setting(lams, lam_idx, fracs, k, sf, dg, base.prefer_local, cc),
                        )
                k = int(np.lexsort((mean_cost, -lb))[0])
                if best_any is None or (lb[k], -mean_cost[k]) > (best_any[0], -best_any[1]):
                    best_any = (
                        float(lb[k]),
                        float(mean_cost[k]),
                        _setting(lams, lam_idx, fracs, k, sf, dg, base.prefer_local, cc),
                    )
    if best_ok is not None:
        return best_ok[1], True
    assert best_any is not None
    return best_any[2], False


def _setting(
    lams: np.ndarray,
    lam_idx: np.ndarray,
    fracs: np.ndarray,
    i: int,
    safety: float,
    downgrade: float,
    prefer_local: bool,
    cascade: float | None,
) -> Setting:
    j = int(lam_idx[i])
    mixed = fracs[i] > 0
    return Setting(
        lam=float(lams[j]),
        lam_next=float(lams[j + 1]) if mixed else None,
        mix=float(fracs[i]),
        safety_threshold=safety,
        downgrade_threshold=downgrade,
        prefer_local=prefer_local,
        cascade_threshold=cascade,
    )


def is_worse(new: Measured, current: Measured) -> bool:
    """Is ``new`` worse than ``current`` on the same prompts? (the guard rail)

    Meeting the target beats missing it; between two that meet it the cheaper is better;
    between two that miss it the one keeping more quality is better.
    """
    if new.meets_target != current.meets_target:
        return current.meets_target
    if new.meets_target:
        return new.cost_usd_mean > current.cost_usd_mean + 1e-15
    return new.quality_share < current.quality_share - 1e-12


def split(tasks: list[str], heldout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(calibration rows, held-out rows), stratified by task, seeded."""
    rng = np.random.default_rng(seed)
    cal: list[int] = []
    hold: list[int] = []
    for task in sorted(set(tasks)):
        idx = np.array([i for i, t in enumerate(tasks) if t == task])
        rng.shuffle(idx)
        k = int(round(len(idx) * heldout))
        hold.extend(int(i) for i in idx[:k])
        cal.extend(int(i) for i in idx[k:])
    return np.array(sorted(cal), dtype=np.int64), np.array(sorted(hold), dtype=np.int64)


@dataclass
class Calibration:
    """What ``calibrate`` found (``to_dict`` is ``aco calibrate --json``)."""

    target: float
    chosen: Setting
    current: Setting
    met_on_calibration: bool
    before: Measured
    after: Measured
    n_calibration: int
    routed_models: list[str]
    best_single: str
    refused: bool
    frontier: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able; ``heldout`` is the chosen setting measured on the held-out split."""
        return {
            "target": self.target,
            "chosen": asdict(self.chosen),
            "current": asdict(self.current),
            "met_on_calibration_split": self.met_on_calibration,
            "n_calibration": self.n_calibration,
            "heldout": self.after.to_dict(),
            "before": self.before.to_dict(),
            "routed_models": self.routed_models,
            "best_single": self.best_single,
            "refused": self.refused,
            "frontier": self.frontier,
        }


def frontier(pred: Predictions, base: Setting) -> list[dict[str, float]]:
    """The plain knob sweep (thresholds of ``base``) on ``pred``: cost and quality share."""
    b_acc, b_cost = float(pred.best_correct.mean()), float(pred.best_cost.mean())
    lams = ev.default_lambdas()
    knobs = ev.sweep_choices(pred.p, pred.c_norm, lams)
    picks = apply_thresholds(
        pred.p, knobs, base.safety_threshold, base.downgrade_threshold, base.prefer_local
    )
    correct, cost = _cascade(pred, picks, base.cascade_threshold)
    return [
        {
            "lam": float(lam),
            "cost_share": float(c) / b_cost,
            "quality_share": float(a) / b_acc,
        }
        for lam, c, a in zip(lams, cost.mean(axis=1), correct.mean(axis=1), strict=True)
    ]


def calibrate(
    bundle: Bundle,
    data: OutcomeSet,
    target: float,
    config: ACOConfig,
    seed: int = 0,
    heldout: float = HELDOUT_SHARE,
) -> Calibration:
    """Choose the thresholds for ``target`` on a split of ``data`` (module docstring).

    Args:
        bundle: The router bundle the config runs with.
        data: The user's outcomes (replay JSONL, outcome JSONL, CSV).
        target: Share of the best single model's accuracy to keep, in (0, 1].
        config: The config as it runs now (its setting is the guard rail's reference;
            ``prefer_local`` is kept).
        seed: Seed of the split and the bootstrap.
        heldout: Share of the prompts held out for the before/after report.

    Returns:
        The ``Calibration``; ``refused`` is True when the choice is worse on the held-out
        split than the current setting (then nothing should be written).

    Raises:
        TrainError: too few prompts, or the bundle does not know the data's models.

    Example:
        ```python
        cal = calibrate(load_bundle("b/"), load_outcomes(["mine.jsonl"]), 0.95, cfg)
        cal.after.quality_share, cal.after.cost_share
        ```
    """
    if not 0.0 < target <= 1.0:
        raise TrainError(f"--target {target} is out of range: give a share in (0, 1]")
    if len(data) < 20:
        raise TrainError(f"{len(data)} prompts is too few to calibrate: give at least 20")
    pred = predictions(bundle, data)
    current = Setting.from_config(config, pred.points)
    cal_rows, hold_rows = split(data.tasks, heldout, seed)
    p_cal, p_hold = pred.rows(cal_rows), pred.rows(hold_rows)
    chosen, met = pick_setting(p_cal, current, target)
    if not met:
        log.warning(
            "no setting keeps %.0f%% of the best model's quality with 95%% confidence on "
            "the calibration split; chose the closest",
            100 * target,
        )
    before = measure(p_hold, current, target, seed)
    after = measure(p_hold, chosen, target, seed)
    return Calibration(
        target=target,
        chosen=chosen,
        current=current,
        met_on_calibration=met,
        before=before,
        after=after,
        n_calibration=len(cal_rows),
        routed_models=pred.models,
        best_single=pred.best_model,
        refused=is_worse(after, before),
        frontier=frontier(p_hold, chosen),
    )


def operating_point(bundle: Bundle, data: OutcomeSet, config: ACOConfig) -> dict[str, Any]:
    """The config's setting measured on all of ``data`` (``aco eval --config``'s
    ``operating_point``: ``accuracy``, ``cost_usd_mean``, shares and the setting)."""
    pred = predictions(bundle, data)
    s = Setting.from_config(config, pred.points)
    target = cal.target if (cal := config.learning.calibration) else config.routing.quality_target
    m = measure(pred, s, target)
    return {
        "accuracy": m.accuracy,
        "cost_usd_mean": m.cost_usd_mean,
        "quality_share": m.quality_share,
        "cost_share": m.cost_share,
        "ci95": m.ci95,
        "n": m.n,
        "setting": asdict(s),
        "routed_models": pred.models,
    }


def config_updates(cal: Calibration) -> dict[str, Any]:
    """The config fields the chosen setting writes (a nested mapping to merge)."""
    s = cal.chosen
    out: dict[str, Any] = {
        "routing": {
            "safety_threshold": s.safety_threshold,
            "downgrade_threshold": s.downgrade_threshold,
        },
        "learning": {
            "calibration": {
                "lam": s.lam,
                "lam_next": s.lam_next,
                "mix": s.mix,
                "target": cal.target,
            }
        },
    }
    if s.cascade_threshold is not None:
        out["cascade"] = {"enabled": True, "confidence_threshold": s.cascade_threshold}
    return out


def merge(base: dict[str, Any], updates: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``updates`` merged in, key by key (nested mappings merged too)."""
    out = dict(base)
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def apply(config: ACOConfig, cal: Calibration) -> ACOConfig:
    """``config`` with the calibration's setting (validated)."""
    from aco_langchain.config import config_from_dict

    return config_from_dict(merge(config.model_dump(), config_updates(cal)), "calibration")
