"""The dashboard's files (shipped in the package) and a small standalone server for them.

The page is static: ``index.html``, ``dashboard.css`` and ``dashboard.js`` (hand-written SVG
charts, no library, nothing fetched from elsewhere) read ``data.json`` beside them. Any
server can mount them: ``aco serve`` does at ``/dashboard/``; ``aco dashboard`` serves them
alone, stdlib only.

Example:
    ```python
    from aco_langchain.dashboard.page import static_file, make_server

    body, content_type = static_file("index.html")
    server = make_server("127.0.0.1", 0, lambda: {"totals": {...}})
    server.serve_forever()
    ```
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from aco_langchain.server.auth import KeyRing
from aco_langchain.server.errors import APIError

logger = logging.getLogger(__name__)

#: The files of the page, with their content types. Nothing else is served.
FILES: dict[str, str] = {
    "index.html": "text/html; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
}

#: Headers every response of the page carries: no framing, no scripts from elsewhere.
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def static_file(name: str) -> tuple[bytes, str]:
    """A file of the page and its content type.

    Args:
        name: One of :data:`FILES` (``""`` means ``index.html``).

    Returns:
        (bytes, content type).

    Raises:
        KeyError: ``name`` is not a file of the page.

    Example:
        ```python
        body, ctype = static_file("dashboard.js")
        ```
    """
    name = name or "index.html"
    if name not in FILES:
        raise KeyError(name)
    body = resources.files("aco_langchain.dashboard").joinpath("static", name).read_bytes()
    return body, FILES[name]


#: Returns the dashboard's JSON for a tenant (an API key's name; None: every key's).
DataFn = Callable[[str | None], dict[str, Any]]


def _handler(data_fn: DataFn, keys: KeyRing) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "aco-dashboard"

        def _send(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in SECURITY_HEADERS.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            path = self.path.split("?", 1)[0]
            if path in ("/", "/dashboard"):
                self.send_response(302)
                self.send_header("Location", "/dashboard/")
                self.end_headers()
                return
            if not path.startswith("/dashboard/"):
                self._send(404, b"not found: the dashboard is at /dashboard/\n", "text/plain")
                return
            name = path[len("/dashboard/") :]
            if name == "data.json":
                # The same rules as aco serve: a bearer key when keys are set (a key sees
                # its own rows), else loopback clients asking for a loopback Host only.
                try:
                    who = keys.check(
                        self.headers.get("Authorization"),
                        client_host=self.client_address[0],
                        host=self.headers.get("Host"),
                    )
                except APIError as err:
                    self._send(err.status, json.dumps(err.body()).encode(), "application/json")
                    return
                try:
                    body = json.dumps(data_fn(None if who.sees_all else who.name)).encode()
                except Exception:  # logged with its traceback; the page gets no details
                    logger.exception("dashboard data failed")
                    msg = json.dumps(
                        {"error": "cannot read the ledger (details in the dashboard's log)"}
                    ).encode()
                    self._send(500, msg, "application/json")
                    return
                self._send(200, body, "application/json")
                return
            try:
                body, ctype = static_file(name)
            except KeyError:
                self._send(404, b"not found\n", "text/plain")
                return
            self._send(200, body, ctype)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            logger.debug("dashboard %s", format % args)

    return Handler


def make_server(
    host: str, port: int, data_fn: DataFn, *, keys: KeyRing | None = None
) -> ThreadingHTTPServer:
    """A stdlib HTTP server of the page at ``/dashboard/`` (``data.json`` from ``data_fn``).

    Args:
        host: Address to bind (``127.0.0.1`` keeps it local).
        port: Port (0: a free one; read it from ``server.server_address``).
        data_fn: Called per ``data.json`` request with the caller's tenant (its key's name,
            None for an admin key or a keyless server); returns the dashboard's JSON.
        keys: The bearer keys ``data.json`` needs (``aco serve``'s); None: no keys, so
            only loopback clients asking for a loopback ``Host`` get the data.

    Returns:
        The bound server; call ``serve_forever()`` (or :func:`serve_in_thread`).

    Example:
        ```python
        srv = make_server("127.0.0.1", 0, lambda tenant: collect(cfg, tenant=tenant))
        ```
    """
    ring = keys if keys is not None else KeyRing({})
    return ThreadingHTTPServer((host, port), _handler(data_fn, ring))


def serve_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    """Run ``server`` in a daemon thread (tests, notebooks); stop with ``server.shutdown()``.

    Example:
        ```python
        t = serve_in_thread(srv); ...; srv.shutdown()
        ```
    """
    t = threading.Thread(target=server.serve_forever, name="aco-dashboard", daemon=True)
    t.start()
    return t


__all__ = ["FILES", "SECURITY_HEADERS", "make_server", "serve_in_thread", "static_file"]
