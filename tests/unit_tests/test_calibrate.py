"""aco calibrate / aco eval --config: thresholds chosen on the user's data, guard rail."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("scipy")
pytest.importorskip("sklearn")

from typer.testing import CliRunner  # noqa: E402

from aco_langchain.cli.main import app  # noqa: E402
from aco_langchain.config import ACOConfig, load_config  # noqa: E402
from aco_langchain.errors import DataError  # noqa: E402
from aco_langchain.routing.base import RouteRequest  # noqa: E402
from aco_langchain.routing.bundle import save_bundle  # noqa: E402
from aco_langchain.routing.learned import LearnedRouter  # noqa: E402
from aco_langchain.routing.training import calibrate as cb  # noqa: E402
from aco_langchain.routing.training.datasets import load_file  # noqa: E402
from aco_langchain.routing.training.train import train_bundle  # noqa: E402

MODELS = {"small": 0.0001, "mid": 0.001, "big": 0.01}


def write_replay(path: Path, n: int, seed: int) -> Path:
    """Replay rows (what ``aco collect`` writes): easy quiz prompts the small model gets
    right, hard proofs only the big model gets right, code the mid model handles."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        kind = ("quiz", "proof", "code")[i % 3]
        prompt = {
            "quiz": f"Quiz {seed}-{i}: which planet is closest to the sun? A) Venus B) Mercury",
            "proof": f"Prove rigorously that theorem {seed}-{i} about prime gaps holds for all n.",
            "code": f"Write a python function number {seed}-{i} that sorts a list of tuples.",
        }[kind]
        p_ok = {
            "quiz": {"small": 0.95, "mid": 0.97, "big": 0.98},
            "proof": {"small": 0.05, "mid": 0.3, "big": 0.9},
            "code": {"small": 0.2, "mid": 0.9, "big": 0.93},
        }[kind]
        for model, price in MODELS.items():
            rows.append(
                {
                    "id": f"{seed}-{i}",
                    "prompt": prompt,
                    "model": model,
                    "response": "...",
                    "input_tokens": 20,
                    "output_tokens": 5,
                    "cost_usd": price,
                    "score": float(rng.random() < p_ok[model]),
                    "latency_s": 0.1,
                    "task": kind,
                }
            )
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cal")
    train = write_replay(d / "train.jsonl", 240, 1)
    held = write_replay(d / "held.jsonl", 150, 2)
    bundle = train_bundle(load_file(train), seed=0)
    save_bundle(bundle, d / "bundle")
    return {"dir": d, "train": train, "held": held, "bundle": d / "bundle"}


def test_replay_rows_group_by_id_and_unfinished_prompts_are_left_out(tmp_path: Path) -> None:
    rows = [
        {"id": 1, "prompt": "a", "model": "x", "score": 1, "cost_usd": 0.1},
        {"id": 1, "prompt": "a", "model": "y", "score": 0, "cost_usd": 0.01},
        {"id": 2, "messages": [{"role": "user", "content": "b"}], "model": "x", "score": 0},
        {"id": 2, "prompt": "b", "model": "y", "score": 1, "cost_usd": 0.02},
        {"id": 3, "prompt": "c", "model": "y", "score": 1, "cost_usd": 0.02},
    ]
    rows[2]["cost_usd"] = 0.2
    p = tmp_path / "r.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in rows))
    data = load_file(p)
    assert data.models == ["x", "y"]
    assert data.prompts == ["a", "b"]  # id 3 lacks model x: not a wrong answer, left out
    assert data.correct.tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert data.cost.tolist() == [[0.1, 0.01], [0.2, 0.02]]


def test_mixing_outcome_records_and_replay_rows_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "mixed.jsonl"
    p.write_text(
        json.dumps({"id": 1, "prompt": "a", "outcomes": {"x": {"correct": 1, "cost": 0.1}}})
        + "\n"
        + json.dumps({"id": 2, "prompt": "b", "model": "x", "score": 1, "cost_usd": 0.1})
    )
    with pytest.raises(DataError, match="keep one kind per file"):
        load_file(p)


def test_calibrate_meets_the_target_on_unseen_prompts_cheaper_than_the_best(
    setup: dict[str, Path],
) -> None:
    from aco_langchain.routing.bundle import load_bundle

    bundle = load_bundle(setup["bundle"])
    cal = cb.calibrate(bundle, load_file(setup["train"]), 0.95, ACOConfig(), seed=0)
    assert not cal.refused
    assert cal.after.n == round(240 * 0.3)
    lo, hi = cal.after.ci95
    assert lo <= cal.after.quality_share <= hi
    cfg = cb.apply(ACOConfig(), cal)
    op = cb.operating_point(bundle, load_file(setup["held"]), cfg)
    # prompts calibrate never saw: within 3 points of the target, far below the big model
    assert op["quality_share"] >= 0.92
    assert op["cost_share"] <= 0.6


def test_is_worse_orders_target_first_then_cost() -> None:
    def m(share: float, cost: float, meets: bool) -> cb.Measured:
        return cb.Measured(10, share, cost, share, cost, [0, 1], [0, 1], meets)

    assert cb.is_worse(m(0.90, 0.1, False), m(0.96, 0.5, True))
    assert not cb.is_worse(m(0.96, 0.5, True), m(0.90, 0.1, False))
    assert cb.is_worse(m(0.97, 0.6, True), m(0.96, 0.5, True))
    assert not cb.is_worse(m(0.96, 0.4, True), m(0.99, 0.5, True))
    assert cb.is_worse(m(0.80, 0.1, False), m(0.85, 0.2, False))


def _run(args: list[str]) -> tuple[int, dict]:
    res = CliRunner().invoke(app, args)
    return res.exit_code, json.loads(res.stdout)


def test_cli_calibrate_writes_a_config_that_eval_measures(setup: dict[str, Path]) -> None:
    out = setup["dir"] / "calibrated.yaml"
    plot = setup["dir"] / "frontier.png"
    code, rep = _run(
        [
            "calibrate",
            "--data",
            str(setup["train"]),
            "--bundle",
            str(setup["bundle"]),
            "--target",
            "0.95",
            "--write-config",
            str(out),
            "--plot",
            str(plot),
            "--json",
        ]
    )
    assert code == 0, rep
    assert rep["target"] == 0.95
    assert set(rep["heldout"]) >= {"quality_share", "cost_share", "n", "ci95"}
    assert rep["written"] == str(out) and out.is_file() and plot.stat().st_size > 0
    cfg = load_config(out)
    assert cfg.learning.calibration is not None
    assert cfg.router_model_path == str(setup["bundle"].resolve())
    code, ev = _run(
        ["eval", "--data", str(setup["held"]), "--bundle", str(setup["bundle"]), "--config",
         str(out), "--json"]
    )  # fmt: skip
    assert code == 0
    assert ev["best_single"]["model"] == "big"
    op = ev["operating_point"]
    assert op["accuracy"] >= 0.92 * ev["best_single"]["accuracy"]
    assert op["cost_usd_mean"] < 0.6 * ev["best_single"]["cost_usd_mean"]


def test_guard_rail_refuses_a_worse_calibration_and_writes_nothing(
    setup: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A chooser gone wrong: always the cheapest model (misses the target badly).
    def cheapest(pred: cb.Predictions, base: cb.Setting, target: float) -> tuple:
        return cb.Setting(1e9, None, 0.0, 0.0, 1.0, base.prefer_local), True

    monkeypatch.setattr(cb, "pick_setting", cheapest)
    current = setup["dir"] / "current.yaml"
    current.write_text(yaml.safe_dump({"routing": {"quality_target": 1.0}}))
    out = setup["dir"] / "refused.yaml"
    code, rep = _run(
        ["calibrate", "--data", str(setup["train"]), "--bundle", str(setup["bundle"]),
         "--target", "0.95", "--config", str(current), "--write-config", str(out), "--json"]
    )  # fmt: skip
    assert code == 1
    assert rep["refused"] is True and rep["written"] is None
    assert "worse on the held-out split" in rep["error"]
    assert not out.exists()


def test_learned_router_runs_the_calibrated_knob(setup: dict[str, Path]) -> None:
    from aco_langchain.routing.bundle import load_bundle

    router = LearnedRouter(load_bundle(setup["bundle"]))
    req = RouteRequest.from_text("Prove rigorously that theorem 9-9 about prime gaps holds.")
    cheap = ACOConfig.model_validate({"learning": {"calibration": {"lam": 1e9, "target": 0.5}}})
    best = ACOConfig.model_validate({"learning": {"calibration": {"lam": 0.0, "target": 1.0}}})
    a_cheap, a_best = router.assess(req, cheap), router.assess(req, best)
    p = np.array([a_best.p_success[t] for t in range(1, 6)])
    assert a_best.suggested_tier == int(np.argmax(p)) + 1  # lam 0: the most likely to succeed
    assert a_cheap.suggested_tier <= a_best.suggested_tier
    assert "1e+09" in a_cheap.reason
