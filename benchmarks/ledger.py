"""Ledger cost per call: hold + settle latency (p50/p99), calls/s with 8 processes, and the
same latency with 1 M run keys in the ledger.

Backends: memory, SQLite (a temporary file, WAL), and the local PostgreSQL (unique table
prefix, dropped after; skipped when no server answers). One "call" is what the chat model does
around a tier call: ``hold`` the worst case on the run's budget, then ``settle`` with the
call's row. Multi-process: 8 processes, one shared run budget (large enough never to refuse),
started together; calls/s = all calls / wall time. Targets: p50 <= 1 ms (SQLite), <= 2 ms
(Postgres) on this machine. Prints a table, writes benchmarks/results/ledger.json.

Scale (``--run-keys``, default 1,000,000): each backend's ledger is filled with that many
finished runs (one settled budget row and one spend row per run key, written in bulk by SQL),
then one call per *new* run key (a budget row created, held, settled: what a fresh task does)
is timed on the empty ledger and on the full one, interleaved in rounds so machine load hits
both alike; then ``prune`` compacts the finished runs and its time is reported. Expectation:
the medians are unchanged (every statement reaches its rows by primary key or index).

Usage::

    .venv/bin/python benchmarks/ledger.py [--calls 1000] [--proc-calls 300] [--procs 8]
        [--run-keys 1000000] [--scale-calls 2000] [--only-scale]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aco_langchain.spend.ledger import Hold, Limit, SpendRecord, open_ledger  # noqa: E402

PG_URL = os.environ.get("ACO_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
LIMITS = [Limit("run:bench", usd=1e12, tokens=None)]


def _one_call(ledger: Any, i: int) -> None:
    got = ledger.hold(LIMITS, 0.01, 1200, ttl_s=120)
    assert isinstance(got, Hold), got
    ledger.settle(
        got,
        SpendRecord(run_key="bench", cost_usd=0.002, input_tokens=900, output_tokens=120,
                    tier=2, model="gpt-4o-mini", provider="openai", baseline_usd=0.01,
                    trace_id=f"t{i}", latency_ms=1.0),
    )  # fmt: skip


def _fresh_call(ledger: Any, key: str) -> float:
    """One call of a new task (its own run key); returns milliseconds."""
    t = time.perf_counter()
    got = ledger.hold([Limit(f"run:{key}", usd=5.0)], 0.01, 1200, ttl_s=120)
    assert isinstance(got, Hold), got
    ledger.settle(
        got,
        SpendRecord(run_key=key, cost_usd=0.002, input_tokens=900, output_tokens=120, tier=2,
                    model="gpt-4o-mini", provider="openai", baseline_usd=0.01, latency_ms=1.0),
    )  # fmt: skip
    return (time.perf_counter() - t) * 1000


def _fill(kind: str, url: str, n: int, ts: float) -> float:
    """Write ``n`` finished runs (budget row + spend row each) in bulk; returns seconds."""
    t = time.perf_counter()
    if kind == "sqlite":
        import sqlite3

        path = url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as conn:
            conn.execute(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) "
                "INSERT INTO budgets (scope, spent_usd, spent_tokens, touched_at) "
                "SELECT 'run:bulk-' || x, 0.002, 1020, ? FROM c",
                (n, ts),
            )
            conn.execute(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) "
                "INSERT INTO spend (ts, run_key, tier, model, provider, input_tokens, "
                "output_tokens, cost_usd, baseline_usd) SELECT ?, 'bulk-' || x, 2, "
                "'gpt-4o-mini', 'openai', 900, 120, 0.002, 0.01 FROM c",
                (n, ts),
            )
    else:
        import psycopg

        from aco_langchain.spend.ledger.url import parse_ledger_url

        parsed = parse_ledger_url(url)
        p = parsed.table_prefix
        assert parsed.dsn is not None
        with psycopg.connect(parsed.dsn, autocommit=True) as conn:
            conn.execute(
                f"INSERT INTO {p}budgets (scope, spent_usd, spent_tokens, touched_at) "
                "SELECT 'run:bulk-' || x, 0.002, 1020, %s FROM generate_series(1, %s) x",
                (ts, n),
            )
            conn.execute(
                f"INSERT INTO {p}spend (ts, run_key, tier, model, provider, input_tokens, "
                "output_tokens, cost_usd, baseline_usd) SELECT %s, 'bulk-' || x, 2, "
                "'gpt-4o-mini', 'openai', 900, 120, 0.002, 0.01 FROM generate_series(1, %s) x",
                (ts, n),
            )
            conn.execute(f"ANALYZE {p}budgets")
            conn.execute(f"ANALYZE {p}spend")
    return time.perf_counter() - t


def _stats(times: list[float]) -> dict[str, float]:
    times = sorted(times)
    return {
        "calls": len(times),
        "p50_ms": round(statistics.median(times), 4),
        "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 4),
    }


def scale(kind: str, small_url: str, big_url: str, run_keys: int, calls: int) -> dict[str, Any]:
    """Fresh-run hold+settle on an empty ledger vs one holding ``run_keys`` finished runs."""
    small, big = open_ledger(small_url, shared=False), open_ledger(big_url, shared=False)
    old = time.time() - 86400 * 40  # finished runs: last touched 40 days ago
    fill_s = _fill(kind, big_url, run_keys, old)
    for i in range(200):  # warm up both (connections, plans, the hot index pages)
        _fresh_call(small, f"warm-{i}")
        _fresh_call(big, f"warm-{i}")
    empty_t: list[float] = []
    full_t: list[float] = []
    for r in range(calls // 50):  # interleaved rounds: load changes hit both sides alike
        for i in range(50):
            empty_t.append(_fresh_call(small, f"new-{r}-{i}"))
        for i in range(50):
            full_t.append(_fresh_call(big, f"new-{r}-{i}"))
    t = time.perf_counter()
    report = big.prune(time.time() - 86400)
    prune_s = time.perf_counter() - t
    after = [_fresh_call(big, f"after-{i}") for i in range(min(calls, 500))]
    rows = big.summary().calls
    small.close()
    big.close()
    empty, full = _stats(empty_t), _stats(full_t)
    return {
        "run_keys": run_keys,
        "fill_s": round(fill_s, 2),
        "empty_ledger": empty,
        "with_run_keys": full,
        "p50_ratio": round(full["p50_ms"] / empty["p50_ms"], 3),
        "prune": {
            "budgets_deleted": report.budgets_deleted,
            "seconds": round(prune_s, 2),
            "spend_rows_after": rows,
        },
        "after_prune": _stats(after),
    }


def latency(url: str, calls: int) -> dict[str, float]:
    ledger = open_ledger(url, shared=False)
    for i in range(20):  # warm up (connections, statement plans)
        _one_call(ledger, i)
    times = []
    for i in range(calls):
        t = time.perf_counter()
        _one_call(ledger, i)
        times.append((time.perf_counter() - t) * 1000)
    ledger.close()
    times.sort()
    return {
        "calls": calls,
        "p50_ms": round(statistics.median(times), 4),
        "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 4),
        "mean_ms": round(statistics.fmean(times), 4),
    }


def _proc(url: str, calls: int, barrier: Any, out: Any) -> None:
    ledger = open_ledger(url, shared=False)
    _one_call(ledger, -1)
    barrier.wait()
    t = time.perf_counter()
    for i in range(calls):
        _one_call(ledger, i)
    out.put((t, time.perf_counter()))
    ledger.close()


def throughput(url: str, procs: int, calls: int) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(procs)
    out = ctx.Queue()
    ps = [ctx.Process(target=_proc, args=(url, calls, barrier, out)) for _ in range(procs)]
    for p in ps:
        p.start()
    spans = [out.get(timeout=600) for _ in ps]
    for p in ps:
        p.join()
    wall = max(e for _, e in spans) - min(s for s, _ in spans)
    ledger = open_ledger(url, shared=False)
    n_rows = len(ledger.records(run="bench"))
    ledger.close()
    return {
        "processes": procs,
        "calls": procs * calls,
        "wall_s": round(wall, 3),
        "calls_per_s": round(procs * calls / wall, 1),
        "rows_in_ledger": n_rows,
    }


def _pg_ok() -> bool:
    try:
        import psycopg

        psycopg.connect(PG_URL, connect_timeout=3).close()
        return True
    except Exception:  # noqa: BLE001 - any failure: no Postgres here
        return False


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--proc-calls", type=int, default=300)
    ap.add_argument("--procs", type=int, default=8)
    ap.add_argument("--run-keys", type=int, default=1_000_000)
    ap.add_argument("--scale-calls", type=int, default=2000)
    ap.add_argument("--only-scale", action="store_true", help="Only the 1 M run keys part.")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="aco-ledger-bench-"))
    prefix = f"aco_bench{uuid.uuid4().hex[:8]}_"
    backends: list[tuple[str, str, str]] = [
        ("memory", "memory://", ""),
        ("sqlite", f"sqlite:///{tmp / 'lat.db'}", f"sqlite:///{tmp / 'procs.db'}"),
    ]
    scale_urls = {"sqlite": (f"sqlite:///{tmp / 'small.db'}", f"sqlite:///{tmp / 'big.db'}")}
    if _pg_ok():
        backends.append(
            ("postgres", f"{PG_URL}?table_prefix={prefix}l_", f"{PG_URL}?table_prefix={prefix}p_")
        )
        scale_urls["postgres"] = (
            f"{PG_URL}?table_prefix={prefix}s_",
            f"{PG_URL}?table_prefix={prefix}b_",
        )
    else:
        print(f"postgres: skipped (no server at {PG_URL})")
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)},
        "backends": {},
    }
    out = Path(__file__).resolve().parent / "results" / "ledger.json"
    if args.only_scale and out.exists():
        results = {**json.loads(out.read_text()), "machine": results["machine"]}
    try:
        for name, lat_url, proc_url in [] if args.only_scale else backends:
            row: dict[str, Any] = {"hold_settle": latency(lat_url, args.calls)}
            if proc_url:
                row["processes"] = throughput(proc_url, args.procs, args.proc_calls)
            results["backends"][name] = row
        results["scale"] = {}
        for name, (small_url, big_url) in scale_urls.items():
            print(f"{name}: filling {args.run_keys:,} run keys ...", flush=True)
            results["scale"][name] = scale(
                name, small_url, big_url, args.run_keys, args.scale_calls
            )
    finally:
        if len(backends) == 3:
            import psycopg

            with psycopg.connect(PG_URL, autocommit=True) as conn:
                for p in (f"{prefix}l_", f"{prefix}p_", f"{prefix}s_", f"{prefix}b_"):
                    conn.execute(
                        f"DROP TABLE IF EXISTS {p}budgets, {p}holds, {p}spend, {p}schema_version"
                    )
    targets = {"sqlite": 1.0, "postgres": 2.0}
    print(f"{'backend':<10}{'p50 ms':>9}{'p99 ms':>9}{'target':>8}{'8-proc calls/s':>16}")
    for name, row in results["backends"].items():
        hs = row["hold_settle"]
        target = targets.get(name)
        row["target_p50_ms"] = target
        row["meets_target"] = None if target is None else hs["p50_ms"] <= target
        cps = row.get("processes", {}).get("calls_per_s", "-")
        print(
            f"{name:<10}{hs['p50_ms']:>9.3f}{hs['p99_ms']:>9.3f}"
            f"{(f'{target:g}' if target else '-'):>8}{cps!s:>16}"
        )
    print(
        f"\n{'fresh run, hold+settle':<24}{'empty p50':>10}{'1M p50':>9}{'ratio':>7}"
        f"{'empty p99':>10}{'1M p99':>9}{'prune s':>9}"
    )
    for name, sc in results.get("scale", {}).items():
        e, f = sc["empty_ledger"], sc["with_run_keys"]
        label = f"{name} ({sc['run_keys']:,} keys)"
        print(
            f"{label:<24}{e['p50_ms']:>10.3f}"
            f"{f['p50_ms']:>9.3f}{sc['p50_ratio']:>7.2f}{e['p99_ms']:>10.3f}{f['p99_ms']:>9.3f}"
            f"{sc['prune']['seconds']:>9.2f}"
        )
    results["machine"]["load_avg_1m_end"] = round(os.getloadavg()[0], 2)
    print(f"load average (1 min) at start: {results['machine']['load_avg_1m']}")
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
