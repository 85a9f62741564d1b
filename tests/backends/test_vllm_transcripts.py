"""`GatewayBackend` replaying vLLM server-sent-event transcripts over real HTTP on 127.0.0.1.

The transcripts in tests/fixtures/vllm/ are the bytes a vLLM OpenAI-compatible server writes
(see the README there for the versions and how to record one). A small `http.server` handler
answers GET /v1/models with a vLLM model list and POST /v1/chat/completions with a transcript
(`stream: true`) or the matching non-streamed reply (`stream: false`), sent with chunked
transfer encoding: one HTTP chunk per event as vLLM writes them, or cut every few bytes so
that lines and UTF-8 characters straddle chunk boundaries.

What each reply must produce is stated literally per case below, and the tests also check it
against the fixture itself, parsed here with nothing from `backends` — so a fixture edit that
changes the meaning shows up as a fixture failure, not as a client bug.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from myninja.backends.base import ChatRequest, Chunk, ToolCall, Usage
from myninja.backends.gateway import GatewayBackend
from tests.local_http import serving

pytestmark = pytest.mark.timeout(60)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "vllm"
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
QWEN = "Qwen/Qwen2.5-7B-Instruct"

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}
SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search_web",
        "description": "Search the web",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string"}},
            "required": ["query"],
        },
    },
}


@dataclass(frozen=True)
class Case:
    stem: str  # tests/fixtures/vllm/<stem>.sse (and <stem>.json where there is one)
    vllm: str  # the vLLM release whose chunk format the transcript follows
    model: str
    prompt: str
    text: str  # the reply text, concatenated from the content deltas
    finish_reason: str
    usage: tuple[int, int] | None  # (prompt, completion) from the usage-only chunk
    usage_style: str  # "absent" / "null" / "continuous": `usage` on the chunks with choices
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (name, arguments)
    tools: list[dict[str, Any]] | None = None
    max_tokens: int | None = None
    chat_text: str | None = None  # content of the non-streamed reply, where there is one

    @property
    def sse(self) -> bytes:
        return (FIXTURES / f"{self.stem}.sse").read_bytes()

    @property
    def non_streamed(self) -> bytes | None:
        path = FIXTURES / f"{self.stem}.json"
        return path.read_bytes() if path.exists() else None

    def request(self) -> ChatRequest:
        return ChatRequest(
            messages=[{"role": "user", "content": self.prompt}],
            temperature=0,
            max_tokens=self.max_tokens,
            tools=self.tools,
        )


ZURICH = "At Zürich's altitude of about 408 m, water boils at roughly 98.6 °C rather than 100 °C."
CELSIUS = {"unit": "celsius"}

CASES = [
    Case(
        "llama31_text_stop",
        "0.9.2",
        LLAMA,
        "In one sentence: at what temperature does water boil in Zürich?",
        ZURICH,
        "stop",
        (49, 30),
        "absent",
        chat_text=ZURICH,
    ),
    Case(
        "llama31_max_tokens_length",
        "0.9.2",
        LLAMA,
        "List three uses of a Raspberry Pi.",
        "Here are three uses of a Raspberry Pi:\n\n1. **Home media center**",
        "length",
        (44, 16),
        "absent",
        max_tokens=16,
        chat_text="Here are three uses of a Raspberry Pi:\n\n1. **Home media center**",
    ),
    Case(
        "llama31_tool_call_llama3_json",
        "0.9.2",
        LLAMA,
        "What's the weather in Paris right now? Use celsius.",
        "",
        "tool_calls",
        (287, 24),
        "absent",
        calls=[("get_weather", {"city": "Paris", **CELSIUS})],
        tools=[WEATHER_TOOL],
        chat_text="",
    ),
    Case(
        "qwen25_parallel_tool_calls_hermes",
        "0.9.2",
        QWEN,
        "Compare the weather in Paris and Tokyo right now, in celsius.",
        "\n",  # hermes streams the newline between </tool_call> and <tool_call> as content
        "tool_calls",
        (312, 54),
        "absent",
        calls=[
            ("get_weather", {"city": "Paris", **CELSIUS}),
            ("get_weather", {"city": "Tokyo", **CELSIUS}),
        ],
        tools=[WEATHER_TOOL],
        chat_text="",  # the non-streamed reply has "content": null
    ),
    Case(
        "llama31_text_no_usage",
        "0.9.2",
        LLAMA,
        "Hi!",
        "Hello! How can I help you today?",
        "stop",
        None,
        "absent",
    ),
    Case(
        "llama31_v063_usage_null",
        "0.6.3",
        LLAMA,
        "Write a haiku about a GPU.",
        "Silent GPU hums\nTokens stream like falling snow\nThe answer arrives",
        "stop",
        (41, 16),
        "null",
    ),
    Case(
        "llama31_v064_continuous_usage_tool_call",
        "0.6.4",
        LLAMA,
        "Find the vLLM release notes.",
        "",
        "tool_calls",
        (231, 21),
        "continuous",
        calls=[("search_web", {"query": "vLLM release notes"})],
        tools=[SEARCH_TOOL],
    ),
]
CHAT_CASES = [case for case in CASES if case.non_streamed is not None]


# The fixture, parsed without backends/ ------------------------------------------------------
@dataclass
class Transcript:
    payloads: list[str]  # the text after "data: " of every event but [DONE]
    events: list[dict[str, Any]]
    text: str
    finish_reason: str | None
    usage: tuple[int, int] | None
    calls: list[dict[str, str]]  # {"id", "name", "arguments"} in index order


def read_transcript(raw: bytes) -> Transcript:
    assert raw.endswith(b"data: [DONE]\n\n"), "a vLLM stream ends with data: [DONE]"
    blocks = raw.decode("utf-8").split("\n\n")
    assert blocks[-2:] == ["data: [DONE]", ""]
    payloads = []
    for block in blocks[:-2]:
        assert block.startswith("data: ") and "\n" not in block, block
        payloads.append(block.removeprefix("data: "))
    events = [json.loads(payload) for payload in payloads]
    text, finish, usage = "", None, None
    calls: dict[int, dict[str, str]] = {}
    for event in events:
        if event["choices"] == [] and event.get("usage"):
            usage = (event["usage"]["prompt_tokens"], event["usage"]["completion_tokens"])
        for choice in event["choices"]:
            delta = choice["delta"]
            text += delta.get("content") or ""
            for piece in delta.get("tool_calls") or []:
                if "id" in piece:  # the first delta of a call
                    calls[piece["index"]] = {
                        "id": piece["id"],
                        "name": piece["function"]["name"],
                        "arguments": piece["function"].get("arguments", ""),
                    }
                else:
                    calls[piece["index"]]["arguments"] += piece["function"]["arguments"]
            finish = choice["finish_reason"] or finish
    return Transcript(payloads, events, text, finish, usage, [calls[i] for i in sorted(calls)])


# The server ----------------------------------------------------------------------------------
@dataclass
class Recorded:
    method: str
    path: str
    body: Any


def pieces(data: bytes, split: str) -> Iterator[bytes]:
    if split == "events":  # as vLLM writes them: one event per write
        for event in data.split(b"\n\n")[:-1]:
            yield event + b"\n\n"
    else:  # every 5 bytes: lines, JSON and UTF-8 characters cut across HTTP chunks
        for start in range(0, len(data), 5):
            yield data[start : start + 5]


def vllm_handler(case: Case, log: list[Recorded], split: str) -> type[BaseHTTPRequestHandler]:
    class VLLMHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            log.append(Recorded("GET", self.path, None))
            if self.path != "/v1/models":
                self._json(404, b'{"detail":"Not Found"}')
                return
            card = {
                "id": case.model,
                "object": "model",
                "created": 1752571300,
                "owned_by": "vllm",
                "root": case.model,
                "parent": None,
                "max_model_len": 32768,
            }
            self._json(200, json.dumps({"object": "list", "data": [card]}).encode())

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length))
            log.append(Recorded("POST", self.path, body))
            if self.path != "/v1/chat/completions":
                self._json(404, b'{"detail":"Not Found"}')
            elif not body.get("stream"):
                self._json(200, case.non_streamed or b"{}")
            else:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream; charset=utf-8")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for piece in pieces(case.sse, split):
                    self.wfile.write(b"%X\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

        def _json(self, status: int, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return VLLMHandler


def backend_at(url: str) -> GatewayBackend:
    # No model configured: the backend takes the first one /v1/models lists, as against vLLM.
    return GatewayBackend("vllm", f"{url}/v1", read_timeout=10, max_retries=0)


def assert_calls(got: list[ToolCall], case: Case, ids: list[str]) -> None:
    assert [(call.name, call.parsed_arguments()) for call in got] == case.calls
    assert [call.id for call in got] == ids
    for call in got:
        assert isinstance(call.arguments, str)
        assert json.loads(call.arguments) == call.parsed_arguments()


# The fixtures are vLLM's format --------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.stem)
def test_fixture_is_vllm_chunk_format(case: Case) -> None:
    t = read_transcript(case.sse)
    assert (t.text, t.finish_reason, t.usage) == (case.text, case.finish_reason, case.usage)
    assert [(call["name"], json.loads(call["arguments"])) for call in t.calls] == case.calls

    # pydantic's model_dump_json: compact, non-ASCII kept as is, one event per line
    for payload, event in zip(t.payloads, t.events, strict=True):
        assert payload == json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    prefix = "chat-" if case.vllm.startswith("0.6") else "chatcmpl-"
    first = t.events[0]
    assert re.fullmatch(prefix + "[0-9a-f]{32}", first["id"])
    for event in t.events:
        assert list(event)[:5] == ["id", "object", "created", "model", "choices"]
        assert (event["id"], event["created"], event["model"]) == (
            first["id"],
            first["created"],
            case.model,
        )
        assert event["object"] == "chat.completion.chunk"
    assert first["choices"] == [
        {
            "index": 0,
            "delta": {"role": "assistant", "content": ""},
            "logprobs": None,
            "finish_reason": None,
        }
    ]

    with_choices = [event for event in t.events if event["choices"]]
    finishing = [event for event in with_choices if event["choices"][0]["finish_reason"]]
    assert finishing == [with_choices[-1]], "exactly one finish reason, on the last choice"
    for event in with_choices:
        (choice,) = event["choices"]
        keys = ["index", "delta", "logprobs", "finish_reason"]
        assert list(choice) == ([*keys, "stop_reason"] if event in finishing else keys)
        assert choice["logprobs"] is None
        if case.usage_style == "absent":
            assert "usage" not in event
        elif case.usage_style == "null":
            assert event["usage"] is None
        else:  # continuous_usage_stats: running totals on every chunk
            usage = event["usage"]
            assert list(usage) == ["prompt_tokens", "total_tokens", "completion_tokens"]
            assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    if case.usage_style == "continuous":
        running = [event["usage"]["completion_tokens"] for event in with_choices]
        assert running == sorted(running) and running[0] == 0

    # tool-call deltas: the first of a call names it, later ones carry argument fragments
    seen: set[int] = set()
    for event in with_choices:
        for piece in event["choices"][0]["delta"].get("tool_calls", []):
            if piece["index"] not in seen:
                seen.add(piece["index"])
                assert list(piece) == ["id", "type", "index", "function"]
                assert re.fullmatch("chatcmpl-tool-[0-9a-f]{32}", piece["id"])
                assert piece["type"] == "function" and list(piece["function"]) == ["name"]
            else:
                assert list(piece) == ["index", "function"]
                assert list(piece["function"]) == ["arguments"]
    assert seen == set(range(len(case.calls)))

    last = t.events[-1]
    if case.usage is None:
        assert last["choices"] and not any("usage" in event for event in t.events)
    else:  # the usage-only chunk vLLM adds for stream_options.include_usage
        assert last["choices"] == [] and list(last) == [*list(first)[:5], "usage"]
        usage = last["usage"]
        assert list(usage) == ["prompt_tokens", "total_tokens", "completion_tokens"]
        assert usage["total_tokens"] == sum(case.usage)


# stream() ------------------------------------------------------------------------------------
@pytest.mark.parametrize("split", ["events", "bytes"])
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.stem)
async def test_stream_replays_transcript(case: Case, split: str) -> None:
    t = read_transcript(case.sse)
    log: list[Recorded] = []
    with serving(vllm_handler(case, log, split)) as url:
        backend = backend_at(url)
        try:
            chunks: list[Chunk] = [chunk async for chunk in backend.stream(case.request())]
        finally:
            await backend.aclose()

    *texts, last = chunks
    assert all(c.text and not c.finish_reason and not c.tool_calls for c in texts)
    assert "".join(c.text for c in texts) == t.text == case.text
    assert last.text == ""
    assert last.finish_reason == t.finish_reason == case.finish_reason
    # Without a usage chunk the gateway reports zeros (StreamAssembler.finish), not an estimate.
    assert last.usage == Usage(*(case.usage or (0, 0)))
    assert_calls(last.tool_calls, case, [call["id"] for call in t.calls])
    assert [call.arguments for call in last.tool_calls] == [call["arguments"] for call in t.calls]

    assert [(r.method, r.path) for r in log] == [
        ("GET", "/v1/models"),
        ("POST", "/v1/chat/completions"),
    ]
    body = log[1].body
    assert body["model"] == case.model
    assert body["messages"] == [{"role": "user", "content": case.prompt}]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body.get("tools") == case.tools
    assert body.get("max_tokens") == case.max_tokens


# chat(): the same request, not streamed ------------------------------------------------------
@pytest.mark.parametrize("case", CHAT_CASES, ids=lambda case: case.stem)
async def test_chat_replays_non_streamed_reply(case: Case) -> None:
    assert case.non_streamed is not None
    reply = json.loads(case.non_streamed)
    (choice,) = reply["choices"]
    ids = [call["id"] for call in choice["message"]["tool_calls"]]
    log: list[Recorded] = []
    with serving(vllm_handler(case, log, "events")) as url:
        backend = backend_at(url)
        try:
            result = await backend.chat(case.request())
        finally:
            await backend.aclose()

    assert result.text == (choice["message"]["content"] or "") == case.chat_text
    assert result.finish_reason == choice["finish_reason"] == case.finish_reason
    assert result.usage == Usage(*(case.usage or (0, 0)))
    assert result.model == reply["model"] == case.model
    assert_calls(result.tool_calls, case, ids)

    body = log[-1].body
    assert body["stream"] is False and "stream_options" not in body
    assert body["model"] == case.model
    assert body.get("tools") == case.tools
