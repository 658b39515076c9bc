"""What the spend dashboard shows, computed from ledger rows (pure).

Totals, per day, per tier and per run come from the ledger's own ``summarize`` (the function
behind ``aco spend --json``), so the dashboard and the CLI cannot disagree. Added here:
spend per day split by tier, budget use per run (against ``routing.max_cost_per_task``) and
per API key, and the escalation and cache-hit rates.

A row counts as an *escalation* or a *cache hit* when it says so: an ``escalated`` /
``cache_hit`` attribute that is true, an ``outcome`` of ``"escalated"`` / ``"cache_hit"``, or
that word among its ``tags``. Rates are over answered calls (rows); None without rows.

Example:
    ```python
    from aco_langchain.dashboard.data import dashboard_data
    from aco_langchain.spend.ledger import open_ledger

    ledger = open_ledger("sqlite:///spend.db")
    data = dashboard_data(ledger.records(), ledger_url=ledger.url, run_budget_usd=5.0)
    data["totals"]["total_usd"], data["rates"]["escalation_rate"]
    ```
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aco_langchain.spend.ledger import SpendRecord, summarize
from aco_langchain.spend.ledger.base import group_key

#: Runs shown on the budget chart (the biggest spenders).
TOP_RUNS = 15
#: Keys shown as at most this many characters (a key id or hash; never the whole secret).
KEY_CHARS = 12


def _flagged(record: SpendRecord, flag: str) -> bool:
    return (
        getattr(record, flag, False) is True
        or record.outcome == flag
        or flag in (record.tags or ())
    )


def _share(spent: float, budget: float | None) -> float | None:
    return None if not budget else round(spent / budget, 6)


def _key_label(key: str) -> str:
    return key if len(key) <= KEY_CHARS else key[:KEY_CHARS] + "…"


def _by(records: Iterable[SpendRecord], by: str) -> dict[str, list[SpendRecord]]:
    out: dict[str, list[SpendRecord]] = {}
    for r in records:
        out.setdefault(group_key(r, by), []).append(r)
    return out


def dashboard_data(
    records: Sequence[SpendRecord],
    *,
    ledger_url: str = "",
    run_budget_usd: float | None = None,
    key_budgets_usd: Mapping[str, float] | None = None,
    key_period_start: float = 0.0,
    baseline: str = "",
    top_runs: int = TOP_RUNS,
    outcomes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The dashboard's JSON from ledger rows.

    Args:
        records: Spend rows (``ledger.records(...)``), any order.
        ledger_url: Where they came from (shown on the page).
        run_budget_usd: The per-run budget (``routing.max_cost_per_task``); None: no budget.
        key_budgets_usd: Budgets of API keys by key id (``budgets.keys``), per period.
        key_period_start: Epoch start of the current budget period: key use counts the
            rows since then (0: all rows, ``budget_duration: forever``).
        baseline: What the baseline is (e.g. ``"tier 4 (gpt-4.1)"``), shown beside savings.
        top_runs: How many runs the budget chart lists (biggest spend first).
        outcomes: Observed outcomes by run key (``spend/outcomes.py``); success rate and
            cost per successful task count only these runs.

    Returns:
        ``totals`` (exactly ``aco spend --json``'s fields), ``savings_share``, ``days``
        (``day``, ``cost_usd``, ``baseline_usd``, ``savings_usd``, ``calls``, ``by_tier``),
        ``tiers``, ``runs`` and ``keys`` (``key``, ``calls``, ``spent_usd``, ``budget_usd``,
        ``share``), ``rates`` (``escalation_rate``, ``cache_hit_rate`` and their counts),
        ``first_day``/``last_day``, ``run_budget_usd``, ``ledger``, ``baseline``,
        ``outcomes`` (``outcome_figures``: success over the runs with an observed outcome).

    Example:
        ```python
        d = dashboard_data(rows, run_budget_usd=5.0)
        [(x["day"], x["cost_usd"]) for x in d["days"]]
        ```
    """
    total = summarize(records)
    totals = total.to_dict()
    by_day = _by(records, "day")
    days: list[dict[str, Any]] = []
    for g in summarize(records, by="day").groups:
        day_tiers = summarize(by_day[g.key], by="tier").groups
        days.append(
            {
                "day": g.key,
                "calls": g.calls,
                "cost_usd": round(g.cost_usd, 10),
                "baseline_usd": round(g.baseline_usd, 10),
                "savings_usd": round(g.savings_usd, 10),
                "by_tier": {t.key: round(t.cost_usd, 10) for t in day_tiers},
            }
        )
    tiers = [
        {
            "tier": g.key,
            "calls": g.calls,
            "cost_usd": round(g.cost_usd, 10),
            "baseline_usd": round(g.baseline_usd, 10),
            "savings_usd": round(g.savings_usd, 10),
        }
        for g in summarize(records, by="tier").groups
    ]
    runs_all = sorted(summarize(records, by="run").groups, key=lambda g: (-g.cost_usd, g.key))
    runs = [
        {
            "key": g.key,
            "calls": g.calls,
            "spent_usd": round(g.cost_usd, 10),
            "budget_usd": run_budget_usd,
            "share": _share(g.cost_usd, run_budget_usd),
        }
        for g in runs_all[:top_runs]
    ]
    budgets = dict(key_budgets_usd or {})
    by_key: dict[str, list[SpendRecord]] = {k: [] for k in budgets}
    for r in records:
        if r.api_key and r.ts >= key_period_start:
            by_key.setdefault(r.api_key, []).append(r)
    keys = []
    for key, rows in sorted(by_key.items()):
        s = summarize(rows)
        keys.append(
            {
                "key": _key_label(key),
                "calls": s.calls,
                "spent_usd": round(s.total_usd, 10),
                "budget_usd": budgets.get(key),
                "share": _share(s.total_usd, budgets.get(key)),
            }
        )
    from aco_langchain.spend.outcomes import outcome_figures

    return {
        "ledger": ledger_url,
        "baseline": baseline,
        "outcomes": outcome_figures({g.key: g.cost_usd for g in runs_all}, outcomes or {}),
        "totals": totals,
        "savings_share": (
            round(total.savings_usd / total.baseline_usd, 6) if total.baseline_usd > 0 else None
        ),
        "first_day": days[0]["day"] if days else None,
        "last_day": days[-1]["day"] if days else None,
        "days": days,
        "tiers": tiers,
        "run_budget_usd": run_budget_usd,
        "runs": runs,
        "runs_total": len(runs_all),
        "keys": keys,
        "rates": call_rates(records),
    }


def call_rates(records: Sequence[SpendRecord]) -> dict[str, Any]:
    """Escalation and cache-hit counts and rates over answered calls (rows); pure. The one
    count the dashboard and the server's ``/v1/spend`` both show.

    Example:
        ```python
        call_rates(ledger.records())["cache_hit_rate"]
        ```
    """
    calls = len(records)
    esc = sum(_flagged(r, "escalated") for r in records)
    hits = sum(_flagged(r, "cache_hit") for r in records)
    return {
        "calls": calls,
        "escalations": esc,
        "cache_hits": hits,
        "escalation_rate": round(esc / calls, 6) if calls else None,
        "cache_hit_rate": round(hits / calls, 6) if calls else None,
    }


__all__ = ["TOP_RUNS", "call_rates", "dashboard_data"]
