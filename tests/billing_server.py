"""A loopback OpenAI-compatible server that bills like a provider, for budget tests.

A fake (no cloud provider can run here), but a strict one: every answer is long (``words``
words, one token each) and cut at the cap the request sends (``max_completion_tokens`` /
``max_tokens``), the way a provider honours it; every ``fail_every``-th request answers 500
(not billed). Each answered request is billed at ``prompt_tokens`` = words of the messages + 3
and ``completion_tokens`` = words sent, and recorded, so a test can compare what the server
billed with what the ledger says. ``hang`` makes requests whose last message contains
``HANG`` sleep (for kill -9 tests). Streams send a usage chunk when asked.

Usage::

    with BillingServer(words=2000, fail_every=7) as srv:
        ChatOpenAI(base_url=srv.base_url, api_key="x", model="m")
        srv.billed()          # [(prompt_tokens, completion_tokens), ...]
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class BillingServer:
    """Threaded HTTP server on 127.0.0.1; see the module docstring."""

    def __init__(self, *, words: int = 2000, fail_every: int = 0, hang_s: float = 30.0) -> None:
        self.words = words
        self.fail_every = fail_every
        self.hang_s = hang_s
        self._lock = threading.Lock()
        self._billed: list[tuple[str, int, int]] = []
        self._seen = 0
        self._stop = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def billed(self) -> list[tuple[str, int, int]]:
        """(model, prompt_tokens, completion_tokens) of every billed answer."""
        with self._lock:
            return list(self._billed)

    @property
    def requests_seen(self) -> int:
        with self._lock:
            return self._seen

    def __enter__(self) -> BillingServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                with server._lock:
                    server._seen += 1
                    n = server._seen
                msgs = body.get("messages") or []
                last = str(msgs[-1].get("content", "")) if msgs else ""
                if "HANG" in last:
                    deadline = time.monotonic() + server.hang_s
                    while time.monotonic() < deadline and not server._stop.is_set():
                        time.sleep(0.05)
                    self._send(500, {"error": {"message": "hung", "type": "server_error"}})
                    return
                if server.fail_every and n % server.fail_every == 0:
                    self._send(500, {"error": {"message": "injected", "type": "server_error"}})
                    return
                cap = body.get("max_completion_tokens") or body.get("max_tokens") or 10**9
                out = min(server.words, int(cap))
                prompt = sum(len(str(m.get("content", "")).split()) for m in msgs) + 3
                model = str(body.get("model"))
                with server._lock:
                    server._billed.append((model, prompt, out))
                usage = {"prompt_tokens": prompt, "completion_tokens": out,
                         "total_tokens": prompt + out}  # fmt: skip
                text = " ".join(["word"] * out)
                if body.get("stream"):
                    self._stream(body, text, usage)
                    return
                self._send(
                    200,
                    {
                        "id": f"b-{n}",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": model,
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": text},
                                "finish_reason": "length" if out < server.words else "stop",
                            }
                        ],
                        "usage": usage,
                    },
                )

            def _stream(self, body: dict[str, Any], text: str, usage: dict[str, int]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                base = {"id": "b", "object": "chat.completion.chunk", "created": 0,
                        "model": body.get("model")}  # fmt: skip

                def send(data: str) -> None:
                    event = f"data: {data}\n\n".encode()
                    self.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")

                send(
                    json.dumps(
                        {
                            **base,
                            "choices": [
                                {"index": 0, "delta": {"role": "assistant", "content": text}}
                            ],
                        }
                    )
                )  # noqa: E501
                send(
                    json.dumps(
                        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}
                    )
                )  # noqa: E501
                if (body.get("stream_options") or {}).get("include_usage"):
                    send(json.dumps({**base, "choices": [], "usage": usage}))
                send("[DONE]")
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

        return Handler
