"""Online learning: per-tier success by prompt cluster, from observed outcomes.

Optional (``learning.online: true``). For each prompt cluster (the assessment's task type
and difficulty, ``cluster_of``) and tier, a Beta posterior of success is kept in the
ledger's database (``online_store.py``), updated as outcomes are observed. The pure
``adjust`` blends it with the bundle's prediction by evidence: the bundle's p counts as
``learning.prior_strength`` pseudo-observations, so with little evidence the bundle
rules and with much the observations do::

    p_adj(t) = (strength * p_bundle(t) + successes(t)) / (strength + n(t))

The bundle's choice ``t*`` promised ``p_bundle(t*)``; the adjusted choice is the cheapest
tier whose ``p_adj`` keeps that promise (tiers are ordered by price), so a cheaper tier that
is observed to do as well takes over, and a tier observed to fall short gives way to the
next one that keeps it. With no evidence the choice is the bundle's.

Exploration (bounded): at most ``learning.explore_share`` of calls (a coin per call) go
one tier down from the adjusted choice when that tier's posterior is still uncertain
(fewer observations than the prior's strength) -- never for forced tiers (they are never
assessed), risk floors, a task floor at or above the choice, or calls with a cost or
latency cap (``explore_allowed``).

Reads: a synchronous call reads its cluster's posteriors from the store as it routes. An
async call never does I/O on the event loop: the chat model awaits :meth:`OnlineRouter.arefresh`
first (every cluster's posteriors in one native async read, at most once per
``REFRESH_S``) and routes on that snapshot (:func:`snapshot_routing`).

Usage::

    from aco_langchain.routing.online import OnlineRouter
    router = OnlineRouter(load_router(), open_learning(config), config.learning)
    router.assess(request, config)        # the bundle's assessment, adjusted
    await router.arefresh()               # async callers: read posteriors off the loop first
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from aco_langchain.routing.base import Assessment, Router, RouteRequest

if TYPE_CHECKING:
    from aco_langchain.config import ACOConfig
    from aco_langchain.config_learning import LearningSettings

log = logging.getLogger(__name__)

_RISK_FLOORED = ("high", "critical")

#: Seconds an async call may route on posteriors read this long ago (then read again).
REFRESH_S = 1.0
#: Set while an async call routes: assessments read the snapshot, never the store.
_SNAPSHOT_ONLY: ContextVar[bool] = ContextVar("aco_online_snapshot_only", default=False)


@contextmanager
def snapshot_routing() -> Iterator[None]:
    """Route on :class:`OnlineRouter` snapshots inside the block (no store read): what an
    async call does between ``await router.arefresh()`` and its (synchronous) planning.

    Example:
        ```python
        await router.arefresh()
        with snapshot_routing():
            router.assess(request, config)     # no I/O
        ```
    """
    token = _SNAPSHOT_ONLY.set(True)
    try:
        yield
    finally:
        _SNAPSHOT_ONLY.reset(token)


@dataclass(frozen=True)
class Posterior:
    """Observed outcomes of one tier on one cluster (scores in [0, 1] add fractionally)."""

    successes: float = 0.0
    failures: float = 0.0

    @property
    def n(self) -> float:
        """How many outcomes were observed."""
        return self.successes + self.failures


def cluster_key(task_type: str, difficulty: int | None) -> str:
    """The cluster name of a task type and difficulty (the one spelling every writer and
    reader of posteriors shares).

    Example:
        ```python
        cluster_key("coding", 3)   # 'coding:d3'
        ```
    """
    return f"{task_type}:d{difficulty or 0}"


def cluster_of(assessment: Assessment) -> str:
    """The prompt cluster outcomes pool in: the task type and the bundle's difficulty.

    Example:
        ```python
        cluster_of(assessment)   # 'coding:d3'
        ```
    """
    return cluster_key(assessment.task_type, assessment.difficulty)


def blend(p_bundle: float, post: Posterior | None, strength: float) -> float:
    """The posterior mean with the bundle's p as ``strength`` pseudo-observations."""
    if post is None or post.n <= 0:
        return p_bundle
    return (strength * p_bundle + post.successes) / (strength + post.n)


def explore_allowed(request: RouteRequest, assessment: Assessment, config: ACOConfig) -> bool:
    """May this call be explored one tier down? Never for forced tiers, risk floors, a task
    floor, or calls capped in cost or latency (a budget-limited call)."""
    c = request.constraints
    if c.force_tier is not None or c.force_model is not None:
        return False
    if (c.risk or assessment.risk) in _RISK_FLOORED:
        return False
    if c.max_cost_usd is not None or c.max_latency_ms is not None or c.min_quality is not None:
        return False
    return config.floor_for(c.task_type or assessment.task_type) < assessment.suggested_tier


def adjust(
    assessment: Assessment,
    posteriors: Mapping[int, Posterior],
    settings: LearningSettings,
    *,
    coin: float = 1.0,
    may_explore: bool = False,
    target: float = 1.0,
) -> tuple[Assessment, bool]:
    """The assessment with observed outcomes blended in (pure; see the module docstring).

    Args:
        assessment: The bundle's assessment.
        posteriors: Tier -> observed outcomes on this prompt's cluster.
        settings: ``config.learning`` (``prior_strength``, ``explore_share``).
        coin: A uniform number in [0, 1) for this call (explore when < ``explore_share``).
        may_explore: ``explore_allowed`` for this call.
        target: ``routing.quality_target``: a tier within this share of the best adjusted
            p keeps the promise too.

    Returns:
        (adjusted assessment, explored?).

    Example:
        ```python
        a2, explored = adjust(a, {2: Posterior(40, 2)}, ACOConfig().learning)
        ```
    """
    if not assessment.p_success:
        return assessment, False
    tiers = sorted(assessment.p_success)
    strength = settings.prior_strength
    p_adj = {t: blend(assessment.p_success[t], posteriors.get(t), strength) for t in tiers}
    chosen = assessment.suggested_tier
    evidence = sum(p.n for p in posteriors.values())
    reasons = []
    if evidence > 0:
        promise = assessment.p_success.get(chosen, max(assessment.p_success.values()))
        # the promise, or the quality target's share of the best observed tier when the
        # bundle promised more than any tier is observed to deliver
        promise = min(promise, target * max(p_adj.values()))
        keeps = [t for t in tiers if p_adj[t] >= promise - 1e-9]
        new = keeps[0] if keeps else max(tiers, key=lambda t: (p_adj[t], -t))
        if new != chosen:
            reasons.append(
                f"online: tier {new} (observed p={p_adj[new]:.2f}) keeps the bundle's "
                f"p(t{chosen})={promise:.2f} on {evidence:g} outcomes of this cluster"
            )
            chosen = new
    explored = False
    below = chosen - 1
    if may_explore and below in p_adj and coin < settings.explore_share:
        post = posteriors.get(below)
        if post is None or post.n < strength:
            seen = 0.0 if post is None else post.n
            reasons.append(f"online: exploring tier {below} (uncertain: {seen:g} outcomes)")
            chosen, explored = below, True
    if not reasons and p_adj == assessment.p_success:
        return assessment, False
    return (
        assessment.model_copy(
            update={
                "suggested_tier": chosen,
                "p_success": p_adj,
                "confidence": float(p_adj[chosen]),
                "reason": "; ".join([assessment.reason, *reasons])
                if assessment.reason
                else "; ".join(reasons),
            }
        ),
        explored,
    )


class PosteriorSource(Protocol):
    """Where posteriors are read (``online_store.LearningStore``)."""

    def posteriors(self, cluster: str) -> dict[int, Posterior]:
        """Tier -> observed outcomes for ``cluster``."""
        ...

    def all_posteriors(self) -> dict[str, dict[int, Posterior]]:
        """Cluster -> tier -> observed outcomes (blocking I/O)."""
        ...

    async def aall_posteriors(self) -> dict[str, dict[int, Posterior]]:
        """The same, native async I/O."""
        ...


class OnlineRouter:
    """A router whose assessments are adjusted by observed outcomes (``adjust``).

    Example:
        ```python
        router = OnlineRouter(load_router(), store, cfg.learning)
        router.assess(RouteRequest.from_text("Write a parser"), cfg)
        ```
    """

    name = "learned+online"

    def __init__(self, inner: Router, store: PosteriorSource, settings: LearningSettings) -> None:
        self.inner = inner
        self.store = store
        self.settings = settings
        self._rng = random.Random()
        self._snapshot: dict[str, dict[int, Posterior]] | None = None
        self._snapshot_at = 0.0

    async def arefresh(self, max_age_s: float = REFRESH_S) -> None:
        """Read every cluster's posteriors with native async I/O when the snapshot async
        calls route on is older than ``max_age_s`` (a store that cannot be read leaves the
        last snapshot, said in the log).

        Example:
            ```python
            await router.arefresh()     # before an async call's planning
            ```
        """
        if self._snapshot is not None and time.monotonic() - self._snapshot_at < max_age_s:
            return
        started = time.monotonic()
        try:
            snapshot = await self.store.aall_posteriors()
        except Exception as err:  # noqa: BLE001 - learning is optional: route without it
            log.warning("online learning: posteriors not read (%s)", type(err).__name__)
            return
        self._snapshot, self._snapshot_at = snapshot, started

    def _posteriors(self, cluster: str) -> dict[int, Posterior] | None:
        if not _SNAPSHOT_ONLY.get():
            return self.store.posteriors(cluster)
        if self._snapshot is None:
            log.debug("online learning: no posteriors read yet; routing on the bundle")
            return None
        return self._snapshot.get(cluster, {})

    def assess(self, request: RouteRequest, config: ACOConfig) -> Assessment:
        """The inner router's assessment, adjusted by this cluster's observed outcomes (read
        from the store, or inside :func:`snapshot_routing` from the last :meth:`arefresh`)."""
        a = self.inner.assess(request, config)
        try:
            posteriors = self._posteriors(cluster_of(a))
        except Exception as err:  # noqa: BLE001 - learning is optional: route without it
            log.warning("online learning skipped (store unreadable: %s)", type(err).__name__)
            return a
        if posteriors is None:
            return a
        adjusted, explored = adjust(
            a,
            posteriors,
            self.settings,
            coin=self._rng.random(),
            may_explore=explore_allowed(request, a, config),
            target=config.routing.quality_target,
        )
        if explored:
            log.info(
                "online: explored tier %d for cluster %s", adjusted.suggested_tier, cluster_of(a)
            )
        return adjusted


def with_online(router: Router, config: ACOConfig) -> Router:
    """``router`` wrapped by ``OnlineRouter`` over the config's ledger database; the
    router itself (saying so) when that database cannot be opened.

    Example:
        ```python
        router = with_online(load_router(), cfg)    # what get_router does when online
        ```
    """
    from aco_langchain.errors import LedgerError
    from aco_langchain.routing.online_store import open_learning

    try:
        store = open_learning(config)
    except LedgerError as err:
        log.warning("online learning off: %s", err)
        return router
    return OnlineRouter(router, store, config.learning)
