"""The spend dashboard in a real headless browser (Debian's chromium, driven by playwright).

A real SQLite ledger with known rows, the dashboard served by a real ``aco`` process, the page
loaded by chromium: the charts must be drawn (one SVG bar per non-empty figure) and the numbers
on the page must be the ones ``aco spend --json`` prints for the same ledger. Chromium comes
from Debian (``make browser`` installs it; CI runs it); playwright only drives it
(``executable_path``), it never downloads a browser. Without chromium the test is skipped with
the reason, except under ``CI=true`` where it fails.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aco_langchain.dashboard.browser import chromium_path, launch
from tests.unit_tests.test_dashboard import _settle_all, rows

CHROMIUM = chromium_path()
ACO = Path(sys.executable).with_name("aco")


def _env() -> dict[str, str]:
    """The environment of the ``aco`` processes: the ledger comes from the config file."""
    return {k: v for k, v in os.environ.items() if k != "ACO_LEDGER_URL"}


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def browser_path() -> Path:
    if not CHROMIUM.exists():
        if _in_ci():
            pytest.fail(f"{CHROMIUM} is missing under CI: `make browser` installs it")
        pytest.skip(f"no chromium at {CHROMIUM}: run `make browser` (Debian chromium)")
    pytest.importorskip("playwright")
    return CHROMIUM


@pytest.fixture
def ledger_config(tmp_path: Path) -> Path:
    from aco_langchain.spend.ledger import open_ledger

    url = f"sqlite:///{tmp_path / 'spend.db'}"
    _settle_all(open_ledger(url), rows())
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        f"ledger: {{url: '{url}'}}\n"
        "routing: {max_cost_per_task: 0.25}\n"
        "budgets: {keys: {k-alpha: 0.5}, budget_duration: forever}\n"
    )
    return cfg


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer in {timeout:.0f} s")


@pytest.fixture
def dashboard_url(ledger_config: Path) -> Iterator[str]:
    """The dashboard served by a real ``aco dashboard`` process."""
    port = _free_port()
    proc = subprocess.Popen(
        [str(ACO), "dashboard", "--config", str(ledger_config), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(),
    )
    url = f"http://127.0.0.1:{port}/dashboard/"
    try:
        _wait_http(url, proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _spend_json(config: Path) -> dict[str, Any]:
    """``aco spend --config F --json`` for the same ledger."""
    out = subprocess.run(
        [str(ACO), "spend", "--config", str(config), "--json"],
        capture_output=True,
        text=True,
        env=_env(),
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def render(url: str, user_data: Path, shot: Path) -> dict[str, Any]:
    """Load ``url`` in chromium; what the page drew and showed."""
    from playwright.sync_api import sync_playwright

    requests: list[str] = []
    errors: list[str] = []
    with sync_playwright() as p:
        ctx = launch(p, user_data, viewport={"width": 1280, "height": 960})
        try:
            page = ctx.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(url)
            page.wait_for_function("document.body.dataset.ready !== '0'", timeout=20_000)
            state = page.evaluate(
                """() => ({
                  ready: document.body.dataset.ready,
                  kpi: Object.fromEntries([...document.querySelectorAll('[data-metric]')]
                        .map(e => [e.dataset.metric, {text: e.textContent,
                                                      value: e.dataset.value}])),
                  bars: Object.fromEntries(['days', 'tiers', 'savings', 'runs', 'keys'].map(
                        c => [c, [...document.querySelectorAll(`#chart-${c} rect.bar`)]
                              .map(r => ({cat: r.dataset.category, series: r.dataset.series,
                                          value: Number(r.dataset.value),
                                          h: r.getBBox().height, w: r.getBBox().width}))])),
                })"""
            )
            page.screenshot(path=str(shot), full_page=True)
        finally:
            ctx.close()
    state["requests"] = requests
    state["errors"] = errors
    return state


def test_dashboard_draws_the_ledger_and_matches_aco_spend(
    browser_path: Path, ledger_config: Path, dashboard_url: str, tmp_path: Path
) -> None:
    spend = _spend_json(ledger_config)
    data = json.loads(urllib.request.urlopen(dashboard_url + "data.json").read())
    shot = tmp_path / "dashboard.png"
    s = render(dashboard_url, tmp_path / "profile", shot)
    assert s["ready"] == "1", s["errors"]
    assert s["errors"] == []
    # nothing but the dashboard's own server was asked for anything
    assert s["requests"] and all(u.startswith(dashboard_url) for u in s["requests"])

    kpi = s["kpi"]
    for field in ("total_usd", "calls", "baseline_usd", "savings_usd"):
        assert float(kpi[field]["value"]) == pytest.approx(spend[field], abs=1e-9), field
    assert kpi["total_usd"]["text"] == f"${spend['total_usd']:.4f}"
    assert kpi["calls"]["text"] == str(spend["calls"]) == "5"
    assert float(kpi["escalation_rate"]["value"]) == 0.2
    assert kpi["cache_hit_rate"]["text"] == "20.0%"

    bars = s["bars"]
    # one bar per (day, tier) that spent money, drawn with a height
    want = {(d["day"], f"tier {t}") for d in data["days"] for t, v in d["by_tier"].items() if v}
    assert {(b["cat"], b["series"]) for b in bars["days"]} == want
    assert all(b["h"] > 0 for b in bars["days"])
    assert sum(b["value"] for b in bars["days"]) == pytest.approx(spend["total_usd"])
    # spend per tier: the tiers that cost money; taller bar for the costlier tier
    tiers = {b["cat"]: b for b in bars["tiers"]}
    assert set(tiers) == {"tier 2", "tier 3"}
    assert tiers["tier 3"]["h"] > tiers["tier 2"]["h"]
    assert len(bars["savings"]) == 3
    # budget use per run, biggest first; run-c is over its $0.25 budget
    assert [b["cat"] for b in bars["runs"]] == ["run-c", "run-a", "run-b"]
    assert bars["runs"][0]["w"] > bars["runs"][1]["w"] > 0
    assert {b["cat"] for b in bars["keys"]} == {"k-alpha", "k-beta-01234…"}
    assert shot.stat().st_size > 20_000


def test_aco_dashboard_screenshot_writes_the_drawn_page(
    browser_path: Path, ledger_config: Path, tmp_path: Path
) -> None:
    png = tmp_path / "shot.png"
    out = subprocess.run(
        [
            str(ACO),
            "dashboard",
            "--config",
            str(ledger_config),
            "--port",
            "0",
            "--screenshot",
            str(png),
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
