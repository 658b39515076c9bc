"""A scripted loopback server speaking the OpenAI chat-completions shape, for fallback tests.

Each request to ``POST /v1/chat/completions`` takes the next behaviour from the script (then
``default``): answer OK (JSON, or SSE when the request has ``"stream": true``, with a usage
chunk when ``stream_options.include_usage`` is set and logprobs when ``logprobs`` is set),
answer 429 / 500 / 503 / 400 / 401 (the 401 echoes the request's key, as some providers do),
hang past the client's timeout, answer late (``slow``: OK after ``hang_s``), trickle the body
one byte every ``trickle_s``, close the connection without a reply, reset it (RST), cut an SSE
stream half-way, or answer 200 with something that is not an answer: empty ``choices``, null
content, an HTML page, a broken JSON body, an SSE stream with no chunks (``empty_stream``).
``GET /v1/models`` and ``GET /health`` answer OK.

Bounded: hangs sleep at most ``hang_s`` in small steps and end early on ``stop()``, the server
shuts itself down after ``max_lifetime_s`` and refuses requests beyond ``max_requests`` (503).
Requests are recorded (path, JSON body, behaviour; never headers, so no API keys).

Usage::

    with FaultServer(["429", "500", "ok"]) as srv:
        llm = ChatOpenAI(base_url=srv.base_url, api_key="x", max_retries=0)
        ...
        srv.requests[0].behaviour   # '429'
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["BEHAVIOURS", "Fault", "FaultServer", "RecordedRequest"]

#: Behaviour names a script may use.
BEHAVIOURS = (
    "ok",
    "429",
    "500",
    "503",
    "400",
    "401",
    "hang",
    "slow",
    "trickle",
    "close",
    "reset",
    "cut",
    "empty_choices",
    "null_content",
    "html",
    "bad_json",
    "empty_stream",
)


@dataclass(frozen=True)
class Fault:
    """One scripted behaviour; ``text``/``logprob`` shape an OK answer, ``hang_s`` a hang,
    ``tool_call`` (name, JSON arguments) makes the OK answer a call of that tool."""

    kind: str = "ok"
    text: str | None = None
    tool_call: tuple[str, str] | None = None
    logprob: float = -0.05
    hang_s: float | None = None
    retry_after: str = "0"
    trickle_s: float = 0.4

    def __post_init__(self) -> None:
        if self.kind not in BEHAVIOURS:
            raise ValueError(f"unknown fault {self.kind!r}: use one of {', '.join(BEHAVIOURS)}")


@dataclass(frozen=True)
class RecordedRequest:
    """A request the server saw (no headers are kept)."""

    path: str
    body: dict[str, Any]
    behaviour: str


@dataclass
class _State:
    script: list[Fault]
    default: Fault
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: list[RecordedRequest] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)


class FaultServer:
    """A threaded HTTP server on 127.0.0.1 with a per-request script of behaviours.

    Usage::

        with FaultServer(["hang", "ok"], hang_s=3) as srv:
            httpx.post(f"{srv.base_url}/chat/completions", json={...}, timeout=0.5)
    """

    def __init__(
        self,
        script: Iterable[str | Fault] = (),
        *,
        default: str | Fault = "ok",
        text: str = "OK from the fault server.",
        model: str = "fault-model",
        hang_s: float = 5.0,
        max_requests: int = 1000,
        max_lifetime_s: float = 120.0,
        port: int = 0,
    ) -> None:
        def as_fault(x: str | Fault) -> Fault:
            return x if isinstance(x, Fault) else Fault(kind=str(x))

        self.text = text
        self.model = model
        self.hang_s = hang_s
        self.max_requests = max_requests
        self.max_lifetime_s = max_lifetime_s
        self._state = _State(script=[as_fault(x) for x in script], default=as_fault(default))
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None

    # ------------------------------------------------------------------ public

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1`` (what ``ChatOpenAI(base_url=...)`` wants)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the recorded chat requests, in arrival order."""
        with self._state.lock:
            return list(self._state.requests)

    def push(self, *faults: str | Fault) -> None:
        """Append behaviours to the script."""
        with self._state.lock:
            self._state.script.extend(f if isinstance(f, Fault) else Fault(kind=f) for f in faults)

    def start(self) -> FaultServer:
        """Serve in a daemon thread; shut down by ``stop()`` or after ``max_lifetime_s``."""
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        self._timer = threading.Timer(self.max_lifetime_s, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        """Stop serving (ends hangs early) and close the socket. Safe to call twice."""
        if self._state.stop.is_set():
            return
        self._state.stop.set()
        if self._timer is not None and threading.current_thread() is not self._timer:
            self._timer.cancel()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ internals

    def _next(self, path: str, body: dict[str, Any]) -> Fault:
        st = self._state
        with st.lock:
            if len(st.requests) >= self.max_requests:
                fault = Fault(kind="503")
            else:
                fault = st.script.pop(0) if st.script else st.default
            st.requests.append(RecordedRequest(path, body, fault.kind))
            return fault

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # TCP_NODELAY: the headers and the body go out as two writes; with Nagle on, the
            # body waits for the client's delayed ACK (~40 ms on loopback), which made every
            # "direct" baseline look 40 ms slower than the upstream is.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return  # quiet

            # ---------------------------------------------------------- helpers

            def _json(self, status: int, payload: dict[str, Any], **headers: str) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k.replace("_", "-"), v)
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status: int, kind: str, message: str, **headers: str) -> None:
                self._json(
                    status, {"error": {"message": message, "type": kind, "code": kind}}, **headers
                )

            def _drop(self, reset: bool) -> None:
                if reset:  # SO_LINGER 0: close sends RST instead of FIN
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                else:
                    self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True

            # ---------------------------------------------------------- routes

            def do_GET(self) -> None:  # noqa: N802
                if self.path.rstrip("/") in ("/health", "/v1/health"):
                    self._json(200, {"status": "ok"})
                elif self.path.rstrip("/") in ("/v1/models", "/models"):
                    self._json(
                        200,
                        {"object": "list", "data": [{"id": server.model, "object": "model"}]},
                    )
                else:
                    self._error(404, "not_found", f"no route {self.path}")

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    self._error(400, "invalid_request_error", "body is not JSON")
                    return
                if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                    self._error(404, "not_found", f"no route {self.path}")
                    return
                fault = server._next(self.path, body)
                kind = fault.kind
                if kind == "429":
                    self._error(
                        429,
                        "rate_limit_exceeded",
                        "Rate limit reached (fault server).",
                        Retry_After=fault.retry_after,
                    )
                elif kind in ("500", "503"):
                    self._error(int(kind), "server_error", f"Injected {kind} (fault server).")
                elif kind == "400":
                    self._error(400, "invalid_request_error", "Injected 400 (fault server).")
                elif kind == "401":
                    key = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                    self._error(401, "invalid_api_key", f"Incorrect API key provided: {key}.")
                elif kind == "hang":
                    self._wait(fault.hang_s or server.hang_s)
                    self._drop(reset=False)
                elif kind in ("close", "reset"):
                    self._drop(reset=kind == "reset")
                elif kind == "trickle":
                    self._trickle(body, fault)
                elif kind == "html":
                    self._raw(
                        200, "text/html", b"<html><body><h1>502 Bad Gateway</h1></body></html>"
                    )
                elif kind == "bad_json":
                    self._raw(200, "application/json", b'{"id": "x", "choices": [{"mess')
                elif body.get("stream"):
                    if kind == "slow":
                        self._wait(fault.hang_s or server.hang_s)
                    self._stream(body, fault, cut=kind == "cut")
                else:
                    if kind == "slow":
                        self._wait(fault.hang_s or server.hang_s)
                    self._complete(body, fault)

            def _wait(self, seconds: float) -> None:
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline and not server._state.stop.is_set():
                    time.sleep(0.05)

            def _raw(self, status: int, content_type: str, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _trickle(self, body: dict[str, Any], fault: Fault) -> None:
                # A valid answer, one byte every trickle_s: no read is ever idle for long.
                data = json.dumps(self._completion(body, fault)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    for i in range(len(data)):
                        if server._state.stop.is_set():
                            break
                        self.wfile.write(data[i : i + 1])
                        self.wfile.flush()
                        time.sleep(fault.trickle_s)
                except OSError:
                    return  # the client gave up: what a deadline should do

            # ---------------------------------------------------------- OK answers

            def _pieces(self, fault: Fault) -> list[str]:
                words = (fault.text or server.text).split(" ")
                return [w if i == 0 else " " + w for i, w in enumerate(words)]

            def _usage(self, body: dict[str, Any], n_out: int) -> dict[str, int]:
                msgs = body.get("messages") or []
                n_in = sum(len(str(m.get("content", "")).split()) for m in msgs) + 3
                return {
                    "prompt_tokens": n_in,
                    "completion_tokens": n_out,
                    "total_tokens": n_in + n_out,
                }

            def _logprobs(self, pieces: list[str], fault: Fault) -> dict[str, Any]:
                return {
                    "content": [
                        {
                            "token": p,
                            "logprob": fault.logprob,
                            "bytes": list(p.encode()),
                            "top_logprobs": [{"token": p, "logprob": fault.logprob}],
                        }
                        for p in pieces
                    ]
                }

            def _complete(self, body: dict[str, Any], fault: Fault) -> None:
                self._json(200, self._completion(body, fault))

            def _completion(self, body: dict[str, Any], fault: Fault) -> dict[str, Any]:
                pieces = self._pieces(fault)
                if fault.kind == "empty_choices":
                    return {
                        "id": "chatcmpl-fault-empty",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model") or server.model,
                        "choices": [],
                        "usage": self._usage(body, 0),
                    }
                content = None if fault.kind == "null_content" else "".join(pieces)
                message: dict[str, Any] = {"role": "assistant", "content": content}
                finish = "stop"
                if fault.tool_call is not None:
                    name, args = fault.tool_call
                    message = {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "call_fault_1",
                                "type": "function",
                                "function": {"name": name, "arguments": args},
                            }
                        ],
                    }
                    finish = "tool_calls"
                return {
                    "id": f"chatcmpl-fault-{len(server.requests)}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model") or server.model,
                    "choices": [
                        {
                            "index": 0,
                            "message": message,
                            "finish_reason": finish,
                            "logprobs": self._logprobs(pieces, fault)
                            if body.get("logprobs")
                            else None,
                        }
                    ],
                    "usage": self._usage(body, len(pieces)),
                }

            def _stream(self, body: dict[str, Any], fault: Fault, *, cut: bool) -> None:
                pieces = self._pieces(fault)
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                base = {
                    "id": f"chatcmpl-fault-{len(server.requests)}",
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": body.get("model") or server.model,
                }

                def send(payload: dict[str, Any] | str) -> None:
                    data = payload if isinstance(payload, str) else json.dumps(payload)
                    event = f"data: {data}\n\n".encode()
                    self.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
                    self.wfile.flush()

                want_lp = bool(body.get("logprobs"))
                if fault.kind == "empty_stream":
                    send("[DONE]")
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                    return
                send({**base, "choices": [{"index": 0, "delta": {"role": "assistant"}}]})
                if fault.tool_call is not None:
                    name, args = fault.tool_call
                    half = len(args) // 2
                    first = {"index": 0, "id": "call_fault_1", "type": "function"}
                    for delta in (
                        {**first, "function": {"name": name, "arguments": args[:half]}},
                        {"index": 0, "function": {"arguments": args[half:]}},
                    ):
                        tc = {"index": 0, "delta": {"tool_calls": [delta]}, "finish_reason": None}
                        send({**base, "choices": [tc]})
                    pieces = []
                    end = "tool_calls"
                else:
                    end = "stop"
                for i, p in enumerate(pieces):
                    if cut and i >= max(1, len(pieces) // 2):
                        # No terminating chunk: the client sees an incomplete body.
                        self._drop(reset=True)
                        return
                    choice: dict[str, Any] = {
                        "index": 0,
                        "delta": {"content": p},
                        "finish_reason": None,
                    }
                    if want_lp:
                        choice["logprobs"] = self._logprobs([p], fault)
                    send({**base, "choices": [choice]})
                send({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": end}]})
                if (body.get("stream_options") or {}).get("include_usage"):
                    send({**base, "choices": [], "usage": self._usage(body, len(pieces))})
                send("[DONE]")
                self.wfile.write(b"0\r\n\r\n")  # end of the chunked body
                self.wfile.flush()

        return Handler
