"""What tiers by provider string cost at startup, and what one call through a provider costs us.

Measures, each in a fresh Python process (so imports are cold, as for a user's first call):

1. ``load_config`` of each ``aco init`` preset: reading the models' LangChain profiles imports
   the provider packages (langchain-anthropic, langchain-google-genai), so a config naming them
   validates slower than the default one.
2. One ``invoke`` through ``ACORouterChatModel`` to an Anthropic tier and a Gemini tier served
   by the loopback fakes of their wire protocols (``tests/provider_fakes.py``): wall time of the
   routed call vs the same call on the bare ``ChatAnthropic`` / ``ChatGoogleGenerativeAI``
   (median of ``--repeat`` warm calls), i.e. the router's overhead on a real provider class.

Prints a table and writes ``benchmarks/results/provider_tiers.json``.

Usage::

    python benchmarks/provider_tiers.py --repeat 30
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "provider_tiers.json"

_LOAD = """
import time, sys
t = time.perf_counter()
from aco_langchain.config import load_config
cfg = load_config(sys.argv[1])
print(time.perf_counter() - t)
"""

_CALL = """
import os, statistics, sys, time
sys.path.insert(0, sys.argv[2])
os.environ["ANTHROPIC_API_KEY"] = "fake"; os.environ["GOOGLE_API_KEY"] = "fake"
from tests.provider_fakes import FakeAnthropic, FakeGemini
from aco_langchain import ACORouterChatModel
from aco_langchain.config import config_from_dict
from aco_langchain.routing import RuleRouter
from aco_langchain.spend.ledger import MemoryLedger
from langchain_anthropic import ChatAnthropic
from langchain_google_genai import ChatGoogleGenerativeAI
n = int(sys.argv[1])
out = {}
def median_ms(fn):
    fn()  # warm
    times = []
    for _ in range(n):
        t = time.perf_counter(); fn(); times.append((time.perf_counter() - t) * 1000)
    return round(statistics.median(times), 3)
with FakeAnthropic() as a, FakeGemini() as g:
    for name, model, srv, bare in (
        ("anthropic", "anthropic:claude-haiku-4-5", a,
         ChatAnthropic(model="claude-haiku-4-5", base_url=a.base_url, api_key="fake",
                       max_retries=0)),
        ("google_genai", "google_genai:gemini-2.5-flash", g,
         ChatGoogleGenerativeAI(model="gemini-2.5-flash", base_url=g.base_url, api_key="fake",
                                max_retries=0)),
    ):
        cfg = config_from_dict({"models": {"tier2": {"model": model, "base_url": srv.base_url}}})
        llm = ACORouterChatModel(config=cfg, router=RuleRouter(), ledger=MemoryLedger())
        out[name] = {
            "bare_ms": median_ms(lambda: bare.invoke("hi")),
            "routed_ms": median_ms(lambda: llm.invoke("hi", force_tier=2, aco_run_id="b")),
        }
        out[name]["overhead_ms"] = round(out[name]["routed_ms"] - out[name]["bare_ms"], 3)
print(__import__("json").dumps(out))
"""


def _python(code: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, env=env
    )
    if res.returncode != 0:
        raise SystemExit(f"measurement failed:\n{res.stderr[-2000:]}")
    return res.stdout.strip().splitlines()[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=30, help="warm calls per median")
    ap.add_argument("--loads", type=int, default=3, help="cold config loads per preset")
    args = ap.parse_args()

    from aco_langchain.cli.init_cmds import PRESETS, render_preset

    loads: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for preset in ("default", *PRESETS):
            path = Path(tmp) / f"{preset}.yaml"
            path.write_text("{}\n" if preset == "default" else render_preset(preset))
            runs = [float(_python(_LOAD, str(path))) for _ in range(args.loads)]
            loads[preset] = round(statistics.median(runs) * 1000, 1)
    t = time.perf_counter()
    calls = json.loads(_python(_CALL, str(args.repeat), str(ROOT)))
    result = {
        "config_load_cold_ms": loads,
        "call_median_ms": calls,
        "repeat": args.repeat,
        "loads": args.loads,
        "wall_s": round(time.perf_counter() - t, 1),
    }
    print("cold load_config (median ms):")
    for preset, ms in loads.items():
        print(f"  {preset:10} {ms:8.1f}")
    print(f"one call through the loopback fakes (median of {args.repeat}, ms):")
    for name, row in calls.items():
        print(
            f"  {name:13} bare {row['bare_ms']:7.2f}  routed {row['routed_ms']:7.2f}  "
            f"overhead {row['overhead_ms']:7.2f}"
        )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
