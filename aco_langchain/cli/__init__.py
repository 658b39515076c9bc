"""The ``aco`` command line (typer + rich). Every command has ``--json``.

Usage::

    aco route "What is 2+2?"
    aco config validate config.yaml
"""

from __future__ import annotations

from aco_langchain.cli.main import app, main

__all__ = ["app", "main"]
