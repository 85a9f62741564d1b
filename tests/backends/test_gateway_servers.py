"""`GatewayBackend` against two real OpenAI-compatible servers hosting the tiny model: our own
`myninja serve` and llama-cpp-python's server (an independent implementation).

The tiny model is weak: the assertions are on structure (text present, finish reasons, usage,
JSON validity, required keys, tool names), never on wording."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from myninja.backends.base import ChatRequest, Chunk
from myninja.backends.gateway import GatewayBackend
from tests.backends.shapes import FORCE_WEATHER, PERSON_SCHEMA, WEATHER_TOOL
from tests.conftest import TINY_MODEL, ServerProcess

pytestmark = pytest.mark.slow

SERVERS = ["serve_tiny", "llama_cpp_server"]


def is_llama_cpp(server: ServerProcess) -> bool:
    return "llama_cpp.server" in server.proc.args


def ask(text: str, **kwargs: object) -> ChatRequest:
    kwargs.setdefault("temperature", 0)
    kwargs.setdefault("max_tokens", 16)
    return ChatRequest(messages=[{"role": "user", "content": text}], **kwargs)  # type: ignore[arg-type]


@pytest.fixture(params=SERVERS, ids=["serve", "llama_cpp"])
def server(request: pytest.FixtureRequest) -> ServerProcess:
    return request.getfixturevalue(request.param)


@pytest.fixture
async def gateway(server: ServerProcess) -> AsyncIterator[GatewayBackend]:
    backend = GatewayBackend("test", server.base_url, model=TINY_MODEL, read_timeout=60)
    yield backend
    await backend.aclose()


async def test_list_models(gateway: GatewayBackend) -> None:
    assert TINY_MODEL in await gateway.list_models()


async def test_model_taken_from_the_server_when_none_is_configured(server: ServerProcess) -> None:
    backend = GatewayBackend("test", server.base_url, read_timeout=60)
    try:
        result = await backend.chat(ask("Say hi.", max_tokens=4))
    finally:
        await backend.aclose()
    assert backend.model == TINY_MODEL
    assert result.text


async def test_chat(gateway: GatewayBackend) -> None:
    result = await gateway.chat(ask("Say hello in three words."))
    assert result.text.strip()
    assert result.finish_reason in ("stop", "length")
    assert result.usage.prompt_tokens > 0
    assert 0 < result.usage.completion_tokens <= 16
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens
    assert result.tool_calls == []
    assert result.model


async def test_stream(gateway: GatewayBackend, server: ServerProcess) -> None:
    chunks: list[Chunk] = [c async for c in gateway.stream(ask("Say hello in three words."))]
    assert len(chunks) >= 2, chunks
    *body, last = chunks
    text = "".join(c.text for c in chunks)
    assert text.strip()
    assert "".join(c.text for c in body) == text
    assert all(c.text for c in body)
    assert all(c.finish_reason is None and c.usage is None for c in body)
    assert last.finish_reason in ("stop", "length")
    assert last.usage is not None
    assert last.tool_calls == []
    if is_llama_cpp(server):
        # llama-cpp-python's server ignores stream_options.include_usage and sends no usage
        # in a stream; the gateway's last chunk then carries zero usage rather than none.
        assert last.usage.total_tokens == 0
        return
    assert last.usage.prompt_tokens > 0
    assert 0 < last.usage.completion_tokens <= 16


async def check_json_schema_output(gateway: GatewayBackend) -> None:
    request = ask(
        "Describe a person named Ann who is 30 years old, as JSON.",
        max_tokens=96,
        json_schema=PERSON_SCHEMA,
    )
    result = await gateway.chat(request)
    assert result.finish_reason == "stop", result.text
    data = result.json()
    assert isinstance(data, dict)
    assert set(PERSON_SCHEMA["required"]) <= data.keys()
    assert isinstance(data["name"], str)
    assert isinstance(data["age"], int)
    # The stream asks the same way (after a fallback, straight in the mode that worked).
    chunks = [c async for c in gateway.stream(request)]
    assert chunks[-1].finish_reason == "stop"
    streamed = json.loads("".join(c.text for c in chunks))
    assert set(PERSON_SCHEMA["required"]) <= streamed.keys()


async def test_json_schema_output(gateway: GatewayBackend, server: ServerProcess) -> None:
    """json_mode "auto": json_schema first, falling back to json_object + schema (llama.cpp's
    server refuses json_schema, with a 500)."""
    await check_json_schema_output(gateway)
    expected_mode = "json_object" if is_llama_cpp(server) else "auto"
    assert gateway._json_mode == expected_mode


async def test_json_object_with_schema_output(server: ServerProcess) -> None:
    """json_mode "json_object": the schema travels inside a json_object response format."""
    backend = GatewayBackend(
        "test", server.base_url, model=TINY_MODEL, read_timeout=60, json_mode="json_object"
    )
    try:
        await check_json_schema_output(backend)
    finally:
        await backend.aclose()


async def test_forced_tool_call(gateway: GatewayBackend) -> None:
    request = ask(
        "What is the weather in Paris?",
        max_tokens=64,
        tools=[WEATHER_TOOL],
        tool_choice=FORCE_WEATHER,
    )
    result = await gateway.chat(request)
    assert len(result.tool_calls) == 1, result
    call = result.tool_calls[0]
    assert call.name == "get_weather"
    assert call.id
    arguments = call.parsed_arguments()
    assert set(WEATHER_TOOL["function"]["parameters"]["required"]) <= arguments.keys()
    assert arguments["unit"] in ("celsius", "fahrenheit")


async def test_forced_tool_call_streamed(gateway: GatewayBackend) -> None:
    request = ask(
        "What is the weather in Paris?",
        max_tokens=64,
        tools=[WEATHER_TOOL],
        tool_choice=FORCE_WEATHER,
    )
    chunks = [c async for c in gateway.stream(request)]
    last = chunks[-1]
    assert [c.name for c in last.tool_calls] == ["get_weather"], chunks
    arguments = last.tool_calls[0].parsed_arguments()
    assert set(WEATHER_TOOL["function"]["parameters"]["required"]) <= arguments.keys()
    assert all(not c.tool_calls for c in chunks[:-1])


async def test_cancel_mid_stream_then_chat_again(gateway: GatewayBackend) -> None:
    request = ask(
        "Write a very long story about a dragon who learns to bake bread. "
        "Describe every day of its life in detail.",
        max_tokens=400,
    )
    first_chunk = asyncio.Event()
    received: list[Chunk] = []

    async def consume() -> None:
        async for chunk in gateway.stream(request):
            received.append(chunk)
            first_chunk.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_chunk.wait(), 60)
    task.cancel()
    # Cancellation must take effect promptly, not after the 400 tokens are generated.
    done, _ = await asyncio.wait({task}, timeout=5)
    assert task in done, "the stream did not stop within 5 s of being cancelled"
    assert task.cancelled()
    assert received and received[0].text
    assert all(c.finish_reason is None for c in received), "the stream ran to its end"

    result = await asyncio.wait_for(gateway.chat(ask("Say hi.", max_tokens=4)), 60)
    assert result.text
    assert result.finish_reason in ("stop", "length")
