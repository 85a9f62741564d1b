"""The embedded backend in this process, on the tiny model: chat, stream, JSON schema output,
cancellation, one shared model for concurrent callers, requests decoded together, and prompts
that start from the cache.

The tiny model is weak: the assertions are on structure, never on wording."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from myninja.backends import embedded
from myninja.backends.base import ChatRequest, Chunk
from myninja.backends.embedded import EmbeddedBackend
from myninja.errors import ModelError
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


def key_of(path: Path, n_ctx: int = 2048) -> tuple[str, int, int, int, bool]:
    return (str(path), n_ctx, THREADS, 4, True)


def count_loads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The paths the embedded backend loads from now on, in order."""
    loads: list[Path] = []
    real_load = embedded.load_llama

    def counting_load(path: Path, *args: object, **kwargs: object) -> object:
        loads.append(path)
        return real_load(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(embedded, "load_llama", counting_load)
    return loads


async def engine_idle(loaded: embedded.LoadedModel, within_s: float) -> None:
    """Returns once the model's engine has no job queued or running."""
    async with asyncio.timeout(within_s):
        while loaded.engine.busy():  # noqa: ASYNC110 - the engine is a thread: nothing to await
            await asyncio.sleep(0.01)


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


async def test_a_reply_stuck_in_a_loop_ends_before_its_cap(
    backend: EmbeddedBackend, tiny_model_path: Path
) -> None:
    # Greedy, the tiny model tells the dragon's story until one sentence repeats for good.
    result = await backend.chat(ask(LONG_STORY, max_tokens=1500))
    assert result.finish_reason == "length"
    assert result.usage.completion_tokens < 1500
    assert result.text.count(result.text[-40:]) >= 3  # it ended in the repeated part
    embedded._loaded[key_of(tiny_model_path)].engine.forget()  # the next tests start clean


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
    loaded = embedded._loaded[key_of(tiny_model_path)]
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5)
    assert task in done and task.cancelled()
    assert received and all(c.finish_reason is None for c in received)
    # The engine drops it between steps: it is free again long before 400 tokens could be
    # made, and no sequence holds anywhere near the 400 tokens the request allowed.
    await engine_idle(loaded, 5)
    assert max(loaded.engine.held_tokens()) < 200

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
    loaded = embedded._loaded[key_of(tiny_model_path)]
    await engine_idle(loaded, 5)
    assert max(loaded.engine.held_tokens()) < 200
    assert (await backend.chat(ask("Say hi.", max_tokens=4))).text


async def test_concurrent_calls_share_one_model(
    models_dir: Path, tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A context size no other test uses, so this test sees the model being loaded.
    key = key_of(tiny_model_path, 1024)
    embedded._loaded.pop(key, None)
    loads = count_loads(monkeypatch)
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
    # They were decoded together: fewer steps than the two replies' tokens one after another.
    loaded = embedded._loaded[key]
    generated = sum(r.usage.completion_tokens for r in results)
    assert loaded.engine.steps < generated
    # Both backends resolve to the one loaded model.
    loaded = embedded._loaded[key]
    assert (await first._model(TINY_MODEL)) is loaded
    assert (await second._model(TINY_MODEL)) is loaded
    assert loads == [tiny_model_path]


async def test_a_batch_gives_each_request_what_it_alone_would_get(backend: EmbeddedBackend) -> None:
    prompts = ["Name three fruits.", "Count from one to five.", "What colour is the sky?"]
    alone = [(await backend.chat(ask(p, max_tokens=24))).text for p in prompts]
    together = await asyncio.gather(*(backend.chat(ask(p, max_tokens=24)) for p in prompts))
    # Greedy decoding: the same reply whether a request ran alone or beside others. A batch
    # may round the last bits of a logit differently, and a tiny model has near ties, so one
    # reply in three may part ways; sequences that saw each other's tokens would all differ.
    same = [b.text == one for one, b in zip(alone, together, strict=True)]
    assert sum(same) >= 2, (alone, [b.text for b in together])


async def test_a_preloaded_model_is_the_one_the_first_call_uses(
    models_dir: Path, tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = key_of(tiny_model_path, 1280)  # a context size no other test uses
    embedded._loaded.pop(key, None)
    loads = count_loads(monkeypatch)
    backend = EmbeddedBackend("pre", TINY_MODEL, threads=THREADS, n_ctx=1280, models_dir=models_dir)
    thread = backend.preload()
    assert thread.daemon
    result = await asyncio.wait_for(backend.chat(ask("Name a colour.")), 120)
    assert result.text.strip()
    thread.join(60)
    assert loads == [tiny_model_path]  # loaded once, by the thread or by the call waiting on it
    assert (await backend._model(TINY_MODEL)) is embedded._loaded[key]


def test_loading_leaves_stdout_and_stderr_alone(
    tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    # A model loads in a thread while the command prints: redirecting the process's streams
    # (llama-cpp-python's verbose=False) swallowed `ask`'s answer.
    import os
    import sys

    redirected: list[int] = []
    real_dup2 = os.dup2
    monkeypatch.setattr(
        os, "dup2", lambda fd, to, *a: (redirected.append(to), real_dup2(fd, to, *a))[1]
    )
    stdout = sys.stdout
    embedded.shared_model(tiny_model_path, 1152, THREADS, disk=None)
    assert redirected == [] and sys.stdout is stdout
    assert capfd.readouterr().err == ""  # llama.cpp's warnings stay quiet


async def test_a_preload_that_fails_leaves_the_error_to_the_call(models_dir: Path) -> None:
    backend = EmbeddedBackend("pre", "no-such-model", threads=THREADS, models_dir=models_dir)
    backend.preload().join(30)
    with pytest.raises(ModelError):
        await backend.chat(ask("Hi"))


async def test_a_repeated_prompt_starts_from_the_cache(
    backend: EmbeddedBackend, tiny_model_path: Path
) -> None:
    system = "You are a careful assistant. " * 40
    request = ChatRequest(
        [{"role": "system", "content": system}, {"role": "user", "content": "Say hi."}],
        temperature=0,
        max_tokens=4,
    )
    first = await backend.chat(request)
    loaded = embedded._loaded[key_of(tiny_model_path)]
    steps = loaded.engine.steps
    follow_up = ChatRequest(
        [
            *request.messages,
            {"role": "assistant", "content": first.text},
            {"role": "user", "content": "Again."},
        ],
        temperature=0,
        max_tokens=4,
    )
    second = await backend.chat(follow_up)
    assert second.usage.prompt_tokens > first.usage.prompt_tokens > 200
    # The long system prompt was not evaluated again: one decode call took the short new
    # part of the prompt (a prompt of 200+ tokens from nothing needs at least one call per 512
    # tokens too, so the count alone proves little; the reused tokens do).
    assert loaded.engine.steps - steps <= 1 + second.usage.completion_tokens
    assert loaded.engine.last_reused >= first.usage.prompt_tokens - 1


async def test_a_prompt_longer_than_the_context_is_a_400(backend: EmbeddedBackend) -> None:
    with pytest.raises(ModelError) as caught:
        await backend.chat(ask("word " * 3000, max_tokens=4))
    assert caught.value.status == 400
    assert "exceed context window" in str(caught.value)


async def test_a_long_system_prompt_is_kept_on_disk_for_the_next_process(
    models_dir: Path, tiny_model_path: Path
) -> None:
    system = "You answer questions about the sea, briefly and kindly. " * 12
    request = ChatRequest(
        [{"role": "system", "content": system}, {"role": "user", "content": "Name a fish."}],
        temperature=0,
        max_tokens=8,
    )
    # parallel=3 and 2: two models of their own, as two processes would have.
    first = EmbeddedBackend("a", TINY_MODEL, threads=THREADS, models_dir=models_dir, parallel=3)
    before = set((models_dir / embedded.KV_CACHE).glob("*.kv"))
    one = await first.chat(request)
    saved = set((models_dir / embedded.KV_CACHE).glob("*.kv")) - before
    assert len(saved) == 1
    second = EmbeddedBackend("b", TINY_MODEL, threads=THREADS, models_dir=models_dir, parallel=2)
    two = await second.chat(request)
    loaded = await second._model(TINY_MODEL)
    assert loaded is not await first._model(TINY_MODEL)
    # Its head (the system prompt) came from the file: only the question was evaluated.
    assert loaded.engine.last_reused > 100
    assert two.text == one.text
    # A file that does not hold what its name says is not used, and is replaced.
    (path,) = saved
    path.write_bytes(b"not a state")
    third = EmbeddedBackend("c", TINY_MODEL, threads=THREADS, models_dir=models_dir, parallel=1)
    assert (await third.chat(request)).text == one.text
    assert (await third._model(TINY_MODEL)).engine.last_reused == 0
    assert path.stat().st_size > 1000


async def test_prompt_lookup_gives_what_plain_decoding_gives_in_fewer_steps(
    models_dir: Path, tiny_model_path: Path
) -> None:
    passage = (
        "The river rises in the hills above the town, runs past the old mill and the church, "
        "and meets the sea at a wide sandy bay where the fishing boats are kept in winter."
    )
    request = ChatRequest(
        [{"role": "user", "content": f"Repeat this text exactly:\n\n{passage}"}],
        temperature=0,
        max_tokens=48,
    )

    def make(lookup: int) -> EmbeddedBackend:
        return EmbeddedBackend(
            "embedded", TINY_MODEL, threads=THREADS, n_ctx=2048, models_dir=models_dir,
            lookup=lookup,
        )  # fmt: skip

    plain = await make(0).chat(request)
    engine = embedded._loaded[key_of(tiny_model_path)].engine
    engine.forget()  # the second run starts from nothing too
    await engine_idle(embedded._loaded[key_of(tiny_model_path)], 30)
    steps, accepted = engine.steps, engine.accepted
    drafted = await make(8).chat(request)
    assert drafted.text == plain.text  # greedy: a draft only ever keeps what decoding picks
    assert engine.accepted - accepted > 0
    assert engine.steps - steps < plain.usage.completion_tokens
