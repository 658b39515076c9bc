"""Choosing the ledger by URL, and bad URLs: one clear error naming the URL and the fix."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from aco_langchain import ACORouterChatModel
from aco_langchain.config import config_from_dict
from aco_langchain.errors import ConfigError, LedgerError, LedgerURLError
from aco_langchain.routing import RuleRouter
from aco_langchain.spend.ledger import (
    MemoryLedger,
    default_ledger_path,
    open_ledger,
    parse_ledger_url,
    resolve_ledger_url,
)
from aco_langchain.spend.ledger.sqlite import SQLiteLedger


def test_url_forms() -> None:
    assert parse_ledger_url("sqlite:///rel/x.db").path == Path("rel/x.db")
    assert parse_ledger_url("sqlite:////abs/x.db").path == Path("/abs/x.db")
    pg = parse_ledger_url("postgresql://u:pw@h:5432/db?table_prefix=t_&sslmode=disable")
    assert pg.kind == "postgres" and pg.table_prefix == "t_"
    assert pg.dsn == "postgresql://u:pw@h:5432/db?sslmode=disable"
    assert parse_ledger_url("memory://").kind == "memory"


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("redis://127.0.0.1:6379", "unknown scheme 'redis'"),
        ("ledger.db", "unknown scheme '(none)'"),
        ("sqlite://", "has no file path"),
        ("", "empty"),
    ],
)
def test_bad_urls_name_the_url_and_the_accepted_forms(url: str, needle: str) -> None:
    with pytest.raises(LedgerURLError, match="sqlite:///") as info:
        parse_ledger_url(url)
    assert needle in str(info.value)


def test_precedence_argument_env_config_default(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config_from_dict({"ledger": {"url": "sqlite:///from-config.db"}})
    monkeypatch.delenv("ACO_LEDGER_URL")
    assert resolve_ledger_url(None, None).endswith("aco-langchain/ledger.db")
    assert resolve_ledger_url(None, cfg) == "sqlite:///from-config.db"
    monkeypatch.setenv("ACO_LEDGER_URL", "memory://")
    assert resolve_ledger_url(None, cfg) == "memory://"
    assert resolve_ledger_url("sqlite:///arg.db", cfg) == "sqlite:///arg.db"


def test_default_is_a_sqlite_file_under_the_user_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("ACO_LEDGER_URL")
    assert default_ledger_path() == tmp_path / "xdg-data" / "aco-langchain" / "ledger.db"
    llm = ACORouterChatModel(router=RuleRouter())
    assert isinstance(llm.spend_ledger, SQLiteLedger)
    assert default_ledger_path().is_file()  # created on first use


def test_the_config_file_names_a_bad_url_as_a_field() -> None:
    with pytest.raises(ConfigError, match=r"ledger\.url.*unknown scheme 'mysql'"):
        config_from_dict({"ledger": {"url": "mysql://x"}})


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only paths")
def test_read_only_directory_is_one_clear_error_and_leaves_nothing(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        url = f"sqlite:///{ro / 'sub' / 'ledger.db'}"
        with pytest.raises(LedgerError, match="cannot create or open") as info:
            open_ledger(url)
        assert url in str(info.value) and "fix:" in str(info.value)
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(stat.S_IRWXU)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files")
def test_read_only_file_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    path.write_bytes(b"")
    path.chmod(stat.S_IRUSR)
    tmp_path.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(LedgerError, match=r"ro\.db.*fix:"):
            open_ledger(f"sqlite:///{path}", shared=False)
        assert path.read_bytes() == b""
    finally:
        tmp_path.chmod(stat.S_IRWXU)


def test_a_file_that_is_not_a_database_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(LedgerError, match="cannot create or open"):
        open_ledger(f"sqlite:///{path}", shared=False)
    assert path.read_text().startswith("these are my notes")


def test_unreachable_postgres_is_one_clear_error() -> None:
    url = "postgresql://nobody:secret@127.0.0.1:1/none"
    with pytest.raises(LedgerError, match="cannot connect") as info:
        open_ledger(url)
    assert "secret" not in str(info.value) and "127.0.0.1:1" in str(info.value)


def test_memory_urls_are_private_and_files_are_shared(tmp_path: Path) -> None:
    assert open_ledger("memory://") is not open_ledger("memory://")
    url = f"sqlite:///{tmp_path / 'l.db'}"
    assert open_ledger(url) is open_ledger(url)
    assert isinstance(open_ledger("memory://"), MemoryLedger)


def test_model_opens_its_configs_ledger_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ACO_LEDGER_URL")
    url = f"sqlite:///{tmp_path / 'm.db'}"
    llm = ACORouterChatModel(router=RuleRouter(), config={"ledger": {"url": url}})
    assert llm.spend_ledger.url == url


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_a_path_nobody_can_write_is_one_clear_error() -> None:
    # /proc refuses new files even for root (the tests above skip as root).
    url = "sqlite:////proc/aco-ledger-test/ledger.db"
    with pytest.raises(LedgerError, match="cannot create or open") as info:
        open_ledger(url)
    assert url in str(info.value) and "writable file" in str(info.value)
    assert not Path("/proc/aco-ledger-test").exists()


def test_the_checkpointer_can_share_the_ledger_url(tmp_path: Path) -> None:
    from aco_langchain.integrations.langgraph import open_checkpointer
    from tests.ledger_backends import drop_pg, pg_available, pg_prefix, pg_url

    urls = [f"sqlite:///{tmp_path / 'one.db'}"]
    prefix = pg_prefix()
    if pg_available() is None:
        urls.append(pg_url(prefix))
    try:
        for url in urls:
            ledger = open_ledger(url, shared=False)
            ledger.add("r", 0.5)
            with open_checkpointer(url) as saver:
                config = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
                assert saver.get_tuple(config) is None  # its tables exist beside ours
            assert ledger.spent("r") == 0.5
            ledger.close()
    finally:
        if len(urls) > 1:
            drop_pg(prefix)
