"""Routing: the Router protocol, the rule and learned routers, and the shared policy.

Usage::

    from aco_langchain.routing import route, RouteRequest
    decision = route(RouteRequest.from_text("Fix the auth bug in production"), ACOConfig())
    decision.tier   # 5
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from aco_langchain.config import ACOConfig
from aco_langchain.errors import BudgetExceededError, RoutingError, TierUnavailableError
from aco_langchain.routing.base import (
    Assessment,
    RouteConstraints,
    RouteDecision,
    Router,
    RouteRequest,
)
from aco_langchain.routing.policy import decide, estimate_call_cost, needs_assessment
from aco_langchain.routing.rules import RuleRouter

logger = logging.getLogger(__name__)

__all__ = [
    "Assessment",
    "BudgetExceededError",
    "RouteConstraints",
    "RouteDecision",
    "RouteRequest",
    "Router",
    "RoutingError",
    "RuleRouter",
    "TierUnavailableError",
    "decide",
    "estimate_call_cost",
    "get_router",
    "needs_assessment",
    "route",
]


def get_router(config: ACOConfig) -> Router:
    """The router the config asks for: the learned bundle (default) or the rules.

    Falls back to the rules, saying so, only when no bundle is shipped or configured.
    """
    if config.router == "rules":
        return RuleRouter()
    try:
        from aco_langchain.routing.learned import load_router
    except ImportError as err:  # numpy or the learned router's deps missing
        logger.warning("learned router unavailable (%s): routing with the rules", err)
        return RuleRouter()
    router = load_router(config.router_model_path)
    if config.learning.online:  # observed outcomes adjust the bundle's assessments
        from aco_langchain.routing.online import with_online

        return with_online(router, config)
    return router


def route(
    request: RouteRequest,
    config: ACOConfig,
    *,
    router: Router | None = None,
    unavailable: Mapping[int, str] | None = None,
    spent_usd: float = 0.0,
) -> RouteDecision:
    """Assess and decide in one call (pure: no I/O beyond loading a bundle once).

    A forced call (``force_tier`` / ``force_model``) is decided without consulting the
    router at all.

    Args:
        request: The call (prompt, structure, per-call options).
        config: Tiers, floors and thresholds.
        router: The router; None: the config's.
        unavailable: Tiers that cannot be called now, with why.
        spent_usd: What the call's run has spent so far.

    Returns:
        The decision (tier, model, reason, cost estimate).

    Raises:
        RoutingError: No tier can serve the request under its constraints.

    Example:
        ```python
        route(RouteRequest.from_text("Fix the auth bug in production"), ACOConfig()).tier   # 5
        ```
    """
    assessment = None
    if needs_assessment(request):
        r = router if router is not None else get_router(config)
        assessment = r.assess(request, config)
    return decide(assessment, request, config, unavailable=unavailable, spent_usd=spent_usd)
