"""One parser for the replay JSONL: replay tiers and ``aco train`` read the same rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aco_langchain.errors import DataError
from aco_langchain.replay.recording import open_recording
from aco_langchain.routing.training.datasets import load_jsonl


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _row(i: int, model: str, **over: object) -> dict:
    row = {
        "id": f"q{i}",
        "prompt": f"Question {i}: what is {i} + {i}?",
        "model": model,
        "response": str(2 * i),
        "input_tokens": 12,
        "output_tokens": 2,
        "cost_usd": 0.001 if model == "big" else 0.0001,
        "score": 1.0 if model == "big" or i % 2 else 0.0,
    }
    row.update(over)
    return row


def test_the_same_file_replays_and_trains(tmp_path: Path) -> None:
    rows = [_row(i, m) for i in range(1, 5) for m in ("small", "big")]
    path = _write(tmp_path / "rec.jsonl", rows)
    rec = open_recording(path)
    ans = rec.lookup("Question 3: what is 3 + 3?", "small")
    assert ans is not None and ans.response == "6" and ans.cost_usd == 0.0001
    assert ans.correct and ans.input_tokens == 12
    data = load_jsonl(path)
    assert data.ids == ["q1", "q2", "q3", "q4"] and sorted(data.models) == ["big", "small"]
    small = data.models.index("small")
    assert list(data.correct[:, small]) == [1.0, 0.0, 1.0, 0.0]


def test_chat_rows_with_content_parts_replay_on_the_last_user_turn(tmp_path: Path) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Name a prime."}]},
    ]
    row = _row(1, "small", messages=messages)
    del row["prompt"]
    path = _write(tmp_path / "chat.jsonl", [row])
    ans = open_recording(path).lookup("name a prime.", "small")
    assert ans is not None and ans.response == "2"
    assert load_jsonl(path).prompts == ["Name a prime."]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"cost_usd": None}, "cost_usd"),
        ({"input_tokens": None}, "input_tokens"),
        ({"messages": [{"role": "user", "content": "x"}]}, "prompt"),  # both given
        ({"score": 2.0}, "score"),
    ],
)
def test_a_row_a_tier_cannot_answer_with_is_refused_naming_the_field(
    tmp_path: Path, change: dict, field: str
) -> None:
    row = {k: v for k, v in _row(1, "small", **change).items() if v is not None}
    path = _write(tmp_path / "bad.jsonl", [row])
    with pytest.raises(DataError, match=rf"bad.jsonl:1: field '{field}'"):
        open_recording(path).prompts()
