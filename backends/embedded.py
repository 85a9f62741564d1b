"""The embedded backend: llama.cpp in this process, through llama-cpp-python.

One loaded model per (file, context size, threads) is shared by every caller in the process.
Generation runs on that model's single worker thread, so concurrent callers queue in order
instead of loading a second copy; tokens cross into asyncio with `call_soon_threadsafe`.
Cancelling the consumer sets a flag the worker checks between tokens.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import re
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends.base import ChatRequest, ChatResult, Chunk, ToolCall, Usage, collect
from backends.models import resolve_model
from backends.openai_wire import StreamAssembler
from backends.worker_stream import Emit, WorkerFailed, from_worker
from myninja.errors import ModelError

_TAGGED_CALL = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.DOTALL)


def import_llama_cpp() -> Any:
    """Import llama_cpp the safe way: OpenMP threads must sleep when idle, or decode speed
    collapses under load, and the variable is read only at import."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import llama_cpp
    except ImportError as exc:
        raise ModelError(
            "the embedded backend needs llama-cpp-python, which is not installed",
            hint="pip install 'myninja[embedded]' (or `make install`)",
        ) from exc
    return llama_cpp


@dataclass
class LoadedModel:
    llama: Any
    path: Path
    worker: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="llama")
    )


_loaded: dict[tuple[str, int, int], LoadedModel] = {}
_load_lock = threading.Lock()


@atexit.register
def _close_models() -> None:
    """Free the loaded models while the interpreter still works: left to llama-cpp-python's
    destructor at shutdown, freeing one prints a traceback ("'NoneType' is not callable")."""
    for loaded in _loaded.values():
        with contextlib.suppress(Exception):
            loaded.llama.close()
    _loaded.clear()


def load_llama(path: Path, n_ctx: int, threads: int, seed: int = 0) -> Any:
    """A llama_cpp.Llama for `path`, with extra (repacking) buffer types off.

    The extra buffer types are where llama.cpp picks AMX kernels at run time; on virtual
    machines that advertise AMX but fault on it, loading dies with "Illegal instruction".
    The build flags already leave AMX out; this is the second line of defence."""
    llama_cpp = import_llama_cpp()
    low = llama_cpp.llama_cpp
    original = low.llama_model_default_params

    def params_without_extra_bufts() -> Any:
        params = original()
        if hasattr(params, "use_extra_bufts"):
            params.use_extra_bufts = False
        return params

    low.llama_model_default_params = params_without_extra_bufts
    try:
        return llama_cpp.Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=threads,
            n_threads_batch=threads,
            seed=seed,
            verbose=False,
        )
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"cannot load model {path}: {exc}") from exc
    finally:
        low.llama_model_default_params = original


def shared_model(path: Path, n_ctx: int, threads: int, seed: int = 0) -> LoadedModel:
    key = (str(path), n_ctx, threads)
    with _load_lock:
        if key not in _loaded:
            _loaded[key] = LoadedModel(load_llama(path, n_ctx, threads, seed), path)
        return _loaded[key]


class EmbeddedBackend:
    def __init__(
        self,
        name: str = "embedded",
        model: str = "qwen2.5-coder-1.5b",
        *,
        threads: int | None = None,
        n_ctx: int = 4096,
        seed: int = 0,
        models_dir: Path | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self.threads = threads or os.cpu_count() or 1
        self.n_ctx = n_ctx
        self.seed = seed
        self.models_dir = models_dir

    async def list_models(self) -> list[str]:
        return [self.model]

    async def aclose(self) -> None:
        """The loaded model is shared by the process and outlives one backend object."""

    async def _model(self, name: str) -> LoadedModel:
        path = await asyncio.to_thread(resolve_model, name, self.models_dir)
        return await asyncio.to_thread(shared_model, path, self.n_ctx, self.threads, self.seed)

    async def chat(self, request: ChatRequest) -> ChatResult:
        return await collect(self.stream(request), request.model or self.model)

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        model_name = request.model or self.model
        loaded = await self._model(model_name)
        kwargs, forced_union = self._llama_kwargs(request)

        def produce(emit: Emit, stopped: threading.Event) -> None:
            stream: Iterator[dict[str, Any]] = loaded.llama.create_chat_completion(
                stream=True, **kwargs
            )
            for obj in stream:
                if stopped.is_set():
                    return
                emit(obj)
            emit(("n_tokens", loaded.llama.n_tokens))

        assembler = StreamAssembler()
        text_parts: list[str] = []
        generated, context_tokens = 0, 0
        # aclosing: a consumer that stops reading stops the worker now, not at garbage collection.
        try:
            async with contextlib.aclosing(from_worker(loaded.worker, produce)) as items:
                async for item in items:
                    if isinstance(item, tuple):
                        context_tokens = item[1]
                        continue
                    generated += _carries_output(item)
                    chunk = assembler.feed(item)
                    if chunk is None:
                        continue
                    chunk.finish_reason = None  # the closing chunk below carries it, once
                    if chunk.text:
                        text_parts.append(chunk.text)
                        yield chunk
        except WorkerFailed as failed:
            error = failed.error
            if isinstance(error, ValueError) and not text_parts:
                # llama-cpp-python's word for a request it cannot serve: a prompt longer
                # than the context, a tool_choice naming no tool, a schema it cannot use.
                raise ModelError(f"{model_name}: {error}", status=400) from error
            raise ModelError(
                f"generation failed: {error}", partial_text="".join(text_parts)
            ) from error
        closing = assembler.finish()
        # The context holds the prompt and every generated token but the last one when
        # generation stopped at the length limit (it was sampled, never evaluated).
        evaluated = generated - (closing.finish_reason == "length")
        closing.usage = Usage(max(context_tokens - evaluated, 0), generated)
        if not closing.tool_calls and request.tools:
            closing.tool_calls = _calls_from_text("".join(text_parts), forced_union)
            if closing.tool_calls:
                closing.finish_reason = "tool_calls"
        yield closing

    def _llama_kwargs(self, request: ChatRequest) -> tuple[dict[str, Any], bool]:
        kwargs: dict[str, Any] = {
            "messages": request.messages,
            "temperature": 0.2 if request.temperature is None else request.temperature,
            "max_tokens": request.max_tokens,
            "stop": request.stop or [],
            "seed": request.seed if request.seed is not None else self.seed,
        }
        forced_union = False
        schema = request.json_schema
        if request.tools and request.tool_choice != "none":
            kwargs["tools"] = request.tools
            choice = request.tool_choice
            if choice == "required" and len(request.tools) == 1:
                choice = {"type": "function", "function": request.tools[0]["function"]}
            if isinstance(choice, dict):
                kwargs["tool_choice"] = choice
            elif choice == "required":
                schema, forced_union = _tool_union_schema(request.tools), True
        if schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": schema}
        return kwargs, forced_union


def _carries_output(obj: dict[str, Any]) -> bool:
    """Whether a streamed chunk holds generated output: text, or a piece of a tool call."""
    return any(
        (choice.get("delta") or {}).get("content") or (choice.get("delta") or {}).get("tool_calls")
        for choice in obj.get("choices") or []
    )


def _tool_union_schema(tools: list[dict[str, Any]]) -> dict[str, Any]:
    """A schema whose every instance is a call of one of the tools."""
    options = []
    for tool in tools:
        fn = tool["function"]
        options.append(
            {
                "type": "object",
                "properties": {
                    "name": {"const": fn["name"]},
                    "arguments": fn.get("parameters") or {"type": "object"},
                },
                "required": ["name", "arguments"],
            }
        )
    return {"anyOf": options}


def _calls_from_text(text: str, forced_union: bool) -> list[ToolCall]:
    """Tool calls a model wrote as text: Hermes/Qwen `<tool_call>` tags, or our forced union."""
    found = [m.group(1) for m in _TAGGED_CALL.finditer(text)]
    if forced_union:
        found = [text]
    calls = []
    for raw in found:
        try:
            obj = json.loads(raw)
        except ValueError:
            continue
        if isinstance(obj, dict) and isinstance(obj.get("name"), str):
            arguments = obj.get("arguments", {})
            calls.append(
                ToolCall(f"call_{uuid.uuid4().hex[:24]}", obj["name"], json.dumps(arguments))
            )
    return calls


@contextlib.contextmanager
def token_counter(model: str, models_dir: Path | None = None) -> Iterator[Callable[[str], int]]:
    """Counts tokens with a model's own tokenizer; only its vocabulary is loaded (fast, small).
    Closed on leaving the block (left to the garbage collector, llama.cpp's destructor can run
    after the interpreter has begun to tear itself down)."""
    llama_cpp = import_llama_cpp()
    path = resolve_model(model, models_dir)
    try:
        with _quiet_stderr():  # llama.cpp warns about the context a vocabulary never uses
            vocab = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"cannot load the vocabulary of {path}: {exc}") from exc

    def count(text: str) -> int:
        return len(vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    try:
        yield count
    finally:
        vocab.close()


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """File descriptor 2 to /dev/null for the block: C code writes there directly."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
