"""What one request to ``aco serve`` asks of the ledger (issue 18: each round trip is a wait
on the event loop, or a thread hand-off for SQLite).

A request without a run id runs under a key the server minted: nothing has been spent on it,
so nothing is read before routing, and the settlement returns the run's total in its own
transaction. Such a request is one hold and one settlement. A named run reads its spend
first (its budget decides the route). The server is the real FastAPI app in process; the
tiers are scripted; the ledger is a memory ledger that logs each call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from aco_langchain import ACORouterChatModel  # noqa: E402
from aco_langchain.config import config_from_dict  # noqa: E402
from aco_langchain.server import create_app  # noqa: E402
from aco_langchain.server.auth import hash_key  # noqa: E402
from aco_langchain.server.service import ServerState  # noqa: E402
from aco_langchain.spend.ledger import Hold, Limit, MemoryLedger, Refusal, SpendRecord  # noqa: E402
from aco_langchain.testing import ScriptedChatModel  # noqa: E402

KEY = "sk-team-a-key"


class LoggedLedger(MemoryLedger):
    """A memory ledger that logs every async call the server makes."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    async def ahold(
        self, limits: Sequence[Limit], usd: float, tokens: int = 0, **kw: Any
    ) -> Hold | Refusal:
        self.calls.append("hold")
        return await super().ahold(limits, usd, tokens, **kw)

    async def asettle(self, hold: Hold, record: SpendRecord, **kw: Any) -> float:
        self.calls.append("settle")
        return await super().asettle(hold, record, **kw)

    async def arelease(self, hold: Hold) -> None:
        self.calls.append("release")
        await super().arelease(hold)

    async def aspent(self, run_key: str) -> float:
        self.calls.append("spent")
        return await super().aspent(run_key)


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> tuple[TestClient, LoggedLedger]:
    monkeypatch.delenv("ACO_SERVER_API_KEYS", raising=False)
    cfg = config_from_dict(
        {"router": "rules", "server": {"api_keys": [{"name": "team-a", "sha256": hash_key(KEY)}]}}
    )
    ledger = LoggedLedger()
    tiers = {n: ScriptedChatModel(model=f"s{n}", script=["Paris."]) for n in range(1, 6)}
    llm = ACORouterChatModel(config=cfg, tier_models=tiers, ledger=ledger)
    return TestClient(create_app(state=ServerState(cfg, llm=llm))), ledger


def _ask(client: TestClient, headers: dict[str, str] | None = None) -> dict[str, Any]:
    r = client.post(
        "/v1/chat/completions",
        json={"model": "tier-3", "messages": [{"role": "user", "content": "Capital of France?"}]},
        headers={"authorization": f"Bearer {KEY}", **(headers or {})},
    )
    assert r.status_code == 200, r.text
    return r.json()["aco"]  # type: ignore[no-any-return]


def test_a_request_without_a_run_id_is_one_hold_and_one_settlement(served: Any) -> None:
    client, ledger = served
    aco = _ask(client)
    assert ledger.calls == ["hold", "settle"]
    rows = ledger.records()
    assert [r.run_key for r in rows] == [aco["run_key"]]  # billed, on the ledger
    assert aco["run_key"].startswith("team-a/req-") and aco["cost_usd"] > 0
    assert ledger.spent(aco["run_key"]) == pytest.approx(aco["cost_usd"])


def test_a_named_run_reads_its_spend_before_routing(served: Any) -> None:
    client, ledger = served
    first = _ask(client, {"x-aco-run-id": "job-1"})
    second = _ask(client, {"x-aco-run-id": "job-1"})
    assert ledger.calls == ["spent", "hold", "settle"] * 2
    assert first["run_key"] == second["run_key"] == "team-a/job-1"
    total = first["cost_usd"] + second["cost_usd"]
    assert ledger.spent("team-a/job-1") == pytest.approx(total)


async def test_a_minted_run_reports_the_total_its_settlement_returned() -> None:
    ledger = LoggedLedger()
    tiers = {n: ScriptedChatModel(model=f"s{n}", script=["ok"]) for n in range(1, 6)}
    llm = ACORouterChatModel(tier_models=tiers, ledger=ledger)
    msg = await llm.ainvoke("Refactor this", force_tier=3, aco_run_id="fresh", aco_new_run=True)
    assert ledger.calls == ["hold", "settle"]
    info = msg.response_metadata["aco"]
    assert info["run_spent_usd"] == pytest.approx(ledger.spent("fresh")) and info["cost_usd"] > 0
