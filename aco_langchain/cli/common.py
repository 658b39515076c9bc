"""Helpers every ``aco`` command shares. Imports only typer at module level (fast start).

Usage::

    from aco_langchain.cli.common import fail, load_or_fail
    cfg = load_or_fail(config_path, as_json)
    fail("--risk 'extreme' is unknown: use low, medium, high or critical", as_json)
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

import typer


def fail(message: str, as_json: bool = False) -> NoReturn:
    """Print one clean error line (or a JSON error) and exit 1: no traceback for user mistakes."""
    if as_json:
        typer.echo(json.dumps({"ok": False, "error": message}))
    else:
        from rich.console import Console

        Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code=1)


def load_or_fail(path: str | None, as_json: bool = False) -> Any:
    """The ACOConfig at ``path`` (None: ``$ACO_CONFIG`` or defaults), or a clean exit 1."""
    from aco_langchain.config import load_config
    from aco_langchain.errors import ConfigError

    try:
        return load_config(path)
    except ConfigError as err:
        fail(str(err), as_json)


__all__ = ["fail", "load_or_fail"]
