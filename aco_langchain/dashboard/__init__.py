"""The spend dashboard: what the ledger says, as a static page with hand-written SVG charts.

``collect`` reads the ledger a config points at and returns the page's JSON
(:func:`aco_langchain.dashboard.data.dashboard_data`); ``page`` holds the shipped files
and a stdlib server for them. ``aco serve`` mounts the page at ``/dashboard/``;
``aco dashboard`` serves it alone.

Example:
    ```python
    from aco_langchain.config import load_config
    from aco_langchain.dashboard import collect

    data = collect(load_config("config.yaml"))
    data["totals"]          # the same fields and figures as `aco spend --json`
    ```
"""

from __future__ import annotations

import calendar
import logging
import time
from typing import TYPE_CHECKING, Any

from aco_langchain.dashboard.data import dashboard_data

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from aco_langchain.config import ACOConfig
    from aco_langchain.spend.ledger import SpendLedger


def period_start(config: ACOConfig, now: float | None = None) -> float:
    """Epoch start (UTC) of the current ``budgets.budget_duration`` period (0 for forever).

    Example:
        ```python
        period_start(ACOConfig())     # the first second of this UTC month
        ```
    """
    t = time.gmtime(time.time() if now is None else now)
    duration = config.budgets.budget_duration
    if duration == "forever":
        return 0.0
    if duration == "day":
        return float(calendar.timegm((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0)))
    return float(calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0)))


def collect(
    config: ACOConfig,
    ledger: SpendLedger | None = None,
    *,
    ledger_url: str | None = None,
    month: str | None = None,
    tenant: str | None = None,
    show_ledger: bool = True,
) -> dict[str, Any]:
    """The dashboard's JSON from the ledger of ``config`` (or ``ledger``).

    Args:
        config: Budgets (run, keys), the baseline tier, and the ledger URL.
        ledger: An open ledger to read instead of opening one.
        ledger_url: The ledger to open (None: ``$ACO_LEDGER_URL``, then ``ledger.url``).
        month: Only rows of this ``YYYY-MM`` month (None: every row).
        tenant: Only this API key's rows, runs and budget (None: every key's; an admin).
        show_ledger: Name the ledger (masked) on the page; the server passes False, so a
            ledger URL never leaves it.

    Returns:
        See :func:`aco_langchain.dashboard.data.dashboard_data`.

    Raises:
        LedgerError: The ledger cannot be opened or read.
        ValueError: ``month`` is not ``YYYY-MM``.

    Example:
        ```python
        collect(cfg, month="2026-12")["days"]
        ```
    """
    from aco_langchain.spend.ledger import month_bounds, open_ledger
    from aco_langchain.spend.ledger.postgres import mask_url

    led = open_ledger(ledger_url, config=config) if ledger is None else ledger  # shared
    since = until = None
    if month:
        since, until = month_bounds(month)
    rows = led.records(since=since, until=until)
    key_budgets = config.budgets.keys
    if tenant is not None:
        rows = [r for r in rows if r.api_key == tenant]
        key_budgets = {k: v for k, v in key_budgets.items() if k == tenant}
    # A Postgres URL's password never reaches the page; the server shows no URL at all.
    url = mask_url(led.url) if show_ledger else "the server's ledger"
    base = config.tier(config.ledger.baseline_tier)
    return dashboard_data(
        rows,
        ledger_url=url,
        run_budget_usd=config.routing.max_cost_per_task,
        key_budgets_usd=key_budgets,
        key_period_start=period_start(config),
        baseline=f"tier {config.ledger.baseline_tier} ({base.model_id})",
        outcomes=_outcomes(led, config, {r.run_key for r in rows}),
    )


def _outcomes(ledger: Any, config: ACOConfig, run_keys: set[str]) -> dict[str, Any]:
    """The observed outcomes of ``run_keys``, from the ledger's database."""
    from aco_langchain.errors import LedgerError
    from aco_langchain.spend.outcomes import outcome_store_for

    if not run_keys:
        return {}
    try:
        return outcome_store_for(ledger, ledger, config).many(run_keys)
    except LedgerError as err:  # the page still shows spend; success is then unknown
        logger.warning("dashboard: outcomes not read: %s", err)
        return {}


__all__ = ["collect", "dashboard_data", "period_start"]
