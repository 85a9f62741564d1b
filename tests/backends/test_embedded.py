"""The embedded backend in this process, on the tiny model: chat, stream, JSON schema output,
cancellation, and one shared model for concurrent callers.

The tiny model is weak: the assertions are on structure, never on wording."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from backends import embedded
from backends.base import ChatRequest, Chunk
from backends.embedded import EmbeddedBackend
from tests.backends.shapes import PERSON_SCHEMA
from tests.conftest import TINY_MODEL
from tests.conftest import TINY_THREADS as THREADS

pytestmark = pytest.mark.slow

LONG_STORY = (
    "Write a very long story about a dragon who learns to bake bread. "
    "Describe every day of its life in detail."
)


def ask(text: str, **kwargs: object) -> ChatRequest:
    kwargs.setdefault("temperature", 0)
    kwargs.setdefault("max_tokens", 16)
    return ChatRequest(messages=[{"role": "user", "content": text}], **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def backend(models_dir: Path) -> EmbeddedBackend:
    return EmbeddedBackend(
        "embedded", TINY_MODEL, threads=THREADS, n_ctx=2048, models_dir=models_dir
    )


async def worker_idle(loaded: embedded.LoadedModel, within_s: float) -> None:
    """Returns once the model's worker thread has nothing left to do."""
    await asyncio.wait_for(asyncio.wrap_future(loaded.worker.submit(lambda: None)), within_s)


async def test_list_models(backend: EmbeddedBackend) -> None:
    assert await backend.list_models() == [TINY_MODEL]


async def test_chat(backend: EmbeddedBackend) -> None:
    result = await backend.chat(ask("Say hello in three words."))
    assert result.text.strip()
    assert result.finish_reason in ("stop", "length")
    assert result.model == TINY_MODEL
    assert result.usage.prompt_tokens > 0
    assert 0 < result.usage.completion_tokens <= 16
    assert result.tool_calls == []


async def test_max_tokens_ends_with_length(backend: EmbeddedBackend) -> None:
    result = await backend.chat(ask(LONG_STORY, max_tokens=5))
    assert result.finish_reason == "length"
    assert 0 < result.usage.completion_tokens <= 5
    assert result.text


async def test_stream(backend: EmbeddedBackend) -> None:
    chunks: list[Chunk] = [c async for c in backend.stream(ask("Say hello in three words."))]
    assert len(chunks) >= 2
    *body, last = chunks
    text = "".join(c.text for c in body)
    assert text.strip()
    assert all(c.text and c.finish_reason is None and c.usage is None for c in body)
    assert last.text == ""
    assert last.finish_reason in ("stop", "length")
    assert last.usage is not None
    assert last.usage.prompt_tokens > 0
    assert 0 < last.usage.completion_tokens <= 16
    # At temperature 0 the stream and the whole reply are the same text.
    assert (await backend.chat(ask("Say hello in three words."))).text == text


async def test_json_schema_output(backend: EmbeddedBackend) -> None:
    result = await backend.chat(
        ask(
            "Describe a person named Ann who is 30 years old, as JSON.",
            max_tokens=96,
            json_schema=PERSON_SCHEMA,
        )
    )
    assert result.finish_reason == "stop", result.text
    data = result.json()
    assert isinstance(data, dict)
    assert set(PERSON_SCHEMA["required"]) <= data.keys()
    assert isinstance(data["name"], str)
    assert isinstance(data["age"], int)


async def test_forced_tool_call(backend: EmbeddedBackend) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "maxLength": 24}},
                "required": ["city"],
            },
        },
    }
    result = await backend.chat(
        ask(
            "What is the weather in Paris?",
            max_tokens=48,
            tools=[tool],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
        )
    )
    assert [call.name for call in result.tool_calls] == ["get_weather"], result
    assert "city" in result.tool_calls[0].parsed_arguments()
    assert result.finish_reason == "tool_calls"
    assert result.text == ""
    assert result.usage.completion_tokens > 0


async def test_cancel_mid_stream_then_chat_again(
    backend: EmbeddedBackend, tiny_model_path: Path
) -> None:
    first_chunk = asyncio.Event()
    received: list[Chunk] = []

    async def consume() -> None:
        async for chunk in backend.stream(ask(LONG_STORY, max_tokens=400)):
            received.append(chunk)
            first_chunk.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_chunk.wait(), 60)
    loaded = embedded._loaded[(str(tiny_model_path), 2048, THREADS)]
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5)
    assert task in done and task.cancelled()
    assert received and all(c.finish_reason is None for c in received)
    # The worker stops between tokens: it is free again long before 400 tokens could be made,
    # and the context holds far fewer than the 400 tokens the request allowed.
    await worker_idle(loaded, 5)
    assert loaded.llama.n_tokens < 200

    result = await asyncio.wait_for(backend.chat(ask("Say hi.", max_tokens=4)), 60)
    assert result.text
    assert result.finish_reason in ("stop", "length")


async def test_closing_a_stream_early_stops_generation(
    backend: EmbeddedBackend, tiny_model_path: Path
) -> None:
    stream = backend.stream(ask(LONG_STORY, max_tokens=400))
    first = await anext(stream)
    assert first.text
    await stream.aclose()
    loaded = embedded._loaded[(str(tiny_model_path), 2048, THREADS)]
    await worker_idle(loaded, 5)
    assert loaded.llama.n_tokens < 200
    assert (await backend.chat(ask("Say hi.", max_tokens=4))).text


async def test_concurrent_calls_share_one_model(
    models_dir: Path, tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A context size no other test uses, so this test sees the model being loaded.
    key = (str(tiny_model_path), 1024, THREADS)
    embedded._loaded.pop(key, None)
    loads: list[Path] = []
    real_load = embedded.load_llama

    def counting_load(path: Path, *args: object, **kwargs: object) -> object:
        loads.append(path)
        return real_load(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(embedded, "load_llama", counting_load)
    first, second = (
        EmbeddedBackend(name, TINY_MODEL, threads=THREADS, n_ctx=1024, models_dir=models_dir)
        for name in ("one", "two")
    )
    results = await asyncio.wait_for(
        asyncio.gather(
            first.chat(ask("Say hello in three words.")),
            second.chat(ask("Name a colour.")),
        ),
        120,
    )
    for result in results:
        assert result.text.strip()
        assert result.finish_reason in ("stop", "length")
        assert result.usage.completion_tokens > 0
    assert loads == [tiny_model_path]
    assert [k for k in embedded._loaded if k[:2] == key[:2]] == [key]
    # Both backends resolve to the one loaded model.
    loaded = embedded._loaded[key]
    assert (await first._model(TINY_MODEL)) is loaded
    assert (await second._model(TINY_MODEL)) is loaded
    assert loads == [tiny_model_path]
