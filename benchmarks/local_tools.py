"""Tool calls from the real local tier: valid structure, right tool, right arguments, latency.

Every prompt of ``PROMPTS`` (36, written for this benchmark, each needing exactly one of eight
tools with flat, enum, optional, list and nested-object arguments) goes through
``ACORouterChatModel().bind_tools(TOOLS, tool_choice=...)`` with no API keys, so tier 1
answers: SmolLM2-135M-Instruct on llama-server, constrained by the tools' JSON schema
(``aco_langchain/providers/local/tools.py``). Nothing is stubbed; what is measured:

- valid structure: the answer is one tool call of a bound tool whose arguments validate
  against that tool's own argument schema (pydantic), or (``auto`` only) a final answer;
- right tool: the tool named is the expected one;
- right arguments: the expected tool, and every expected argument matches (strings: the
  expected text appears in the value, case-insensitive; numbers: equal);
- latency: wall time per call (the whole router path, HTTP to llama-server included).

``tool_choice="any"`` forces a call (the model picks which); ``"auto"`` lets it answer in text
instead. Prints a table, writes ``benchmarks/results/local_tools.json``.

Usage::

    .venv/bin/python benchmarks/local_tools.py [--limit 10] [--choice any|auto|both]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from langchain_core.tools import BaseTool, tool  # noqa: E402
from pydantic import BaseModel, ValidationError  # noqa: E402

from aco_langchain import ACORouterChatModel  # noqa: E402
from aco_langchain.config import ACOConfig  # noqa: E402
from aco_langchain.providers import local as lm  # noqa: E402


@tool
def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> str:
    """Get the current weather in a city."""
    return "sunny"


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression such as '12 * 7'."""
    return "0"


@tool
def send_email(to: str, subject: str, body: str) -> str:
    """Send an email to an address."""
    return "sent"


@tool
def create_event(title: str, date: str, attendees: list[str] | None = None) -> str:
    """Create a calendar event on a date (YYYY-MM-DD)."""
    return "created"


@tool
def search_web(query: str, max_results: int = 5) -> str:
    """Search the web for a query."""
    return "results"


@tool
def convert_currency(
    amount: float,
    from_currency: Literal["USD", "EUR", "GBP", "JPY"],
    to_currency: Literal["USD", "EUR", "GBP", "JPY"],
) -> str:
    """Convert an amount of money from one currency to another."""
    return "0"


@tool
def set_timer(minutes: int) -> str:
    """Set a timer for a number of minutes."""
    return "set"


class Address(BaseModel):
    """A postal address."""

    street: str
    city: str
    zip_code: str | None = None


@tool
def ship_order(order_id: int, address: Address, express: bool = False) -> str:
    """Ship an order to a postal address."""
    return "shipped"


TOOLS: list[BaseTool] = [
    get_weather,
    calculator,
    send_email,
    create_event,
    search_web,
    convert_currency,
    set_timer,
    ship_order,
]

#: (prompt, expected tool, expected arguments: key -> value, nested keys as "a.b").
PROMPTS: list[tuple[str, str, dict[str, Any]]] = [
    ("What's the weather like in Paris right now?", "get_weather", {"city": "Paris"}),
    ("Is it raining in London?", "get_weather", {"city": "London"}),
    (
        "Tell me the temperature in Tokyo in fahrenheit.",
        "get_weather",
        {"city": "Tokyo", "unit": "fahrenheit"},
    ),
    (
        "How hot is it in Madrid today, in celsius?",
        "get_weather",
        {"city": "Madrid", "unit": "celsius"},
    ),
    ("Weather forecast for Berlin please.", "get_weather", {"city": "Berlin"}),
    ("What is 12 times 7?", "calculator", {"expression": "12"}),
    ("Compute 345 + 678.", "calculator", {"expression": "345"}),
    ("Calculate (2 + 3) * 4.", "calculator", {"expression": "2 + 3"}),
    ("What is 1024 divided by 16?", "calculator", {"expression": "1024"}),
    (
        "Email bob@example.com with the subject 'Lunch' and say see you at noon.",
        "send_email",
        {"to": "bob@example.com", "subject": "Lunch"},
    ),
    (
        "Send an email to alice@corp.io titled 'Report' saying the report is ready.",
        "send_email",
        {"to": "alice@corp.io", "subject": "Report"},
    ),
    (
        "Write to ops@site.org, subject 'Outage', body: the server is down.",
        "send_email",
        {"to": "ops@site.org", "subject": "Outage"},
    ),
    (
        "Mail carol@home.net: subject 'Hi', message 'How are you?'",
        "send_email",
        {"to": "carol@home.net"},
    ),
    (
        "Create a calendar event 'Team sync' on 2025-03-14.",
        "create_event",
        {"title": "Team sync", "date": "2025-03-14"},
    ),
    (
        "Schedule 'Dentist' for 2025-06-01.",
        "create_event",
        {"title": "Dentist", "date": "2025-06-01"},
    ),
    (
        "Add an event called Launch party on 2025-12-31 with ann and ben.",
        "create_event",
        {"title": "Launch party", "date": "2025-12-31"},
    ),
    (
        "Put 'Review' in my calendar on 2025-04-02.",
        "create_event",
        {"title": "Review", "date": "2025-04-02"},
    ),
    ("Search the web for the latest Python release.", "search_web", {"query": "Python"}),
    ("Look up reviews of the Framework laptop online.", "search_web", {"query": "Framework"}),
    (
        "Find 3 web results about electric bikes.",
        "search_web",
        {"query": "electric bike", "max_results": 3},
    ),
    ("Search online for vegan lasagna recipes.", "search_web", {"query": "lasagna"}),
    ("Google the population of Canada.", "search_web", {"query": "Canada"}),
    (
        "Convert 100 USD to EUR.",
        "convert_currency",
        {"amount": 100, "from_currency": "USD", "to_currency": "EUR"},
    ),
    (
        "How many yen is 50 pounds?",
        "convert_currency",
        {"amount": 50, "from_currency": "GBP", "to_currency": "JPY"},
    ),
    (
        "Change 20 euros into dollars.",
        "convert_currency",
        {"amount": 20, "from_currency": "EUR", "to_currency": "USD"},
    ),
    (
        "Convert 7.5 GBP to USD.",
        "convert_currency",
        {"amount": 7.5, "from_currency": "GBP", "to_currency": "USD"},
    ),
    ("Set a timer for 10 minutes.", "set_timer", {"minutes": 10}),
    ("Start a 25 minute timer.", "set_timer", {"minutes": 25}),
    ("Remind me in 5 minutes with a timer.", "set_timer", {"minutes": 5}),
    ("Timer: 45 minutes.", "set_timer", {"minutes": 45}),
    (
        "Ship order 1234 to 10 Main Street, Springfield.",
        "ship_order",
        {"order_id": 1234, "address.street": "Main", "address.city": "Springfield"},
    ),
    (
        "Send order 77 by express to 5 Rue Cler, Paris 75007.",
        "ship_order",
        {"order_id": 77, "address.city": "Paris", "express": True},
    ),
    (
        "Please ship order number 9001 to 1 Infinite Loop, Cupertino.",
        "ship_order",
        {"order_id": 9001, "address.city": "Cupertino"},
    ),
    (
        "Deliver order 42 to 221B Baker Street, London.",
        "ship_order",
        {"order_id": 42, "address.city": "London"},
    ),
    ("What is 99 minus 33?", "calculator", {"expression": "99"}),
    ("Is it sunny in Rome?", "get_weather", {"city": "Rome"}),
]

SYSTEM = "You are an assistant that uses tools to do what the user asks."


def _lookup(args: dict[str, Any], dotted: str) -> Any:
    value: Any = args
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _matches(actual: Any, expected: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return actual is expected
    if isinstance(expected, int | float):
        return isinstance(actual, int | float) and float(actual) == float(expected)
    return isinstance(actual, str) and str(expected).lower() in actual.lower()


def _valid_args(name: str, args: dict[str, Any]) -> str | None:
    """None when ``args`` validate against the tool's own schema, else the error."""
    schema = next(t for t in TOOLS if t.name == name).args_schema
    try:
        schema.model_validate(args)  # type: ignore[union-attr]
    except ValidationError as exc:
        return str(exc).splitlines()[0]
    return None


def run_one(
    llm: Any, prompt: str, want_tool: str, want_args: dict[str, Any], choice: str, stream: bool
) -> dict[str, Any]:
    bound = llm.bind_tools(TOOLS, tool_choice=choice)
    msgs = [("system", SYSTEM), ("human", prompt)]
    t0 = time.perf_counter()
    error = None
    try:
        if stream:
            msg = None
            for chunk in bound.stream(msgs):
                msg = chunk if msg is None else msg + chunk
        else:
            msg = bound.invoke(msgs)
    except Exception as exc:  # noqa: BLE001 - an error is a measured outcome (invalid structure)
        msg, error = None, f"{type(exc).__name__}: {exc}"[:200]
    ms = (time.perf_counter() - t0) * 1000
    calls = list(getattr(msg, "tool_calls", None) or [])
    row: dict[str, Any] = {
        "prompt": prompt,
        "choice": choice,
        "stream": stream,
        "expected_tool": want_tool,
        "latency_ms": round(ms, 1),
        "error": error,
        "tier": (msg.response_metadata.get("aco") or {}).get("tier") if msg is not None else None,
    }
    if len(calls) == 1:
        call = calls[0]
        invalid = (
            _valid_args(call["name"], call["args"])
            if any(t.name == call["name"] for t in TOOLS)
            else "unknown tool"
        )
        row.update(
            tool=call["name"],
            args=call["args"],
            id_ok=bool(call.get("id")),
            valid=invalid is None and bool(call.get("id")),
            invalid_reason=invalid,
            right_tool=call["name"] == want_tool,
            right_args=call["name"] == want_tool
            and all(_matches(_lookup(call["args"], k), v) for k, v in want_args.items()),
        )
    elif msg is not None and not calls and choice == "auto" and str(msg.content).strip():
        row.update(
            tool=None, answer=str(msg.content)[:120], valid=True, right_tool=False, right_args=False
        )
    else:
        row.update(
            tool=None,
            valid=False,
            right_tool=False,
            right_args=False,
            invalid_reason=error or f"{len(calls)} calls",
        )
    return row


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)
    lat = sorted(r["latency_ms"] for r in rows)
    answered = [r for r in rows if not r["error"]]
    return {
        "n": n,
        "errors": n - len(answered),
        "valid_structure_rate": sum(r["valid"] for r in rows) / n,
        "valid_structure_rate_answered": (
            sum(r["valid"] for r in answered) / len(answered) if answered else None
        ),
        "tool_call_rate": sum(r.get("tool") is not None for r in rows) / n,
        "right_tool_rate": sum(r["right_tool"] for r in rows) / n,
        "right_args_rate": sum(r["right_args"] for r in rows) / n,
        "latency_median_ms": round(statistics.median(lat), 1),
        "latency_p90_ms": round(lat[min(n - 1, int(0.9 * n))], 1),
        "served_by_tier": sorted({r["tier"] for r in rows if r["tier"] is not None}),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="only the first N prompts")
    ap.add_argument("--choice", choices=["any", "auto", "both"], default="both")
    ap.add_argument(
        "--stream-every", type=int, default=4, help="stream every Nth prompt (0: never)"
    )
    args = ap.parse_args()
    # A longer deadline than the default 30 s: the server is one slot on a shared 2-core box,
    # and a deadline miss is not what this measures (it is still counted, as an error).
    cfg = ACOConfig(router="rules", routing={"max_latency_per_call_s": 120})
    if not lm.is_built(cfg.local_model):
        print("local model not built: run `aco local-model build`")
        return 1
    prompts = PROMPTS[: args.limit] if args.limit else PROMPTS
    choices = ["any", "auto"] if args.choice == "both" else [args.choice]
    results: dict[str, Any] = {
        "model": lm.MODEL_ALIAS,
        "prompts": len(prompts),
        "command": "python benchmarks/local_tools.py " + " ".join(sys.argv[1:]),
        "settings": {"temperature": 0.0, "max_tokens": 256, "deadline_s": 120, "router": "rules"},
        "runs": {},
    }
    with lm.serve(cfg.local_model):
        llm = ACORouterChatModel(config=cfg, temperature=0.0, max_tokens=256)
        for choice in choices:
            rows = [
                run_one(
                    llm,
                    p,
                    t,
                    a,
                    choice,
                    stream=bool(args.stream_every) and i % args.stream_every == 0,
                )
                for i, (p, t, a) in enumerate(prompts)
            ]
            results["runs"][choice] = {"summary": _summary(rows), "rows": rows}
    print(
        f"{'tool_choice':12} {'n':>3} {'errors':>6} {'valid':>7} {'calls':>7} {'tool':>7} "
        f"{'args':>7} {'p50 ms':>8} {'p90 ms':>8}"
    )
    for choice, run in results["runs"].items():
        s = run["summary"]
        print(
            f"{choice:12} {s['n']:>3} {s['errors']:>6} {s['valid_structure_rate']:>7.1%} "
            f"{s['tool_call_rate']:>7.1%} "
            f"{s['right_tool_rate']:>7.1%} {s['right_args_rate']:>7.1%} "
            f"{s['latency_median_ms']:>8.0f} {s['latency_p90_ms']:>8.0f}"
        )
    print(
        "valid: one call of a bound tool with schema-valid args (auto: or a final answer); "
        "an error (deadline, server) counts as not valid; tool/args: right tool / right tool "
        "with the expected arguments; latency: the whole router call"
    )
    dest = ROOT / "benchmarks" / "results" / "local_tools.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
