"""Loopback fakes of two providers' wire protocols, for tests that call their real LangChain
classes: Anthropic's Messages API (``POST /v1/messages``) and Google's Gemini API
(``POST /v1beta/models/{model}:generateContent`` and ``:streamGenerateContent?alt=sse``).

Each answer bills like the provider does: a fixed usage the test sets (Anthropic's
``input_tokens`` excludes cached tokens, reported as ``cache_read_input_tokens`` /
``cache_creation_input_tokens``; Gemini's ``promptTokenCount`` includes
``cachedContentTokenCount`` and ``thoughtsTokenCount`` is reported beside
``candidatesTokenCount``). A script of HTTP statuses lets a test make the provider fail
(``529`` is Anthropic's "overloaded"). Both check that a key was sent (401 otherwise) and
record each request's path, body and the key's presence (never the key).

Usage::

    with FakeAnthropic(usage=AnthropicUsage(input_tokens=20, output_tokens=7)) as srv:
        ChatAnthropic(model="claude-haiku-4-5", base_url=srv.base_url, api_key="k").invoke("hi")
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["AnthropicUsage", "FakeAnthropic", "FakeGemini", "GeminiUsage", "Seen"]


@dataclass(frozen=True)
class Seen:
    """A request the fake answered: its path, JSON body, status, and whether a key came."""

    path: str
    body: dict[str, Any]
    status: int
    had_key: bool


@dataclass(frozen=True)
class AnthropicUsage:
    """What the Anthropic fake bills per answer (its wire fields); ``input_tokens`` None:
    the words of the request's messages + 3, never more than a real tokenizer would count."""

    input_tokens: int | None = None
    output_tokens: int = 7
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0


@dataclass(frozen=True)
class GeminiUsage:
    """What the Gemini fake bills per answer (its wire fields); ``prompt`` None: the words of
    the request's contents + 3."""

    prompt: int | None = None
    candidates: int = 7
    thoughts: int = 0
    cached: int = 0


def _words(value: Any) -> int:
    """Whitespace words in every string of a JSON value (a lower bound on its tokens)."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, dict):
        return sum(_words(v) for v in value.values())
    if isinstance(value, list):
        return sum(_words(v) for v in value)
    return 0


@dataclass
class _Fake:
    text: str
    script: list[int]
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_status(self) -> int:
        with self.lock:
            return self.script.pop(0) if self.script else 200

    def record(self, seen: Seen) -> None:
        with self.lock:
            self.seen.append(seen)


class _Server:
    """A threaded loopback HTTP server running one handler; start/stop or ``with``."""

    def __init__(self, text: str, statuses: Iterable[int]) -> None:
        self._fake = _Fake(text=text, script=list(statuses))
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def seen(self) -> list[Seen]:
        """The requests answered so far, in order."""
        with self._fake.lock:
            return list(self._fake.seen)

    def __enter__(self) -> _Server:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._thread.join(timeout=5)
        self._httpd.server_close()

    # -- to override ----------------------------------------------------------------------

    def has_key(self, headers: Any) -> bool:
        raise NotImplementedError

    def answer(self, path: str, body: dict[str, Any]) -> tuple[str, bytes]:
        """(content type, body) of a 200 answer."""
        raise NotImplementedError

    def error(self, status: int) -> bytes:
        raise NotImplementedError

    # -- plumbing -------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {}
                had_key = server.has_key(self.headers)
                status = server._fake.next_status() if had_key else 401
                server._fake.record(Seen(self.path, body, status, had_key))
                if status == 200:
                    ctype, payload = server.answer(self.path, body)
                else:
                    ctype, payload = "application/json", server.error(status)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler


class FakeAnthropic(_Server):
    """Anthropic's Messages API on loopback; ``base_url`` is what ChatAnthropic takes."""

    def __init__(
        self,
        *,
        text: str = "Paris is the capital of France.",
        usage: AnthropicUsage = AnthropicUsage(),
        statuses: Iterable[int] = (),
    ) -> None:
        super().__init__(text, statuses)
        self.usage = usage

    def has_key(self, headers: Any) -> bool:
        # The SDK sends x-api-key, or a bearer token for keys not shaped like Anthropic's.
        return bool(headers.get("x-api-key") or headers.get("authorization"))

    def answer(self, path: str, body: dict[str, Any]) -> tuple[str, bytes]:
        u = self.usage
        fresh = u.input_tokens
        if fresh is None:
            fresh = _words(body.get("messages")) + _words(body.get("system")) + 3
        usage = {
            "input_tokens": fresh,
            "output_tokens": u.output_tokens,
            "cache_read_input_tokens": u.cache_read_input_tokens,
            "cache_creation_input_tokens": u.cache_creation_input_tokens,
        }
        model = body.get("model", "claude")
        if not body.get("stream"):
            msg = {
                "id": "msg_fake_1",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": self._fake.text}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": usage,
            }
            return "application/json", json.dumps(msg).encode()
        start = {**usage, "output_tokens": 1}
        events: list[tuple[str, dict[str, Any]]] = [
            (
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": "msg_fake_1",
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": start,
                    },
                },
            ),
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
        ]
        for word in self._fake.text.split(" "):
            events.append(
                (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": word + " "},
                    },
                )
            )
        events += [
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": usage,  # the API's final counts, cumulative
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        sse = "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)
        return "text/event-stream", sse.encode()

    def error(self, status: int) -> bytes:
        kind = {
            401: "authentication_error",
            429: "rate_limit_error",
            529: "overloaded_error",
        }.get(status, "api_error")
        return json.dumps(
            {"type": "error", "error": {"type": kind, "message": f"fake {status}"}}
        ).encode()


class FakeGemini(_Server):
    """Google's Gemini API on loopback; ``base_url`` is what ChatGoogleGenerativeAI takes."""

    def __init__(
        self,
        *,
        text: str = "Paris is the capital of France.",
        usage: GeminiUsage = GeminiUsage(),
        statuses: Iterable[int] = (),
    ) -> None:
        super().__init__(text, statuses)
        self.usage = usage

    def has_key(self, headers: Any) -> bool:
        return bool(headers.get("x-goog-api-key"))

    def _response(self, text: str, model: str, body: dict[str, Any]) -> dict[str, Any]:
        u = self.usage
        prompt = u.prompt
        if prompt is None:
            prompt = _words(body.get("contents")) + _words(body.get("systemInstruction")) + 3
        usage: dict[str, Any] = {
            "promptTokenCount": prompt,
            "candidatesTokenCount": u.candidates,
            "totalTokenCount": prompt + u.candidates + u.thoughts,
        }
        if u.thoughts:
            usage["thoughtsTokenCount"] = u.thoughts
        if u.cached:
            usage["cachedContentTokenCount"] = u.cached
        return {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": text}]},
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": usage,
            "modelVersion": model,
            "responseId": "fake-gemini-1",
        }

    def answer(self, path: str, body: dict[str, Any]) -> tuple[str, bytes]:
        model = path.split("/models/")[-1].split(":")[0]
        data = self._response(self._fake.text, model, body)
        if ":streamGenerateContent" in path:
            return "text/event-stream", f"data: {json.dumps(data)}\n\n".encode()
        return "application/json", json.dumps(data).encode()

    def error(self, status: int) -> bytes:
        return json.dumps(
            {"error": {"code": status, "message": f"fake {status}", "status": "UNAVAILABLE"}}
        ).encode()
