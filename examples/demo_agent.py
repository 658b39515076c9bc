"""The agent part of ``make demo``: per-step routing, a verification gate and doom termination.

Two small runs of ``create_aco_agent`` on the tiers this machine really has: the local model
(tier 1, SmolLM2-135M; it calls tools through constrained decoding) and every cloud tier whose
API key is set. Nothing is scripted on the model side: with no keys every step is the real
local model, the reason says why, and a verifier whose tier is unavailable says "not
verified". The two tools are demo tools with fixed outputs (labelled so):

1. "Debug the nightly report job failure": ``read_log`` returns a sample log with a database
   timeout; the agent reads it and answers.
2. "Fix the flaky unit test": ``run_tests`` always fails; when the model keeps calling it, the
   repeated failures end the run through the doom detector, with the reason (a 135M model may
   also just answer: what is shown is what it did).

Both runs' traces go to ``trace_file`` (JSONL) through ``ACOTraceCallbackHandler``; ``aco stats``
reads them.

Usage::

    from rich.console import Console
    run_demo_agent(Path("traces/demo.jsonl"), Console())
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage
from langchain_core.tools import tool

from aco_langchain.config import ACOConfig

DEBUG_TASK = "Debug the nightly report job failure and summarize the cause for the on-call team."
FIX_TASK = "Fix the flaky unit test in tests/test_billing.py."
NIGHTLY_LOG = (
    "02:00:01 nightly-report start\n"
    "02:00:07 ERROR psycopg.OperationalError: connection to reports-db timed out after 5s\n"
    "02:00:07 nightly-report failed (exit 1)"
)


@tool
def read_log(job: str) -> str:
    """Read the last run's log of a scheduled job."""
    return NIGHTLY_LOG if "nightly" in job else f"no log for {job}"


@tool
def run_tests(target: str) -> str:
    """Run the unit tests of a file."""
    raise RuntimeError(f"1 failed in {target}: test_invoice_total (flaky: depends on time)")


def _labels(config: ACOConfig) -> dict[int, str]:
    """What each tier really is on this machine (real, or unavailable and why)."""
    from aco_langchain.providers.tiers import TierRegistry

    down = TierRegistry(config).unavailable()
    return {
        n: (
            f"{config.tier(n).provider_model} (unavailable: {down[n]})"
            if n in down
            else f"{config.tier(n).provider_model} (real{', local' if n == 1 else ''})"
        )
        for n in range(1, 6)
    }


def short_reason(reason: str, verbose: bool = False) -> str:
    """The last two clauses of a routing reason (all of it with ``verbose``)."""
    if verbose:
        return reason
    parts = [p for p in reason.split("; ") if p]
    text = "; ".join(parts[-2:])
    return text if len(text) <= 90 else text[:87] + "..."


def _steps_table(title: str, out: dict[str, Any], labels: dict[int, str], verbose: bool) -> Any:
    from rich.table import Table

    table = Table(title=title, show_lines=True)
    for col in ("step", "tier", "model", "reason", "tools", "verifier", "cost $"):
        table.add_column(col, overflow="fold")
    rows: dict[int, dict[str, Any]] = {}
    for e in out.get("aco_events") or []:
        kind = e.get("type")
        if kind == "model":
            rows[e["step"]] = {"event": e, "tools": [], "verifier": [], "cost": e["cost"]}
        elif kind == "tool" and e.get("step") in rows:
            row = rows[e["step"]]
            status = "skipped" if e["skipped"] else ("ok" if e["success"] else "FAILED")
            row["tools"].append(f"{e['name']}: {status}")
            row["cost"] += e["cost"]
        elif kind == "verify_gate" and e.get("step") in rows:
            rows[e["step"]]["verifier"].append(short_reason(e["reason"], verbose))
        elif kind == "verifier" and e.get("step") in rows:
            row = rows[e["step"]]
            verdict = {True: "PASS", False: "FAIL", None: "no verdict"}[e["passed"]]
            row["verifier"].append(f"tier {e['tier']}: {verdict} ({e['why']})")
            row["cost"] += e["cost"]
    for step, row in sorted(rows.items()):
        e = row["event"]
        table.add_row(
            str(step),
            str(e["tier"]),
            labels.get(e["tier"], e["model_id"]),
            short_reason(e["reason"], verbose),
            "\n".join(row["tools"]) or "-",
            "\n".join(row["verifier"]) or "-",
            f"{row['cost']:.4f}",
        )
    return table


def run_demo_agent(trace_file: Path, console: Any, *, verbose: bool = False) -> None:
    """Run the two demo agent runs, print their steps, and write their traces to JSONL.

    Args:
        trace_file: Where the runs' traces go (JSONL).
        console: A rich ``Console``.
        verbose: Full reasons instead of short ones.

    Usage::

        run_demo_agent(Path("traces/demo.jsonl"), Console())
    """
    from aco_langchain.integrations.langgraph import create_aco_agent
    from aco_langchain.providers.local import running_base_url
    from aco_langchain.tracing.callback import ACOTraceCallbackHandler

    # A one-slot local server on a shared 2-core box: time for each call, short answers.
    config = ACOConfig(
        agent={"max_repeated_failures": 2},
        routing={"max_latency_per_call_s": 120, "max_output_tokens": 160},
    )
    labels = _labels(config)
    trace_file = Path(trace_file)
    handler = ACOTraceCallbackHandler(trace_file, config=config)
    local = running_base_url(config.local_model)
    console.print(
        "\n[bold]Agent runs[/] (create_aco_agent: per-step routing, verification gate, doom "
        "stop) on the real tiers: "
        + ", ".join(f"tier {n} {labels[n]}" for n in (1, 2))
        + ", ...; tools read_log/run_tests are demo tools with fixed outputs"
    )
    if local is None:
        console.print("[yellow]local model not running: the agent runs need it (no keys)[/]")
        return
    for task in (DEBUG_TASK, FIX_TASK):
        graph = create_aco_agent(config, [read_log, run_tests], task_risk="medium", max_budget=1.0)
        try:
            out = graph.invoke({"messages": [HumanMessage(task)]}, {"callbacks": [handler]})
        except Exception as err:  # noqa: BLE001 - the demo shows what went wrong and goes on
            console.print(f"[red]{task}: {type(err).__name__}: {err}[/]")
            continue
        console.print(_steps_table(task, out, labels, verbose))
        last = out["messages"][-1]
        stopped = getattr(last, "name", None) == "aco"
        tier = ((getattr(last, "response_metadata", None) or {}).get("aco") or {}).get("tier")
        who = "stopped by the optimizer" if stopped else f"real answer, tier {tier}"
        color = "red" if stopped else "green"
        console.print(f"[{color}]final ({who}):[/] {str(last.content).strip()[:300]}")
    for t in handler.traces:
        console.print(
            f"[dim]trace {t.trace_id}: {t.final_outcome}, {len(t.steps)} step(s), "
            f"${t.total_cost:.4f} -> {trace_file}[/]"
        )
