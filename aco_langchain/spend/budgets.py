"""Which budgets a call counts against: pure functions from the config and the call's identity.

Scopes (see :mod:`aco_langchain.spend.ledger`):

- ``run:<key>`` — ``routing.max_cost_per_task`` USD and ``routing.max_tokens_per_task`` tokens;
- ``user:<id>@<period>``, ``key:<id>@<period>``, ``tag:<tag>@<period>`` — ``budgets.users``,
  ``budgets.keys``, ``budgets.tags`` (only the ids and tags the config names);
- ``total@<period>`` — ``budgets.total``.

``<period>`` is the UTC month (``2026-12``), day (``2026-12-02``) or ``all``, from
``budgets.budget_duration``: a new period is a new scope, so the budget starts again.

Example:
    ```python
    from aco_langchain.config import config_from_dict
    from aco_langchain.spend.budgets import CallIdentity, budget_limits

    cfg = config_from_dict({"budgets": {"users": {"alice": 20.0}}})
    budget_limits(cfg, CallIdentity(run_key="r1", user="alice"))
    # [Limit('run:r1', usd=5.0, tokens=100000), Limit('user:alice@2026-12', usd=20.0)]
    ```
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from aco_langchain.config import ACOConfig
from aco_langchain.errors import ACOError
from aco_langchain.spend.ledger.base import Limit


@dataclass(frozen=True)
class CallIdentity:
    """Who a call is for: its run key (the task) and optional user, API key id and tags."""

    run_key: str
    user: str | None = None
    api_key: str | None = None
    tags: tuple[str, ...] = ()
    trace_id: str | None = None


def period(config: ACOConfig, now: float | None = None) -> str:
    """The current budget period label for ``budgets.budget_duration`` (UTC)."""
    duration = config.budgets.budget_duration
    if duration == "forever":
        return "all"
    t = time.gmtime(time.time() if now is None else now)
    return time.strftime("%Y-%m" if duration == "month" else "%Y-%m-%d", t)


def run_scope(run_key: str) -> str:
    """The scope of a run's budget."""
    return f"run:{run_key}"


def budget_limits(config: ACOConfig, who: CallIdentity, now: float | None = None) -> list[Limit]:
    """Every budget the call must fit in, run first."""
    rs = config.routing
    b = config.budgets
    limits = [
        Limit(run_scope(who.run_key), usd=rs.max_cost_per_task, tokens=rs.max_tokens_per_task)
    ]
    if not (b.users or b.keys or b.tags or b.total is not None):
        return limits
    p = period(config, now)
    if who.user is not None and who.user in b.users:
        limits.append(Limit(f"user:{who.user}@{p}", usd=b.users[who.user]))
    if who.api_key is not None and who.api_key in b.keys:
        limits.append(Limit(f"key:{who.api_key}@{p}", usd=b.keys[who.api_key]))
    for tag in sorted(set(who.tags)):
        if tag in b.tags:
            limits.append(Limit(f"tag:{tag}@{p}", usd=b.tags[tag]))
    if b.total is not None:
        limits.append(Limit(f"total@{p}", usd=b.total))
    return limits


#: The smallest output cap a per-call cost cap may lower a call to (``max_cost_usd``):
#: below it an answer is rarely usable, so the call is refused instead.
MIN_OUTPUT_TOKENS = 32


def caps_within_cost(
    config: ACOConfig, input_tokens: int, max_cost_usd: float, ceiling: int
) -> list[int]:
    """Output caps, largest first, at which some tier's call costs at most ``max_cost_usd``
    (pure): for each tier, the largest cap (at most ``ceiling``, at least
    :data:`MIN_OUTPUT_TOKENS`) whose input + output cost fits.

    Args:
        config: prices per tier.
        input_tokens: the prompt's estimated tokens.
        max_cost_usd: the call's cost cap.
        ceiling: the cap the call would have had (no point going above it).

    Returns:
        Distinct caps, largest first (empty when no tier fits even at the minimum).

    Example:
        ```python
        caps_within_cost(cfg, input_tokens=20, max_cost_usd=0.01, ceiling=256)   # [190, 40]
        ```
    """
    from aco_langchain.config import TIER_NUMBERS
    from aco_langchain.pricing import price_per_1k

    caps: set[int] = set()
    for n in TIER_NUMBERS:
        try:
            p_in, p_out = price_per_1k(config.tier(n))
        except ACOError:  # a tier without a price cannot be shown to fit
            continue
        left = max_cost_usd - input_tokens * p_in / 1000.0
        if left < 0:
            continue
        cap = ceiling if p_out <= 0 else min(ceiling, int(left * 1000.0 / p_out))
        if cap >= MIN_OUTPUT_TOKENS:
            caps.add(cap)
    return sorted(caps, reverse=True)


__all__ = [
    "MIN_OUTPUT_TOKENS",
    "CallIdentity",
    "budget_limits",
    "caps_within_cost",
    "period",
    "run_scope",
]
