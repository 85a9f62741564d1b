"""The OpenAI-compatible app: GET /v1/models, POST /v1/chat/completions (stream and not).

Bad requests get OpenAI-style error objects with 4xx codes: malformed JSON and missing fields
400, a wrong or missing token 401, an unknown model 404, a body over the limit 413. Nothing a
client sends can produce a 500 or a traceback.

The chat endpoint reads its body itself (as JSON whatever the Content-Type, with our own 400s),
so its request and response shapes are published in `/openapi.json` by hand, from the same
models that validate them: clients and fuzzers (schemathesis) can generate bodies from it."""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from myninja.backends.base import Backend, ChatRequest, Chunk
from myninja.backends.openai_wire import (
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


class FunctionSpec(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1)
    description: str | None = None
    parameters: dict[str, Any] | None = None


class ToolSpec(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["function"] = "function"
    function: FunctionSpec


class FunctionName(BaseModel):
    name: str = Field(min_length=1)


class ToolChoice(BaseModel):
    type: Literal["function"] = "function"
    function: FunctionName


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
    tools: list[ToolSpec] | None = None
    tool_choice: Literal["none", "auto", "required"] | ToolChoice | None = None
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
            tools=[t.model_dump(exclude_none=True) for t in self.tools] if self.tools else None,
            tool_choice=(
                self.tool_choice.model_dump()
                if isinstance(self.tool_choice, ToolChoice)
                else self.tool_choice
            ),
            seed=self.seed,
        )


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(BaseModel):
    """Every error this server answers with (OpenAI's shape)."""

    error: ErrorDetail


class ResponseToolCallFunction(BaseModel):
    name: str
    arguments: str


class ResponseToolCall(BaseModel):
    id: str
    type: Literal["function"]
    function: ResponseToolCallFunction


class ResponseMessage(BaseModel):
    role: Literal["assistant"]
    content: str | None
    tool_calls: list[ResponseToolCall] | None = None


class ResponseChoice(BaseModel):
    index: int
    message: ResponseMessage
    finish_reason: str


class ResponseUsage(BaseModel):
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    total_tokens: int = Field(ge=0)


class ChatCompletion(BaseModel):
    """A non-streamed reply; a streamed one is `text/event-stream` of chunk objects."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ResponseChoice] = Field(min_length=1)
    usage: ResponseUsage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelCard]


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody} for status in statuses}


def _publish_schemas(app: FastAPI, bearer: bool) -> None:
    """Add the chat request body (ChatCompletionRequest's JSON schema) to the app's OpenAPI
    document; the endpoint validates with the same model. With a token, say that every
    operation needs it."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        body = ChatCompletionRequest.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas.update(body.pop("$defs", {}))
        schemas["ChatCompletionRequest"] = body
        if bearer:
            document["components"]["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"}
            }
            document["security"] = [{"bearer": []}]
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


CHAT_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ChatCompletionRequest"}}
        },
    }
}
# One server-sent event of a streamed reply (before OpenAPI 3.2, `schema` describes each event).
SSE_EVENT = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {
            "type": "string",
            "description": "A chat.completion.chunk object as JSON, an error object, or [DONE]",
        }
    },
}
CHAT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": ChatCompletion,
        "description": "The reply; with `stream: true`, server-sent chunk events",
        "content": {"text/event-stream": {"schema": SSE_EVENT}},
    },
    **_errors(400, 401, 404, 413),
    500: {"model": ErrorBody, "description": "The engine failed"},
}


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
    """Refuses bodies over `limit` bytes with 413, whether or not Content-Length is sent.

    The body is read whole before the app runs (the limit keeps it small), so a body that turns
    out too long can still be answered with 413: the app's own body parsing would turn any
    error raised while reading into a 400."""

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
        parts: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return None
            parts.append(message.get("body", b""))
            seen += len(parts[-1])
            if seen > self.limit:
                return await too_big(scope, receive, send)
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(parts), False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:  # later reads wait for the client's disconnect, as usual
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


class BearerAuth:
    """Requires `Authorization: Bearer <token>` on every request (compared in constant time)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            sent = dict(scope.get("headers") or []).get(b"authorization", b"")
            scheme, _, credentials = sent.partition(b" ")
            # The scheme is case-insensitive (RFC 7235); the token is compared in constant time.
            if scheme.lower() != b"bearer" or not hmac.compare_digest(
                credentials.strip(), self.expected
            ):
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
        response = error_response(exc.status_code, str(exc.detail))
        # A 405 must say what is allowed (RFC 9110): keep the headers Starlette set.
        response.headers.update(exc.headers or {})
        return response

    @app.get("/v1/models", response_model=ModelList, responses=_errors(401, 413))
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": model_id, "object": "model", "created": 0, "owned_by": "myninja"}],
        }

    @app.post(
        "/v1/chat/completions",
        response_model=None,
        responses=CHAT_RESPONSES,
        openapi_extra=CHAT_REQUEST_BODY,
    )
    async def chat_completions(raw: Request) -> Any:
        body = await _read_chat_request(raw)
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
                return engine_error_response(exc)
            result.model = model_id
            return response_body(result, completion_id())
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        # Wait for the first chunk before answering, so that a request the engine refuses
        # (a prompt longer than the context, say) still gets its 4xx status.
        chunks = engine.stream(request)
        try:
            first = await anext(chunks, None)
        except BackendError as exc:
            return engine_error_response(exc)
        return StreamingResponse(
            _sse(first, chunks, model_id, include_usage), media_type="text/event-stream"
        )

    _publish_schemas(app, bearer=bool(api_key))
    if api_key:
        app.add_middleware(BearerAuth, token=api_key)
    app.add_middleware(BodyLimit, limit=max_body_bytes)
    return app


async def _read_chat_request(request: Request) -> ChatCompletionRequest:
    """The body as JSON whatever its Content-Type: `curl -d` sends form-urlencoded, and
    OpenAI-compatible servers read it as JSON all the same."""
    raw = await request.body()
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body",), "msg": "invalid JSON"}]
        ) from None
    try:
        return ChatCompletionRequest.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


def engine_error_response(exc: BackendError) -> JSONResponse:
    """An engine's error: the request's fault (a 4xx status on the error) or the server's."""
    if exc.status is not None and 400 <= exc.status < 500:
        return error_response(exc.status, exc.one_line())
    return error_response(500, exc.one_line(), kind="server_error")


async def _sse(
    first: Chunk | None, rest: AsyncIterator[Chunk], model_id: str, include_usage: bool
) -> AsyncIterator[str]:
    ident, created, opening = completion_id(), int(time.time()), True
    chunk = first
    try:
        while chunk is not None:
            usage = chunk.usage
            if chunk.text or chunk.finish_reason or chunk.tool_calls or opening:
                body = chunk_body(chunk, ident, model_id, created, first=opening)
                yield f"data: {json.dumps(body)}\n\n"
                opening = False
            if chunk.finish_reason and include_usage and usage:
                yield f"data: {json.dumps(usage_chunk_body(usage, ident, model_id, created))}\n\n"
            chunk = await anext(rest, None)
    except BackendError as exc:
        error = {"error": {"message": exc.one_line(), "type": "server_error", "code": None}}
        yield f"data: {json.dumps(error)}\n\n"
    finally:
        # However the response ends (a client gone away included), generation stops.
        close = getattr(rest, "aclose", None)
        if close is not None:
            await close()
    yield "data: [DONE]\n\n"
