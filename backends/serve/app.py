"""The OpenAI-compatible app: GET /v1/models, POST /v1/chat/completions (stream and not).

Bad requests get OpenAI-style error objects with 4xx codes: malformed JSON and missing fields
400, a wrong or missing token 401, an unknown model 404, a body over the limit 413. Nothing a
client sends can produce a 500 or a traceback."""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backends.base import Backend, ChatRequest
from backends.openai_wire import (
    chunk_body,
    completion_id,
    response_body,
    usage_chunk_body,
)
from myninja.errors import BackendError


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    # Unknown OpenAI parameters (top_p, n=1, user, …) are accepted and ignored.
    model_config = ConfigDict(extra="allow")
    messages: list[ChatMessage] = Field(min_length=1)
    model: str | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: ResponseFormat | None = None

    def to_chat_request(self, model: str) -> ChatRequest:
        schema = None
        if self.response_format and self.response_format.type == "json_schema":
            schema = (self.response_format.json_schema or {}).get("schema") or {"type": "object"}
        elif self.response_format and self.response_format.type == "json_object":
            schema = self.response_format.schema_ or {"type": "object"}
        stop = [self.stop] if isinstance(self.stop, str) else self.stop
        return ChatRequest(
            messages=[m.model_dump(exclude_none=True) for m in self.messages],
            model=model,
            temperature=self.temperature,
            max_tokens=self.max_completion_tokens or self.max_tokens,
            stop=stop,
            json_schema=schema,
            tools=self.tools,
            tool_choice=self.tool_choice,
            seed=self.seed,
        )


def error_response(
    status: int,
    message: str,
    *,
    kind: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status)


class BodyLimit:
    """Refuses bodies over `limit` bytes with 413, whether or not Content-Length is sent."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        too_big = error_response(
            413, f"request body exceeds {self.limit} bytes", code="body_too_large"
        )
        if declared and declared.isdigit() and int(declared) > self.limit:
            return await too_big(scope, receive, send)
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await too_big(scope, receive, send)


class _TooLarge(Exception):
    pass


class BearerAuth:
    """Requires `Authorization: Bearer <token>` on every request (compared in constant time)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            sent = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(sent, self.expected):
                denied = error_response(401, "invalid or missing API key", code="invalid_api_key")
                return await denied(scope, receive, send)
        await self.app(scope, receive, send)


def create_app(
    engine: Backend, model_id: str, *, api_key: str | None = None, max_body_bytes: int = 4_000_000
) -> FastAPI:
    app = FastAPI(title="myninja serve", version="1", docs_url=None, redoc_url=None)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        if first.get("type") == "json_invalid":
            return error_response(400, "the request body is not valid JSON", code="invalid_json")
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = (
            f"{where}: {first.get('msg', 'invalid value')}" if where else str(first.get("msg"))
        )
        return error_response(400, message, param=where or None)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail))

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": model_id, "object": "model", "created": 0, "owned_by": "myninja"}],
        }

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(body: ChatCompletionRequest) -> Any:
        if body.model and body.model != model_id:
            return error_response(
                404,
                f"model {body.model!r} is not served here (serving {model_id!r})",
                code="model_not_found",
                param="model",
            )
        request = body.to_chat_request(model_id)
        if not body.stream:
            try:
                result = await engine.chat(request)
            except BackendError as exc:
                return error_response(500, exc.one_line(), kind="server_error")
            result.model = model_id
            return response_body(result, completion_id())
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(
            _sse(engine, request, model_id, include_usage), media_type="text/event-stream"
        )

    if api_key:
        app.add_middleware(BearerAuth, token=api_key)
    app.add_middleware(BodyLimit, limit=max_body_bytes)
    return app


async def _sse(
    engine: Backend, request: ChatRequest, model_id: str, include_usage: bool
) -> AsyncIterator[str]:
    ident, created, first = completion_id(), int(time.time()), True
    try:
        async for chunk in engine.stream(request):
            usage = chunk.usage
            if chunk.text or chunk.finish_reason or chunk.tool_calls or first:
                body = chunk_body(chunk, ident, model_id, created, first=first)
                yield f"data: {json.dumps(body)}\n\n"
                first = False
            if chunk.finish_reason and include_usage and usage:
                yield f"data: {json.dumps(usage_chunk_body(usage, ident, model_id, created))}\n\n"
    except BackendError as exc:
        error = {"error": {"message": exc.one_line(), "type": "server_error", "code": None}}
        yield f"data: {json.dumps(error)}\n\n"
    yield "data: [DONE]\n\n"
