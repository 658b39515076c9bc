"""``aco serve``: run the router as an OpenAI-compatible HTTP server (FastAPI + uvicorn).

Usage::

    aco serve --config config.yaml --port 8000            # loopback, no keys needed
    ACO_SERVER_API_KEYS=sk-team-a aco serve --host 0.0.0.0 --workers 4
    aco serve --hash-key sk-team-a                        # the sha256 for server.api_keys
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import typer

from aco_langchain.cli.common import fail, load_or_fail


def _exit_cleanly(signum: int, frame: Any) -> None:
    sys.exit(0)


def register(app: typer.Typer) -> None:
    """Add ``serve`` to ``app``."""

    @app.command("serve")
    def serve(
        config: str | None = typer.Option(
            None, "--config", "-c", help="config.yaml (default: $ACO_CONFIG or built-ins)."
        ),
        host: str = typer.Option("127.0.0.1", "--host", help="Address to bind."),
        port: int = typer.Option(8000, "--port", min=1, max=65535),
        workers: int = typer.Option(1, "--workers", min=1, max=64, help="Worker processes."),
        allow_unauthenticated: bool = typer.Option(
            False,
            "--allow-unauthenticated",
            help="Serve a non-loopback address without API keys (anyone can spend).",
        ),
        access_log: bool = typer.Option(True, "--access-log/--no-access-log"),
        log_level: str = typer.Option("info", "--log-level"),
        hash_key: str | None = typer.Option(
            None, "--hash-key", help="Print the sha256 of a key for server.api_keys and exit."
        ),
    ) -> None:
        """Serve /v1/chat/completions, /v1/models, /generate, /route, /healthz, /v1/spend."""
        from aco_langchain.server.auth import hash_key as do_hash
        from aco_langchain.server.auth import is_loopback

        if hash_key is not None:
            typer.echo(do_hash(hash_key))
            return
        cfg = load_or_fail(config)
        try:
            import uvicorn

            from aco_langchain.errors import ACOError
            from aco_langchain.server.app import (
                ENV_ALLOW_UNAUTHENTICATED,
                ENV_CONFIG,
                create_app,
                freeze_startup_objects,
            )
            from aco_langchain.server.service import ServerState
        except ImportError as err:
            fail(f"the server needs {err.name}: pip install 'aco-langchain[server]'")
        allow = allow_unauthenticated or cfg.server.allow_unauthenticated
        try:
            state = ServerState(cfg, allow_unauthenticated=allow)
        except ACOError as err:
            fail(str(err))
        if not state.keys.enabled and not is_loopback(host) and not allow:
            state.close()
            fail(
                f"refusing to serve {host} without API keys: set server.api_keys or "
                "ACO_SERVER_API_KEYS, bind 127.0.0.1, or pass --allow-unauthenticated"
            )
        auth = f"{len(state.keys)} key(s)" if state.keys.enabled else "no keys (loopback only)"
        if not state.keys.enabled and allow:
            auth = "no keys, UNAUTHENTICATED"
        typer.echo(
            f"aco serve: http://{host}:{port}/v1  workers={workers}  auth: {auth}  "
            f"cache: {'on' if state.cache is not None else 'off'}",
            err=True,
        )
        common = {
            "host": host,
            "port": port,
            "log_level": log_level,
            "access_log": access_log,
            "timeout_graceful_shutdown": int(state.timeout_s) + 5,
        }
        # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal to the handler
        # that was there before it: make that one a clean exit.
        signal.signal(signal.SIGTERM, _exit_cleanly)
        if workers == 1:
            app = create_app(state=state)
            freeze_startup_objects()  # this process only serves
            uvicorn.run(app, **common)  # type: ignore[arg-type]
            return
        state.close()
        if config is not None:
            os.environ[ENV_CONFIG] = str(Path(config).resolve())
        if allow:
            os.environ[ENV_ALLOW_UNAUTHENTICATED] = "1"
        uvicorn.run(
            "aco_langchain.server.app:app_from_env",
            factory=True,
            workers=workers,
            **common,  # type: ignore[arg-type]
        )


__all__ = ["register"]
