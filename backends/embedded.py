"""The embedded backend: llama.cpp in this process, through llama-cpp-python.

One loaded model per (file, context size, threads, parallel) is shared by every caller in the
process. Its engine (backends/llama_batch.py) decodes the requests in flight together, one
sequence each, and starts each from the longest prompt prefix already in its cache; tokens
cross into asyncio with `call_soon_threadsafe`. A consumer that stops reading (or is
cancelled) cancels its request, which the engine drops before its next step.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import json
import os
import re
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from myninja import paths
from myninja.backends.base import ChatRequest, ChatResult, Chunk, ToolCall, Usage, collect
from myninja.backends.llama_batch import LLAMA_VERBOSE, BatchEngine, Finished, Job, Sampling
from myninja.backends.models import resolve_model
from myninja.errors import ModelError

KV_CACHE = "kv-cache"  # in the models dir: prompt heads' KV state, by model and tokens
_PROBE = "\x00"  # stands for the first user message when the prompt's head is rendered
_TAGGED_CALL = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.DOTALL)


def import_llama_cpp() -> Any:
    """Import llama_cpp the safe way: OpenMP threads must sleep when idle, or decode speed
    collapses under load, and the variable is read only at import; llama.cpp's logs, errors
    only."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import llama_cpp
    except ImportError as exc:
        raise ModelError(
            "the embedded backend needs llama-cpp-python, which is not installed",
            hint="pip install 'myninja[embedded]' (or `make install`)",
        ) from exc
    quiet_llama_logs(llama_cpp.llama_cpp)
    return llama_cpp


@dataclass
class LoadedModel:
    model: Any  # llama_cpp._internals.LlamaModel: the weights
    engine: BatchEngine
    formatter: Any  # the GGUF's own chat template (llama_chat_format.Jinja2ChatFormatter)
    path: Path


_loaded: dict[tuple[str, int, int, int, bool], LoadedModel] = {}
_load_lock = threading.Lock()
_resolve_lock = threading.Lock()


@atexit.register
def _close_models() -> None:
    """Free the loaded models while the interpreter still works: left to llama-cpp-python's
    destructors at shutdown, freeing one prints a traceback ("'NoneType' is not callable")."""
    for loaded in _loaded.values():
        with contextlib.suppress(Exception):
            loaded.engine.close()
        with contextlib.suppress(Exception):
            loaded.model.close()
    _loaded.clear()


def load_llama(path: Path) -> Any:
    """The weights of `path` (a llama_cpp LlamaModel).

    llama.cpp's extra buffer types repack the weights for faster kernels (15% faster decoding
    here, and four sequences decoded for the price of three), but they are also where it
    picks AMX kernels at run time, and on virtual machines that advertise AMX but fault on it
    a build with AMX dies with "Illegal instruction". So they are used only when this build
    of llama.cpp has no AMX in it (the Makefile builds it so)."""
    llama_cpp = import_llama_cpp()
    from llama_cpp._internals import LlamaModel

    low = llama_cpp.llama_cpp
    params = low.llama_model_default_params()
    if hasattr(params, "use_extra_bufts"):
        params.use_extra_bufts = not has_amx(low)
    try:
        return LlamaModel(path_model=str(path), params=params, verbose=LLAMA_VERBOSE)
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"cannot load model {path}: {exc}") from exc


# ggml's log levels (ggml.h): what llama.cpp says at ERROR and above reaches stderr.
GGML_LOG_ERROR, GGML_LOG_CONT = 4, 5
_log_state: dict[str, Any] = {"level": 0, "callback": None}


def quiet_llama_logs(low: Any) -> None:
    """Only llama.cpp's errors reach stderr (it logs every model and context it builds).
    llama-cpp-python's own logger reads these levels by an older numbering (warnings pass as
    errors), and its `verbose=False` redirects the process's stdout and stderr, which from a
    loading thread swallows what the main thread prints: see LLAMA_VERBOSE."""
    if _log_state["callback"] is not None:
        return

    def log(level: int, text: bytes, _user_data: Any) -> None:
        if level != GGML_LOG_CONT:
            _log_state["level"] = level
        if _log_state["level"] >= GGML_LOG_ERROR:
            sys.stderr.write(text.decode("utf-8", errors="replace"))

    _log_state["callback"] = low.llama_log_callback(log)  # kept: llama.cpp holds a pointer
    low.llama_log_set(_log_state["callback"], ctypes.c_void_p(0))


def has_amx(low: Any) -> bool:
    """Whether this build of llama.cpp carries AMX kernels."""
    info = low.llama_print_system_info().decode(errors="replace")
    return bool(re.search(r"AMX\w* = 1", info))


def _chat_formatter(model: Any) -> Any:
    """The model's own chat template, as llama-cpp-python's Llama would pick it."""
    from llama_cpp import llama_chat_format

    metadata = model.metadata()
    template = metadata.get("tokenizer.chat_template")
    if not template:
        raise ModelError("the model file has no chat template (tokenizer.chat_template)")
    eos, bos = model.token_eos(), model.token_bos()
    return llama_chat_format.Jinja2ChatFormatter(
        template=template,
        eos_token=model.token_get_text(eos) if eos != -1 else "",
        bos_token=model.token_get_text(bos) if bos != -1 else "",
        stop_token_ids=[eos],
    )


def shared_model(
    path: Path,
    n_ctx: int,
    threads: int,
    parallel: int = 4,
    prompt_cache: bool = True,
    disk: Path | None = None,
) -> LoadedModel:
    key = (str(path), n_ctx, threads, parallel, prompt_cache)
    with _load_lock:
        if key not in _loaded:
            model = load_llama(path)
            stat = path.stat()
            engine = BatchEngine(
                model,
                window=n_ctx,
                threads=threads,
                parallel=parallel,
                reuse=prompt_cache,
                disk=disk,
                identity=f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}",
            )
            _loaded[key] = LoadedModel(model, engine, _chat_formatter(model), path)
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
        parallel: int = 4,
        prompt_cache: bool = True,
        lookup: int = 0,
    ) -> None:
        self.name = name
        self.model = model
        self.threads = threads or os.cpu_count() or 1
        self.n_ctx = n_ctx
        self.seed = seed
        self.models_dir = models_dir
        self.parallel = parallel
        self.prompt_cache = prompt_cache
        self.lookup = lookup

    async def list_models(self) -> list[str]:
        return [self.model]

    async def aclose(self) -> None:
        """The loaded model is shared by the process and outlives one backend object."""

    async def _model(self, name: str) -> LoadedModel:
        return await asyncio.to_thread(self._load, name)

    def _load(self, name: str) -> LoadedModel:
        with _resolve_lock:  # a model assembled from its packages is assembled once
            path = resolve_model(name, self.models_dir)
        disk = (self.models_dir or paths.models_dir()) / KV_CACHE
        return shared_model(path, self.n_ctx, self.threads, self.parallel, self.prompt_cache, disk)

    def preload(self, name: str | None = None) -> threading.Thread:
        """Start loading a model in a daemon thread, so that a command's own start-up (its
        imports, config and history) runs while the weights are read and repacked; the first
        call finds the model loaded or waits for it. Errors are left to that call to report."""

        def load() -> None:
            with contextlib.suppress(Exception):
                self._load(name or self.model)

        thread = threading.Thread(target=load, name="myninja-preload", daemon=True)
        thread.start()
        return thread

    async def chat(self, request: ChatRequest) -> ChatResult:
        return await collect(self.stream(request), request.model or self.model)

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        model_name = request.model or self.model
        loaded = await self._model(model_name)
        try:
            prompt, stops, grammar, forced = self._prompt(request, loaded)
            head = _head(request, loaded)
        except ValueError as exc:
            raise ModelError(f"{model_name}: {exc}", status=400) from exc
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()

        def emit(item: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed under us
                loop.call_soon_threadsafe(queue.put_nowait, item)

        temperature = 0.2 if request.temperature is None else request.temperature
        job = Job(
            prompt=prompt,
            max_tokens=request.max_tokens,
            sampling=Sampling(
                temperature=temperature,
                seed=request.seed if request.seed is not None else self.seed,
                grammar=grammar,
            ),
            stops=[*(request.stop or []), *stops],
            emit=emit,
            lookup=self.lookup,
            head=head,
        )
        text_parts: list[str] = []
        finished: Finished | None = None
        loaded.engine.submit(job)
        try:
            while finished is None:
                item = await queue.get()
                if isinstance(item, Finished):
                    finished = item
                elif isinstance(item, BaseException):
                    if isinstance(item, ValueError) and not text_parts:
                        # A request it cannot serve: a prompt longer than the context, a
                        # grammar it cannot parse.
                        raise ModelError(f"{model_name}: {item}", status=400) from item
                    raise ModelError(
                        f"generation failed: {item}", partial_text="".join(text_parts)
                    ) from item
                elif item:
                    text_parts.append(item)
                    if forced is None:
                        yield Chunk(text=item)
        finally:
            if finished is None:
                job.cancelled.set()
                loaded.engine.wake()
        text = "".join(text_parts)
        closing = Chunk(
            finish_reason=finished.reason,
            usage=Usage(finished.prompt_tokens, finished.completion_tokens),
        )
        if forced is not None:
            closing.tool_calls = [ToolCall(f"call_{uuid.uuid4().hex[:24]}", forced, text)]
            closing.finish_reason = "tool_calls"
        elif request.tools and request.tool_choice != "none":
            closing.tool_calls = _calls_from_text(text, request.tool_choice == "required")
            if closing.tool_calls:
                closing.finish_reason = "tool_calls"
        yield closing

    def _prompt(
        self, request: ChatRequest, loaded: LoadedModel
    ) -> tuple[str, list[str], str | None, str | None]:
        """The prompt text, its stop strings, the grammar that constrains the reply (if any),
        and the name of the tool the reply must call (if one is forced)."""
        from llama_cpp.llama_grammar import json_schema_to_gbnf

        tools = request.tools if request.tools and request.tool_choice != "none" else None
        schema, forced = request.json_schema, None
        choice = request.tool_choice
        if tools:
            if choice == "required" and len(tools) == 1:
                choice = {"type": "function", "function": tools[0]["function"]}
            if isinstance(choice, dict):
                forced = choice["function"]["name"]
                tool = next((t for t in tools if t["function"]["name"] == forced), None)
                if tool is None:
                    raise ValueError(f"Tool choice '{forced}' not found in tools.")
                schema = tool["function"].get("parameters") or {"type": "object"}
            elif choice == "required":
                schema = _tool_union_schema(tools)
        formatted = loaded.formatter(
            messages=request.messages,
            tools=tools,
            tool_choice=request.tool_choice if tools else None,
        )
        stops = formatted.stop if isinstance(formatted.stop, list) else [formatted.stop]
        grammar = json_schema_to_gbnf(json.dumps(schema)) if schema is not None else None
        return formatted.prompt, [s for s in stops if s], grammar, forced


def _head(request: ChatRequest, loaded: LoadedModel) -> str:
    """The prompt's stable head: its system messages and the next turn's opening, as the chat
    template renders them (the same for every request that shares the system prompt)."""
    messages = request.messages
    system = [m for m in messages[:1] if m.get("role") == "system"]
    if not system or request.tools or len(messages) < 2 or messages[1].get("role") != "user":
        return ""
    rendered = loaded.formatter(messages=[*system, {"role": "user", "content": _PROBE}]).prompt
    at = rendered.find(_PROBE)
    return rendered[:at] if at > 0 else ""


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
