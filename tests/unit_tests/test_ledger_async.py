"""The ledger contract, awaited: ``ahold/asettle/arelease/aspent/ausage`` on every backend
(memory, a real SQLite file, the real local Postgres), including many concurrent holds."""

from __future__ import annotations

import asyncio
import threading

import pytest

from aco_langchain.spend.ledger import (
    Hold,
    Limit,
    MemoryLedger,
    Refusal,
    SpendLedger,
    SpendRecord,
)
from tests.ledger_backends import ledger_and_url  # noqa: F401 - the fixture


@pytest.fixture
def ledger(ledger_and_url: tuple[SpendLedger, str]) -> SpendLedger:  # noqa: F811
    return ledger_and_url[0]


def _row(run: str, cost: float, **kw) -> SpendRecord:
    return SpendRecord(run_key=run, cost_usd=cost, **kw)


async def test_ahold_refuses_what_does_not_fit_and_asettle_gives_the_rest_back(
    ledger: SpendLedger,
) -> None:
    lim = [Limit("run:r", usd=1.0)]
    first = await ledger.ahold(lim, 0.6)
    assert isinstance(first, Hold)
    second = await ledger.ahold(lim, 0.6)
    assert isinstance(second, Refusal) and "held $0.600000" in second.reason
    await ledger.asettle(first, _row("r", 0.1, tier=2, input_tokens=10, output_tokens=5))
    assert await ledger.aspent("r") == pytest.approx(0.1)
    u = await ledger.ausage("run:r")
    assert u.held_usd == pytest.approx(0.0) and u.spent_tokens == 15
    assert isinstance(await ledger.ahold(lim, 0.6), Hold)
    # sync readers see what async writers wrote: one ledger, two ways in
    assert ledger.spent("r") == pytest.approx(0.1)
    assert [r.tier for r in ledger.records(run="r")] == [2]


async def test_settle_returns_the_runs_total_as_it_leaves_it(ledger: SpendLedger) -> None:
    # The caller reports the run's spend after a call from this value: no second read.
    lim = [Limit("run:t", usd=1.0)]
    first = await ledger.ahold(lim, 0.2)
    assert isinstance(first, Hold)
    assert await ledger.asettle(first, _row("t", 0.05)) == pytest.approx(0.05)
    second = ledger.hold(lim, 0.2)
    assert isinstance(second, Hold)
    assert ledger.settle(second, _row("t", 0.01)) == pytest.approx(0.06)
    assert await ledger.aspent("t") == pytest.approx(0.06)
    # A hold that does not count against the record's run: the run's total is read as it is.
    other = await ledger.ahold([Limit("user:u@2026-12", usd=1.0)], 0.1)
    assert isinstance(other, Hold)
    assert await ledger.asettle(other, _row("t", 0.02)) == pytest.approx(0.06)


async def test_arelease_records_nothing_and_all_or_nothing_holds(ledger: SpendLedger) -> None:
    lims = [Limit("run:r", usd=1.0), Limit("user:alice@2026-12", usd=0.05)]
    refused = await ledger.ahold(lims, 0.06)
    assert isinstance(refused, Refusal) and refused.scope == "user:alice@2026-12"
    assert (await ledger.ausage("run:r")).held_usd == pytest.approx(0.0)
    got = await ledger.ahold(lims, 0.05, 100)
    assert isinstance(got, Hold)
    assert (await ledger.ausage("user:alice@2026-12")).held_tokens == 100
    await ledger.arelease(got)
    assert (await ledger.ausage("run:r")).held_usd == pytest.approx(0.0)
    assert ledger.records() == []


async def test_a_block_set_by_asettle_refuses_paid_aholds(ledger: SpendLedger) -> None:
    lim = [Limit("run:r", usd=100.0)]
    got = await ledger.ahold(lim, 0.1)
    assert isinstance(got, Hold)
    await ledger.asettle(got, _row("r", 0.5, outcome="over_cap"), block="over the cap")
    refused = await ledger.ahold(lim, 0.01)
    assert isinstance(refused, Refusal) and "blocked: over the cap" in refused.reason
    assert isinstance(await ledger.ahold(lim, 0.0), Hold)


async def test_many_concurrent_aholds_never_overspend(ledger: SpendLedger) -> None:
    budget, worst, cost = 1.0, 0.03, 0.02
    lims = [Limit("run:c", usd=budget), Limit("total@2026-12", usd=budget * 10)]

    async def call(i: int) -> bool:
        got = await ledger.ahold(lims, worst, 10)
        if isinstance(got, Refusal):
            return False
        await asyncio.sleep(0)  # the calls overlap, as provider calls do
        await ledger.asettle(got, _row("c", cost, trace_id=f"t{i}"))
        return True

    answered = sum(await asyncio.gather(*(call(i) for i in range(120))))
    spent = await ledger.aspent("c")
    assert spent <= budget + 1e-9
    assert spent == pytest.approx(answered * cost)
    assert answered >= int(budget / worst)  # at least every call that fit at once got in
    assert len(ledger.records(run="c")) == answered
    u = await ledger.ausage("run:c")
    assert u.held_usd == pytest.approx(0.0, abs=1e-9) and u.held_tokens == 0


async def test_async_holds_from_several_threads_and_loops_share_one_budget(
    ledger: SpendLedger,
) -> None:
    # Scripts call asyncio.run more than once, and servers run one loop per worker thread:
    # every loop gets working connections (a pool bound to a closed loop is never reused).
    lim = [Limit("run:loops", usd=0.5)]
    results: list[int] = []

    def one_loop() -> None:
        async def calls() -> int:
            held = 0
            for _ in range(5):
                got = await ledger.ahold(lim, 0.01)
                if isinstance(got, Hold):
                    held += 1
                    await ledger.asettle(got, _row("loops", 0.01))
            return held

        results.append(asyncio.run(calls()))

    for _ in range(2):  # two loops one after the other in this thread's own context
        t = threading.Thread(target=one_loop)
        t.start()
        t.join()
    threads = [threading.Thread(target=one_loop) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [5] * 5
    assert await ledger.aspent("loops") == pytest.approx(0.25)


async def test_a_cancelled_ahold_gives_its_hold_back(ledger: SpendLedger) -> None:
    if isinstance(ledger, MemoryLedger):
        pytest.skip("a memory hold completes without awaiting: nothing to cancel mid-way")
    lim = [Limit("run:x", usd=1.0)]
    task = asyncio.ensure_future(ledger.ahold(lim, 0.7))
    await asyncio.sleep(0)  # started: the hold is on its way to the database
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The hold runs on behind the cancelled caller and is then given back. Until then the
    # budget is full; a leaked hold would keep it full for its TTL (300 s), not 10 s.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10.0
    while isinstance(got := await ledger.ahold(lim, 0.7), Refusal):
        assert loop.time() < deadline, "the cancelled caller's hold was never given back"
        await asyncio.sleep(0.01)
    assert (await ledger.ausage("run:x")).held_usd == pytest.approx(0.7)  # ours alone
    await ledger.arelease(got)


def test_a_loop_ends_with_no_ledger_task_left_running(ledger: SpendLedger) -> None:
    # asyncio.run cancels and awaits every task left at its end; a connection pool whose
    # maintenance task swallows the cancel (psycopg_pool's scheduler does) hangs the script
    # at exit. The ledger's async I/O must leave nothing running between calls.
    left: list[int] = []

    async def calls(run: str) -> None:
        got = await ledger.ahold([Limit(f"run:{run}", usd=1.0)], 0.01)
        assert isinstance(got, Hold)
        await ledger.asettle(got, _row(run, 0.01))
        assert await ledger.aspent(run) == pytest.approx(0.01)
        left.append(len(asyncio.all_tasks()) - 1)  # minus this one

    def one_run(run: str) -> None:
        asyncio.run(calls(run))

    for i in range(2):  # a script's two asyncio.run, each on a thread with no loop
        t = threading.Thread(target=one_run, args=(f"tasks-{i}",))
        t.start()
        t.join(timeout=30)
        assert not t.is_alive(), "asyncio.run did not return: a ledger task outlived the loop"
    assert left == [0, 0]
