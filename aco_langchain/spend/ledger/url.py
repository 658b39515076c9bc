"""Choosing a ledger by URL: ``memory://``, ``sqlite:///path``, ``postgresql://...``.

Which URL is used (first that is set): the ``url`` argument of :func:`open_ledger`,
``$ACO_LEDGER_URL``, the config's ``ledger.url``, else the SQLite default
``<data dir>/aco-langchain/ledger.db`` (``$XDG_DATA_HOME`` or ``~/.local/share``). The
environment wins over the config file so a deployment or a test run can redirect every model
without editing files.

Parsing lives at config level (``aco_langchain.ledger_url``, re-exported here).
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from aco_langchain.ledger_url import (
    ENV_VAR,
    SCHEMES,
    LedgerURL,
    default_ledger_path,
    default_ledger_url,
    parse_ledger_url,
)

if TYPE_CHECKING:
    from aco_langchain.config import ACOConfig
    from aco_langchain.spend.ledger.base import SpendLedger


def resolve_ledger_url(url: str | None = None, config: ACOConfig | None = None) -> str:
    """The URL a model or command will use: argument, ``$ACO_LEDGER_URL``, config, default."""
    if url:
        return url
    env = os.environ.get(ENV_VAR)
    if env:
        return env
    if config is not None and config.ledger.url:
        return config.ledger.url
    return default_ledger_url()


_OPEN: dict[tuple[int, str], SpendLedger] = {}
_OPEN_LOCK = threading.Lock()


def open_ledger(
    url: str | None = None, config: ACOConfig | None = None, *, shared: bool = True
) -> SpendLedger:
    """Open (creating on first use) the ledger at ``url`` or the resolved default.

    SQLite and Postgres ledgers are shared per process and URL (one connection set for every
    model); ``memory://`` gives a new private ledger each time.

    Args:
        url: ``memory://``, ``sqlite:///path`` or ``postgresql://...``; None resolves
            ``$ACO_LEDGER_URL``, then the config's ``ledger.url``, then the default file.
        config: The config whose ``ledger`` section applies.
        shared: Reuse the process's open ledger for the same URL.

    Returns:
        The ledger, its schema created or migrated.

    Example:
        ```python
        from aco_langchain.spend.ledger import open_ledger

        ledger = open_ledger("sqlite:////tmp/aco-ledger.db")
        ledger.summary(by="tier").to_dict()
        ```

    Raises:
        LedgerURLError: a malformed URL or unknown scheme.
        LedgerError: the ledger cannot be opened or created (names the URL and the fix).
    """
    parsed = parse_ledger_url(resolve_ledger_url(url, config))
    if parsed.kind == "memory":
        from aco_langchain.spend.ledger.memory import MemoryLedger

        return MemoryLedger()
    key = (os.getpid(), parsed.url)
    if shared:
        with _OPEN_LOCK:
            if key in _OPEN:
                return _OPEN[key]
    ledger: SpendLedger
    if parsed.kind == "sqlite":
        from aco_langchain.spend.ledger.sqlite import SQLiteLedger

        assert parsed.path is not None  # noqa: S101 - parse_ledger_url sets it
        ledger = SQLiteLedger(parsed.path, url=parsed.url)
    else:
        from aco_langchain.spend.ledger.postgres import PostgresLedger

        assert parsed.dsn is not None  # noqa: S101
        ledger = PostgresLedger(parsed.dsn, table_prefix=parsed.table_prefix, url=parsed.url)
    if shared:
        with _OPEN_LOCK:
            ledger = _OPEN.setdefault(key, ledger)
    return ledger


__all__ = [
    "ENV_VAR",
    "SCHEMES",
    "LedgerURL",
    "default_ledger_path",
    "default_ledger_url",
    "open_ledger",
    "parse_ledger_url",
    "resolve_ledger_url",
]
