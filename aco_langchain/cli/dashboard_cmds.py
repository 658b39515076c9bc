"""``aco dashboard``: the spend dashboard on its own (stdlib HTTP server), or its JSON.

``aco serve`` mounts the same page at ``/dashboard/``; this command is for a machine that
only wants to look at a ledger.

Usage::

    aco dashboard --config config.yaml --port 8765     # then open http://127.0.0.1:8765/dashboard/
    aco dashboard --json                               # the page's data, once
    aco dashboard --screenshot dashboard.png           # a PNG of the page (headless chromium)
"""

from __future__ import annotations

import typer

from aco_langchain.cli.common import fail, load_or_fail


def dashboard_cmd(
    config: str | None = typer.Option(
        None, "--config", "-c", help="config.yaml (default: $ACO_CONFIG or built-ins)."
    ),
    ledger: str | None = typer.Option(
        None, "--ledger", help="Ledger URL (default: $ACO_LEDGER_URL, then config ledger.url)."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind."),
    allow_unauthenticated: bool = typer.Option(
        False,
        "--allow-unauthenticated",
        help="Serve a non-loopback address without API keys (anyone can read spend).",
    ),
    port: int = typer.Option(8765, "--port", help="Port (0: a free one)."),
    month: str | None = typer.Option(None, "--month", help="Only this month (YYYY-MM)."),
    as_json: bool = typer.Option(False, "--json", help="Print the dashboard's data and exit."),
    screenshot: str | None = typer.Option(
        None,
        "--screenshot",
        help="Write a PNG of the page (headless Debian chromium via playwright) and exit.",
    ),
) -> None:
    """Serve the spend dashboard (spend per day and tier, savings, budgets, rates).

    Bound by ``aco serve``'s rules: with API keys (``server.api_keys``,
    ``ACO_SERVER_API_KEYS``) ``data.json`` needs one and a key sees its own spend; without,
    only loopback clients are answered and a non-loopback ``--host`` needs
    ``--allow-unauthenticated``."""
    import json

    from aco_langchain.dashboard import collect
    from aco_langchain.errors import ACOError
    from aco_langchain.server.auth import KeyRing, is_loopback

    cfg = load_or_fail(config, as_json)
    keys = KeyRing.from_config(cfg.server, allow_unauthenticated=allow_unauthenticated or None)
    if not keys.enabled and not keys.allow_unauthenticated and not is_loopback(host):
        fail(
            f"refusing to serve {host} without API keys: set server.api_keys or "
            "ACO_SERVER_API_KEYS, bind 127.0.0.1, or pass --allow-unauthenticated",
            as_json,
        )

    def data(tenant: str | None = None) -> dict:
        return collect(cfg, ledger_url=ledger, month=month, tenant=tenant)

    try:
        first = data()  # a bad ledger URL or month fails here, before the server starts
    except (ACOError, ValueError) as err:
        fail(str(err), as_json)
    if as_json:
        typer.echo(json.dumps(first, indent=2))
        return
    from aco_langchain.dashboard.page import make_server

    try:
        server = make_server(host, port, data, keys=keys)
    except OSError as err:
        fail(f"cannot listen on {host}:{port} ({err.strerror}): pick another --port", as_json)
    bound = server.server_address[1]
    url = f"http://{host}:{bound}/dashboard/"
    if screenshot:
        from aco_langchain.dashboard.browser import screenshot as shoot
        from aco_langchain.dashboard.page import serve_in_thread
        from aco_langchain.errors import PlotError

        serve_in_thread(server)
        try:
            typer.echo(f"screenshot of {url} written to {shoot(url, screenshot)}")
        except PlotError as err:
            fail(str(err), as_json)
        finally:
            server.shutdown()
            server.server_close()
        return
    typer.echo(f"spend dashboard: {url}  (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        typer.echo("stopped")
    finally:
        server.server_close()


def register(app: typer.Typer) -> None:
    """Add ``dashboard`` to the ``aco`` app."""
    app.command("dashboard")(dashboard_cmd)
