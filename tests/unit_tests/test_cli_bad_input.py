"""Corrupted and bad input through the CLI: exit 1, one error line, no traceback, no secret."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aco_langchain.cli import app
from aco_langchain.routing.bundle import default_bundle_dir

runner = CliRunner()
KEY = "sk-live-0123456789abcdefSECRET"


def _fails_cleanly(args: list[str], needle: str, stdin: bytes | None = None) -> str:
    res = runner.invoke(app, args, input=stdin)
    assert res.exit_code == 1, (args, res.output)
    # No uncaught exception: the command exited on purpose (typer.Exit -> SystemExit).
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert needle in err, err
    assert "Traceback" not in res.output and KEY not in res.output
    assert "input_value" not in err and "errors.pydantic.dev" not in err
    return err


def _cfg(tmp_path: Path, body: bytes | str, name: str = "c.yaml") -> str:
    p = tmp_path / name
    p.write_bytes(body if isinstance(body, bytes) else body.encode())
    return str(p)


@pytest.mark.parametrize("cmd", ["route", "validate"])
def test_config_not_utf8(tmp_path: Path, cmd: str) -> None:
    path = _cfg(tmp_path, b"routing:\n  max_retries: 2\n  # caf\xe9 \xff\xfe\n")
    args = ["route", "hi", "--config", path] if cmd == "route" else ["config", "validate", path]
    err = _fails_cleanly(args, "not UTF-8")
    assert "line 3" in err


def test_yaml_error_on_the_key_line_never_prints_the_key(tmp_path: Path) -> None:
    path = _cfg(tmp_path, f'models:\n  tier2:\n    api_key: "{KEY}" broken: yes\n')
    err = _fails_cleanly(["config", "validate", path], "not valid YAML")
    assert "line 3" in err


def test_unknown_key_holding_a_key_is_not_echoed(tmp_path: Path) -> None:
    path = _cfg(tmp_path, f"models:\n  tier2:\n    api_key: {KEY}\n")
    _fails_cleanly(["config", "validate", path], "models.tier2.api_key: unknown key")


def test_directory_as_config(tmp_path: Path) -> None:
    _fails_cleanly(["config", "validate", str(tmp_path)], "is a directory")


def test_top_level_not_a_mapping(tmp_path: Path) -> None:
    path = _cfg(tmp_path, "- a\n- b\n")
    _fails_cleanly(["config", "validate", path], "top level must be a mapping")


def test_several_field_problems_in_one_line(tmp_path: Path) -> None:
    path = _cfg(tmp_path, "routing:\n  max_retries: lots\n  safety_threshold: 7\n")
    err = _fails_cleanly(["config", "validate", path], "routing.max_retries")
    assert "routing.safety_threshold" in err


def test_validate_runs_the_checks_route_runs(tmp_path: Path) -> None:
    # A cloud tier with no price anywhere: route rejects it, so validate must too.
    path = _cfg(
        tmp_path,
        "models:\n  tier2:\n    model_id: my-private-model-xyz\n    provider: openai\n"
        "    api_key_env: OPENAI_API_KEY\n",
    )
    err = _fails_cleanly(["config", "validate", path], "no price for tier model")
    assert "models.tier2" in err
    _fails_cleanly(["route", "hi", "--config", path], "no price for tier model")


def _bundle_config(tmp_path: Path, damage: str) -> str:
    bundle = tmp_path / "bundle"
    shutil.copytree(default_bundle_dir(), bundle)
    arrays = bundle / "arrays.npz"
    data = bytearray(arrays.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:  # flip bytes in the middle of the archive
        mid = len(data) // 2
        for i in range(mid, mid + 64):
            data[i] ^= 0xFF
    arrays.write_bytes(bytes(data))
    return _cfg(tmp_path, f"router: learned\nrouter_model_path: {bundle}\n")


@pytest.mark.parametrize("damage", ["truncate", "flip"])
@pytest.mark.parametrize("cmd", ["route", "validate"])
def test_corrupted_bundle(tmp_path: Path, damage: str, cmd: str) -> None:
    path = _bundle_config(tmp_path, damage)
    args = ["route", "hi", "--config", path] if cmd == "route" else ["config", "validate", path]
    _fails_cleanly(args, "arrays.npz")


def test_route_reads_stdin_and_file(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, "router: rules\n")
    long_prompt = "Fix the auth bug in production. " + "Context line. " * 2000
    direct = runner.invoke(app, ["route", long_prompt, "--json", "--config", cfg])
    expected = json.loads(direct.stdout)
    res = runner.invoke(app, ["route", "-", "--json", "--config", cfg], input=long_prompt)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == expected
    prompt_file = tmp_path / "prompt.txt"
    prompt_file.write_text(long_prompt, encoding="utf-8")
    res = runner.invoke(app, ["route", "--file", str(prompt_file), "--json", "--config", cfg])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == expected
    short = runner.invoke(app, ["route", "-", "--json", "--config", cfg], input="What is 2+2?")
    assert json.loads(short.stdout)["tier"] != expected["tier"]  # the text really was read


def test_route_file_problems(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"hello \xff\xfe")
    _fails_cleanly(["route", "--file", str(bad)], "not UTF-8")
    _fails_cleanly(["route", "--file", str(tmp_path)], "is a directory")
    _fails_cleanly(["route", "--file", str(tmp_path / "none.txt")], "cannot read it")
    _fails_cleanly(["route", "-"], "not UTF-8", stdin=b"\xff\xfe")
    _fails_cleanly(["route", "x", "--file", str(bad)], "not both")


def test_outcomes_jsonl_not_utf8(tmp_path: Path) -> None:
    data = tmp_path / "o.jsonl"
    data.write_bytes(b'{"prompt": "a", "outcomes": {}}\n{"prompt": "b\xff"}\n')
    args = ["train", "--data", str(data), "--out", str(tmp_path / "b")]
    _fails_cleanly(args, "o.jsonl:2: not UTF-8")
    assert not (tmp_path / "b").exists()  # nothing half-written


def test_stats_on_a_trace_file_with_bad_bytes_reports_the_line(tmp_path: Path) -> None:
    traces = tmp_path / "t.jsonl"
    traces.write_bytes(b'{"request": "hi", "trace_id": "t1"}\n\xff\xfe garbage\n')
    res = runner.invoke(app, ["stats", str(traces), "--json"])
    assert res.exit_code == 0, res.output
    assert res.exception is None
    assert any("t.jsonl:2" in p for p in json.loads(res.stdout)["problems"])
