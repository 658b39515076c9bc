"""The ledger contract on every backend: memory, a real SQLite file, the real local Postgres."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aco_langchain.spend.ledger import Hold, Limit, Refusal, SpendLedger, SpendRecord
from tests.ledger_backends import make_ledger


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SpendLedger]:
    gen = make_ledger(request.param, tmp_path)
    led, _url = next(gen)
    yield led
    for _ in gen:
        pass


def _row(run: str, cost: float, **kw) -> SpendRecord:
    return SpendRecord(run_key=run, cost_usd=cost, **kw)


def test_hold_refuses_what_does_not_fit_beside_other_holds(ledger: SpendLedger) -> None:
    lim = [Limit("run:r", usd=1.0)]
    first = ledger.hold(lim, 0.6)
    assert isinstance(first, Hold)
    second = ledger.hold(lim, 0.6)
    assert isinstance(second, Refusal)
    assert "run:r" in second.reason and "held $0.600000" in second.reason
    ledger.settle(first, _row("r", 0.1, tier=2, model="m", input_tokens=10, output_tokens=5))
    assert ledger.spent("r") == pytest.approx(0.1)
    u = ledger.usage("run:r")
    assert u.held_usd == pytest.approx(0.0) and u.spent_tokens == 15
    assert isinstance(ledger.hold(lim, 0.6), Hold)  # the settle gave the rest back


def test_release_gives_the_hold_back_and_records_nothing(ledger: SpendLedger) -> None:
    got = ledger.hold([Limit("run:r", usd=1.0)], 0.9)
    assert isinstance(got, Hold)
    ledger.release(got)
    assert ledger.usage("run:r").held_usd == pytest.approx(0.0)
    assert ledger.records(run="r") == []


def test_a_hold_on_several_budgets_is_all_or_nothing(ledger: SpendLedger) -> None:
    lims = [Limit("run:r", usd=1.0), Limit("user:alice@2026-12", usd=0.05)]
    refused = ledger.hold(lims, 0.06)
    assert isinstance(refused, Refusal) and refused.scope == "user:alice@2026-12"
    assert ledger.usage("run:r").held_usd == pytest.approx(0.0)  # nothing half-held
    assert isinstance(ledger.hold(lims, 0.05), Hold)


def test_token_budgets_are_held_like_money(ledger: SpendLedger) -> None:
    lim = [Limit("run:r", usd=10.0, tokens=1000)]
    assert isinstance(ledger.hold(lim, 0.0, 800), Hold)
    refused = ledger.hold(lim, 0.0, 300)
    assert isinstance(refused, Refusal) and "token budget 1000" in refused.reason


_TTL_S = 0.6


def test_expired_holds_are_released_by_the_next_check(ledger: SpendLedger) -> None:
    lim = [Limit("run:r", usd=1.0)]
    # The TTL is well above one ledger call even on a loaded host (Postgres p99 ~40 ms), so
    # the second hold sees the first still alive; only the sleep waits for the expiry.
    assert isinstance(ledger.hold(lim, 0.9, ttl_s=_TTL_S), Hold)
    assert isinstance(ledger.hold(lim, 0.9), Refusal)
    time.sleep(_TTL_S + 0.2)
    assert isinstance(ledger.hold(lim, 0.9), Hold)


def test_settling_an_expired_hold_still_records_the_spend(ledger: SpendLedger) -> None:
    lim = [Limit("run:r", usd=1.0)]
    got = ledger.hold(lim, 0.5, ttl_s=_TTL_S)
    assert isinstance(got, Hold)
    time.sleep(_TTL_S + 0.2)
    ledger.usage("run:r")  # releases the expired hold
    ledger.settle(got, _row("r", 0.3))
    u = ledger.usage("run:r")
    assert u.spent_usd == pytest.approx(0.3) and u.held_usd == pytest.approx(0.0)


def test_a_block_refuses_paid_holds_but_not_free_ones(ledger: SpendLedger) -> None:
    lim = [Limit("run:r", usd=100.0)]
    got = ledger.hold(lim, 0.1)
    assert isinstance(got, Hold)
    ledger.settle(got, _row("r", 0.5, outcome="over_cap"), block="over the cap")
    refused = ledger.hold(lim, 0.01)
    assert isinstance(refused, Refusal) and "blocked: over the cap" in refused.reason
    assert isinstance(ledger.hold(lim, 0.0), Hold)


def test_rows_round_trip_and_summaries_group(ledger: SpendLedger) -> None:
    lim = [Limit("run:a", usd=10.0)]
    for tier, cost in ((1, 0.0), (2, 0.01), (2, 0.02)):
        got = ledger.hold(lim, 0.05)
        assert isinstance(got, Hold)
        ledger.settle(
            got,
            _row("a", cost, tier=tier, model=f"m{tier}", provider="p", baseline_usd=0.05,
                 trace_id="t1", user="alice", api_key="k1", tags=("x", "y"), latency_ms=12.5),
        )  # fmt: skip
    ledger.add("b", 1.0)
    rows = ledger.records(run="a")
    assert [r.tier for r in rows] == [1, 2, 2]
    r = rows[1]
    assert (r.model, r.provider, r.trace_id, r.user, r.api_key, r.tags, r.latency_ms) == (
        "m2", "p", "t1", "alice", "k1", ("x", "y"), 12.5,
    )  # fmt: skip
    s = ledger.summary(run="a", by="tier")
    assert s.calls == 3 and s.total_usd == pytest.approx(0.03)
    assert s.savings_usd == pytest.approx(0.15 - 0.03)
    assert [(g.key, g.calls) for g in s.groups] == [("1", 1), ("2", 2)]
    assert ledger.summary().calls == 4  # the recorded row of run b counts too
    month = time.strftime("%Y-%m", time.gmtime())
    assert ledger.summary(month=month).calls == 4
    assert ledger.summary(month="1999-01").calls == 0
    assert ledger.summary(by="run").to_dict()["groups"][1]["key"] == "b"


def test_reset_forgets_one_run(ledger: SpendLedger) -> None:
    ledger.add("a", 1.0)
    ledger.add("b", 2.0)
    ledger.reset("a")
    assert ledger.spent("a") == 0.0 and ledger.spent("b") == 2.0
    assert [r.run_key for r in ledger.records()] == ["b"]
