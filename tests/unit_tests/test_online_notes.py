"""With ``learning.online`` on, the chat model notes each routed call's cluster and tier, so a
later observed outcome of the run moves that posterior without the app calling
``observe_message``; with it off, nothing is noted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain_core.callbacks.manager import dispatch_custom_event
from langchain_core.runnables import RunnableLambda
from typer.testing import CliRunner

from aco_langchain.chat.model import ACORouterChatModel
from aco_langchain.cli import app
from aco_langchain.config import ACOConfig
from aco_langchain.routing.online import Posterior, cluster_key
from aco_langchain.routing.online_store import open_learning
from aco_langchain.spend.outcomes import open_outcomes
from aco_langchain.testing import ScriptedChatModel
from aco_langchain.tracing.callback import EVENT_OUTCOME, ACOTraceCallbackHandler

PROMPT = "What is the capital of France?"


def _config(url: str, online: bool = True) -> ACOConfig:
    return ACOConfig.model_validate(
        {
            "ledger": {"url": url},
            "learning": {"online": online, "explore_share": 0.0},
            "routing": {"prefer_local": False},
        }
    )


def _llm(cfg: ACOConfig) -> ACORouterChatModel:
    return ACORouterChatModel(
        config=cfg,
        tier_models={n: ScriptedChatModel(script=[f"t{n}"]) for n in range(1, 6)},
    )


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("ACO_LEDGER_URL", raising=False)  # the config's ledger everywhere
    return f"sqlite:///{tmp_path / 'ledger.db'}"


def _cluster_tier(meta: dict) -> tuple[str, int]:
    return cluster_key(meta["task_type"], meta["difficulty"]), int(meta["tier"])


def test_invoke_then_outcome_then_learn_sync_moves_the_posterior(url: str, tmp_path: Path) -> None:
    llm = _llm(_config(url))
    meta = llm.invoke(PROMPT, aco_run_id="job-1").response_metadata["aco"]
    cluster, tier = _cluster_tier(meta)
    store = open_learning(url=url)
    assert store.posteriors(cluster) == {}
    llm.record_outcome("job-1", success=False)
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(f"ledger:\n  url: {url}\nlearning:\n  online: true\n")
    res = CliRunner().invoke(app, ["learn", "sync", "--config", str(cfg_file), "--json"])
    assert res.exit_code == 0, res.stdout
    assert json.loads(res.stdout)["applied"] == 1
    assert store.posteriors(cluster) == {tier: Posterior(0.0, 1.0)}


async def test_ainvoke_and_astream_are_noted(url: str) -> None:
    llm = _llm(_config(url))
    meta = (await llm.ainvoke(PROMPT, aco_run_id="a-1")).response_metadata["aco"]
    last = None
    async for chunk in llm.astream(PROMPT, aco_run_id="a-2"):
        last = chunk
    assert last is not None
    await llm.arecord_outcome("a-1", success=True)
    await llm.arecord_outcome("a-2", success=False, score=0.25)
    store = open_learning(url=url)
    assert store.sync(open_outcomes(url)) == 2
    cluster, tier = _cluster_tier(meta)
    assert store.posteriors(cluster) == {tier: Posterior(1.25, 0.75)}


def test_sync_stream_is_noted(url: str) -> None:
    llm = _llm(_config(url))
    chunks = list(llm.stream(PROMPT, aco_run_id="s-1"))
    cluster, tier = _cluster_tier(chunks[-1].response_metadata["aco"])
    llm.record_outcome("s-1", success=True)
    store = open_learning(url=url)
    assert store.sync(open_outcomes(url)) == 1
    assert store.posteriors(cluster) == {tier: Posterior(1.0, 0.0)}


def test_an_outcome_event_closes_the_loop(url: str) -> None:
    """The trace handler writes the event's outcome; sync applies it to the noted call."""
    cfg = _config(url)
    llm = _llm(cfg)

    def judge(msg: object) -> object:
        dispatch_custom_event(EVENT_OUTCOME, {"task_success": False})
        return msg

    h = ACOTraceCallbackHandler(config=cfg)
    chain = llm | RunnableLambda(judge)
    out = chain.invoke(PROMPT, {"callbacks": [h], "configurable": {"aco_run_id": "ev-1"}})
    meta = out.response_metadata["aco"]
    assert meta["run_key"] == "ev-1"
    store = open_learning(url=url)
    assert store.sync(open_outcomes(url)) == 1
    cluster, tier = _cluster_tier(meta)
    assert store.posteriors(cluster) == {tier: Posterior(0.0, 1.0)}


def test_forced_tier_and_learning_off_note_nothing(url: str) -> None:
    llm = _llm(_config(url))
    llm.invoke(PROMPT, aco_run_id="f-1", force_tier=3)
    llm.record_outcome("f-1", success=False)
    off = _llm(_config(url, online=False))
    assert off._rt.caller.notes is None  # no op, no I/O per call
    off.invoke(PROMPT, aco_run_id="o-1")
    off.record_outcome("o-1", success=False)
    store = open_learning(url=url)
    assert store.sync(open_outcomes(url)) == 0
    assert store.rows() == []
