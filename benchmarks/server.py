"""Overhead of `aco serve` over a direct upstream call, side by side with LiteLLM's proxy.

Three targets answer the same OpenAI chat-completions request, all backed by the same
loopback fake upstream (``tests/fault_server.FaultServer`` in its own process: no cloud
provider can run here):

- ``direct``: the upstream itself;
- ``aco``: a real ``aco serve`` process (1 worker, ``model: aco``, the config's router, no
  cache, one bearer key, a SQLite ledger) whose five tiers point at the upstream;
- ``aco_pg``: the same with the local PostgreSQL ledger (unique tables, dropped after;
  skipped when no server answers);
- ``aco_w2``: the same as ``aco`` with ``--workers 2`` (both workers share the SQLite ledger);
- ``litellm``: LiteLLM's proxy (``litellm --config``, 1 worker) from its own venv
  (``python3 -m venv /work/venvs/litellm && /work/venvs/litellm/bin/pip install
  'litellm[proxy]'``; never a dependency of ours), one model pointing at the upstream, its
  master key as the bearer key, no database;
- ``base``, ``base_pg`` (with ``--compare-root DIR``): ``aco`` and ``aco_pg`` served from
  another checkout of the package (e.g. a worktree of ``main``), to measure a change before
  and after in the same run.

The upstream sets ``TCP_NODELAY`` (``tests/fault_server``): without it its two writes per
answer met the client's delayed ACK and the direct baseline stalled ~40 ms per call.

Each target gets a warm-up, then a bounded load (default 2,000 requests, 16 concurrent, one
keep-alive httpx client) and a sequential run (300 requests, 1 at a time: latency without
queueing). Distinct prompts, so nothing can be served from a cache. With ``--rounds N`` every
target is measured N times, the targets interleaved round by round (the host's load drifts
on a shared machine), and each figure is the median over the rounds. Printed and written to
``benchmarks/results/server.json``: p50/p99 latency, requests/s, the *added* p50/p99 over the
direct call and the throughput as a share of the direct one, measured in the same run, and
each server's own CPU time per request (its process and workers, from ``/proc``: far steadier
than latency on a shared host, and what bounds one worker's throughput).
Targets (issue 18): added p50 at 1 in flight <= 2 ms; throughput at 16 in flight >= 0.5x
direct; ``--workers 2`` not slower than one.

Usage::

    .venv/bin/python benchmarks/server.py [--requests 2000] [--concurrency 16] [--rounds 1]
        [--litellm /work/venvs/litellm/bin/litellm] [--no-pg] [--no-workers2]
        [--compare-root /path/to/main-checkout]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "server.json"
#: Both servers check this bearer key (LiteLLM's master key; one of aco's keys).
KEY = "sk-bench-0123456789abcdef0123456789abcdef"
PROMPT = "Summarize this support ticket in one sentence: the export button does nothing."

_UPSTREAM = """
import sys, time
sys.path.insert(0, {root!r})
from tests.fault_server import FaultServer
srv = FaultServer(text="A short answer from the upstream.", max_requests=10**7,
                  max_lifetime_s=3600)
srv._httpd.socket.listen(256)  # socketserver's backlog of 5 resets 32 concurrent connects
srv.start()
print(srv.port, flush=True)
while True:
    time.sleep(3600)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_up(url: str, proc: subprocess.Popen[bytes], what: str, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{what} did not come up within {timeout_s:.0f}s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_upstream() -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _UPSTREAM.format(root=str(ROOT))], stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline().decode().strip())
    return proc, f"http://127.0.0.1:{port}/v1"


PG_URL = os.environ.get("ACO_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_ok() -> bool:
    try:
        import psycopg

        psycopg.connect(PG_URL, connect_timeout=3).close()
        return True
    except Exception:  # noqa: BLE001 - any failure: no Postgres here
        return False


def _drop_pg(prefix: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(
            f"DROP TABLE IF EXISTS {prefix}budgets, {prefix}holds, {prefix}spend, "
            f"{prefix}schema_version"
        )


def start_aco(
    upstream: str,
    tmp: Path,
    ledger_url: str,
    name: str,
    workers: int = 1,
    root: Path = ROOT,
) -> tuple[subprocess.Popen[bytes], str]:
    models = {
        f"tier{n}": {
            "model_id": f"bench-tier-{n}",
            "provider": "openai-compatible",
            "model": f"up-{n}",
            "base_url": upstream,
            "cost_per_1k_input": 0.0 if n == 1 else 0.05 * n,
            "cost_per_1k_output": 0.0 if n == 1 else 0.05 * n,
            "is_local": n == 1,
            "capabilities": ["chat", "tools"],
        }
        for n in range(1, 6)
    }
    cfg = {"models": models, "ledger": {"url": ledger_url}}
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACO_")}
    env["PYTHONPATH"] = str(root)
    env["ACO_SERVER_API_KEYS"] = KEY
    proc = subprocess.Popen(
        [sys.executable, "-c", "from aco_langchain.cli import main; main()", "serve"]
        + ["--config", str(path), "--port", str(port), "--no-access-log"]
        + ["--workers", str(workers)]
        + ["--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    _wait_up(f"{base}/healthz", proc, "aco serve")
    return proc, f"{base}/v1"


def start_litellm(binary: str, upstream: str, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    cfg = {
        "model_list": [
            {
                "model_name": "bench",
                "litellm_params": {"model": "openai/up-2", "api_base": upstream, "api_key": "x"},
            }
        ],
        "litellm_settings": {"telemetry": False, "drop_params": True},
        "general_settings": {"master_key": KEY},
    }
    path = tmp / "litellm.yaml"
    path.write_text(yaml.safe_dump(cfg))
    port = _free_port()
    env = {**os.environ, "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False"}
    proc = subprocess.Popen(
        [binary, "--config", str(path), "--port", str(port), "--num_workers", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=str(tmp),
    )
    base = f"http://127.0.0.1:{port}"
    _wait_up(f"{base}/health/liveliness", proc, "litellm proxy", timeout_s=300)
    return proc, f"{base}/v1"


async def _load(
    base: str, model: str, n: int, concurrency: int, tag: str
) -> tuple[list[float], float, int]:
    """(latencies in seconds, wall seconds, errors) of ``n`` requests, ``concurrency`` at once."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:

        async def worker() -> None:
            nonlocal errors
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                body = {
                    "model": model,
                    "messages": [{"role": "user", "content": f"{PROMPT} ({tag} #{i})"}],
                    "max_tokens": 32,
                }
                t0 = time.perf_counter()
                try:
                    r = await client.post(
                        "/chat/completions", json=body, headers={"authorization": f"Bearer {KEY}"}
                    )
                except httpx.HTTPError:
                    errors += 1
                    continue
                dt = time.perf_counter() - t0
                if r.status_code == 200 and r.json()["choices"][0]["message"]["content"]:
                    latencies.append(dt)
                else:
                    errors += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    return latencies, wall, errors


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000.0


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` and its live children
    (``--workers 2``'s worker processes); Linux ``/proc``."""
    tick = os.sysconf("SC_CLK_TCK")

    def own(p: int) -> float:
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(f[11]) + int(f[12])) / tick

    total = own(pid)
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int(d.joinpath("stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                total += own(int(d.name))
    return total


def measure(
    base: str,
    model: str,
    name: str,
    n: int,
    concurrency: int,
    rnd: int = 0,
    pid: int | None = None,
) -> dict[str, Any]:
    asyncio.run(_load(base, model, 100, min(concurrency, 8), f"{name}-warm{rnd}"))
    out: dict[str, Any] = {}
    for label, count, conc in (("loaded", n, concurrency), ("sequential", 300, 1)):
        tag = f"{name}-{label}-r{rnd}"
        cpu0 = _cpu_s(pid) if pid else 0.0
        lat, wall, errors = asyncio.run(_load(base, model, count, conc, tag))
        cpu = (_cpu_s(pid) - cpu0) / count * 1000.0 if pid else None
        out[label] = {
            "requests": count,
            "concurrency": conc,
            "errors": errors,
            "p50_ms": round(_pct(lat, 0.50), 3),
            "p99_ms": round(_pct(lat, 0.99), 3),
            "mean_ms": round(statistics.fmean(lat) * 1000.0, 3) if lat else None,
            "req_per_s": round(len(lat) / wall, 1),
            # The server process's own CPU per request: what the load on the host does not
            # change much (latency and req/s on a shared 2-core machine swing +-20%).
            "cpu_ms_per_req": None if cpu is None else round(cpu, 3),
        }
        r = out[label]
        print(
            f"  {name:12s} {label:10s} n={count:5d} c={conc:2d}  p50 {r['p50_ms']:8.2f} ms  "
            f"p99 {r['p99_ms']:8.2f} ms  {r['req_per_s']:7.1f} req/s  "
            f"cpu {r['cpu_ms_per_req'] or 0:5.2f} ms/req  errors {errors}",
            flush=True,
        )
    return out


def median_of(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One target's figures over several rounds: the median of each (pure)."""
    if len(rounds) == 1:
        return rounds[0]
    out: dict[str, Any] = {}
    for label in rounds[0]:
        runs = [r[label] for r in rounds]
        out[label] = {
            k: (
                round(statistics.median(x[k] for x in runs), 3)
                if k.endswith(("_ms", "_per_s", "_per_req")) and runs[0][k] is not None
                else sum(x[k] for x in runs)
                if k == "errors"
                else runs[0][k]
            )
            for k in runs[0]
        }
        out[label]["rounds"] = len(runs)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=1, help="Interleaved rounds per target.")
    ap.add_argument("--litellm", default="/work/venvs/litellm/bin/litellm")
    ap.add_argument("--no-pg", action="store_true", help="Skip the Postgres-ledger target.")
    ap.add_argument("--no-workers2", action="store_true", help="Skip --workers 2.")
    ap.add_argument(
        "--compare-root",
        type=Path,
        default=None,
        help="Another checkout of the package: its aco (and aco_pg) are measured too.",
    )
    args = ap.parse_args()
    pg_prefix = f"aco_bsrv{os.getpid()}_"
    use_pg = not args.no_pg and _pg_ok()
    procs: list[subprocess.Popen[bytes]] = []
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="aco-bench-server-") as d:
        tmp = Path(d)
        try:
            up, upstream = start_upstream()
            procs.append(up)
            _wait_up(upstream.removesuffix("/v1") + "/health", up, "upstream")
            sqlite_url = f"sqlite:///{tmp / 'ledger.db'}"
            aco, aco_url = start_aco(upstream, tmp, sqlite_url, "aco")
            procs.append(aco)
            targets = [("direct", upstream, "up-2", up.pid), ("aco", aco_url, "aco", aco.pid)]
            if use_pg:
                pg, pg_url = start_aco(
                    upstream, tmp, f"{PG_URL}?table_prefix={pg_prefix}", "aco_pg"
                )
                procs.append(pg)
                targets.append(("aco_pg", pg_url, "aco", pg.pid))
            if not args.no_workers2:
                w2, w2_url = start_aco(upstream, tmp, sqlite_url, "aco_w2", workers=2)
                procs.append(w2)
                targets.append(("aco_w2", w2_url, "aco", w2.pid))
            if args.compare_root is not None:
                other = args.compare_root.resolve()
                base_url = f"sqlite:///{tmp / 'base-ledger.db'}"
                bp, bp_url = start_aco(upstream, tmp, base_url, "base", root=other)
                procs.append(bp)
                targets.append(("base", bp_url, "aco", bp.pid))
                if use_pg:
                    bpg, bpg_url = start_aco(
                        upstream,
                        tmp,
                        f"{PG_URL}?table_prefix={pg_prefix}b_",
                        "base_pg",
                        root=other,
                    )
                    procs.append(bpg)
                    targets.append(("base_pg", bpg_url, "aco", bpg.pid))
            if Path(args.litellm).exists():
                lite, lite_url = start_litellm(args.litellm, upstream, tmp)
                procs.append(lite)
                targets.append(("litellm", lite_url, "bench", lite.pid))
            else:
                print(f"LiteLLM not found at {args.litellm}: measuring without it")
            load_start = os.getloadavg()[0]
            print(f"load: {load_start:.1f} (1-min average) on {os.cpu_count()} cores")
            rounds: dict[str, list[dict[str, Any]]] = {name: [] for name, *_ in targets}
            rounds["direct_again"] = []
            for rnd in range(max(1, args.rounds)):
                for name, url, model, pid in targets:
                    got = measure(url, model, name, args.requests, args.concurrency, rnd, pid)
                    rounds[name].append(got)
                # The direct call again at the end: how much the machine drifted meanwhile.
                rounds["direct_again"].append(
                    measure(
                        upstream, "up-2", "direct", args.requests, args.concurrency, rnd, up.pid
                    )
                )
            for name, runs in rounds.items():
                results[name] = median_of(runs)
        finally:
            for p in reversed(procs):
                _stop(p)
            if use_pg:
                _drop_pg(pg_prefix)
                if args.compare_root is not None:
                    _drop_pg(f"{pg_prefix}b_")
    names = [n for n in ("aco", "aco_pg", "aco_w2", "base", "base_pg", "litellm") if n in results]
    for label in ("loaded", "sequential"):
        base50 = statistics.median(
            [results["direct"][label]["p50_ms"], results["direct_again"][label]["p50_ms"]]
        )
        base99 = statistics.median(
            [results["direct"][label]["p99_ms"], results["direct_again"][label]["p99_ms"]]
        )
        base_rps = statistics.median(
            [results["direct"][label]["req_per_s"], results["direct_again"][label]["req_per_s"]]
        )
        for name in names:
            r = results[name][label]
            r["added_p50_ms"] = round(r["p50_ms"] - base50, 3)
            r["added_p99_ms"] = round(r["p99_ms"] - base99, 3)
            r["throughput_vs_direct"] = round(r["req_per_s"] / base_rps, 3)
    print("\nover the direct call (same run):")
    for label in ("loaded", "sequential"):
        for name in names:
            r = results[name][label]
            print(
                f"  {name:12s} {label:10s} +p50 {r['added_p50_ms']:8.2f} ms  "
                f"+p99 {r['added_p99_ms']:8.2f} ms  {r['req_per_s']:7.1f} req/s "
                f"({r['throughput_vs_direct']:.2f}x direct)  "
                f"cpu {r['cpu_ms_per_req'] or 0:.2f} ms/req"
            )
    targets_met = {}
    for name in (n for n in names if n not in ("litellm", "base", "base_pg")):
        targets_met[name] = {
            "added_p50_le_2ms_at_1": results[name]["sequential"]["added_p50_ms"] <= 2.0,
            "throughput_ge_half_direct_at_16": results[name]["loaded"]["throughput_vs_direct"]
            >= 0.5,
        }
    if "aco_w2" in results:
        targets_met["aco_w2"]["not_slower_than_one_worker"] = (
            results["aco_w2"]["loaded"]["req_per_s"] >= results["aco"]["loaded"]["req_per_s"]
        )
    results["targets"] = targets_met
    print(f"targets: {json.dumps(targets_met)}")
    if "litellm" in results:
        ok = all(
            results["aco"][lb]["added_p50_ms"] < results["litellm"][lb]["added_p50_ms"]
            for lb in ("loaded", "sequential")
        )
        print(f"target (aco added p50 < LiteLLM's, both runs): {'met' if ok else 'NOT met'}")
        results["target_met"] = ok
    results["meta"] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_avg_1m_start": round(load_start, 2),
        "load_avg_1m_end": round(os.getloadavg()[0], 2),
        "rounds": max(1, args.rounds),
        "compare_root": str(args.compare_root) if args.compare_root else None,
        "upstream": "tests/fault_server.FaultServer (loopback fake, own process, TCP_NODELAY)",
        "client": "httpx.AsyncClient, keep-alive",
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
