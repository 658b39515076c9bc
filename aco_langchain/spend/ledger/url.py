"""Choosing a ledger by URL: ``memory://``, ``sqlite:///path``, ``postgresql://...``.

Which URL is used (first that is set): the ``ledger=`` argument, ``$ACO_LEDGER_URL``, the
config's ``ledger.url``, else the SQLite default ``<data dir>/aco-langchain/ledger.db``
(``$XDG_DATA_HOME`` or ``~/.local/share``). The environment wins over the config file so a
deployment or a test run can redirect every model without editing files.

SQLite paths follow the usual URL form: ``sqlite:///relative/path.db``,
``sqlite:////absolute/path.db`` (four slashes), ``sqlite:///~/ledger.db``. Postgres URLs are
libpq URLs; an extra ``table_prefix=`` query parameter (default ``aco_``) names the tables.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aco_langchain.errors import LedgerURLError

if TYPE_CHECKING:
    from aco_langchain.config import ACOConfig
    from aco_langchain.spend.ledger.base import SpendLedger

ENV_VAR = "ACO_LEDGER_URL"
SCHEMES = ("memory://", "sqlite:///path", "postgresql://user@host:5432/db")


@dataclass(frozen=True)
class LedgerURL:
    """A parsed ledger URL: the backend and what it needs to open."""

    kind: str  # "memory" | "sqlite" | "postgres"
    url: str
    path: Path | None = None
    dsn: str | None = None
    table_prefix: str = "aco_"


def default_ledger_path() -> Path:
    """``$XDG_DATA_HOME/aco-langchain/ledger.db`` (``~/.local/share/...`` by default)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "aco-langchain" / "ledger.db"


def default_ledger_url() -> str:
    """The SQLite default ledger's URL."""
    return f"sqlite:///{default_ledger_path()}"


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


def parse_ledger_url(url: str) -> LedgerURL:
    """Parse a ledger URL.

    Raises:
        LedgerURLError: empty, unknown scheme, or a SQLite URL without a path; the message
            names the URL and the accepted forms.
    """
    forms = ", ".join(SCHEMES)
    if not isinstance(url, str) or not url.strip():
        raise LedgerURLError(f"ledger URL is empty: use one of {forms}")
    url = url.strip()
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "memory":
        return LedgerURL("memory", url)
    if scheme == "sqlite":
        rest = url[len("sqlite://") :]
        if not rest.startswith("/") or len(rest) < 2:
            raise LedgerURLError(
                f"ledger URL {url!r} has no file path: use sqlite:///relative.db or "
                "sqlite:////absolute/path.db"
            )
        raw = rest[1:].split("?", 1)[0]
        return LedgerURL("sqlite", url, path=Path(raw).expanduser())
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        prefix = next((v for k, v in query if k == "table_prefix"), "aco_")
        rest_q = urlencode([(k, v) for k, v in query if k != "table_prefix"])
        dsn = urlunsplit(("postgresql", parts.netloc, parts.path, rest_q, parts.fragment))
        return LedgerURL("postgres", url, dsn=dsn, table_prefix=prefix)
    raise LedgerURLError(f"ledger URL {url!r}: unknown scheme {scheme or '(none)'!r}: use {forms}")


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
    "LedgerURL",
    "default_ledger_path",
    "default_ledger_url",
    "open_ledger",
    "parse_ledger_url",
    "resolve_ledger_url",
]
