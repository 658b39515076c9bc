"""The routers' outputs are pinned: features and assessments of 125 prompts from the
routing datasets (RouterBench, RouteLLM's MMLU, LLMRouter), recorded before the
performance work on the feature and rule code, must come out identical (a speed-up may
not move a single bit of a feature or a probability)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from aco_langchain.config import ACOConfig, seed_priced_models
from aco_langchain.routing.base import RouteRequest
from aco_langchain.routing.learned import load_router
from aco_langchain.routing.rules import RuleRouter

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "router_golden.jsonl"
ROWS = [json.loads(line) for line in GOLDEN.read_text().splitlines()]


@pytest.mark.parametrize("row", ROWS, ids=[str(i) for i in range(len(ROWS))])
def test_features_and_assessments_are_unchanged(row: dict) -> None:
    router, cfg = load_router(), ACOConfig(models=seed_priced_models())  # fixed prices
    req = RouteRequest.from_text(row["prompt"])
    ask = router.ask_text(req)
    idx, w = router.featurizer.hashed(ask, ask)
    dense = router.featurizer.dense(ask, req.roles, req.n_tools, ask)
    assert dense.tolist() == row["dense"]
    assert hashlib.sha256(idx.tobytes() + w.tobytes()).hexdigest() == row["hashed_sha256"]
    # the router's path: both groups from one encoding of the (lower-cased) ask
    idx2, w2, dense2, raw = router.featurizer.lowered_features(ask, req.roles, req.n_tools)
    assert (idx2.tobytes(), w2.tobytes(), dense2.tolist()) == (
        idx.tobytes(),
        w.tobytes(),
        row["dense"],
    )
    assert raw == ask.encode("utf-8", "replace")
    assert router.assess(req, cfg).model_dump(mode="json") == row["learned"]
    assert RuleRouter().assess(req, cfg).model_dump(mode="json") == row["rules"]


def test_the_golden_set_covers_every_branch_of_the_rules() -> None:
    tasks = {r["rules"]["task_type"] for r in ROWS} | {r["learned"]["task_type"] for r in ROWS}
    assert len(ROWS) >= 100 and len(tasks) >= 3
    assert np.mean([len(r["prompt"]) for r in ROWS]) > 100
