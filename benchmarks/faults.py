"""Time to an answer or to a clear error, for each provider fault.

Tier 2 (forced) is a loopback fake provider (tests/fault_server.py) that shows one fault on
every request; tiers 3-5 answer. Each case is timed with the defaults (30 s deadline,
3 retries, 0.5 s backoff base) and with a 3 s deadline; "all hang" makes every tier hang.
The cloud tiers are fakes because no real provider can run here; the HTTP stack (ChatOpenAI,
openai, httpx) is the real one. Prints a table and writes JSON to benchmarks/results/faults.json.

Usage::

    .venv/bin/python benchmarks/faults.py [--only hang,trickle] [--skip-defaults]
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aco_langchain import ACORouterChatModel  # noqa: E402
from aco_langchain.config import config_from_dict  # noqa: E402
from aco_langchain.routing import RuleRouter  # noqa: E402
from tests.fault_server import Fault, FaultServer  # noqa: E402

#: (name, fault kind, streamed?)
CASES: list[tuple[str, str, bool]] = [
    ("429", "429", False),
    ("500", "500", False),
    ("503", "503", False),
    ("400", "400", False),
    ("401", "401", False),
    ("close", "close", False),
    ("reset", "reset", False),
    ("refused", "refused", False),
    ("empty choices", "empty_choices", False),
    ("null content", "null_content", False),
    ("HTML page", "html", False),
    ("bad JSON", "bad_json", False),
    ("empty stream", "empty_stream", True),
    ("mid-stream cut", "cut", True),
    ("slow (60 s)", "slow", False),
    ("hang", "hang", False),
    ("trickle 1 B/0.4 s", "trickle", False),
    ("all hang", "all_hang", False),
    # Issue 19 item 7: a hanging tier must leave time to fall back within the deadline.
    ("tier 2 hangs, tier 3 ok", "hang_t3_ok", False),
    # ...and the first call after construction (client setup inside the deadline).
    ("first call, tier 2 hangs", "hang_cold", False),
]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_case(kind: str, stream: bool, deadline_s: float | None) -> dict[str, Any]:
    servers = {
        n: FaultServer(default=Fault("ok", text=f"tier {n} answers"), hang_s=60).start()
        for n in range(2, 6)
    }
    try:
        if kind == "all_hang":
            for s in servers.values():
                s.push(*[Fault("hang")] * 20)
        elif kind == "hang_t3_ok":  # only tier 3 answers
            for n in (2, 4, 5):
                servers[n].push(*[Fault("hang")] * 20)
        elif kind == "hang_cold":
            servers[2].push(*[Fault("hang")] * 20)
        elif kind != "refused":  # refused: tier 2 points at a closed port instead
            servers[2].push(*[Fault(kind)] * 20)
        models = {
            f"tier{n}": {
                "model_id": f"t{n}",
                "provider": "openai-compatible",
                "base_url": srv.base_url,
                "cost_per_1k_input": 0.1,
                "cost_per_1k_output": 0.1,
            }
            for n, srv in servers.items()
        }
        if kind == "refused":
            models["tier2"]["base_url"] = f"http://127.0.0.1:{_closed_port()}/v1"
        routing: dict[str, Any] = {}
        if deadline_s is not None:
            routing["max_latency_per_call_s"] = deadline_s
        cfg = config_from_dict({"routing": routing, "models": models})
        logging.getLogger("aco_langchain").setLevel(logging.ERROR)
        t0 = time.monotonic()
        llm = ACORouterChatModel(config=cfg, router=RuleRouter())
        if kind != "hang_cold":
            for n in range(2, 6):
                llm.registry.model(n)  # client setup is not what is measured here
            t0 = time.monotonic()
        try:
            if stream:
                text = "".join(str(c.content) for c in llm.stream("hi", force_tier=2))
                outcome = f"answer: {text[:20]!r}"
            else:
                msg = llm.invoke("hi", force_tier=2)
                outcome = f"tier {msg.response_metadata['aco']['tier']} answered"
        except Exception as exc:  # noqa: BLE001 - the outcome is what is measured
            outcome = f"{type(exc).__name__}: {str(exc)[:70]}"
        wall = time.monotonic() - t0
        return {"seconds": round(wall, 3), "outcome": outcome}
    finally:
        for s in servers.values():
            s.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated case names or kinds")
    ap.add_argument("--skip-defaults", action="store_true", help="only the 3 s deadline")
    args = ap.parse_args()
    wanted = {w.strip() for w in args.only.split(",") if w.strip()}
    runs: list[tuple[str, float | None]] = [("3 s deadline", 3.0)]
    if not args.skip_defaults:
        runs.insert(0, ("defaults (30 s)", None))
    rows: list[dict[str, Any]] = []
    for name, kind, stream in CASES:
        if wanted and name not in wanted and kind not in wanted:
            continue
        row: dict[str, Any] = {"fault": name, "kind": kind, "stream": stream}
        for label, deadline in runs:
            row[label] = run_case(kind, stream, deadline)
        rows.append(row)
        cells = "  ".join(
            f"{row[label]['seconds']:7.2f}s {row[label]['outcome'][:48]:<48}" for label, _ in runs
        )
        print(f"{name:<18} {cells}", flush=True)
    out = Path(__file__).parent / "results" / "faults.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "what": "seconds to an answer or a clear error per fault (tier 2 faulty, tiers 3-5 OK)",
        "runs": [label for label, _ in runs],
        "python": sys.version.split()[0],
        "rows": rows,
    }
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
