"""aco collect: scored replay rows per (prompt, tier), resumable, capped by the budget;
then train and calibrate on what was collected (no keys)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aco_langchain.chat.model import ACORouterChatModel
from aco_langchain.cli import collect_cmds
from aco_langchain.cli.main import app
from aco_langchain.config import ACOConfig
from aco_langchain.errors import DataError
from aco_langchain.routing.training.collect import load_prompts
from aco_langchain.routing.training.scorers import JudgeSpec, judge_verdict, parse_scorer
from aco_langchain.spend.ledger import open_ledger
from aco_langchain.testing import ScriptedChatModel
from tests.prices import write_seed_config


def _solve(messages: list) -> str:
    """The strong tier: adds the numbers of the question."""
    nums = [int(x) for x in re.findall(r"\d+", str(messages[-1].content))]
    return f"The answer is {sum(nums)}"


def _weak(messages: list) -> str:
    """The weak tiers: right on plain questions, wrong on code prompts."""
    text = str(messages[-1].content)
    nums = [int(x) for x in re.findall(r"\d+", text)]
    return f"The answer is {sum(nums) if 'code' not in text else 0}"


def tiers() -> dict[int, ScriptedChatModel]:
    return {
        n: ScriptedChatModel(script=[_weak if n < 3 else _solve], model=f"fake-t{n}")
        for n in range(1, 6)
    }


def write_prompts(path: Path, n: int) -> Path:
    lines = []
    for i in range(n):
        a, b = (i % 7) * 3, (i % 11) * 5 + (40 if i % 3 == 0 else 0)
        kind = "code" if i % 4 == 0 else "math"
        q = f"In code, compute {a} plus {b}." if kind == "code" else f"What is {a} plus {b}?"
        lines.append(json.dumps({"id": f"p{i}", "question": q, "answer": str(a + b), "task": kind}))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def patched(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"

    def build(cfg, run_key, max_tokens):  # the configured tiers, played by scripts (no keys)
        return ACORouterChatModel(
            config=cfg,
            tier_models=tiers(),
            run_key=run_key,
            ledger=open_ledger(ledger),
            max_tokens=max_tokens,
        )

    monkeypatch.setattr(collect_cmds, "build_llm", build)
    return tmp_path


def _collect(args: list[str]) -> tuple[int, dict]:
    res = CliRunner().invoke(app, ["collect", *args, "--max-tokens", "16", "--json"])
    assert res.stdout.strip(), (res.output, res.exception)
    return res.exit_code, json.loads(res.stdout)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_collect_writes_scored_replay_rows_and_resumes(patched: Path) -> None:
    prompts = write_prompts(patched / "p.jsonl", 6)
    out = patched / "out.jsonl"
    code, rep = _collect([str(prompts), "--tiers", "1,4", "--scorer", "numeric", "--out", str(out)])
    assert code == 0, rep
    assert rep["written"] == 12 and rep["skipped"] == 0
    rows = _rows(out)
    keys = {"id", "prompt", "model", "response", "input_tokens", "output_tokens", "cost_usd",
            "score", "latency_s"}  # fmt: skip
    assert all(keys <= set(r) for r in rows)
    by = {(r["id"], r["tier"]): r for r in rows}
    assert by[("p0", 4)]["score"] == 1.0 and by[("p0", 1)]["score"] == 0.0  # code: weak fails
    assert by[("p1", 1)]["score"] == 1.0
    assert by[("p1", 4)]["cost_usd"] > 0 and by[("p1", 1)]["cost_usd"] == 0.0  # local tier free
    # re-run: nothing new; drop two rows: only those are collected again
    code, rep = _collect([str(prompts), "--tiers", "1,4", "--scorer", "numeric", "--out", str(out)])
    assert (rep["written"], rep["skipped"]) == (0, 12)
    out.write_text("\n".join(json.dumps(r) for r in rows[2:]) + "\n")
    code, rep = _collect([str(prompts), "--tiers", "1,4", "--scorer", "numeric", "--out", str(out)])
    assert (rep["written"], rep["skipped"]) == (2, 10)
    assert sorted((r["id"], r["tier"]) for r in _rows(out)) == sorted(by)
    # what aco replay reads: the same rows answer the same prompts
    from aco_langchain.replay.recording import open_recording

    ans = open_recording([str(out)]).lookup(by[("p1", 4)]["prompt"], by[("p1", 4)]["model"])
    assert ans is not None and ans.response == by[("p1", 4)]["response"]


def test_collect_stops_at_its_budget(patched: Path) -> None:
    prompts = write_prompts(patched / "p.jsonl", 30)
    out = patched / "out.jsonl"
    seed = str(write_seed_config(patched / "seed.yaml"))  # tier 4 at the seed's $1/$3 per 1K
    code, rep = _collect(
        [str(prompts), "--tiers", "4", "--scorer", "numeric", "--out", str(out), "--budget",
         "0.2", "--concurrency", "1", "--config", seed]
    )  # fmt: skip
    assert code == 1 and rep["stopped_by_budget"] is True
    assert 0 < rep["written"] < 30
    assert rep["cost_usd"] <= 0.2
    # the budget key is per output file: a bigger budget resumes where it stopped
    code, rep = _collect(
        [str(prompts), "--tiers", "4", "--scorer", "numeric", "--out", str(out), "--budget", "5",
         "--config", seed]
    )  # fmt: skip
    assert code == 0 and rep["written"] + rep["skipped"] == 30


def test_collect_then_train_then_calibrate_offline(patched: Path) -> None:
    pytest.importorskip("sklearn")
    prompts = write_prompts(patched / "p.jsonl", 90)
    out = patched / "c.jsonl"
    code, rep = _collect(
        [str(prompts), "--tiers", "1,2,4", "--scorer", "numeric", "--out", str(out)]
    )
    assert code == 0 and rep["written"] == 270
    runner = CliRunner()
    res = runner.invoke(app, ["train", "--data", str(out), "--out", str(patched / "b"), "--json"])
    assert res.exit_code == 0, res.stdout
    trained = json.loads(res.stdout)
    # the tier map comes from the default config: the collected models are its tier models
    assert trained["tier_map"]["4"] == "frontier-latest"
    assert set(trained["tier_map"].values()) == {
        "tiny-local-3b",
        "cheap-cloud-8b",
        "frontier-latest",
    }
    res = runner.invoke(
        app,
        ["calibrate", "--data", str(out), "--bundle", str(patched / "b"), "--target", "0.9",
         "--write-config", str(patched / "cal.yaml"), "--json"],
    )  # fmt: skip
    cal = json.loads(res.stdout)
    assert cal["heldout"]["n"] == 27
    assert cal["written"] == str(patched / "cal.yaml"), (cal["heldout"], cal["before"])
    # the weak tiers answer the small sums: the calibrated setting costs less than tier 4
    assert cal["heldout"]["quality_share"] >= 0.9 and cal["heldout"]["cost_share"] < 0.9


def test_prompt_formats(tmp_path: Path) -> None:
    ls = tmp_path / "ls.json"
    ls.write_text(
        json.dumps(
            [
                {"id": "a", "inputs": {"question": "2+2?"}, "outputs": {"answer": "4"}},
                {"id": "b", "inputs": {"q": "3+3?"}, "outputs": {"result": 6}},
            ]
        )
    )
    items = load_prompts(ls)
    assert [(i.id, i.prompt, i.reference) for i in items] == [
        ("a", "2+2?", "4"),
        ("b", "3+3?", "6"),
    ]
    csvf = tmp_path / "p.csv"
    csvf.write_text("id,prompt,reference\nx,hello,world\n")
    assert load_prompts(csvf)[0].reference == "world"
    msgs = tmp_path / "m.jsonl"
    msgs.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n")
    assert load_prompts(msgs)[0].text() == "hi"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": 1, "nothing": 1, "other": 2}) + "\n")
    with pytest.raises(DataError, match="no prompt"):
        load_prompts(bad)


def test_scorers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_scorer("exact")(" Paris. ", "paris") == 1.0
    assert parse_scorer("exact")("Paris, France", "paris") == 0.0
    assert parse_scorer("contains")("It is Paris, France", "PARIS") == 1.0
    assert parse_scorer("numeric:0.01")("so 3.14", "3.14159") == 1.0
    assert parse_scorer("numeric")("so 3.14", "3.14159") == 0.0
    assert parse_scorer("numeric")("total 1,234 items", "1234") == 1.0
    assert parse_scorer(r"regex:answer is (\w+)")("The answer is B", "b") == 1.0
    assert parse_scorer(r"regex:^def \w+")("def f(): pass", None) == 1.0
    (tmp_path / "myscore.py").write_text(
        "def score(answer, reference, prompt):\n    return len(answer) < 5\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert parse_scorer("myscore:score")("ok", None, "") == 1.0
    assert parse_scorer("judge:5") == JudgeSpec(5)
    assert judge_verdict("Verdict: 1") == 1.0 and judge_verdict("no idea") is None
    for bad in ("judge:9", "numeric:x", "regex:(", "nosuch_mod_xyz:f", "fuzzy"):
        with pytest.raises(DataError):
            parse_scorer(bad)
    with pytest.raises(DataError, match="reference"):
        parse_scorer("exact")("a", None)
    sys.modules.pop("myscore", None)


def test_judge_scorer_records_its_own_cost(patched: Path) -> None:
    prompts = write_prompts(patched / "p.jsonl", 2)
    out = patched / "j.jsonl"
    code, rep = _collect([str(prompts), "--tiers", "1", "--scorer", "judge:5", "--out", str(out)])
    # the judge tier (a script adding numbers) never says 0/1 plainly: scored 0 with a warning
    assert code == 0, rep
    assert rep["judge_cost_usd"] > 0
    assert all(r["judge_cost_usd"] > 0 for r in _rows(out))


def test_train_merges_base_data_by_tier_weighted(patched: Path) -> None:
    pytest.importorskip("sklearn")
    from aco_langchain.routing.base import RouteRequest
    from aco_langchain.routing.bundle import load_bundle
    from aco_langchain.routing.learned import LearnedRouter

    prompts = write_prompts(patched / "p.jsonl", 60)
    out = patched / "c.jsonl"
    code, _ = _collect([str(prompts), "--tiers", "1,4", "--scorer", "numeric", "--out", str(out)])
    assert code == 0
    # base data of other models: translation prompts the cheap model always gets wrong
    base = patched / "base.jsonl"
    lines = []
    for i in range(120):
        lines.append(
            json.dumps(
                {
                    "id": i,
                    "prompt": f"Translate sentence number {i} into German, keeping the idioms.",
                    "task": "translate",
                    "outcomes": {
                        "cheapo": {"correct": 0.0, "cost": 0.0001},
                        "pricey": {"correct": 1.0, "cost": 0.01},
                    },
                }
            )
        )
    base.write_text("\n".join(lines) + "\n")
    runner = CliRunner()
    args = ["train", "--data", str(out), "--json", "--out"]
    assert runner.invoke(app, [*args, str(patched / "own")]).exit_code == 0
    res = runner.invoke(
        app, [*args, str(patched / "merged"), "--base-data", str(base), "--base-weight", "0.5"]
    )
    assert res.exit_code == 0, res.stdout
    merged = load_bundle(patched / "merged")
    assert merged.manifest.training["base_rows"] == 120
    assert merged.manifest.training["n_prompts"] == 60  # the knob: the user's rows alone
    req = RouteRequest.from_text("Translate sentence number 999 into German, keeping the idioms.")
    cfg = ACOConfig()
    p_own = LearnedRouter(load_bundle(patched / "own")).assess(req, cfg).p_success[1]
    p_merged = LearnedRouter(merged).assess(req, cfg).p_success[1]
    assert p_merged < p_own - 0.1  # the base data taught it the cheap tier fails there


def test_collect_train_calibrate_on_replay_tiers_no_keys(tmp_path: Path) -> None:
    """The shipped replay sample (RouterBench answers) played by replay tiers: collect with
    the recordings' own scores, train on what was collected, calibrate, evaluate."""
    pytest.importorskip("sklearn")
    import csv

    import yaml

    from aco_langchain.replay.sample import SAMPLE_CSV, sample_config, with_recording
    from aco_langchain.routing.training.datasets import _clean_prompt

    cfg = with_recording(sample_config(), [str(SAMPLE_CSV)])
    models = [cfg.tier(n).model for n in (1, 2, 5)]
    with SAMPLE_CSV.open(newline="", encoding="utf-8") as fh:
        # a prompt some model has no recorded outcome for cannot be scored: left out
        rows = [r for r in csv.DictReader(fh) if all(r[m].strip() for m in models)]
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        "\n".join(
            json.dumps({"id": r["sample_id"], "prompt": _clean_prompt(r["prompt"])}) for r in rows
        )
        + "\n"
    )
    cfg_path = tmp_path / "replay.yaml"
    data = cfg.model_dump(mode="json", exclude_none=True)
    data["ledger"]["url"] = f"sqlite:///{tmp_path / 'ledger.db'}"
    cfg_path.write_text(yaml.safe_dump(data))
    out = tmp_path / "collected.jsonl"
    res = CliRunner().invoke(
        app,
        ["collect", str(prompts), "--config", str(cfg_path), "--tiers", "1,2,5", "--scorer",
         "recorded", "--out", str(out), "--json", "--concurrency", "8"],
    )  # fmt: skip
    rep = json.loads(res.stdout)
    assert res.exit_code == 0, (rep["errors"], rep["stopped_by_budget"])
    assert rep["written"] == 3 * len(rows) and rep["cost_usd"] > 0
    collected = _rows(out)
    assert {r["model"] for r in collected} == {
        cfg.tier(1).model_id, cfg.tier(2).model_id, cfg.tier(5).model_id
    }  # fmt: skip
    assert {r["score"] for r in collected} <= {0.0, 1.0}
    runner = CliRunner()
    res = runner.invoke(
        app, ["train", "--data", str(out), "--config", str(cfg_path), "--out",
              str(tmp_path / "b"), "--json"]
    )  # fmt: skip
    assert res.exit_code == 0, res.stdout
    assert json.loads(res.stdout)["tier_map"]["5"] == cfg.tier(5).model_id
    res = runner.invoke(
        app,
        ["calibrate", "--data", str(out), "--bundle", str(tmp_path / "b"), "--config",
         str(cfg_path), "--target", "0.9", "--write-config", str(tmp_path / "cal.yaml"),
         "--json"],
    )  # fmt: skip
    cal = json.loads(res.stdout)
    assert cal["heldout"]["n"] == round(len(rows) * 0.3)
    assert cal["refused"] or cal["written"] == str(tmp_path / "cal.yaml")
    if not cal["refused"]:
        res = runner.invoke(
            app, ["eval", "--data", str(out), "--config", str(tmp_path / "cal.yaml"), "--json"]
        )
        assert res.exit_code == 0, res.stdout
        ev = json.loads(res.stdout)
        assert {"accuracy", "cost_usd_mean"} <= set(ev["operating_point"])
        assert ev["best_single"]["model"] in {cfg.tier(n).model_id for n in (1, 2, 5)}
