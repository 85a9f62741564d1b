"""A small OpenAI-compatible server on 127.0.0.1 for CLI tests: a models list, a streamed
one-line reply, and an optional bearer token it insists on; and the two ways of answering a
chat call (`send_json`, `send_reply`) for tests' own handlers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.local_http import serving


def send_json(handler: BaseHTTPRequestHandler, body: object, status: int = 200) -> None:
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def send_reply(
    handler: BaseHTTPRequestHandler,
    request: dict[str, Any],
    content: str,
    usage: dict[str, int],
    reply_id: str = "c1",
) -> None:
    """`content` as a chat completion, streamed (SSE, usage in the last chunk) when `request`
    asks for a stream, else as one JSON body."""
    base = {"id": reply_id, "model": request.get("model") or "served"}
    if not request.get("stream"):
        message = {"role": "assistant", "content": content}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        send_json(
            handler, {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
        )
        return
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.end_headers()
    chunk = {**base, "object": "chat.completion.chunk"}
    events: list[dict[str, Any]] = [
        {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
        {**chunk, "choices": [{"index": 0, "delta": {"content": content}}]},
        {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {**chunk, "choices": [], "usage": usage},
    ]
    for event in events:
        handler.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
    handler.wfile.write(b"data: [DONE]\n\n")


@contextmanager
def openai_stub(models: list[str], reply: str = "hello", token: str | None = None) -> Iterator[str]:
    """Serve it for the block; yields the base URL ending in /v1."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _authorised(self) -> bool:
            if token and self.headers.get("Authorization") != f"Bearer {token}":
                self._json(401, {"error": {"message": "invalid api key", "type": "auth"}})
                return False
            return True

        def _json(self, status: int, body: object) -> None:
            send_json(self, body, status)

        def do_GET(self) -> None:
            if not self._authorised():
                return
            if self.path.rstrip("/") == "/v1/models":
                data = [{"id": m, "object": "model", "owned_by": "stub"} for m in models]
                return self._json(200, {"object": "list", "data": data})
            self._json(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            self.rfile.read(length)
            if not self._authorised():
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": models[0]}
            events = [
                {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
                *(
                    {**base, "choices": [{"index": 0, "delta": {"content": word}}]}
                    for word in reply.split(" ")
                ),
                {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                {**base, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}},
            ]
            for event in events:
                self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")

    with serving(Handler) as base:
        yield f"{base}/v1"
