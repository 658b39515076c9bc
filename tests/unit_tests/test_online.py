"""Online learning: posteriors blended with the bundle by evidence, bounded exploration that
never touches forced/floored/capped calls, state shared across processes (SQLite, Postgres)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aco_langchain.cli.main import app
from aco_langchain.config import ACOConfig
from aco_langchain.routing.base import Assessment, RouteRequest
from aco_langchain.routing.online import (
    OnlineRouter,
    Posterior,
    adjust,
    cluster_of,
    explore_allowed,
)
from aco_langchain.routing.online_store import open_learning
from tests.ledger_backends import PG_URL, pg_prefix, pg_url, require_pg

P = {1: 0.55, 2: 0.7, 3: 0.8, 4: 0.9, 5: 0.92}


def assessment(tier: int = 4, task: str = "general", risk: str = "low") -> Assessment:
    return Assessment(
        task_type=task,
        difficulty=3,
        complexity="moderate",
        suggested_tier=tier,
        confidence=P[tier],
        p_success=dict(P),
        reason="learned",
        router="learned",
        risk=risk,
    )


SETTINGS = ACOConfig().learning


def test_no_evidence_keeps_the_bundles_choice() -> None:
    a, explored = adjust(assessment(), {}, SETTINGS)
    assert (a.suggested_tier, explored) == (4, False)


def test_a_cheaper_tier_observed_to_succeed_takes_over() -> None:
    # tier 2 answered 60 of 60 prompts of this cluster: it keeps tier 4's promise (0.9)
    a, _ = adjust(assessment(), {2: Posterior(60, 0)}, SETTINGS)
    assert a.suggested_tier == 2 and a.p_success[2] > 0.9
    assert "online: tier 2" in a.reason
    # a little evidence does not outweigh the bundle (prior strength 20)
    a, _ = adjust(assessment(), {2: Posterior(3, 0)}, SETTINGS)
    assert a.suggested_tier == 4


def test_a_tier_observed_to_fail_gives_way_up() -> None:
    a, _ = adjust(assessment(), {4: Posterior(10, 50)}, SETTINGS)
    assert a.suggested_tier == 5


def test_exploration_is_bounded_and_goes_one_tier_down() -> None:
    a, explored = adjust(assessment(), {}, SETTINGS, coin=0.01, may_explore=True)
    assert (a.suggested_tier, explored) == (3, True)
    a, explored = adjust(assessment(), {}, SETTINGS, coin=0.5, may_explore=True)
    assert (a.suggested_tier, explored) == (4, False)  # coin above explore_share (2%)
    # a tier below with enough evidence is not uncertain: no exploration
    a, explored = adjust(assessment(), {3: Posterior(10, 30)}, SETTINGS, coin=0.0, may_explore=True)
    assert not explored


def test_exploration_never_for_forced_floored_or_capped_calls() -> None:
    cfg = ACOConfig()
    plain = RouteRequest.from_text("Summarise this paragraph")
    assert explore_allowed(plain, assessment(), cfg)
    assert not explore_allowed(RouteRequest.from_text("x", force_tier=4), assessment(), cfg)
    assert not explore_allowed(plain, assessment(risk="high"), cfg)
    assert not explore_allowed(RouteRequest.from_text("x", risk="critical"), assessment(), cfg)
    assert not explore_allowed(RouteRequest.from_text("x", max_cost_usd=0.01), assessment(), cfg)
    # coding has a task floor of 3: a call routed at tier 3 is never explored below it
    assert not explore_allowed(plain, assessment(tier=3, task="coding"), cfg)


def test_online_router_never_explores_a_floored_call(tmp_path: Path) -> None:
    cfg = ACOConfig.model_validate(
        {"learning": {"online": True, "explore_share": 0.2}, "ledger": {"url": "memory://"}}
    )

    class Fixed:
        name = "fixed"

        def __init__(self, a: Assessment) -> None:
            self.a = a

        def assess(self, request: RouteRequest, config: ACOConfig) -> Assessment:
            return self.a

    store = open_learning(url=f"sqlite:///{tmp_path / 'l.db'}")
    floored = OnlineRouter(Fixed(assessment(risk="critical")), store, cfg.learning)
    free = OnlineRouter(Fixed(assessment()), store, cfg.learning)
    req = RouteRequest.from_text("Summarise this paragraph")
    assert {floored.assess(req, cfg).suggested_tier for _ in range(300)} == {4}
    tiers = [free.assess(req, cfg).suggested_tier for _ in range(1000)]
    assert set(tiers) == {3, 4}
    assert 0.1 < tiers.count(3) / 1000 < 0.3  # about explore_share (0.2)


WORKER = """
import sys
from aco_langchain.routing.online_store import open_learning
store = open_learning(url=sys.argv[1])
for i in range(40):
    store.observe("coding:d3", 2, 1.0 if i % 4 else 0.0)
"""


def _two_workers(url: str) -> None:
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, url], cwd=Path(__file__).parents[2])
        for _ in range(2)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]


def test_updates_are_shared_across_processes_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    _two_workers(url)
    post = open_learning(url=url).posteriors("coding:d3")
    assert post == {2: Posterior(60.0, 20.0)}  # 2 x 40 outcomes, none lost


def test_updates_are_shared_across_processes_postgres() -> None:
    require_pg()
    prefix = pg_prefix()
    url = pg_url(prefix)
    try:
        _two_workers(url)
        assert open_learning(url=url).posteriors("coding:d3") == {2: Posterior(60.0, 20.0)}
    finally:
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {prefix}learn, {prefix}learn_routes")


class Outcomes:
    def __init__(self, rows: dict[str, tuple[bool, float | None]]) -> None:
        self.rows = rows

    def many(self, run_keys):  # noqa: ANN001 - the OutcomeSource protocol
        from types import SimpleNamespace

        return {
            k: SimpleNamespace(success=s, score=sc)
            for k, (s, sc) in self.rows.items()
            if k in set(run_keys)
        }


def test_sync_applies_each_observed_outcome_once(tmp_path: Path) -> None:
    from langchain_core.messages import AIMessage

    store = open_learning(url=f"sqlite:///{tmp_path / 'l.db'}")
    meta = {"aco": {"run_key": "r1", "tier": 2, "task_type": "coding", "difficulty": 3}}
    assert store.note_message(AIMessage("x", response_metadata=meta))
    store.note("r2", "coding:d3", 2)
    store.note("r3", "coding:d3", 2)  # no outcome yet: stays pending
    src = Outcomes({"r1": (True, None), "r2": (False, None)})
    assert store.sync(src) == 2
    assert store.sync(src) == 0  # applied once
    assert store.posteriors("coding:d3") == {2: Posterior(1.0, 1.0)}
    src.rows["r3"] = (True, 0.5)
    assert store.sync(src) == 1
    assert store.posteriors("coding:d3") == {2: Posterior(1.5, 1.5)}


def test_learn_status_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    monkeypatch.delenv("ACO_LEDGER_URL", raising=False)  # the config's ledger, then
    store = open_learning(url=url)
    for _ in range(30):
        store.observe("math:d2", 1, 1.0)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"ledger:\n  url: {url}\nlearning:\n  online: true\n")
    res = CliRunner().invoke(app, ["learn", "status", "--config", str(cfg), "--json"])
    assert res.exit_code == 0, res.stdout
    out = json.loads(res.stdout)
    assert out["online"] is True
    (row,) = out["posteriors"]
    assert (row["cluster"], row["tier"], row["n"]) == ("math:d2", 1, 30.0)
    assert row["ci95"][0] > 0.85 and row["bundle_weight"] == 0.4
    res = CliRunner().invoke(app, ["learn", "reset", "--config", str(cfg)])
    assert res.exit_code == 1  # needs --yes


def test_cluster_of() -> None:
    assert cluster_of(assessment(task="coding")) == "coding:d3"


def test_chat_model_routes_up_after_observed_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aco_langchain.chat.model import ACORouterChatModel
    from aco_langchain.routing import get_router
    from aco_langchain.testing import ScriptedChatModel

    monkeypatch.delenv("ACO_LEDGER_URL", raising=False)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    cfg = ACOConfig.model_validate(
        {
            "ledger": {"url": url},
            "learning": {"online": True, "explore_share": 0.0},
            "task_floors": {},
            "routing": {"prefer_local": False, "safety_threshold": 0.0},
        }
    )
    assert isinstance(get_router(cfg), OnlineRouter)
    llm = ACORouterChatModel(
        config=cfg,
        tier_models={n: ScriptedChatModel(script=[f"t{n}"]) for n in range(1, 6)},
    )
    prompt = "What is the capital of France?"
    first = llm.invoke(prompt).response_metadata["aco"]
    store = open_learning(url=url)
    for _ in range(200):  # every answer from that tier was judged wrong
        assert store.observe_message(llm.invoke(prompt), 0.0)
        if llm.invoke(prompt).response_metadata["aco"]["tier"] != first["tier"]:
            break
    after = llm.invoke(prompt).response_metadata["aco"]
    assert after["tier"] > first["tier"]
    assert "online" in after["reason"]
