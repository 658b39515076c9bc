"""The spend dashboard's data (from real ledger rows) and its standalone server."""

from __future__ import annotations

import calendar
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from aco_langchain.config import config_from_dict
from aco_langchain.dashboard import collect, dashboard_data, period_start
from aco_langchain.dashboard.page import FILES, make_server, serve_in_thread, static_file
from aco_langchain.spend.ledger import Limit, SpendRecord, open_ledger

DAY = 86400.0
T0 = float(calendar.timegm((2026, 11, 29, 12, 0, 0)))


def rows() -> list[SpendRecord]:
    """Three days, three tiers, two keys, escalations and a cache hit."""
    return [
        SpendRecord("run-a", 0.0, 100, 20, tier=1, model="smollm2", baseline_usd=0.16, ts=T0),
        SpendRecord(
            "run-a",
            0.03,
            900,
            100,
            tier=3,
            model="gpt-4.1-mini",
            baseline_usd=1.2,
            outcome="escalated",
            api_key="k-alpha",
            ts=T0 + 5,
        ),
        SpendRecord(
            "run-b",
            0.01,
            400,
            50,
            tier=2,
            model="gpt-4o-mini",
            baseline_usd=0.55,
            api_key="k-alpha",
            ts=T0 + DAY,
        ),
        SpendRecord(
            "run-b",
            0.0,
            400,
            50,
            tier=2,
            model="gpt-4o-mini",
            baseline_usd=0.55,
            tags=("cache_hit",),
            api_key="k-beta-0123456789",
            ts=T0 + DAY + 1,
        ),
        SpendRecord(
            "run-c", 0.5, 2000, 300, tier=3, model="gpt-4.1-mini", baseline_usd=2.9, ts=T0 + 2 * DAY
        ),
    ]


def test_totals_are_the_ledgers_own_summary_and_days_split_by_tier():
    d = dashboard_data(rows(), run_budget_usd=0.25)
    assert d["totals"] == {
        "total_usd": 0.54,
        "calls": 5,
        "baseline_usd": pytest.approx(5.36),
        "savings_usd": pytest.approx(4.82),
        "input_tokens": 3800,
        "output_tokens": 520,
    }
    assert d["savings_share"] == pytest.approx(4.82 / 5.36, abs=1e-6)
    assert [x["day"] for x in d["days"]] == ["2026-11-29", "2026-11-30", "2026-12-01"]
    assert d["days"][0]["by_tier"] == {"1": 0.0, "3": 0.03}
    assert d["days"][0]["cost_usd"] == pytest.approx(0.03)
    assert sum(x["cost_usd"] for x in d["days"]) == pytest.approx(0.54)
    assert [(t["tier"], t["calls"]) for t in d["tiers"]] == [("1", 1), ("2", 2), ("3", 2)]
    assert d["first_day"] == "2026-11-29" and d["last_day"] == "2026-12-01"


def test_budget_use_per_run_biggest_first_and_over_budget_shows():
    d = dashboard_data(rows(), run_budget_usd=0.25)
    assert [r["key"] for r in d["runs"]] == ["run-c", "run-a", "run-b"]
    assert d["runs"][0]["share"] == 2.0  # run-c spent twice its budget
    assert d["runs"][1]["share"] == pytest.approx(0.12)
    assert dashboard_data(rows(), run_budget_usd=None)["runs"][0]["share"] is None
    assert len(dashboard_data(rows(), top_runs=2)["runs"]) == 2


def test_budget_use_per_key_counts_the_current_period_and_shortens_keys():
    d = dashboard_data(
        rows(),
        key_budgets_usd={"k-alpha": 0.1, "k-idle": 1.0},
        key_period_start=T0 + DAY / 2,  # the first day's rows are an earlier period
    )
    keys = {k["key"]: k for k in d["keys"]}
    assert keys["k-alpha"]["spent_usd"] == pytest.approx(0.01)
    assert keys["k-alpha"]["share"] == pytest.approx(0.1)
    assert keys["k-idle"]["calls"] == 0 and keys["k-idle"]["share"] == 0.0
    assert "k-beta-01234…" in keys and keys["k-beta-01234…"]["budget_usd"] is None


def test_escalation_and_cache_hit_rates_from_row_flags():
    r = dashboard_data(rows())["rates"]
    assert (r["escalations"], r["cache_hits"], r["calls"]) == (1, 1, 5)
    assert r["escalation_rate"] == 0.2 and r["cache_hit_rate"] == 0.2
    empty = dashboard_data([])
    assert empty["rates"]["escalation_rate"] is None and empty["days"] == []
    assert empty["savings_share"] is None


def test_period_start_follows_budget_duration():
    now = float(calendar.timegm((2026, 12, 2, 15, 30, 0)))
    month = config_from_dict({})
    assert period_start(month, now) == calendar.timegm((2026, 12, 1, 0, 0, 0))
    day = config_from_dict({"budgets": {"budget_duration": "day"}})
    assert period_start(day, now) == calendar.timegm((2026, 12, 2, 0, 0, 0))
    assert period_start(config_from_dict({"budgets": {"budget_duration": "forever"}}), now) == 0


def _settle_all(ledger, records):
    for r in records:
        hold = ledger.hold([Limit(f"run:{r.run_key}", usd=100.0)], usd=r.cost_usd)
        ledger.settle(hold, r)


def test_collect_reads_a_real_sqlite_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("ACO_LEDGER_URL")  # the config's ledger.url, as a user's would be
    url = f"sqlite:///{tmp_path / 'spend.db'}"
    cfg = config_from_dict({"ledger": {"url": url}, "routing": {"max_cost_per_task": 0.25}})
    ledger = open_ledger(url)
    _settle_all(ledger, rows())
    d = collect(cfg)
    assert d["ledger"] == url
    assert d["totals"] == ledger.summary().to_dict()
    assert d["run_budget_usd"] == 0.25 and d["baseline"].startswith("tier 4")
    assert collect(cfg, month="2026-11")["totals"]["calls"] == 4
    with pytest.raises(ValueError, match="YYYY-MM"):
        collect(cfg, month="11/2026")


def test_standalone_server_serves_the_page_and_the_data():
    data = dashboard_data(rows())
    srv = make_server("127.0.0.1", 0, lambda tenant: data)
    serve_in_thread(srv)
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    try:
        with urllib.request.urlopen(base + "/dashboard/") as res:
            html = res.read().decode()
            assert res.headers["Content-Type"].startswith("text/html")
            assert "default-src 'self'" in res.headers["Content-Security-Policy"]
        for name in FILES:
            assert static_file(name)[0]
        # the page loads nothing from elsewhere: no absolute URL in any of its files
        for name in FILES:
            text = static_file(name)[0].decode()
            assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
            assert "https://" not in text
        assert 'src="dashboard.js"' in html
        with urllib.request.urlopen(base + "/dashboard/data.json") as res:
            assert json.loads(res.read()) == json.loads(json.dumps(data))
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(base + "/dashboard/../../etc/passwd")
        assert err.value.code == 404
    finally:
        srv.shutdown()
        srv.server_close()


def test_data_errors_reach_the_page_as_json_500():
    def broken(tenant: str | None) -> dict:
        raise RuntimeError("database is locked at sqlite:////srv/secret/ledger.db")

    srv = make_server("127.0.0.1", 0, broken)
    serve_in_thread(srv)
    try:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{srv.server_address[1]}/dashboard/data.json")
        assert err.value.code == 500
        error = json.loads(err.value.read())["error"]
        assert "cannot read the ledger" in error and "/srv/secret" not in error
    finally:
        srv.shutdown()
        srv.server_close()


def test_collect_masks_a_ledger_password():
    class Ledger:
        url = "postgresql://aco:s3cret@db.internal:5432/spend"

        def records(self, **_: object) -> list[SpendRecord]:
            return rows()

    d = collect(config_from_dict({}), ledger=Ledger())  # type: ignore[arg-type]
    assert d["ledger"] == "postgresql://aco:***@db.internal:5432/spend"
    assert "s3cret" not in json.dumps(d)


def test_aco_serve_mounts_the_dashboard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    pytest.importorskip("fastapi")
    import hashlib

    from fastapi.testclient import TestClient

    from aco_langchain.server import create_app

    url = f"sqlite:///{tmp_path / 'spend.db'}"
    _settle_all(open_ledger(url), rows())
    monkeypatch.delenv("ACO_LEDGER_URL")
    digest = hashlib.sha256(b"sk-dash").hexdigest()
    cfg = config_from_dict(
        {
            "ledger": {"url": url},
            "budgets": {"keys": {"k-alpha": 1.0}},
            "server": {
                "api_keys": [
                    {"name": "ops", "sha256": digest, "admin": True},
                    {"name": "k-alpha", "sha256": hashlib.sha256(b"sk-alpha").hexdigest()},
                ]
            },
        }
    )
    client = TestClient(create_app(cfg))
    page = client.get("/dashboard/")
    assert page.status_code == 200 and 'src="dashboard.js"' in page.text
    assert client.get("/dashboard/dashboard.js").headers["content-type"].startswith("text/java")
    assert client.get("/dashboard/nope.js").status_code == 404
    # the data is the ledger's, and only for callers with a key
    assert client.get("/dashboard/data.json").status_code == 401
    got = client.get("/dashboard/data.json", headers={"Authorization": "Bearer sk-dash"})
    assert got.status_code == 200
    assert got.json()["totals"] == open_ledger(url).summary().to_dict()
    assert "spend.db" not in got.text  # the ledger URL never leaves the server
    # a tenant key sees its own rows, runs and budget only
    mine = client.get("/dashboard/data.json", headers={"Authorization": "Bearer sk-alpha"})
    assert mine.status_code == 200
    assert mine.json()["totals"]["calls"] == 2
    assert {r["key"] for r in mine.json()["runs"]} == {"run-a", "run-b"}
    assert [(k["key"], k["budget_usd"]) for k in mine.json()["keys"]] == [("k-alpha", 1.0)]


def test_standalone_dashboard_keeps_aco_serves_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 19 item 8: `aco dashboard` had no loopback guard and data.json no auth."""
    import hashlib

    monkeypatch.delenv("ACO_LEDGER_URL")
    from aco_langchain.server.auth import KeyRing

    url = f"sqlite:///{tmp_path / 'spend.db'}"
    _settle_all(open_ledger(url), rows())
    cfg = config_from_dict(
        {
            "ledger": {"url": url},
            "budgets": {"keys": {"k-alpha": 2.0}},
            "server": {
                "api_keys": [{"name": "k-alpha", "sha256": hashlib.sha256(b"sk-alpha").hexdigest()}]
            },
        }
    )
    keyed = make_server(
        "127.0.0.1",
        0,
        lambda tenant: collect(cfg, tenant=tenant),
        keys=KeyRing.from_config(cfg.server, env={}),
    )
    keyless = make_server("127.0.0.1", 0, lambda tenant: {"tenant": tenant})
    for srv in (keyed, keyless):
        serve_in_thread(srv)

    def get(srv, headers: dict[str, str]) -> tuple[int, dict]:
        req = urllib.request.Request(
            f"http://127.0.0.1:{srv.server_address[1]}/dashboard/data.json", headers=headers
        )
        try:
            with urllib.request.urlopen(req) as res:
                return res.status, json.loads(res.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    try:
        assert get(keyed, {})[0] == 401
        assert get(keyed, {"Authorization": "Bearer wrong"})[0] == 401
        code, data = get(keyed, {"Authorization": "Bearer sk-alpha"})
        assert code == 200 and data["totals"]["calls"] == 2  # its own rows only
        # the key's budget from server.api_keys is shown (it was null before)
        assert [(k["key"], k["budget_usd"]) for k in data["keys"]] == [("k-alpha", 2.0)]
        assert get(keyless, {})[1] == {"tenant": None}
        code, body = get(keyless, {"Host": "evil.example"})  # DNS rebinding
        assert code == 403 and body["error"]["code"] == "host_not_allowed"
    finally:
        for srv in (keyed, keyless):
            srv.shutdown()
            srv.server_close()


def test_aco_dashboard_refuses_a_public_host_without_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from aco_langchain.cli import app

    monkeypatch.delenv("ACO_SERVER_API_KEYS", raising=False)
    url = f"sqlite:///{tmp_path / 'spend.db'}"
    res = CliRunner().invoke(app, ["dashboard", "--ledger", url, "--host", "0.0.0.0"])
    assert res.exit_code == 1
    assert "refusing to serve 0.0.0.0 without API keys" in res.output


def test_success_counts_only_runs_with_an_observed_outcome(tmp_path: Path) -> None:
    from aco_langchain.spend.outcomes import open_outcomes

    url = f"sqlite:///{tmp_path / 'spend.db'}"
    cfg = config_from_dict({"ledger": {"url": url}})
    ledger = open_ledger(url)
    _settle_all(ledger, rows())
    d = collect(cfg, ledger_url=url)
    o = d["outcomes"]
    assert o["runs"] == d["runs_total"] and o["runs_without_outcome"] == o["runs"]
    assert o["success_rate"] is None and o["cost_per_successful_task"] is None
    first = d["runs"][0]
    open_outcomes(url).record(first["key"], success=True, source="test")
    o = collect(cfg, ledger_url=url)["outcomes"]
    assert o["runs_with_outcome"] == 1 and o["success_rate"] == 1.0
    assert o["cost_per_successful_task"] == pytest.approx(first["spent_usd"])
