"""Ledger URLs: ``memory://``, ``sqlite:///path``, ``postgresql://...`` parsed at config level.

The config validates ``ledger.url`` with ``parse_ledger_url`` and nothing of the spend ledger
is imported for it; ``aco_langchain.spend.ledger.url`` resolves which URL applies and opens it.

SQLite paths follow the usual URL form: ``sqlite:///relative/path.db``,
``sqlite:////absolute/path.db`` (four slashes), ``sqlite:///~/ledger.db``. Postgres URLs are
libpq URLs; an extra ``table_prefix=`` query parameter (default ``aco_``) names the tables.

Example:
    ```python
    from aco_langchain.ledger_url import parse_ledger_url
    parse_ledger_url("sqlite:////tmp/ledger.db").path   # PosixPath('/tmp/ledger.db')
    ```
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aco_langchain.errors import LedgerURLError

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


__all__ = [
    "ENV_VAR",
    "SCHEMES",
    "LedgerURL",
    "default_ledger_path",
    "default_ledger_url",
    "parse_ledger_url",
]
