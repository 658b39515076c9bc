"""``aco config validate`` runs every check a real start runs (issue 19, item 10), ``aco
stats`` refuses a file that is not a trace, and each tier has an output cap that fits the
default deadline."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from aco_langchain.cli import app
from aco_langchain.config import LOCAL_OUTPUT_TOKENS, ACOConfig, config_from_dict
from aco_langchain.errors import ConfigError

runner = CliRunner()


def _validate(tmp_path: Path, text: str) -> tuple[int, str]:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    res = runner.invoke(app, ["config", "validate", str(path)])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert "Traceback" not in res.output
    return res.exit_code, res.output.strip()


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("routing:\n  max_cost_per_task: 1e400\n", "max_cost_per_task: Input should be a finite"),
        ("routing:\n  max_cost_per_task: .inf\n", "max_cost_per_task: Input should be a finite"),
        ("routing:\n  max_output_tokens: 1000000000000\n", "max_output_tokens"),
        ("routing:\n  max_output_tokens: 1e12\n", "max_output_tokens"),
        ("routing:\n  max_output_tokens: 200000\n", "max_tokens_per_task"),
        ("cache:\n  url: ftp://x\n", "cache.url 'ftp://x': unknown scheme"),
        ("ledger:\n  hold_ttl_s: 0.001\n", "hold_ttl_s (0.001 s) is shorter than a call's"),
        (
            "ledger:\n  url: sqlite:////etc/passwd/ledger.db\n",
            "ledger sqlite:////etc/passwd/ledger.db: cannot create or open the ledger",
        ),
        ("cache:\n  url: sqlite:////etc/passwd/cache.db\n", "cache.url sqlite:////etc/passwd"),
        (
            "ledger:\n  url: postgresql://nobody@127.0.0.1:1/x?connect_timeout=1\n",
            "cannot connect",
        ),
        ("cache:\n  url: redis://127.0.0.1:1/0\n", "Redis does not answer"),
    ],
)
def test_validate_rejects_what_a_start_would_reject(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, needle: str
) -> None:
    monkeypatch.delenv("ACO_LEDGER_URL", raising=False)
    code, out = _validate(tmp_path, text)
    assert code == 1, out
    assert needle in out and len(out.splitlines()) == 1, out


def test_validate_opens_what_it_says_ok_to(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACO_LEDGER_URL", raising=False)
    text = (
        f"ledger:\n  url: sqlite:///{tmp_path / 'l.db'}\n  hold_ttl_s: 200\n"
        f"cache:\n  url: sqlite:///{tmp_path / 'c.db'}\n"
    )
    code, out = _validate(tmp_path, text)
    assert code == 0 and out.endswith("ok (5 tiers, 4 task floors)"), out
    assert (tmp_path / "l.db").exists() and (tmp_path / "c.db").exists()


def test_stats_on_a_file_that_is_not_a_trace_exits_1_naming_it(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("routing:\n  max_retries: 2\n")
    res = runner.invoke(app, ["stats", str(cfg)])
    assert res.exit_code == 1
    assert f"{cfg} is not a trace file" in res.output and "Traceback" not in res.output


def test_each_tier_has_an_output_cap_that_fits_the_default_deadline() -> None:
    cfg = ACOConfig()
    # measured: the 135M local tier wrote 1,024 tokens in 19.2 s (~53 tokens/s) here
    local_seconds = cfg.output_cap(1) * 19.2 / 1024
    assert cfg.output_cap(1) == LOCAL_OUTPUT_TOKENS
    assert local_seconds < cfg.routing.max_latency_per_call_s / 4  # room to fall back
    assert all(cfg.output_cap(n) == cfg.routing.max_output_tokens for n in (2, 3, 4, 5))
    # a lower run-wide cap wins over the tier's; a tier's own cap is kept when lower
    low = config_from_dict({"routing": {"max_output_tokens": 64}})
    assert low.output_cap(1) == 64
    own = config_from_dict({"models": {"tier3": {"max_output_tokens": 300}}})
    assert own.output_cap(3) == 300 and own.output_cap(1) == LOCAL_OUTPUT_TOKENS
    with pytest.raises(ConfigError, match="max_output_tokens"):
        config_from_dict({"models": {"tier2": {"max_output_tokens": 0}}})
