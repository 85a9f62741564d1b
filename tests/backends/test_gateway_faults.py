"""GatewayBackend against a misbehaving server: retries, timeouts, cut and malformed streams,
the json_schema fallback, the concurrency cap and cancellation.

The server is written here, by hand, over real sockets on 127.0.0.1 (asyncio streams and raw
HTTP/1.1), so every fault is exactly the bytes a broken gateway would send. Each test gives it
a handler `async def handler(req, conn)`; the server records every request it read and how many
replies were in flight at once.
"""

from __future__ import annotations

import asyncio
import http
import itertools
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pydantic_core
import pytest

from myninja.backends.base import ChatRequest, ToolCall
from myninja.backends.gateway import GatewayBackend
from myninja.errors import (
    AuthError,
    BackendError,
    BackendUnreachable,
    BadResponse,
    RateLimited,
)

pytestmark = pytest.mark.timeout(60)

NAME = "testgw"


# The server ----------------------------------------------------------------------------------
@dataclass
class Request:
    index: int  # 0 for the first request the server read, 1 for the next, ...
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: Any  # parsed JSON, or None
    at: float  # time.monotonic() when it had been read


class Conn:
    """One accepted connection, with the means to answer it in HTTP/1.1."""

    def __init__(
        self, server: FakeGateway, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._server = server
        self.reader = reader
        self.writer = writer
        self._chunked = False
        self._in_flight = True

    def release(self) -> None:
        """The reply is complete as far as the server is concerned (called before its last
        bytes are written, so the client can never be ahead of the count)."""
        if self._in_flight:
            self._in_flight = False
            self._server.active -= 1

    async def reply(
        self, status: int, body: dict[str, Any] | str, *, headers: dict[str, str] | None = None
    ) -> None:
        data = (json.dumps(body) if isinstance(body, dict) else body).encode()
        fields = {"Content-Type": "application/json", **(headers or {})}
        fields["Content-Length"] = str(len(data))
        self.release()
        self.writer.write(_head(status, fields) + data)
        await self.writer.drain()

    async def start_stream(self, *, chunked: bool = True) -> None:
        """SSE headers. Chunked framing, like uvicorn; or (chunked=False) a body that ends
        when the connection closes."""
        self._chunked = chunked
        headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        if chunked:
            headers["Transfer-Encoding"] = "chunked"
        self.writer.write(_head(200, headers))
        await self.writer.drain()

    async def event(self, data: dict[str, Any] | str) -> None:
        """One `data:` event: an object as JSON, or a string exactly as given."""
        payload = data if isinstance(data, str) else json.dumps(data)
        self.writer.write(self._frame(f"data: {payload}\n\n".encode()))
        await self.writer.drain()

    async def frames(self, *pieces: bytes) -> None:
        """Body bytes exactly as given, each piece its own chunk (the client reads them apart)."""
        for piece in pieces:
            self.writer.write(self._frame(piece))
        await self.writer.drain()

    async def end_stream(self) -> None:
        """`data: [DONE]` and the end of the body."""
        self.release()
        end = b"0\r\n\r\n" if self._chunked else b""
        self.writer.write(self._frame(b"data: [DONE]\n\n") + end)
        await self.writer.drain()

    async def cut(self) -> None:
        """Close the socket mid-reply."""
        self.writer.close()
        await self.writer.wait_closed()

    async def client_gone(self, within: float) -> bool:
        """True once the client has closed its end of the connection (waits up to `within`)."""
        try:
            return await asyncio.wait_for(self.reader.read(1), within) == b""
        except TimeoutError:
            return False

    def _frame(self, data: bytes) -> bytes:
        return b"%x\r\n%s\r\n" % (len(data), data) if self._chunked else data


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


Handler = Callable[[Request, Conn], Awaitable[None]]


class FakeGateway:
    """An HTTP/1.1 server on 127.0.0.1 (port 0) that hands each request to `handler`."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Request] = []
        self.active = 0
        self.max_active = 0
        self.url = ""
        self._tasks: set[asyncio.Task[None]] = set()
        self._errors: list[BaseException] = []

    async def __aenter__(self) -> FakeGateway:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/v1"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()
        if self._errors and exc_info[0] is None:
            raise AssertionError(f"the test server's handler failed: {self._errors[0]!r}")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            request = await self._read(reader)
            if request is None:
                return
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            conn = Conn(self, reader, writer)
            try:
                await self.handler(request, conn)
            finally:
                conn.release()
        except ConnectionError:
            pass  # the client went away; tests look at what it saw
        except Exception as exc:
            self._errors.append(exc)
        finally:
            writer.close()
            self._tasks.discard(task)

    async def _read(self, reader: asyncio.StreamReader) -> Request | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        first, *lines = head.decode("latin-1").split("\r\n")
        method, path, _ = first.split(" ", 2)
        headers = {}
        for line in lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        raw = await reader.readexactly(int(headers.get("content-length", "0")))
        request = Request(
            len(self.requests),
            method,
            path,
            headers,
            json.loads(raw) if raw else None,
            time.monotonic(),
        )
        self.requests.append(request)
        return request


@asynccontextmanager
async def serving(
    handler: Handler, **options: Any
) -> AsyncIterator[tuple[FakeGateway, GatewayBackend]]:
    """The server with `handler`, and a GatewayBackend pointed at it (fast retries)."""
    async with FakeGateway(handler) as gateway:
        async with backend_at(gateway.url, **options) as backend:
            yield gateway, backend


@asynccontextmanager
async def backend_at(url: str, **options: Any) -> AsyncIterator[GatewayBackend]:
    settings = {"model": "test-model", "retry_base_delay": 0.01, "read_timeout": 5.0, **options}
    backend = GatewayBackend(NAME, url, **settings)
    try:
        yield backend
    finally:
        await backend.aclose()


# The OpenAI wire format, written by hand (independent of backends.openai_wire) -------------------
def ask(**fields: Any) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": "hi"}], **fields)


def completion(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "test-model",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }


def delta(
    content: str | None = None,
    *,
    tool_calls: list[dict[str, Any]] | None = None,
    finish: str | None = None,
) -> dict[str, Any]:
    piece: dict[str, Any] = {}
    if content is not None:
        piece["content"] = content
    if tool_calls is not None:
        piece["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "test-model",
        "choices": [{"index": 0, "delta": piece, "finish_reason": finish}],
    }


def error_body(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "server_error"}}


async def stream_text(conn: Conn, *pieces: str) -> None:
    """A complete, well-formed streamed reply."""
    await conn.start_stream()
    await conn.event({**delta(), "choices": [{"index": 0, "delta": {"role": "assistant"}}]})
    for piece in pieces:
        await conn.event(delta(piece))
    await conn.event(delta(finish="stop"))
    await conn.end_stream()


async def streamed(backend: GatewayBackend, request: ChatRequest) -> str:
    """The text of a whole streamed call."""
    return "".join([chunk.text async for chunk in backend.stream(request)])


# Retries -----------------------------------------------------------------------------------
async def test_429_with_retry_after_is_retried_after_the_wait() -> None:
    async def handler(req: Request, conn: Conn) -> None:
        if req.index == 0:
            await conn.reply(429, error_body("slow down"), headers={"Retry-After": "1"})
        else:
            await conn.reply(200, completion("hello"))

    async with serving(handler) as (gateway, backend):
        started = time.monotonic()
        result = await backend.chat(ask())
        elapsed = time.monotonic() - started

    assert result.text == "hello"
    assert len(gateway.requests) == 2
    # retry_base_delay is 0.01: only Retry-After can account for a one-second wait.
    assert elapsed >= 1.0
    assert gateway.requests[1].at - gateway.requests[0].at >= 1.0


async def test_429_beyond_max_retries_raises_rate_limited() -> None:
    async def handler(req: Request, conn: Conn) -> None:
        await conn.reply(429, error_body("slow down, please"), headers={"Retry-After": "0"})

    async with serving(handler, max_retries=2) as (gateway, backend):
        with pytest.raises(RateLimited) as info:
            await backend.chat(ask())

    assert len(gateway.requests) == 3  # the first try and two retries
    err = info.value
    assert err.status == 429
    assert str(err) == f"{NAME}: HTTP 429: slow down, please"
    assert "\n" not in err.one_line()


async def test_500_is_not_retried() -> None:
    async def handler(req: Request, conn: Conn) -> None:
        await conn.reply(500, error_body("the model exploded"))

    async with serving(handler, max_retries=3) as (gateway, backend):
        with pytest.raises(BadResponse) as info:
            await backend.chat(ask())

    assert len(gateway.requests) == 1
    assert info.value.status == 500
    assert "the model exploded" in str(info.value)
    assert "\n" not in info.value.one_line()


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_gateway_errors_are_retried_then_succeed(status: int) -> None:
    async def handler(req: Request, conn: Conn) -> None:
        if req.index == 0:
            await conn.reply(status, error_body("upstream is restarting"))
        else:
            await conn.reply(200, completion("back again"))

    async with serving(handler) as (gateway, backend):
        result = await backend.chat(ask())

    assert result.text == "back again"
    assert result.usage.total_tokens == 5
    assert [r.path for r in gateway.requests] == ["/v1/chat/completions"] * 2


async def test_an_html_error_page_still_gives_one_line() -> None:
    page = (
        "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n"
        "<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
    )

    async def handler(req: Request, conn: Conn) -> None:  # a proxy in front of the model
        await conn.reply(502, page, headers={"Content-Type": "text/html"})

    async with serving(handler, max_retries=1) as (gateway, backend):
        with pytest.raises(BackendUnreachable) as info:
            await backend.chat(ask())

    assert len(gateway.requests) == 2
    assert info.value.status == 502
    assert "502 Bad Gateway" in str(info.value)
    assert "\n" not in info.value.one_line() and "\r" not in info.value.one_line()


async def test_connection_refused_is_unreachable_after_retries() -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    attempts: list[httpx.Request] = []

    async def count(request: httpx.Request) -> None:
        attempts.append(request)

    async with backend_at(f"http://127.0.0.1:{port}/v1", max_retries=2) as backend:
        backend._client.event_hooks["request"].append(count)
        with pytest.raises(BackendUnreachable) as info:
            await backend.chat(ask())

    assert len(attempts) == 3  # the first try and two retries
    err = info.value
    assert err.exit_code == 4
    assert str(err) == f"{NAME}: cannot connect to http://127.0.0.1:{port}/v1"
    assert f"myninja backends test {NAME}" in (err.hint or "")


# Line ends -----------------------------------------------------------------------------------
def raw_json(event: dict[str, Any]) -> str:
    """JSON as pydantic's to_json writes it: U+2028, U+2029 and U+0085 stay raw, as JSON allows."""
    return pydantic_core.to_json(event).decode()


async def test_unicode_line_separators_inside_data_are_not_line_ends() -> None:
    pieces = ["one\u2028two", "\u2029", "three\u0085four", " \u2028\u2029\u0085 end"]
    events = [raw_json(delta(piece)) for piece in pieces]
    for char in "\u2028\u2029\u0085":  # sent raw, not as \uXXXX escapes
        assert any(char in event for event in events)

    async def handler(req: Request, conn: Conn) -> None:
        await conn.start_stream()
        for event in events:
            await conn.event(event)
        await conn.event(delta(finish="stop"))
        await conn.end_stream()

    async with serving(handler) as (gateway, backend):
        text = await streamed(backend, ask())

    assert text == "".join(pieces)
    assert len(gateway.requests) == 1


def split_reply(line_end: str) -> tuple[str, bytes]:
    """A streamed reply's text, and its body: multi-byte characters (two to four bytes), raw
    line separators, and one event whose JSON spans two `data:` lines."""
    pieces = ["é€", "\u2028😀", "\u0085 done"]
    events = [[f"data: {raw_json(delta(piece))}"] for piece in pieces]
    head, _, tail = raw_json(delta(finish="stop")).partition(',"choices"')
    events += [[f"data: {head}", f'data: ,"choices"{tail}'], ["data: [DONE]"]]
    body = "".join(line_end.join(lines) + line_end * 2 for lines in events)
    return "".join(pieces), body.encode()


def cut(body: bytes) -> list[bytes]:
    """`body` cut after every CR and inside every multi-byte character."""
    cuts = [i for i in range(1, len(body)) if body[i - 1] == 0x0D or 0x80 <= body[i] < 0xC0]
    return [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]


@pytest.mark.parametrize("line_end", ["\r\n", "\r", "\n"], ids=["crlf", "cr", "lf"])
async def test_line_ends_and_characters_split_across_chunks(line_end: str) -> None:
    expected, body = split_reply(line_end)
    pieces = cut(body)
    pairs = list(itertools.pairwise(pieces))
    assert any(b[0] >= 0x80 for a, b in pairs)  # a character in two pieces
    if line_end == "\r\n":
        assert any(a.endswith(b"\r") and b.startswith(b"\n") for a, b in pairs)

    async def handler(req: Request, conn: Conn) -> None:
        await conn.start_stream()
        await conn.frames(*pieces)
        conn.release()
        await conn.frames(b"")  # a zero-length chunk ends a chunked body

    async with serving(handler) as (gateway, backend):
        # The premise: a client sees the body in exactly these pieces, not joined up again.
        async with httpx.AsyncClient() as client:
            async with client.stream("POST", f"{gateway.url}/chat/completions") as response:
                assert [piece async for piece in response.aiter_bytes()] == pieces
        text = await streamed(backend, ask())

    assert text == expected


# Timeouts and broken replies -----------------------------------------------------------------
@pytest.mark.parametrize("mode", ["chat", "stream"])
async def test_a_server_that_never_answers_times_out_once(mode: str) -> None:
    hung_up = asyncio.Event()

    async def handler(req: Request, conn: Conn) -> None:
        if await conn.client_gone(within=30):  # accept, read, never answer
            hung_up.set()

    async with serving(handler, read_timeout=0.5, max_retries=3) as (gateway, backend):
        started = time.monotonic()
        with pytest.raises(BackendUnreachable) as info:
            if mode == "chat":
                await backend.chat(ask())
            else:
                async for _ in backend.stream(ask()):
                    pass
        elapsed = time.monotonic() - started
        await asyncio.wait_for(hung_up.wait(), 5)

    assert len(gateway.requests) == 1  # a timeout is not retried
    assert str(info.value) == f"{NAME}: no reply within 0.5s"
    assert elapsed < 5  # the server would have hung for 30 s


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "until-close"])
async def test_a_stream_cut_midway_keeps_the_partial_text(chunked: bool) -> None:
    async def handler(req: Request, conn: Conn) -> None:
        await conn.start_stream(chunked=chunked)
        await conn.event(delta("Hello"))
        await conn.event(delta(", wor"))
        await conn.cut()  # no finish_reason, no [DONE]

    seen: list[str] = []
    async with serving(handler, max_retries=3) as (gateway, backend):
        with pytest.raises(BackendError) as info:
            async for chunk in backend.stream(ask()):
                seen.append(chunk.text)

    assert "".join(seen) == "Hello, wor"
    assert info.value.partial_text == "Hello, wor"
    assert len(gateway.requests) == 1  # never retried once a token went out
    assert "\n" not in info.value.one_line()


async def test_malformed_sse_event_keeps_the_partial_text() -> None:
    async def handler(req: Request, conn: Conn) -> None:
        await conn.start_stream()
        await conn.event(delta("Hel"))
        await conn.event(delta("lo"))
        await conn.event('{"choices": [oops')
        await conn.event(delta(" world", finish="stop"))
        await conn.end_stream()

    seen: list[str] = []
    async with serving(handler) as (gateway, backend):
        with pytest.raises(BadResponse) as info:
            async for chunk in backend.stream(ask()):
                seen.append(chunk.text)

    assert "".join(seen) == "Hello"
    assert info.value.partial_text == "Hello"
    assert "malformed stream event" in str(info.value)
    assert "oops" in str(info.value)
    assert len(gateway.requests) == 1


async def test_a_reply_that_is_not_json_is_a_bad_response() -> None:
    async def handler(req: Request, conn: Conn) -> None:
        await conn.reply(200, "not json")

    async with serving(handler) as (gateway, backend):
        with pytest.raises(BadResponse) as info:
            await backend.chat(ask())

    assert len(gateway.requests) == 1
    assert str(info.value) == f"{NAME}: the reply is not a chat completion: 'not json'"
    assert "\n" not in info.value.one_line()


async def test_401_is_an_auth_error_with_a_hint() -> None:
    key = "sk-wrong-key-1234"

    async def handler(req: Request, conn: Conn) -> None:
        await conn.reply(401, error_body("invalid api key"))

    async with serving(handler, api_key=key, max_retries=3) as (gateway, backend):
        with pytest.raises(AuthError) as info:
            await backend.chat(ask())

    assert len(gateway.requests) == 1
    assert gateway.requests[0].headers["authorization"] == f"Bearer {key}"
    err = info.value
    assert err.status == 401
    assert err.exit_code == 2
    assert "invalid api key" in str(err)
    assert f"myninja keys set {NAME}" in (err.hint or "")
    assert key not in err.one_line()


# Features -------------------------------------------------------------------------------------
async def test_json_schema_falls_back_to_json_object_and_remembers() -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "integer"}},
        "required": ["answer"],
    }

    async def handler(req: Request, conn: Conn) -> None:
        response_format = req.body.get("response_format") or {}
        if response_format.get("type") == "json_schema":
            await conn.reply(400, error_body("response_format type json_schema is not supported"))
        elif response_format.get("type") == "json_object" and "schema" in response_format:
            await conn.reply(200, completion('{"answer": 42}'))
        else:
            await conn.reply(400, error_body(f"unexpected response_format {response_format}"))

    async with serving(handler) as (gateway, backend):
        first = await backend.chat(ask(json_schema=schema))
        second = await backend.chat(ask(json_schema=schema))

    assert first.json() == {"answer": 42}
    assert second.json() == {"answer": 42}
    formats = [r.body["response_format"] for r in gateway.requests]
    assert [f["type"] for f in formats] == ["json_schema", "json_object", "json_object"]
    assert formats[0]["json_schema"]["schema"] == schema
    assert formats[1] == {"type": "json_object", "schema": schema}
    assert formats[2] == {"type": "json_object", "schema": schema}


async def test_concurrency_cap_holds_for_streams() -> None:
    async def handler(req: Request, conn: Conn) -> None:
        await asyncio.sleep(0.1)
        await stream_text(conn, "slow ", "reply")

    async with serving(handler, max_concurrency=2) as (gateway, backend):
        texts = await asyncio.gather(*(streamed(backend, ask()) for _ in range(6)))

    assert texts == ["slow reply"] * 6
    assert len(gateway.requests) == 6
    assert gateway.max_active == 2


async def test_a_request_waiting_out_a_429_lends_its_slot_to_others() -> None:
    async def handler(req: Request, conn: Conn) -> None:
        text = req.body["messages"][0]["content"]
        if text == "first" and sum(r.body["messages"][0]["content"] == "first"
                                   for r in gateway.requests) == 1:  # fmt: skip
            await conn.reply(429, error_body("slow down"), headers={"Retry-After": "1"})
        else:
            await conn.reply(200, completion(f"re: {text}"))

    def say(text: str) -> ChatRequest:
        return ChatRequest(messages=[{"role": "user", "content": text}])

    async with serving(handler, max_concurrency=1) as (gateway, backend):
        first = asyncio.create_task(backend.chat(say("first")))
        await asyncio.sleep(0.2)  # the 429 is in; "first" now waits a second to retry
        second = await asyncio.wait_for(backend.chat(say("second")), 0.7)
        assert not first.done()
        assert (await first).text == "re: first"

    assert second.text == "re: second"
    order = [r.body["messages"][0]["content"] for r in gateway.requests]
    assert order == ["first", "second", "first"]  # the one slot served "second" meanwhile
    assert gateway.max_active == 1


async def test_tool_call_deltas_are_assembled_on_the_final_chunk() -> None:
    def call(index: int, arguments: str, **first: str) -> dict[str, Any]:
        """A tool-call delta: `first` (id, name) only on a call's first piece."""
        fn = {"arguments": arguments}
        if "name" in first:
            fn["name"] = first["name"]
        piece = {"index": index, "function": fn}
        if "id" in first:
            piece.update(id=first["id"], type="function")
        return delta(tool_calls=[piece])

    async def handler(req: Request, conn: Conn) -> None:
        await conn.start_stream()
        await conn.event(call(0, "", id="call_a", name="get_weather"))
        await conn.event(call(0, '{"ci'))
        await conn.event(call(1, '{"tz"', id="call_b", name="get_time"))
        await conn.event(call(0, 'ty": "Pa'))
        await conn.event(call(1, ': "UTC"}'))
        await conn.event(call(0, 'ris"}'))
        await conn.event(delta(finish="tool_calls"))
        usage = {"prompt_tokens": 7, "completion_tokens": 11}
        await conn.event({**delta(), "choices": [], "usage": usage})
        await conn.end_stream()

    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    async with serving(handler) as (gateway, backend):
        chunks = [chunk async for chunk in backend.stream(ask(tools=tools))]

    assert gateway.requests[0].body["tools"] == tools
    *before, last = chunks
    assert all(not chunk.tool_calls for chunk in before)
    assert last.finish_reason == "tool_calls"
    assert last.tool_calls == [
        ToolCall("call_a", "get_weather", '{"city": "Paris"}'),
        ToolCall("call_b", "get_time", '{"tz": "UTC"}'),
    ]
    assert last.tool_calls[0].parsed_arguments() == {"city": "Paris"}
    assert last.usage is not None and last.usage.total_tokens == 18


@pytest.mark.parametrize("busy", [False, True], ids=["awaiting-a-token", "handling-a-token"])
async def test_cancelling_a_stream_closes_the_connection(busy: bool) -> None:
    """Cancelled while waiting for the next token, or while its own code handles one (as a
    view does while it renders)."""
    hung_up = asyncio.Event()
    sent: list[int] = []

    async def handler(req: Request, conn: Conn) -> None:
        if req.index > 0:  # the call after the cancelled one
            await stream_text(conn, "still ", "works")
            return
        await conn.start_stream()
        for i in range(300):  # 30 s of ticks, unless the client hangs up
            await conn.event(delta(f"tick{i} "))
            sent.append(i)
            if await conn.client_gone(within=0.1):
                hung_up.set()
                return

    first_token = asyncio.Event()
    seen: list[str] = []

    async def consume(backend: GatewayBackend) -> None:
        async for chunk in backend.stream(ask()):
            seen.append(chunk.text)
            first_token.set()
            if busy:
                await asyncio.sleep(60)

    # One slot: the follow-up call proves the cancelled stream gave its slot back.
    async with serving(handler, max_concurrency=1) as (gateway, backend):
        task = asyncio.create_task(consume(backend))
        await asyncio.wait_for(first_token.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 2)
        await asyncio.wait_for(hung_up.wait(), 2)
        after = await asyncio.wait_for(streamed(backend, ask()), 5)

    assert task.cancelled()
    assert len(gateway.requests) == 2  # the cancelled stream was not retried
    assert seen and seen[0] == "tick0 "
    assert len(sent) < 50  # stopped long before the server ran out of ticks
    assert after == "still works"
