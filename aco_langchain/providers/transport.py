"""The HTTP transport that makes a tier's request keep the call's deadline.

A request sent with ``timeout=T`` through :class:`DeadlineTransport` must end within ``T``
seconds: connect, each socket read and write wait at most what is left, so a server that
trickles bytes is cut when the time is spent, not when it goes quiet (httpx's own read
timeout is an idle timeout). Imported only when a tier's client is built (httpx is not on
the import path of ``aco route``).

Example:
    ```python
    client = deadline_http_client(30.0)
    client.post(url, json=payload, timeout=2.0)   # at most ~2 s, even if the server trickles
    ```
"""

from __future__ import annotations

import functools
import logging
import os
import ssl
import threading
import time
from typing import Any

import httpcore
import httpx

logger = logging.getLogger(__name__)

_local = threading.local()


def _clamp(timeout: float | None, exc: type[Exception]) -> float | None:
    """The socket timeout to use now: the given one, cut to what is left of the request."""
    at: float | None = getattr(_local, "deadline", None)
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise exc("the call's deadline is spent")
    return left if timeout is None else min(timeout, left)


class _ClampedStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _ClampedStream(
            self._inner.start_tls(
                ssl_context, server_hostname, _clamp(timeout, httpcore.ConnectTimeout)
            )
        )

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _ClampedBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(
            host, port, _clamp(timeout, httpcore.ConnectTimeout), local_address, socket_options
        )
        return _ClampedStream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_unix_socket(
            path, _clamp(timeout, httpcore.ConnectTimeout), socket_options
        )
        return _ClampedStream(stream)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class DeadlineTransport(httpx.HTTPTransport):
    """An httpx transport whose request timeout is a total deadline, not an idle timeout.

    A request sent with ``timeout=T`` must end (headers and body) within ``T`` seconds of
    being sent: each connect, read and write waits at most what is left, and raises httpx's
    own timeout errors once it is spent. Body reads happen in the thread that sent the
    request (httpx's sync API), which is where the deadline is kept.

    Example:
        ```python
        client = httpx.Client(transport=DeadlineTransport())
        client.get(url, timeout=2.0)      # at most ~2 s, even if the server trickles
        ```
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        pool = self._pool
        backend = getattr(pool, "_network_backend", None)
        if isinstance(backend, httpcore.NetworkBackend):
            pool._network_backend = _ClampedBackend(backend)  # type: ignore[union-attr]
        else:  # pragma: no cover - another httpcore layout
            logger.warning(
                "httpcore has no _network_backend on its pool: tier requests fall back to "
                "idle-read timeouts (a trickling server is cut only by async calls)"
            )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout") or {}
        total = timeouts.get("read") or timeouts.get("connect")
        _local.deadline = time.monotonic() + float(total) if total else None
        return super().handle_request(request)


def deadline_http_client(timeout_s: float) -> httpx.Client | None:
    """A sync httpx client for a tier we build, with :class:`DeadlineTransport`.

    None when a proxy is configured in the environment (an explicit transport would bypass
    it): the tier then keeps idle-read timeouts only, which is logged.
    """
    if any(
        os.environ.get(v)
        for v in (
            "HTTPS_PROXY",
            "HTTP_PROXY",
            "ALL_PROXY",
            "https_proxy",
            "http_proxy",
            "all_proxy",
        )
    ):
        logger.info(
            "proxy configured: tier clients keep httpx's proxy handling and idle-read timeouts"
        )
        return None
    return httpx.Client(
        transport=DeadlineTransport(verify=tls_context()),
        timeout=timeout_s,
        follow_redirects=True,
    )


@functools.lru_cache(maxsize=1)
def tls_context() -> ssl.SSLContext:
    """One TLS context (the CA bundle loaded once) for every tier client we build: loading
    it per client costs ~50-100 ms, and building a tier's clients counts against the first
    call's deadline."""
    return httpx.create_ssl_context()


def async_http_client(timeout_s: float) -> httpx.AsyncClient:
    """A new async httpx client (its own connection pool) for one tier model: the pool
    belongs to the event loop that first uses it, so a model is never shared across loops
    (``TierRegistry.model``). Proxies come from the environment as usual."""
    return httpx.AsyncClient(timeout=timeout_s, follow_redirects=True, verify=tls_context())


__all__ = ["DeadlineTransport", "async_http_client", "deadline_http_client", "tls_context"]
