"""Ledger cost per call: hold + settle latency (p50/p99) and calls/s with 8 processes.

Backends: memory, SQLite (a temporary file, WAL), and the local PostgreSQL (unique table
prefix, dropped after; skipped when no server answers). One "call" is what the chat model does
around a tier call: ``hold`` the worst case on the run's budget, then ``settle`` with the
call's row. Multi-process: 8 processes, one shared run budget (large enough never to refuse),
started together; calls/s = all calls / wall time. Targets: p50 <= 1 ms (SQLite), <= 2 ms
(Postgres) on this machine. Prints a table, writes benchmarks/results/ledger.json.

Usage::

    .venv/bin/python benchmarks/ledger.py [--calls 1000] [--proc-calls 300] [--procs 8]
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
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="aco-ledger-bench-"))
    prefix = f"aco_bench{uuid.uuid4().hex[:8]}_"
    backends: list[tuple[str, str, str]] = [
        ("memory", "memory://", ""),
        ("sqlite", f"sqlite:///{tmp / 'lat.db'}", f"sqlite:///{tmp / 'procs.db'}"),
    ]
    if _pg_ok():
        backends.append(
            ("postgres", f"{PG_URL}?table_prefix={prefix}l_", f"{PG_URL}?table_prefix={prefix}p_")
        )
    else:
        print(f"postgres: skipped (no server at {PG_URL})")
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)},
        "backends": {},
    }
    try:
        for name, lat_url, proc_url in backends:
            row: dict[str, Any] = {"hold_settle": latency(lat_url, args.calls)}
            if proc_url:
                row["processes"] = throughput(proc_url, args.procs, args.proc_calls)
            results["backends"][name] = row
    finally:
        if len(backends) == 3:
            import psycopg

            with psycopg.connect(PG_URL, autocommit=True) as conn:
                for p in (f"{prefix}l_", f"{prefix}p_"):
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
    print(f"load average (1 min) at start: {results['machine']['load_avg_1m']}")
    out = Path(__file__).resolve().parent / "results" / "ledger.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
