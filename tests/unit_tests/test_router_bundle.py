"""Learned-router bundle: reproducible training, atomic save, refusal of bad bundles."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("scipy")
pytest.importorskip("sklearn")

from aco_langchain.config import ACOConfig  # noqa: E402
from aco_langchain.errors import DataError
from aco_langchain.routing.base import RouteRequest  # noqa: E402
from aco_langchain.routing.bundle import (  # noqa: E402
    ARRAYS,
    MANIFEST,
    BundleError,
    load_bundle,
    save_bundle,
)
from aco_langchain.routing.learned import LearnedRouter, load_router  # noqa: E402
from aco_langchain.routing.training.datasets import load_outcomes  # noqa: E402
from aco_langchain.routing.training.train import TrainParams, train_bundle  # noqa: E402


def _write_slice(path: Path, n: int = 60) -> Path:
    """A small outcomes JSONL: code prompts (small model fails) and quiz prompts."""
    rng = random.Random(7)
    lines = []
    for i in range(n):
        code = i % 2 == 0
        prompt = (
            f"Write a python function number {i} that returns the sum of a list."
            if code
            else f"Question {i}: which planet is closest to the sun?\nA) Venus\nB) Mercury\nAnswer:"
        )
        small = 1.0 if (not code and rng.random() < 0.8) else float(rng.random() < 0.3)
        lines.append(
            json.dumps(
                {
                    "id": f"q{i}",
                    "prompt": prompt,
                    "task": "code" if code else "quiz",
                    "outcomes": {
                        "small": {"correct": small, "cost": 0.0001 * (1 + len(prompt) / 100)},
                        "mid": {"correct": float(rng.random() < 0.7), "cost": 0.001},
                        "big": {"correct": float(rng.random() < 0.9), "cost": 0.01},
                    },
                }
            )
        )
    path.write_text("\n".join(lines) + "\n")
    return path


PARAMS = TrainParams(svd_dims=4, folds=3, max_iter=100)


def test_same_seed_same_bundle(tmp_path: Path) -> None:
    data = load_outcomes([_write_slice(tmp_path / "slice.jsonl")])
    a = train_bundle(data, seed=3, params=PARAMS)
    b = train_bundle(data, seed=3, params=PARAMS)
    assert a.fingerprint() == b.fingerprint()
    for k in a.arrays:
        np.testing.assert_array_equal(a.arrays[k], b.arrays[k])
    ma = a.manifest.model_dump()
    mb = b.manifest.model_dump()
    ma["training"].pop("seconds")
    mb["training"].pop("seconds")
    assert ma == mb
    # saved and reloaded: identical arrays, checksums verified
    out = save_bundle(a, tmp_path / "bundle")
    loaded = load_bundle(out)
    assert loaded.fingerprint() == a.fingerprint()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".bundle")]
    # price-ordered tier map: cheapest is tier 1, most accurate is tier 5
    assert loaded.manifest.tier_map["1"] == "small"
    assert loaded.manifest.tier_map["5"] == "big"


def test_learned_router_assess_on_trained_bundle(tmp_path: Path) -> None:
    data = load_outcomes([_write_slice(tmp_path / "slice.jsonl")])
    out = save_bundle(train_bundle(data, seed=0, params=PARAMS), tmp_path / "b")
    router = LearnedRouter(load_bundle(out))
    a = router.assess(RouteRequest.from_text("Question: which is larger?\nA) 1\nB) 2"), ACOConfig())
    assert a.router == "learned"
    assert set(a.p_success) == {1, 2, 3, 4, 5}
    assert a.confidence == pytest.approx(a.p_success[a.suggested_tier])
    assert a.reason.startswith("learned:")


def test_shipped_bundle_loads_and_routes() -> None:
    router = load_router()
    assert load_router() is router  # cached per path
    cfg = ACOConfig()
    a = router.assess(RouteRequest.from_text("Write a python function to reverse a list."), cfg)
    assert a.task_type == "coding"
    assert all(0.0 <= p <= 1.0 for p in a.p_success.values())
    assert router.bundle.manifest.validation["router_aiq"] > 0.8


@pytest.fixture()
def bundle_copy(tmp_path: Path) -> Path:
    src = load_router().bundle.path
    assert src is not None
    dst = tmp_path / "bundle"
    shutil.copytree(src, dst)
    return dst


def test_tampered_array_is_refused(bundle_copy: Path) -> None:
    with np.load(bundle_copy / ARRAYS, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["bias"] = arrays["bias"] + 1.0
    np.savez_compressed(bundle_copy / ARRAYS, **arrays)
    with pytest.raises(BundleError, match="checksum mismatch for array 'bias'"):
        load_bundle(bundle_copy)


def test_corrupted_arrays_file_is_refused(bundle_copy: Path) -> None:
    (bundle_copy / ARRAYS).write_bytes(b"not a zip file at all")
    with pytest.raises(BundleError, match="cannot read arrays"):
        load_bundle(bundle_copy)


def test_pickled_array_is_refused(bundle_copy: Path) -> None:
    with np.load(bundle_copy / ARRAYS, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["bias"] = np.array([{"evil": 1}], dtype=object)
    np.savez(bundle_copy / ARRAYS, **arrays)
    with pytest.raises(BundleError, match="cannot read arrays"):
        load_bundle(bundle_copy)


def test_unknown_version_and_missing_files(bundle_copy: Path, tmp_path: Path) -> None:
    man = json.loads((bundle_copy / MANIFEST).read_text())
    man["format"] = "aco-router-bundle/99"
    (bundle_copy / MANIFEST).write_text(json.dumps(man))
    with pytest.raises(BundleError, match="unknown bundle format"):
        load_bundle(bundle_copy)
    (bundle_copy / MANIFEST).unlink()
    with pytest.raises(BundleError, match="manifest.json is missing"):
        load_bundle(bundle_copy)
    with pytest.raises(BundleError, match="no such bundle directory"):
        load_bundle(tmp_path / "nope")
    assert issubclass(BundleError, ValueError)


def test_bad_jsonl_names_line_and_field(tmp_path: Path) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text('{"id": 1, "prompt": "x", "outcomes": {"m": {"correct": 2}}}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:1: field 'outcomes.m.correct'"):
        load_outcomes([p])
