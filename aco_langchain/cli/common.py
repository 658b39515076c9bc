"""Helpers every ``aco`` command shares. Imports only typer at module level (fast start).

Usage::

    from aco_langchain.cli.common import fail, load_or_fail
    cfg = load_or_fail(config_path, as_json)
    fail("--risk 'extreme' is unknown: use low, medium, high or critical", as_json)
"""

from __future__ import annotations

import json
import re
from typing import Any, NoReturn

import typer


def fail(message: str, as_json: bool = False) -> NoReturn:
    """Print one clean error line (or a JSON error) and exit 1: no traceback for user mistakes.

    The message is masked (no API key is ever printed) and kept to one line.
    """
    from aco_langchain.redact import mask

    message = mask(message)
    if as_json:
        typer.echo(json.dumps({"ok": False, "error": message}))
    else:
        from rich.console import Console

        # One line: a multi-line message (a list of config problems) is joined with "; ".
        parts = (re.sub(r"^\s*-\s+", "", p).strip() for p in message.splitlines())
        line = "; ".join(p for p in parts if p)
        from rich.markup import escape

        Console(stderr=True, soft_wrap=True).print(
            f"[bold red]error:[/] {escape(line)}", highlight=False
        )
    raise typer.Exit(code=1)


def load_or_fail(path: str | None, as_json: bool = False) -> Any:
    """The ACOConfig at ``path`` (None: ``$ACO_CONFIG`` or defaults), or a clean exit 1.

    Old spellings of settings (``SettingMovedWarning``) are printed as one ``warning:`` line
    each on stderr: the config still loads.
    """
    import warnings

    from aco_langchain.config import load_config
    from aco_langchain.errors import ConfigError, SettingMovedWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SettingMovedWarning)
        try:
            cfg = load_config(path)
        except ConfigError as err:
            fail(str(err), as_json)
    for w in caught:
        if issubclass(w.category, SettingMovedWarning):
            typer.echo(f"warning: {w.message}", err=True)
        else:  # not ours: as it would have been shown
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return cfg


def checked_or_fail(cfg: Any, as_json: bool = False) -> Any:
    """Run every check ``aco route`` needs on a loaded config and return its router.

    ``aco config validate`` and ``aco route`` both call this, so a config that validates
    routes: every tier has a price (configured or known to genai-prices; local tiers may be
    free), and the configured router (bundle) loads.
    """
    from aco_langchain.errors import ACOError
    from aco_langchain.pricing import price_per_1k
    from aco_langchain.routing import get_router

    problems: list[str] = []
    for n in range(1, 6):
        try:
            price_per_1k(cfg.tier(n))
        except ACOError as err:
            problems.append(f"models.tier{n}: {err}")
    try:
        router = get_router(cfg)
    except (ACOError, OSError) as err:
        problems.append(f"router: {err}")
        router = None
    if problems:
        fail("; ".join(problems), as_json)
    return router


def read_text_or_fail(path: str, what: str, as_json: bool = False) -> str:
    """UTF-8 text of ``path`` (``-``: standard input), or a clean exit 1 naming the fix."""
    import sys
    from pathlib import Path

    if path == "-":
        data = sys.stdin.buffer.read()
        source = "standard input"
    else:
        p = Path(path)
        if p.is_dir():
            fail(f"{what} {path}: is a directory, not a file", as_json)
        try:
            data = p.read_bytes()
        except OSError as err:
            fail(f"{what} {path}: cannot read it ({err.strerror})", as_json)
        source = path
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        fail(f"{what} {source}: not UTF-8 text (byte {err.start}): save it as UTF-8", as_json)


__all__ = ["checked_or_fail", "fail", "load_or_fail", "read_text_or_fail"]
