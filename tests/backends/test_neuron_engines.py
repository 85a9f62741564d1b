"""The Neuron engines of `serve` (tnx, nxdi) against doubles of their libraries.

Real transformers-neuronx / NxD Inference need Inferentia or Trainium; the doubles keep their
module paths, signatures, errors and streamer calls (tests/backends/neuron_double). Everything
on our side is real: the tokenizer and chat template, the worker thread, the compiled-artefact
cache on disk, the HTTP server."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from myninja.backends.base import ChatRequest
from myninja.backends.serve.neuron_cache import CompiledCache, NeuronShape, cache_key
from myninja.backends.serve.nxdi import NxdiEngine
from myninja.backends.serve.tnx import TnxEngine
from myninja.errors import ConfigError, ModelError, UsageError
from tests.backends.neuron_models import doubles, tokenizer_of, write_model_folder

__all__ = ["doubles"]  # the fixture, imported for pytest

USER = [{"role": "user", "content": "Say hello to the world."}]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model_folder(tmp_path_factory.mktemp("models") / "Llama-Double-8B-Instruct")


@pytest.fixture(scope="module")
def tokenizer(model_dir: Path) -> Any:
    return tokenizer_of(model_dir)


def ids(tokenizer: Any, text: str) -> list[int]:
    return tokenizer.encode(text, add_special_tokens=False)


def eot(tokenizer: Any) -> int:
    return tokenizer.convert_tokens_to_ids("<|eot|>")


@pytest.fixture
def tnx(doubles: dict[str, ModuleType], model_dir: Path) -> Iterator[TnxEngine]:
    engine = TnxEngine(model_dir, NeuronShape(tp_degree=24, amp="bf16", n_positions=512))
    yield engine
    engine.worker.shutdown(wait=True, cancel_futures=True)


def script(doubles: dict[str, ModuleType], reply: list[int], **extra: Any) -> None:
    doubles["tnx"].SCRIPT.update({"reply": reply, "delay": 0.0, "gate": None, **extra})


def samples(doubles: dict[str, ModuleType]) -> list[dict[str, Any]]:
    return [details for name, details in doubles["tnx"].CALLS if name == "sample"]


async def chunks_of(engine: Any, request: ChatRequest) -> list[Any]:
    return [chunk async for chunk in engine.stream(request)]


# -- prompt, streaming, stops ----------------------------------------------------------------


async def test_the_chat_template_builds_the_prompt_and_the_reply_streams_whole_characters(
    doubles: dict[str, ModuleType], tnx: TnxEngine, tokenizer: Any
) -> None:
    reply = "Hello, wörld 🙂!"
    script(doubles, [*ids(tokenizer, reply), eot(tokenizer)])
    chunks = await chunks_of(tnx, ChatRequest(USER, max_tokens=64))

    sent = samples(doubles)[0]["input_ids"]
    rendered = tokenizer.apply_chat_template(USER, tokenize=False, add_generation_prompt=True)
    assert tokenizer.decode(sent[0]) == rendered
    texts = [c.text for c in chunks if c.text]
    assert "".join(texts) == reply
    assert len(texts) > 3  # streamed, not one block
    assert all("\ufffd" not in t for t in texts)  # multi-byte characters are never split
    closing = chunks[-1]
    assert closing.finish_reason == "stop"
    assert closing.usage.prompt_tokens == len(sent[0])
    assert closing.usage.completion_tokens == len(ids(tokenizer, reply))


async def test_sampling_runs_in_one_worker_thread_and_requests_queue(
    doubles: dict[str, ModuleType], tnx: TnxEngine, tokenizer: Any
) -> None:
    script(doubles, [*ids(tokenizer, "abcdefgh"), eot(tokenizer)], delay=0.01)
    first, second = await asyncio.gather(
        tnx.chat(ChatRequest(USER, max_tokens=32)), tnx.chat(ChatRequest(USER, max_tokens=32))
    )
    assert first.text == second.text == "abcdefgh"
    runs = samples(doubles)
    assert {r["thread"] for r in runs} == {runs[0]["thread"]}
    assert runs[0]["thread"].startswith("neuron-tnx")
    assert runs[0]["thread"] != threading.current_thread().name
    assert runs[0]["ended"] <= runs[1]["t0"]  # one after the other, never overlapping


async def test_tokens_reach_the_caller_while_sample_is_still_running(
    doubles: dict[str, ModuleType], tnx: TnxEngine, tokenizer: Any
) -> None:
    gate = threading.Semaphore(0)
    script(doubles, [*ids(tokenizer, "wxyz"), eot(tokenizer)], gate=gate)
    stream = tnx.stream(ChatRequest(USER, max_tokens=16))
    seen = []
    for _ in range(4):
        gate.release()  # let exactly one more token be sampled
        chunk = await asyncio.wait_for(anext(stream), 10)
        seen.append(chunk.text)
        assert samples(doubles)[0]["put"] == len(seen)  # in order, as each token is made
    gate.release()
    rest = [c async for c in stream]
    assert seen == list("wxyz")
    assert rest[-1].finish_reason == "stop"


async def test_closing_the_stream_stops_sample_mid_reply_and_frees_the_worker(
    doubles: dict[str, ModuleType], tnx: TnxEngine, tokenizer: Any
) -> None:
    script(doubles, ids(tokenizer, "x" * 300), delay=0.005)
    stream = tnx.stream(ChatRequest(USER, max_tokens=300))
    for _ in range(3):
        await anext(stream)
    await stream.aclose()
    script(doubles, [*ids(tokenizer, "next"), eot(tokenizer)])
    after = await asyncio.wait_for(tnx.chat(ChatRequest(USER, max_tokens=8)), 10)
    assert after.text == "next"
    stopped = samples(doubles)[0]
    assert "ended" not in stopped  # sample() was left by the streamer, not finished
    assert stopped["put"] < 20


async def test_cancelling_the_task_stops_sample(
    doubles: dict[str, ModuleType], tnx: TnxEngine, tokenizer: Any
) -> None:
    script(doubles, ids(tokenizer, "y" * 300), delay=0.005)
    task = asyncio.create_task(tnx.chat(ChatRequest(USER, max_tokens=300)))
    while not samples(doubles) or samples(doubles)[0]["put"] < 2:  # noqa: ASYNC110 (a thread's count)
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    script(doubles, [eot(tokenizer)])
    await asyncio.wait_for(tnx.chat(ChatRequest(USER, max_tokens=4)), 10)
    assert samples(doubles)[0]["put"] < 40


async def test_max_tokens_ends_with_length_and_sets_the_sequence_length(
    doubles: dict[str, ModuleType], tnx: TnxEngine, tokenizer: Any
) -> None:
    script(doubles, ids(tokenizer, "0123456789"))
    result = await tnx.chat(ChatRequest(USER, max_tokens=5))
    run = samples(doubles)[0]
    assert result.text == "01234"
    assert result.finish_reason == "length"
    assert result.usage.completion_tokens == 5
    assert run["sequence_length"] == len(run["input_ids"][0]) + 5


async def test_a_stop_string_cuts_the_reply_even_across_tokens(
    doubles: dict[str, ModuleType], tnx: TnxEngine, tokenizer: Any
) -> None:
    script(doubles, [*ids(tokenizer, "one two END three"), eot(tokenizer)])
    chunks = await chunks_of(tnx, ChatRequest(USER, max_tokens=64, stop=["END"]))
    assert "".join(c.text for c in chunks) == "one two "
    assert chunks[-1].finish_reason == "stop"


async def test_generation_config_eos_ids_stop_the_reply(
    doubles: dict[str, ModuleType], tnx: TnxEngine, tokenizer: Any
) -> None:
    end = tokenizer.convert_tokens_to_ids("<|end_of_text|>")  # only in generation_config.json
    script(doubles, [*ids(tokenizer, "done"), end, *ids(tokenizer, "leak")])
    result = await tnx.chat(ChatRequest(USER, max_tokens=32))
    assert result.text == "done"
    assert result.finish_reason == "stop"


async def test_temperature_zero_is_greedy_and_others_sample(
    doubles: dict[str, ModuleType], tnx: TnxEngine, tokenizer: Any
) -> None:
    script(doubles, [eot(tokenizer)])
    await tnx.chat(ChatRequest(USER, max_tokens=4, temperature=0))
    await tnx.chat(ChatRequest(USER, max_tokens=4, temperature=0.7))
    greedy, sampled = samples(doubles)
    assert (greedy["top_k"], greedy["temperature"]) == (1, 1.0)
    assert (sampled["top_k"], sampled["temperature"]) == (50, 0.7)
    assert greedy["eos"] == eot(tokenizer)


async def test_json_requests_are_prompted_with_the_schema_and_unfenced(
    doubles: dict[str, ModuleType], tnx: TnxEngine, tokenizer: Any
) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    script(doubles, [*ids(tokenizer, '```json\n{"city": "Oslo"}\n```'), eot(tokenizer)])
    chunks = await chunks_of(tnx, ChatRequest(USER, max_tokens=64, json_schema=schema))
    assert [c.text for c in chunks] == ['{"city": "Oslo"}']  # one checked piece, not a stream
    prompt = tokenizer.decode(samples(doubles)[0]["input_ids"][0])
    assert json.dumps(schema) in prompt


async def test_a_tool_call_written_as_json_becomes_a_tool_call(
    doubles: dict[str, ModuleType], tnx: TnxEngine, tokenizer: Any
) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    call = '{"name": "get_weather", "parameters": {"city": "Oslo"}}'
    script(doubles, [*ids(tokenizer, call), eot(tokenizer)])
    result = await tnx.chat(ChatRequest(USER, max_tokens=64, tools=[tool]))
    assert result.finish_reason == "tool_calls"
    assert [(c.name, c.parsed_arguments()) for c in result.tool_calls] == [
        ("get_weather", {"city": "Oslo"})
    ]
    assert '"get_weather"' in tokenizer.decode(samples(doubles)[0]["input_ids"][0])


# -- shapes ----------------------------------------------------------------------------------


async def test_a_request_longer_than_the_compiled_positions_is_a_400(
    doubles: dict[str, ModuleType], model_dir: Path
) -> None:
    engine = TnxEngine(model_dir, NeuronShape(n_positions=128))
    long = [{"role": "user", "content": "word " * 40}]
    with pytest.raises(ModelError) as raised:
        await engine.chat(ChatRequest(long, max_tokens=8))
    assert raised.value.status == 400
    assert "128 positions" in str(raised.value)
    with pytest.raises(ModelError) as too_many:
        await engine.chat(ChatRequest(USER, max_tokens=500))
    assert too_many.value.status == 400
    assert "max_tokens 500" in str(too_many.value)
    assert samples(doubles) == []  # refused before reaching the device


async def test_a_compiled_batch_is_filled_with_the_prompt_and_row_zero_answers(
    doubles: dict[str, ModuleType], model_dir: Path, tokenizer: Any
) -> None:
    engine = TnxEngine(model_dir, NeuronShape(batch_size=3))
    script(doubles, [*ids(tokenizer, "ok"), eot(tokenizer)])
    result = await engine.chat(ChatRequest(USER, max_tokens=8))
    rows = samples(doubles)[0]["input_ids"]
    assert result.text == "ok"
    assert len(rows) == 3 and rows[0] == rows[1] == rows[2]


async def test_a_batch_size_the_artefacts_were_not_compiled_for_is_a_clear_400(
    doubles: dict[str, ModuleType], tnx: TnxEngine, tokenizer: Any
) -> None:
    tnx.load()
    tnx.neuron_model.batch_sizes = [4]  # as if the artefacts had been built for batch 4
    with pytest.raises(ModelError) as raised:
        await tnx.chat(ChatRequest(USER, max_tokens=8))
    assert raised.value.status == 400
    assert "not compiled for batch_size : 1" in str(raised.value)


# -- compiled artefacts ----------------------------------------------------------------------


def test_cache_keys_change_with_every_part_of_the_shape_and_the_compiler(
    model_dir: Path, tmp_path: Path
) -> None:
    base = NeuronShape(tp_degree=24, amp="bf16", n_positions=4096, batch_size=1)
    key = cache_key("tnx", model_dir, base, "2.21.0")
    assert key == cache_key("tnx", model_dir, NeuronShape(24, "bf16", 4096, 1), "2.21.0")
    assert key.startswith("tnx-Llama-Double-8B-Instruct-tp24-bf16-n4096-b1-")
    variants = {
        cache_key("nxdi", model_dir, base, "2.21.0"),
        cache_key("tnx", model_dir, NeuronShape(32, "bf16", 4096, 1), "2.21.0"),
        cache_key("tnx", model_dir, NeuronShape(24, "f16", 4096, 1), "2.21.0"),
        cache_key("tnx", model_dir, NeuronShape(24, "bf16", 2048, 1), "2.21.0"),
        cache_key("tnx", model_dir, NeuronShape(24, "bf16", 4096, 2), "2.21.0"),
        cache_key("tnx", model_dir, base, "2.22.0"),
    }
    assert len(variants) == 6 and key not in variants
    other = write_model_folder(tmp_path / "Llama-Double-8B-Instruct")  # same name, elsewhere
    assert cache_key("tnx", other, base, "2.21.0") != key
    config = json.loads((other / "config.json").read_text())
    before = cache_key("tnx", other, base, "2.21.0")
    (other / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 3}))
    assert cache_key("tnx", other, base, "2.21.0") != before  # new weights' config, new key


def test_a_restart_loads_the_saved_artefacts_instead_of_compiling(
    doubles: dict[str, ModuleType], model_dir: Path, myninja_home: Path
) -> None:
    shape = NeuronShape(tp_degree=24, amp="bf16", n_positions=512)
    first = TnxEngine(model_dir, shape)
    first.load()
    calls = doubles["tnx"].CALLS
    assert first.loaded_from_cache is False
    assert ("to_neuron", "compiled") in calls
    entries = [p for p in (myninja_home / "data" / "neuron").iterdir()]
    assert [p.name.startswith("tnx-") for p in entries] == [True]
    assert (entries[0] / "double.neff").is_file()
    assert (entries[0] / "myninja-compiled.json").is_file()

    calls.clear()
    again = TnxEngine(model_dir, shape)
    again.load()
    assert again.loaded_from_cache is True
    assert [c[0] for c in calls] == ["from_pretrained", "load", "to_neuron"]
    assert calls[1] == ("load", str(entries[0]))
    assert calls[2] == ("to_neuron", "loaded")


def test_other_settings_or_another_compiler_compile_again(
    doubles: dict[str, ModuleType], model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    TnxEngine(model_dir, NeuronShape(tp_degree=24)).load()
    wider = TnxEngine(model_dir, NeuronShape(tp_degree=32))
    wider.load()
    assert wider.loaded_from_cache is False
    monkeypatch.setattr(doubles["neuronxcc"], "__version__", "2.99.0")
    upgraded = TnxEngine(model_dir, NeuronShape(tp_degree=24))
    upgraded.load()
    assert upgraded.loaded_from_cache is False
    compiled = [c for c in doubles["tnx"].CALLS if c == ("to_neuron", "compiled")]
    assert len(compiled) == 3


def test_a_compile_that_dies_leaves_no_entry_that_looks_finished(
    doubles: dict[str, ModuleType], model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = CompiledCache()

    def crash(self: Any, directory: str) -> None:
        Path(directory, "half.neff").write_text("partial")
        raise OSError("No space left on device")

    # A scoped patch: `monkeypatch.undo()` would also undo the test's own MYNINJA_HOME, and the
    # retry would then find (or leave) a compiled entry in the developer's real cache.
    with monkeypatch.context() as patched:
        patched.setattr(doubles["tnx"].LlamaForSampling, "save", crash)
        with pytest.raises(OSError):
            TnxEngine(model_dir, NeuronShape()).load()
    assert not cache.root.exists() or list(cache.root.iterdir()) == []
    retry = TnxEngine(model_dir, NeuronShape())
    retry.load()
    assert retry.loaded_from_cache is False
    assert [p.name for p in cache.root.iterdir() if p.name.startswith(".")] == []


# -- the library is missing or broken --------------------------------------------------------


async def test_a_missing_library_says_how_to_get_it(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("transformers_neuronx", "transformers_neuronx.llama.model"):
        monkeypatch.setitem(sys.modules, name, None)
    engine = TnxEngine(model_dir, NeuronShape())
    with pytest.raises(ConfigError) as raised:
        await engine.chat(ChatRequest(USER))
    line = raised.value.one_line()
    assert "needs transformers-neuronx, which is not installed" in line
    assert "pip.repos.neuron.amazonaws.com" in line and "Deep Learning AMI" in line
    assert raised.value.exit_code == 2


def test_a_placeholder_package_that_raises_on_import_is_named(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub = tmp_path / "stub" / "transformers_neuronx"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text(
        'raise RuntimeError("this package is a placeholder; install it from the Neuron '
        'repository")\n'
    )
    for name in [n for n in sys.modules if n.startswith("transformers_neuronx")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(stub.parent))
    with pytest.raises(ConfigError) as raised:
        TnxEngine(model_dir, NeuronShape()).load()
    assert "installed but cannot be imported (this package is a placeholder" in str(raised.value)


def test_a_folder_without_config_json_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as raised:
        TnxEngine(tmp_path, NeuronShape())
    assert "not a Hugging Face model folder" in str(raised.value)


# -- NxD Inference ---------------------------------------------------------------------------


async def test_nxdi_compiles_once_loads_after_and_streams_after_the_prompt(
    doubles: dict[str, ModuleType], model_dir: Path, tokenizer: Any
) -> None:
    doubles["nxdi_adapter"].SCRIPT.update({"reply": [*ids(tokenizer, "héllo"), eot(tokenizer)]})
    shape = NeuronShape(tp_degree=32, amp="bf16", n_positions=512, batch_size=2)
    engine = NxdiEngine(model_dir, shape)
    chunks = await chunks_of(engine, ChatRequest(USER, max_tokens=16, temperature=0))
    assert "".join(c.text for c in chunks) == "héllo"  # the prompt put first is not echoed
    assert chunks[-1].finish_reason == "stop"
    calls = doubles["nxdi"].CALLS
    names = [c[0] for c in calls]
    assert names == ["init", "compile", "load", "generate"]
    assert calls[0][1]["tp_degree"] == 32 and calls[0][1]["torch_dtype"] == "torch.bfloat16"
    assert calls[3][1]["do_sample"] is False and calls[3][1]["max_new_tokens"] == 16
    calls.clear()
    again = NxdiEngine(model_dir, shape)
    again.load()
    assert again.loaded_from_cache is True
    assert [c[0] for c in calls] == ["init", "load"]


# -- over HTTP: `myninja serve --engine tnx` -------------------------------------------------


@pytest.mark.slow
def test_serve_with_the_tnx_engine_answers_an_openai_client(
    model_dir: Path, tmp_path: Path
) -> None:
    from tests.conftest import server_env, start_serve, stop

    home = tmp_path / "serve-home"
    env = server_env(home, {"PYTHONPATH": str(Path(__file__).parent / "neuron_double")})
    server = start_serve(
        str(model_dir), "--engine", "tnx", "--tp-degree", "8", "--n-positions", "256", env=env
    )
    try:
        models = httpx.get(f"{server.base_url}/models", timeout=10).json()
        assert [m["id"] for m in models["data"]] == [model_dir.name]
        # The double replies with eos at once (no script in that process): an empty answer.
        body = {"messages": USER, "max_tokens": 8}
        answer = httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=30)
        assert answer.status_code == 200
        assert answer.json()["choices"][0]["finish_reason"] == "stop"
        too_long = {"messages": USER, "max_tokens": 1000}
        refused = httpx.post(f"{server.base_url}/chat/completions", json=too_long, timeout=30)
        assert refused.status_code == 400
        assert "256 positions" in refused.json()["error"]["message"]
    finally:
        stop(server)
    assert [p.name.startswith("tnx-") for p in (home / "data" / "neuron").iterdir()] == [True]


def test_serve_with_a_missing_library_exits_2_with_one_line(
    model_dir: Path, tmp_path: Path
) -> None:
    from tests.conftest import run_myninja

    done = run_myninja("serve", "--engine", "nxdi", "--model", str(model_dir), "--port", "0")
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) <= 2  # the "loading" note, then the error line
    assert "needs neuronx-distributed-inference, which is not installed" in lines[-1]
    assert "Traceback" not in done.stderr
