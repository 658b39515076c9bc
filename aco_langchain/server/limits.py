"""Request body limit as a plain ASGI middleware (no per-request overhead beyond a header read).

A body larger than ``server.max_body_bytes`` gets a 413 in OpenAI's error format, whether it
announces its size (``Content-Length``) or streams it (chunked): the chunked body is counted
as it arrives and refused once past the limit, before the route parses anything.

Example:
    ```python
    app.add_middleware(BodyLimit, max_bytes=1_048_576)
    ```
"""

from __future__ import annotations

import json
from typing import Any

from aco_langchain.server.errors import error_body

Scope = dict[str, Any]


def _message(max_bytes: int) -> bytes:
    return json.dumps(
        error_body(
            f"the request body is larger than server.max_body_bytes ({max_bytes} bytes): "
            "send a smaller request",
            code="request_too_large",
        )
    ).encode()


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413.

    Args:
        app: the ASGI app to protect.
        max_bytes: the largest body accepted.
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self._body = _message(max_bytes)

    async def _refuse(self, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(self._body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": self._body})

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = None
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = None
                break
        if length is not None:
            if length > self.max_bytes:
                await self._refuse(send)
                return
            await self.app(scope, receive, send)
            return
        # No announced size (chunked): read the body here, refuse it once past the limit,
        # then hand the app what was read.
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away
            body = message.get("body", b"")
            seen += len(body)
            if seen > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


__all__ = ["BodyLimit"]
