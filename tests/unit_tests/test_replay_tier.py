"""Replay tiers: recorded answers, usage and cost through the real ACORouterChatModel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from aco_langchain import ACOConfig, ACORouterChatModel
from aco_langchain.errors import (
    BudgetExceededError,
    DataError,
    ReplayMissError,
    TierUnavailableError,
)
from aco_langchain.providers.replay import ReplayChatModel
from aco_langchain.replay.recording import open_recording
from aco_langchain.spend.ledger import MemoryLedger

MODELS = ("small-model", "big-model")
PRICES = {"small-model": (0.001, 0.002), "big-model": (0.3, 0.9)}


def _cost(model: str, i: int) -> float:
    """The recorded cost: list price x recorded tokens (what RouterBench records), plus a
    per-prompt cent fraction so a price-x-tokens figure could not pass for it."""
    p_in, p_out = PRICES[model]
    return (12 * p_in + 5 * p_out) / 1000 + i * 1e-6


def _line(i: int, model: str, **extra: object) -> dict[str, object]:
    big = model == "big-model"
    return {
        "id": f"q{i}",
        "prompt": f"Question number {i}: what is {i} + {i}?",
        "model": model,
        "response": f"{model} says {2 * i}",
        "input_tokens": 12,
        "output_tokens": 5,
        "cost_usd": _cost(model, i),
        "score": 1.0 if big or i % 2 == 0 else 0.0,
        **extra,
    }


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    path = tmp_path / "answers.jsonl"
    lines = [_line(i, m) for i in range(6) for m in MODELS]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return path


def _config(recording: Path, **routing: object) -> ACOConfig:
    tiers = {}
    for n in range(1, 6):
        model = "small-model" if n <= 2 else "big-model"
        p_in, p_out = PRICES[model]
        tiers[f"tier{n}"] = {
            "model_id": f"replay-{n}",
            "provider": "replay",
            "recording": str(recording),
            "model": model,
            "cost_per_1k_input": p_in,
            "cost_per_1k_output": p_out,
            "capabilities": ["chat"],
        }
    return ACOConfig(
        models=tiers,
        router="rules",
        task_floors={},
        routing={"prefer_local": False, **routing},
    )


def _llm(recording: Path, **routing: object) -> ACORouterChatModel:
    return ACORouterChatModel(config=_config(recording, **routing), ledger=MemoryLedger())


def _expected(i: int, model: str) -> dict[str, object]:
    return _line(i, model)


def test_invoke_answers_with_the_recorded_text_usage_and_cost(recording: Path) -> None:
    llm = _llm(recording)
    msg = llm.invoke("Question number 3: what is 3 + 3?", force_tier=4)
    want = _expected(3, "big-model")
    assert msg.content == want["response"]
    assert msg.usage_metadata["input_tokens"] == 12
    assert msg.usage_metadata["output_tokens"] == 5
    meta = msg.response_metadata["aco"]
    assert meta["tier"] == 4
    assert meta["cost_usd"] == pytest.approx(want["cost_usd"])
    rows = llm.spend_ledger.records()
    assert len(rows) == 1
    assert rows[0].cost_usd == pytest.approx(want["cost_usd"])  # recorded, not price x tokens
    assert rows[0].model == "big-model" and rows[0].tier == 4


def test_lookup_ignores_case_and_whitespace_and_uses_the_last_user_message(
    recording: Path,
) -> None:
    llm = _llm(recording)
    msg = llm.invoke(
        [SystemMessage("be brief"), HumanMessage("  question NUMBER 2:   what is 2 + 2?\n")],
        force_tier=1,
    )
    assert msg.content == "small-model says 4"


async def test_ainvoke_astream_and_stream_give_the_same_answer(recording: Path) -> None:
    llm = _llm(recording)
    prompt = "Question number 5: what is 5 + 5?"
    sync = llm.invoke(prompt, force_tier=5)
    got = await llm.ainvoke(prompt, force_tier=5)
    chunks = [c async for c in llm.astream(prompt, force_tier=5)]
    streamed = "".join(str(c.content) for c in chunks)
    sync_chunks = list(llm.stream(prompt, force_tier=5))
    assert sync.content == got.content == streamed == "".join(str(c.content) for c in sync_chunks)
    assert len(chunks) > 1  # really streamed in pieces
    rows = llm.spend_ledger.records()
    assert len(rows) == 4
    cost = _expected(5, "big-model")["cost_usd"]
    assert all(r.cost_usd == pytest.approx(cost) for r in rows)


def test_batch_each_prompt_gets_its_own_recorded_answer(recording: Path) -> None:
    llm = _llm(recording)
    prompts = [f"Question number {i}: what is {i} + {i}?" for i in range(4)]
    out = llm.batch(prompts, config={"configurable": {"force_tier": 1}})
    assert [m.content for m in out] == [f"small-model says {2 * i}" for i in range(4)]
    total = sum(_expected(i, "small-model")["cost_usd"] for i in range(4))
    assert sum(r.cost_usd for r in llm.spend_ledger.records()) == pytest.approx(total)


def test_a_miss_makes_the_tier_unavailable_with_the_reason(recording: Path, tmp_path) -> None:
    # Tier 1's recording lacks the prompt: the call falls back to a tier that has it.
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps(_line(99, "small-model")) + "\n")
    cfg = _config(recording)
    cfg.models["tier1"] = cfg.models["tier1"].model_copy(update={"recording": str(other)})
    llm = ACORouterChatModel(config=cfg, ledger=MemoryLedger())
    assert "prompt not in the replay recording" in llm.registry.unavailable(
        "Question number 1: what is 1 + 1?"
    ).get(1, "")
    msg = llm.invoke("Question number 1: what is 1 + 1?")
    assert msg.response_metadata["aco"]["tier"] != 1
    # A prompt no tier recorded: no tier can answer, and the error says why.
    with pytest.raises(TierUnavailableError, match="tier 5 .*prompt not in the replay recording"):
        llm.invoke("a prompt nobody recorded")
    assert len(llm.spend_ledger.records()) == 1  # the miss billed nothing


def test_the_bare_model_raises_a_miss_error(recording: Path) -> None:
    model = ReplayChatModel(recording=[str(recording)], model="small-model")
    with pytest.raises(ReplayMissError, match="not in the replay recording"):
        model.invoke("unknown prompt")


def test_budgets_hold_and_stop_on_replay_tiers(recording: Path) -> None:
    # A big-model answer costs ~$0.0081 and holds ~$0.041 (prompt bytes + chat template +
    # 16-token cap at its price): a $0.045 run budget takes one, not two.
    cfg = _config(recording, max_cost_per_task=0.045, on_budget_exceeded="raise")
    llm = ACORouterChatModel(config=cfg, ledger=MemoryLedger(), max_tokens=16)
    run = {"configurable": {"aco_run_id": "budget-run", "force_tier": 5}}
    llm.invoke("Question number 1: what is 1 + 1?", config=run)
    with pytest.raises(BudgetExceededError):
        llm.invoke("Question number 2: what is 2 + 2?", config=run)
    assert llm.spend_ledger.spent("budget-run") == pytest.approx(_line(1, "big-model")["cost_usd"])


def test_replay_tier_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="recording"):
        ACOConfig(models={"tier1": {"model_id": "r", "provider": "replay", "model": "m"}})
    with pytest.raises(ValueError, match="only for provider: replay"):
        ACOConfig(models={"tier2": {"model_id": "x", "provider": "openai", "recording": "a.csv"}})
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "model": "m", "response": "r"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:1"):
        open_recording(bad).prompts()


def test_a_missing_recording_file_makes_the_tier_unavailable(tmp_path: Path) -> None:
    cfg = _config(tmp_path / "nope.jsonl")
    llm = ACORouterChatModel(config=cfg, ledger=MemoryLedger())
    assert "not found" in llm.registry.unavailable()[1]


def test_a_hold_covers_the_recorded_cost_when_the_price_says_less(recording: Path) -> None:
    # Priced at $0 the tier's worst case would be $0, but its settlement charges the recorded
    # ~$0.0081: the hold is never below it, so a $0.005 budget refuses the call up front.
    cfg = _config(recording, max_cost_per_task=0.005, on_budget_exceeded="raise")
    cfg.models["tier5"] = cfg.models["tier5"].model_copy(
        update={"cost_per_1k_input": 0.0, "cost_per_1k_output": 0.0}
    )
    llm = ACORouterChatModel(config=cfg, ledger=MemoryLedger(), max_tokens=16)
    with pytest.raises(BudgetExceededError):
        llm.invoke("Question number 1: what is 1 + 1?", force_tier=5, aco_run_id="tight")
    assert llm.spend_ledger.spent("tight") == 0.0


def test_ledger_baseline_is_the_baseline_tiers_recorded_cost(recording: Path) -> None:
    cfg = _config(recording)
    cfg = cfg.model_copy(update={"ledger": cfg.ledger.model_copy(update={"baseline_tier": 5})})
    llm = ACORouterChatModel(config=cfg, ledger=MemoryLedger())
    llm.invoke("Question number 4: what is 4 + 4?", force_tier=1)
    (row,) = llm.spend_ledger.records()
    assert row.cost_usd == pytest.approx(_cost("small-model", 4))
    assert row.baseline_usd == pytest.approx(_cost("big-model", 4))  # recorded, not estimated
