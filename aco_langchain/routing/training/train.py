"""Training the learned router (needs the ``train`` extra: scikit-learn, which brings scipy).

Pipeline, reproducible for a given seed:

1. features: hashed n-grams + standardised dense structure (``features.py``);
2. success model: one multi-output logistic regression (all models fitted jointly, soft
   labels allowed), L2-regularised, fitted with L-BFGS;
3. cost model: per model, ridge regression of log(cost per call) on the dense features,
   so long or verbose prompts are known to cost more before the call;
4. operating points: K-fold out-of-fold predictions give the cost-quality curve of the
   rule ``argmax_m p(m) - lam * cost(m) / cost_reference``, with mixed points between
   neighbouring ``lam`` values (a prompt's crc32 coin picks one of the two,
   ``evaluate.mixed_sweep``); for each quality target q the cheapest point keeping
   ``q x`` the best model's accuracy is stored (for all models, and for the five tier
   models alone). The same predictions give the manifest's validation metrics;
5. tier map: config ``tier_of_model`` where the config names bundle models, else the
   price-ordered cost-accuracy frontier of the models, spread over tiers 1..5.

Usage::

    from aco_langchain.routing.training.datasets import load_outcomes
    from aco_langchain.routing.training.train import train_bundle
    bundle = train_bundle(load_outcomes(["mbpp_train.csv"]), seed=0)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from aco_langchain.errors import TrainError
from aco_langchain.routing.bundle import Bundle, OperatingPoint, make_manifest
from aco_langchain.routing.features import DENSE_CLIP, FeatureSpec, Featurizer, normalize_prompt
from aco_langchain.routing.training import evaluate as ev
from aco_langchain.routing.training.datasets import OutcomeSet, concat, estimate_tokens

if TYPE_CHECKING:
    import scipy.sparse as sp

    from aco_langchain.config import ACOConfig

#: Task label prefix of rows merged in from base data (``merge_base``).
BASE_TASK_PREFIX = "base:"

QUALITY_TARGETS = tuple(round(x, 3) for x in np.arange(0.70, 1.0001, 0.005))


@dataclass(frozen=True)
class TrainParams:
    """Hyper-parameters (defaults chosen by cross-validation on the RouterBench slice)."""

    svd_dims: int = 16
    hash_scale: float = 1.0
    alpha: float = 1.0
    alpha_cost: float = 1.0
    max_iter: int = 500
    folds: int = 5


def _need_scipy() -> Any:
    try:
        import scipy.optimize
        import scipy.sparse
    except ImportError:  # pragma: no cover - depends on the environment
        raise TrainError(
            "training needs the 'train' extra: pip install 'aco-langchain[train]'"
        ) from None
    return scipy


def featurize(prompts: list[str], spec: FeatureSpec) -> tuple[sp.csr_matrix, np.ndarray]:
    """The hashed n-gram matrix (CSR, n x buckets) and raw dense features (n x F)."""
    scipy = _need_scipy()
    fz = Featurizer(spec)
    rows, cols, vals, dense = [], [], [], []
    for i, raw in enumerate(prompts):
        p = normalize_prompt(raw) if spec.normalize else raw
        idx, w = fz.hashed(p)
        rows.append(np.full(idx.shape[0], i, dtype=np.int64))
        cols.append(idx)
        vals.append(w)
        dense.append(fz.dense(p, roles=["human"], n_tools=0))
    x = scipy.sparse.csr_matrix(
        (np.concatenate(vals).astype(np.float64), (np.concatenate(rows), np.concatenate(cols))),
        shape=(len(prompts), spec.n_buckets),
    )
    x.sum_duplicates()
    return x, np.array(dense)


def coin_text(prompt: str, spec: FeatureSpec) -> str:
    """The text a prompt's mixing coin is drawn from (what the router sees of it)."""
    return normalize_prompt(prompt) if spec.normalize else prompt


def fit_logistic(
    z: np.ndarray,
    y: np.ndarray,
    alpha: float,
    max_iter: int = 500,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Joint L2 logistic regression of every column of ``y`` (soft labels in [0, 1]).

    ``z`` is n x F (standardised); returns (F + 1) x M weights, the last row the bias.
    ``weights`` (n, optional) weigh each row's loss. Deterministic: L-BFGS from the prior,
    no randomness involved.
    """
    scipy = _need_scipy()
    n, m = y.shape
    f = z.shape[1]
    rw = np.ones((n, 1)) if weights is None else weights.reshape(n, 1)
    n = float(rw.sum())  # the effective number of rows
    prior = np.clip((rw * y).sum(axis=0) / n, 1e-3, 1 - 1e-3)

    def loss_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w = theta[: f * m].reshape(f, m)
        b = theta[f * m :]
        s = z @ w + b
        loss = float(np.sum(rw * (np.logaddexp(0.0, s) - y * s))) / n
        loss += 0.5 * alpha * float(np.sum(w * w)) / n
        r = rw * (1.0 / (1.0 + np.exp(-s)) - y) / n
        gw = z.T @ r + alpha * w / n
        return loss, np.concatenate([gw.ravel(), r.sum(axis=0)])

    theta0 = np.concatenate([np.zeros(f * m), np.log(prior / (1 - prior))])
    res = scipy.optimize.minimize(
        loss_grad, theta0, jac=True, method="L-BFGS-B", options={"maxiter": max_iter}
    )
    return np.vstack([res.x[: f * m].reshape(f, m), res.x[f * m :][None, :]])


def fit_ridge(
    dz: np.ndarray, target: np.ndarray, alpha: float, weights: np.ndarray | None = None
) -> np.ndarray:
    """Ridge regression with intercept: returns (F + 1) x K weights (last row intercept);
    ``weights`` (n, optional) weigh each row."""
    n, f = dz.shape
    a = np.hstack([dz, np.ones((n, 1))])
    aw = a if weights is None else a * weights[:, None]
    reg = alpha * np.eye(f + 1)
    reg[f, f] = 0.0
    return np.linalg.solve(aw.T @ a + reg, aw.T @ target)


@dataclass
class Fitted:
    """A fitted success + cost model (the arrays a bundle stores)."""

    arrays: dict[str, np.ndarray]

    def predict(self, x: sp.csr_matrix, dense: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(P(success) n x M, predicted cost n x M) for a batch."""
        a = self.arrays
        dz = np.clip((dense - a["dense_mean"]) / a["dense_std"], -DENSE_CLIP, DENSE_CLIP)
        z = x @ a["w_hash"].astype(np.float64) + dz @ a["w_dense"] + a["bias"]
        p = 1.0 / (1.0 + np.exp(-z))
        cw = a["cost_w"]
        cost = np.exp(dz @ cw[:-1] + cw[-1])
        return p, cost


def fit(
    x: sp.csr_matrix,
    dense: np.ndarray,
    data: OutcomeSet,
    rows: np.ndarray,
    params: TrainParams,
    seed: int = 0,
) -> Fitted:
    """Fit success, cost and output-token models on ``rows`` of ``data``."""
    from sklearn.decomposition import TruncatedSVD

    mean = dense[rows].mean(axis=0)
    std = dense[rows].std(axis=0)
    std = np.where(std > 1e-9, std, 1.0)
    dz = np.clip((dense[rows] - mean) / std, -DENSE_CLIP, DENSE_CLIP)
    k = min(params.svd_dims, x.shape[1] - 1, len(rows) - 1)
    svd = TruncatedSVD(k, random_state=seed, algorithm="randomized", n_iter=7)
    zh = svd.fit_transform(x[rows])
    z_mu = zh.mean(axis=0)
    z_sd = np.where(zh.std(axis=0) > 1e-12, zh.std(axis=0), 1.0)
    zz = np.hstack([(zh - z_mu) / z_sd * params.hash_scale, dz])
    rw = None if data.weights is None else data.weights[rows]
    wfull = fit_logistic(zz, data.correct[rows], params.alpha, params.max_iter, rw)
    w_z = wfull[:k] * params.hash_scale / z_sd[:, None]
    # fold the projection into per-bucket weights: logit = x @ (V^T w_z) - z_mu @ w_z + ...
    wh = svd.components_.T @ w_z
    wd = wfull[k:-1]
    b = wfull[-1] - z_mu @ w_z
    log_cost = np.log(np.maximum(data.cost[rows], 1e-12))
    cost_w = fit_ridge(dz, log_cost, params.alpha_cost, rw)
    if data.out_tokens is not None and np.isfinite(data.out_tokens[rows]).any():
        obs = np.where(np.isfinite(data.out_tokens[rows]), data.out_tokens[rows], np.nan)
        seen = np.isfinite(obs).any(axis=1)
        # rows without any observed output (merged base data) take the median of the others
        ot = np.full(len(rows), np.nan)
        ot[seen] = np.nanmean(obs[seen], axis=1)
        ot = np.where(np.isfinite(ot), ot, np.nanmedian(ot[seen]))
    else:
        ot = np.ones(len(rows))
    out_w = fit_ridge(dz, np.log(np.maximum(ot, 1.0))[:, None], params.alpha_cost, rw)[:, 0]
    return Fitted(
        {
            "w_hash": wh.astype(np.float32),
            "w_dense": wd.astype(np.float32),
            "bias": b.astype(np.float32),
            "dense_mean": mean.astype(np.float32),
            "dense_std": std.astype(np.float32),
            "cost_w": cost_w.astype(np.float32),
            "out_w": out_w.astype(np.float32),
        }
    )


def stratified_folds(tasks: list[str], k: int, seed: int) -> list[np.ndarray]:
    """K test folds, each task's prompts dealt round-robin after a seeded shuffle."""
    rng = np.random.default_rng(seed)
    folds: list[list[int]] = [[] for _ in range(k)]
    offset = 0
    for task in sorted(set(tasks)):
        idx = np.array([i for i, t in enumerate(tasks) if t == task])
        rng.shuffle(idx)
        for j, i in enumerate(idx):
            folds[(j + offset) % k].append(int(i))
        offset += len(idx)
    return [np.array(sorted(f), dtype=np.int64) for f in folds]


def out_of_fold(
    x: sp.csr_matrix,
    dense: np.ndarray,
    data: OutcomeSet,
    params: TrainParams,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Cross-validated (P, predicted cost) for every prompt."""
    n, m = data.correct.shape
    p = np.zeros((n, m))
    c = np.zeros((n, m))
    for test in stratified_folds(data.tasks, params.folds, seed):
        train = np.setdiff1d(np.arange(n), test)
        fitted = fit(x, dense, data, train, params, seed)
        p[test], c[test] = fitted.predict(x[test], dense[test])
    return p, c


def calibrate(
    p: np.ndarray,
    c_norm: np.ndarray,
    correct: np.ndarray,
    cost: np.ndarray,
    u: np.ndarray,
    targets: tuple[float, ...] = QUALITY_TARGETS,
) -> list[OperatingPoint]:
    """For each quality target, the cheapest (possibly mixed) knob value meeting it here.

    ``u`` is each prompt's coin (``evaluate.prompt_uniform``); see ``evaluate.mixed_sweep``.
    """
    lams = ev.default_lambdas()
    choices, lam_idx, fracs = ev.mixed_sweep(p, c_norm, lams, u)
    pts = ev.choices_points(choices, correct, cost)
    _, best_acc, best_cost = ev.best_single(correct, cost)
    out = []
    for q in targets:
        floor = q * best_acc - 1e-12
        ok = [(cst, -lams[lam_idx[i]], i) for i, (cst, acc) in enumerate(pts) if acc >= floor]
        i = min(ok)[2] if ok else 0  # none: lam = 0, the most accurate the router can be
        j = int(lam_idx[i])
        mixed = fracs[i] > 0
        out.append(
            OperatingPoint(
                quality_target=q,
                lam=float(lams[j]),
                lam_next=float(lams[j + 1]) if mixed else None,
                mix=float(fracs[i]),
                val_accuracy=pts[i][1],
                val_cost_share=pts[i][0] / best_cost,
            )
        )
    return out


def tier_map_for(data: OutcomeSet, config: ACOConfig | None) -> tuple[dict[str, str], str]:
    """Tier number -> model: the config's ``tier_of_model`` when it names bundle models,
    else the price-ordered cost-accuracy frontier spread over tiers 1..5."""
    if config is not None:
        named = {config.tier_of_model(mdl): mdl for mdl in data.models}
        named.pop(None, None)
        if named:
            out: dict[str, str] = {}
            for t in range(1, 6):
                below = [k for k in named if k is not None and k <= t]
                above = [k for k in named if k is not None and k > t]
                k = max(below) if below else min(above)
                out[str(t)] = named[k]
            return out, "config tier_of_model (unnamed tiers take the nearest lower tier)"
    singles = ev.single_model_points(data.correct, data.cost)
    order = sorted(range(len(singles)), key=lambda j: (singles[j][0], -singles[j][1]))
    frontier: list[int] = []
    for j in order:
        if not frontier or singles[j][1] > singles[frontier[-1]][1]:
            frontier.append(j)
    # spread the frontier over five tiers: cheapest is tier 1, most accurate is tier 5
    k = len(frontier)
    picks = [frontier[round(i * (k - 1) / 4)] for i in range(5)] if k > 1 else frontier * 5
    return (
        {str(t + 1): data.models[j] for t, j in enumerate(picks)},
        "price-ordered cost-accuracy frontier of the training models, spread over 5 tiers",
    )


def merge_base(user: OutcomeSet, base: OutcomeSet, config: ACOConfig, weight: float) -> OutcomeSet:
    """The user's data plus ``base`` data mapped onto the user's models by tier, weighted.

    Each user model is a tier of ``config`` (``tier_of_model``); the base model standing
    for that tier is the base data's price-ordered frontier spread over five tiers (as
    ``tier_map_for`` without a config). The base column's costs are rescaled to the user
    model's mean cost, so the cost model learns the user's prices. Base rows weigh
    ``weight`` each (user rows 1) and are tasks ``base:<task>``: they help fit the success
    model, while the knob and the report are calibrated on the user's rows alone.

    Raises:
        TrainError: a user model is not a tier of the config, or ``weight`` is not in (0, 1].

    Example:
        ```python
        data = merge_base(load_outcomes(["mine.jsonl"]), load_outcomes(rb_files), cfg, 0.3)
        ```
    """
    if not 0.0 < weight <= 1.0:
        raise TrainError(f"--base-weight {weight}: give a weight in (0, 1]")
    base_map, _ = tier_map_for(base, None)
    cols, scale = [], []
    for j, model in enumerate(user.models):
        tier = config.tier_of_model(model)
        if tier is None:
            raise TrainError(
                f"model {model!r} of the collected data is not a tier of the config: give "
                "the --config the data was collected with"
            )
        bj = base.models.index(base_map[str(tier)])
        cols.append(bj)
        base_mean = float(base.cost[:, bj].mean())
        scale.append(float(user.cost[:, j].mean()) / base_mean if base_mean > 0 else 0.0)
    mapped = OutcomeSet(
        name=base.name,
        ids=[f"base:{i}" for i in base.ids],
        prompts=list(base.prompts),
        tasks=[f"{BASE_TASK_PREFIX}{t}" for t in base.tasks],
        models=list(user.models),
        correct=base.correct[:, cols],
        cost=base.cost[:, cols] * np.array(scale)[None, :],
        cost_source=base.cost_source,
        out_tokens=None if base.out_tokens is None else base.out_tokens[:, cols],
        weights=np.full(len(base), weight),
    )
    if user.weights is None:
        user = user.subset(np.arange(len(user)))
        user.weights = np.ones(len(user))
    return concat([user, mapped])


def train_bundle(
    data: OutcomeSet,
    config: ACOConfig | None = None,
    seed: int = 0,
    params: TrainParams | None = None,
    spec: FeatureSpec | None = None,
) -> Bundle:
    """Train a bundle on ``data`` (see the module docstring for the steps).

    Usage::

        bundle = train_bundle(load_outcomes(["routerbench.csv"]), seed=0)
    """
    params = params or TrainParams()
    spec = spec or FeatureSpec(normalize=True)
    n, m = data.correct.shape
    if n < 5 * params.folds:
        raise TrainError(
            f"{n} prompts is too few to train and calibrate: give at least {5 * params.folds}"
        )
    if m < 2:
        raise TrainError("routing needs outcomes of at least two models")
    t0 = time.perf_counter()
    x, dense = featurize(data.prompts, spec)
    p_oof, c_oof = out_of_fold(x, dense, data, params, seed)
    full = data
    own = np.array([not t.startswith(BASE_TASK_PREFIX) for t in data.tasks])
    if not own.all():
        # merged base data helps fit; the knob and the report are the user's data's alone
        data = data.subset(np.flatnonzero(own))
        p_oof, c_oof = p_oof[own], c_oof[own]
        n = len(data)
    j_best, best_acc, best_cost = ev.best_single(data.correct, data.cost)
    c_norm = c_oof / best_cost
    tier_map, rule = tier_map_for(data, config)
    tier_idx = sorted({data.models.index(mdl) for mdl in tier_map.values()})
    u = np.array([ev.prompt_uniform(coin_text(p, spec)) for p in data.prompts])
    ops_all = calibrate(p_oof, c_norm, data.correct, data.cost, u)
    tier_best_cost = ev.best_single(data.correct[:, tier_idx], data.cost[:, tier_idx])[2]
    ops_tier = calibrate(
        p_oof[:, tier_idx],
        c_oof[:, tier_idx] / tier_best_cost,
        data.correct[:, tier_idx],
        data.cost[:, tier_idx],
        u,
    )
    lams = ev.default_lambdas()
    choices, lam_idx, fracs = ev.mixed_sweep(p_oof, c_norm, lams, u)
    pair = p_oof[:, 1] - p_oof[:, 0] if m == 2 else None
    if pair is not None and ev.best_single(data.correct, data.cost)[0] == 0:
        pair = -pair
    rep = ev.report(data.models, data.correct, data.cost, choices, lams[lam_idx], pair, fracs)
    validation = {
        "protocol": f"{params.folds}-fold cross-validation, folds stratified by task, "
        "empty outcomes counted as wrong",
        "router_aiq": round(rep["router"]["aiq"], 4),
        "router_cost_reduction_at_95": round(rep["router"]["cost_reduction_at_95"], 4),
        "zero_router_aiq": round(rep["zero_router"]["aiq"], 4),
        "oracle": {k: round(v, 6) for k, v in rep["oracle"].items()},
        "best_single": {"model": data.models[j_best], "accuracy": round(best_acc, 4)},
    }
    if "apgr" in rep["router"]:
        validation["router_apgr"] = round(rep["router"]["apgr"], 4)
    fitted = fit(x, dense, full, np.arange(len(full)), params, seed)
    mean_mu = float(np.mean([estimate_tokens(p) for p in data.prompts]))
    ot = data.out_tokens
    mean_out = float(np.nanmean(ot)) if ot is not None and np.isfinite(ot).any() else 1.0
    # difficulty: quintiles of the tier models' mean predicted success (1 = easiest)
    p_all, _ = fitted.predict(x, dense)
    mean_p = p_all[:, tier_idx].mean(axis=1)
    edges = [float(v) for v in np.quantile(mean_p, [0.8, 0.6, 0.4, 0.2])]
    manifest = make_manifest(
        fitted.arrays,
        feature_spec=spec,
        models=list(data.models),
        tier_map=tier_map,
        tier_map_rule=rule,
        cost_reference=float(best_cost),
        token_reference={"input": mean_mu, "output": mean_out},
        operating_points=ops_all,
        tier_operating_points=ops_tier,
        difficulty_edges=edges,
        seed=seed,
        training={
            **data.summary(),
            **({"base_rows": int((~own).sum())} if not own.all() else {}),
            "params": params.__dict__,
            "seconds": round(time.perf_counter() - t0, 1),
        },
        validation=validation,
    )
    return Bundle(manifest=manifest, arrays=fitted.arrays, cv_report=rep)


def evaluate_bundle(bundle: Bundle, data: OutcomeSet) -> dict[str, Any]:
    """Measure ``bundle`` on ``data``: the knob sweep's curve, singles, oracle, zero router.

    What ``aco eval --json`` prints. Evaluate on prompts the bundle was not trained on to
    get an honest curve (a freshly trained bundle's ``cv_report`` is the cross-validated
    one).

    Args:
        bundle: A trained or loaded bundle.
        data: Outcomes of the same models as the bundle's (any order).

    Returns:
        ``evaluate.report``'s dict plus ``data`` (the data's name), ``bundle`` (its path)
        and ``choices``/``mixes`` (each curve point's model index per prompt, and its mix).

    Raises:
        TrainError: The data's models differ from the bundle's.

    Example:
        ```python
        rep = evaluate_bundle(load_bundle(None), load_outcomes(["mbpp_train.csv"]))
        rep["router"]["aiq"], rep["zero_router"]["aiq"]
        ```
    """
    man = bundle.manifest
    if sorted(man.models) != sorted(data.models):
        missing = sorted(set(data.models) - set(man.models))
        raise TrainError(
            f"the data's models differ from the bundle's (not in bundle: {missing}); "
            "train a bundle for them first: aco train --data FILES --out DIR"
        )
    order = [man.models.index(m) for m in data.models]
    x, dense = featurize(data.prompts, man.feature_spec)
    p, c_hat = Fitted(bundle.arrays).predict(x, dense)
    p, c_hat = p[:, order], c_hat[:, order]
    knobs = ev.default_lambdas()
    u = np.array([ev.prompt_uniform(coin_text(t, man.feature_spec)) for t in data.prompts])
    choices, lam_idx, mixes = ev.mixed_sweep(p, c_hat / man.cost_reference, knobs, u)
    pair = None
    if len(data.models) == 2:
        strong = ev.best_single(data.correct, data.cost)[0]
        pair = p[:, strong] - p[:, 1 - strong]
    rep = ev.report(data.models, data.correct, data.cost, choices, knobs[lam_idx], pair, mixes)
    rep["data"] = data.summary()["name"]
    rep["bundle"] = bundle.path
    rep["choices"] = choices
    rep["mixes"] = mixes
    return rep
