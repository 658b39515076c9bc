"""The agent part of ``make demo``: per-step routing, a verification gate and doom termination.

Two small runs of ``create_aco_agent`` with scripted tools:

1. "Debug the nightly report job failure": tier 3 plans and reads the job's log, the cheap
   tier writes the diagnosis (the **real local model** when it is running, answering in text
   since the local server has no tool calling), the verification gate decides on a verifier
   call from the answer's confidence, and the verifier tier checks it.
2. "Fix the flaky unit test": the test run keeps failing with the same arguments; after the
   failure the next step escalates one tier, and the doom detector ends the run with a
   message giving the reason.

Cloud tiers are scripted stand-ins (labelled so in the table) unless their API keys are set:
the demo never shows an invented answer as a real one. Both runs' traces go to
``trace_file`` (JSONL) through ``ACOTraceCallbackHandler``; ``aco stats`` reads them.

Usage::

    from rich.console import Console
    run_demo_agent(Path("traces/demo.jsonl"), Console())
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
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


def _call(name: str, args: dict[str, Any]) -> AIMessage:
    import uuid

    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": uuid.uuid4().hex[:8]}])


def _diagnosis(log: str) -> str:
    if "timed out" in log:
        return (
            "The nightly report job failed because its connection to reports-db timed out "
            "after 5s; check the database's availability and raise the connect timeout."
        )
    return "I could not find the cause in the log."


def _verdict(text: str) -> str:
    low = text.lower()
    if "reports-db" in low and "timed out" in low:
        return "PASS\nthe diagnosis matches the log"
    return "FAIL\nthe answer does not name the cause shown in the log"


def scripted_reply(messages: list[BaseMessage]) -> AIMessage:
    """What a scripted stand-in tier answers in the demo (the same for every tier)."""
    first = str(messages[0].content) if messages else ""
    if messages and messages[0].type == "system" and "strict verifier" in first:
        return AIMessage(_verdict(str(messages[-1].content)))
    last = messages[-1]
    if last.type == "tool" and getattr(last, "name", None) == "read_log":
        return AIMessage(_diagnosis(str(last.content)))
    request = next((str(m.content) for m in messages if m.type == "human"), "")
    if "nightly" in request:
        return _call("read_log", {"job": "nightly-report"})
    if "flaky" in request:
        return _call("run_tests", {"target": "tests/test_billing.py"})
    return AIMessage("(scripted stand-in: no answer for this request)")


def _local_tier(config: ACOConfig) -> Any | None:
    """The real local model (tier 1) when its server is running, else None."""
    from aco_langchain.providers.local import MODEL_ALIAS, running_base_url

    url = running_base_url(config.local_model)
    if url is None:
        return None
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        base_url=url,
        api_key="local",  # type: ignore[arg-type]
        model=MODEL_ALIAS,
        temperature=0.0,
        max_retries=0,
        timeout=60,
        logprobs=True,
        extra_body={"max_tokens": 80},
    )


def _tiers(config: ACOConfig, local: Any | None) -> tuple[Any, Any]:
    """(tier models, labels): scripted stand-ins for tiers without a real model."""
    import os

    from aco_langchain.testing import ScriptedChatModel

    models: dict[int, Any] = {}
    labels: dict[int, str] = {}
    for n in range(1, 6):
        spec = config.tier(n)
        if n == 1 and local is not None:
            models[n] = local
            labels[n] = f"{spec.provider_model} (local, real)"
            continue
        key = spec.api_key_env
        if key and os.environ.get(key):
            labels[n] = f"{spec.provider_model} (real)"
            continue  # built from the config by the router model
        models[n] = ScriptedChatModel(
            model=f"scripted-{spec.model_id}",
            script=[scripted_reply],
            # a middling token confidence, so the verification gate has a real decision
            logprob=-0.6 if n <= 2 else -0.05,
        )
        why = f"no {key}" if key else "not running"
        labels[n] = f"scripted ({why})"
    return models, labels


def _steps_table(title: str, out: dict[str, Any], labels: dict[int, str]) -> Any:
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
            rows[e["step"]]["verifier"].append(e["reason"])
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
            e["reason"],
            "\n".join(row["tools"]) or "-",
            "\n".join(row["verifier"]) or "-",
            f"{row['cost']:.4f}",
        )
    return table


def run_demo_agent(trace_file: Path, console: Any) -> None:
    """Run the two demo agent runs, print their steps, and write their traces to JSONL.

    Usage::

        run_demo_agent(Path("traces/demo.jsonl"), Console())
    """
    from aco_langchain.integrations.langgraph import create_aco_agent
    from aco_langchain.tracing.callback import ACOTraceCallbackHandler

    config = ACOConfig(agent={"max_repeated_failures": 2})
    local = _local_tier(config)
    trace_file = Path(trace_file)
    handler = ACOTraceCallbackHandler(trace_file, config=config)
    tool_tiers = {2, 3, 4, 5} if local is not None else None
    console.print(
        "\n[bold]Agent runs[/] (create_aco_agent: per-step routing, verification gate, doom stop)"
        + (
            f" - tier 1 is the real local model at {local.openai_api_base}"
            if local is not None
            else " [yellow]- local model not running: tier 1 scripted[/]"
        )
    )

    for task in (DEBUG_TASK, FIX_TASK):
        models, labels = _tiers(config, local)
        graph = create_aco_agent(
            config,
            [read_log, run_tests],
            tier_models=models,
            task_risk="medium",
            toolless_tiers="text",
            tool_tiers=tool_tiers,
            max_budget=1.0,
        )
        try:
            out = graph.invoke({"messages": [HumanMessage(task)]}, {"callbacks": [handler]})
        except Exception as err:  # noqa: BLE001 - the demo shows what went wrong and goes on
            console.print(f"[red]{task}: {type(err).__name__}: {err}[/]")
            continue
        console.print(_steps_table(task, out, labels))
        last = out["messages"][-1]
        color = "red" if getattr(last, "name", None) == "aco" else "green"
        console.print(f"[{color}]final:[/] {str(last.content).strip()[:300]}")
    for t in handler.traces:
        console.print(
            f"[dim]trace {t.trace_id}: {t.final_outcome}, {len(t.steps)} step(s), "
            f"${t.total_cost:.4f} -> {trace_file}[/]"
        )
