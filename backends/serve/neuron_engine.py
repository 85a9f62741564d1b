"""What the Neuron engines share: a Backend over a blocking Neuron model.

A subclass knows its library: how to build the model, compile it or load compiled artefacts
(`_build`), and how to run one request's sampling with a streamer (`_sample`). This class does
the rest: the library import with a clear message when it is missing, the tokenizer and its
chat template, shape checks against what was compiled, one worker thread that runs `sample()`
(it blocks for the whole reply) with tokens streamed into asyncio, stop tokens and strings,
cancellation, usage, and JSON / tool requests served by prompting (the libraries have no
constrained decoding)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

from myninja.backends.base import ChatRequest, ChatResult, Chunk, Usage, collect
from myninja.backends.serve.neuron_cache import (
    AMPS,
    CompiledCache,
    NeuronShape,
    cache_key,
    compiler_version,
)
from myninja.backends.serve.neuron_text import (
    IncrementalDecoder,
    StopScanner,
    schema_instruction,
    strip_fence,
    tool_calls_in,
)
from myninja.backends.worker_stream import Emit, WorkerFailed, from_worker
from myninja.errors import ConfigError, ModelError, UsageError

NEURON_PIP = "https://pip.repos.neuron.amazonaws.com"


class StopSampling(Exception):
    """Raised from the streamer inside the library's loop: the consumer has what it needs."""


class TokenStreamer:
    """The streamer the libraries call (transformers' BaseStreamer protocol: put, end).

    transformers-neuronx puts each new token as a (batch, 1) tensor; transformers' generate()
    puts the prompt (batch, n) first, then each new token as (batch,). Only row 0 is ours (a
    larger compiled batch is filled with copies of the one prompt)."""

    def __init__(self, emit: Emit, stopped: threading.Event, *, prompt_first: bool) -> None:
        self.emit = emit
        self.stopped = stopped
        self.skip = prompt_first

    def put(self, value: Any) -> None:
        if self.stopped.is_set():
            raise StopSampling
        if self.skip:
            self.skip = False
            return
        ids = value.tolist() if hasattr(value, "tolist") else value
        if isinstance(ids, list) and ids and isinstance(ids[0], list):
            ids = ids[0]  # (batch, n): row 0's tokens
        elif isinstance(ids, list):
            ids = ids[:1]  # (batch,): one new token per row
        else:
            ids = [ids]
        self.emit([int(i) for i in ids])

    def end(self) -> None:
        """Nothing to do: the worker reports the end once sample() returns."""


def import_library(module: str, package: str, engine: str) -> ModuleType:
    """Import one of the Neuron libraries, or say in one line how to get it."""
    how = (
        f"install it from the Neuron pip repository (pip install {package} "
        f"--extra-index-url {NEURON_PIP}) or use an AWS Deep Learning AMI with Neuron; "
        "see docs/neuron.md"
    )
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and not module.startswith(exc.name.split(".")[0]):
            raise ConfigError(
                f"engine {engine!r}: {package} is installed but needs {exc.name}, which is not",
                hint=how,
            ) from exc
        raise ConfigError(
            f"engine {engine!r} needs {package}, which is not installed", hint=how
        ) from exc
    except Exception as exc:  # PyPI's transformers-neuronx is a placeholder that raises here
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"engine {engine!r}: {package} is installed but cannot be imported ({first})",
            hint=how,
        ) from exc


class NeuronEngine:
    kind: ClassVar[str]
    package: ClassVar[str]
    prompt_first: ClassVar[bool]  # whether the streamer first receives the prompt

    def __init__(
        self,
        model_dir: str | Path,
        shape: NeuronShape,
        *,
        name: str = "serve",
        cache: CompiledCache | None = None,
    ) -> None:
        self.model_dir = Path(model_dir).expanduser()
        if not (self.model_dir / "config.json").is_file():
            raise UsageError(
                f"{self.model_dir} is not a Hugging Face model folder (no config.json)",
                hint="give --model the folder of a downloaded checkpoint (config.json, "
                "tokenizer files, safetensors)",
            )
        if shape.amp not in AMPS:
            raise UsageError(f"amp must be one of {', '.join(AMPS)}, got {shape.amp!r}")
        self.name = name
        self.model = self.model_dir.name
        self.shape = shape
        self.cache = cache or CompiledCache()
        self.worker = ThreadPoolExecutor(1, thread_name_prefix=f"neuron-{self.kind}")
        self.tokenizer: Any = None
        self.stop_ids: set[int] = set()
        self.loaded_from_cache: bool | None = None  # None until loaded
        self._load_lock = threading.Lock()

    # -- to be provided by an engine -------------------------------------------------------

    def _build(self, key: str) -> bool:
        """Make the model ready on the device; True when compiled artefacts were loaded."""
        raise NotImplementedError

    def _sample(
        self, input_ids: Any, max_new_tokens: int, temperature: float, streamer: Any
    ) -> None:
        raise NotImplementedError

    def _compiler(self) -> str:
        """What compiled artefacts depend on besides the shape: the Neuron compiler."""
        return compiler_version()

    # -- loading ------------------------------------------------------------------------------

    def load(self) -> None:
        """Import, tokenizer, compile or load compiled artefacts. Blocking, done once."""
        with self._load_lock:
            if self.loaded_from_cache is not None:
                return
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir))
            if not getattr(self.tokenizer, "chat_template", None):
                raise ModelError(
                    f"the tokenizer in {self.model_dir} has no chat template",
                    hint="use an instruct model's folder, whose tokenizer_config.json has one",
                )
            self.stop_ids = self._stop_ids()
            key = cache_key(self.kind, self.model_dir, self.shape, self._compiler())
            self.loaded_from_cache = self._build(key)

    def _stop_ids(self) -> set[int]:
        ids = {self.tokenizer.eos_token_id} if self.tokenizer.eos_token_id is not None else set()
        generation = self.model_dir / "generation_config.json"
        if generation.is_file():
            with contextlib.suppress(ValueError, OSError):
                eos = json.loads(generation.read_text()).get("eos_token_id")
                ids.update(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        return {int(i) for i in ids}

    # -- the Backend protocol ---------------------------------------------------------------

    async def list_models(self) -> list[str]:
        return [self.model]

    async def aclose(self) -> None:
        self.worker.shutdown(wait=False, cancel_futures=True)

    async def chat(self, request: ChatRequest) -> ChatResult:
        return await collect(self.stream(request), self.model)

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        if self.loaded_from_cache is None:
            await asyncio.get_running_loop().run_in_executor(self.worker, self.load)
        prompt = self._prompt_ids(request)
        max_new = self._check_shape(len(prompt), request.max_tokens)
        temperature = 0.2 if request.temperature is None else request.temperature
        input_ids = self._batch(prompt)

        def produce(emit: Emit, stopped: threading.Event) -> None:
            if request.seed is not None:
                import torch

                torch.manual_seed(request.seed)
            streamer = TokenStreamer(emit, stopped, prompt_first=self.prompt_first)
            with contextlib.suppress(StopSampling):
                self._sample(input_ids, max_new, temperature, streamer)

        # Replies that must be JSON or may be a tool call are checked whole before they go out.
        whole = request.json_schema is not None or bool(request.tools)
        decoder, stops = IncrementalDecoder(self.tokenizer), StopScanner(request.stop)
        parts: list[str] = []
        generated, finish = 0, "length"
        try:
            async with contextlib.aclosing(from_worker(self.worker, produce)) as tokens:
                async for ids in tokens:
                    for token_id in ids:
                        if token_id in self.stop_ids:
                            finish = "stop"
                            break
                        generated += 1
                        text = stops.feed(decoder.push(token_id))
                        if text:
                            parts.append(text)
                            if not whole:
                                yield Chunk(text=text)
                        if stops.stopped:
                            finish = "stop"
                            break
                        if generated >= max_new:
                            break
                    if finish == "stop" or generated >= max_new:
                        break
        except WorkerFailed as failed:
            raise self._failure(failed.error, "".join(parts)) from failed.error
        if not stops.stopped and (tail := stops.flush()):
            parts.append(tail)
            if not whole:
                yield Chunk(text=tail)
        text = "".join(parts)
        closing = Chunk(finish_reason=finish, usage=Usage(len(prompt), generated))
        if request.tools and (calls := tool_calls_in(text)):
            closing.tool_calls, closing.finish_reason = calls, "tool_calls"
        elif whole:
            closing.text = strip_fence(text) if request.json_schema is not None else text
        yield closing

    # -- helpers ------------------------------------------------------------------------------

    def _prompt_ids(self, request: ChatRequest) -> list[int]:
        messages = [_plain(m) for m in request.messages]
        if request.json_schema is not None:
            messages.insert(
                0, {"role": "system", "content": schema_instruction(request.json_schema)}
            )
        tools = request.tools if request.tools and request.tool_choice != "none" else None
        try:
            ids = self.tokenizer.apply_chat_template(
                messages, tools=tools, add_generation_prompt=True, tokenize=True
            )
        except Exception as exc:  # a template that rejects these messages (roles, tools)
            raise ModelError(f"{self.model}: cannot build the prompt: {exc}", status=400) from exc
        if isinstance(ids, dict) or hasattr(ids, "input_ids"):
            ids = ids["input_ids"]
        return [int(i) for i in ids]

    def _check_shape(self, prompt_tokens: int, max_tokens: int | None) -> int:
        """The tokens this request may generate; a 400 error when it cannot fit the shapes
        the model was compiled for."""
        limit = self.shape.n_positions
        room = limit - prompt_tokens
        if room < 1 or (max_tokens is not None and max_tokens > room):
            asked = f" + max_tokens {max_tokens}" if max_tokens is not None else ""
            raise ModelError(
                f"{self.model}: the prompt ({prompt_tokens} tokens){asked} does not fit the "
                f"{limit} positions the model was compiled for",
                hint="shorten the request, or restart serve with a larger --n-positions "
                "(it compiles again)",
                status=400,
            )
        return max_tokens or room

    def _batch(self, prompt: list[int]) -> Any:
        """The compiled batch size is fixed; one request fills it with copies of its prompt."""
        import torch

        return torch.tensor([prompt] * self.shape.batch_size, dtype=torch.long)

    def _failure(self, error: BaseException, partial: str) -> Exception:
        if isinstance(error, ValueError) and not partial:
            # The libraries' word for a shape they were not compiled for.
            return ModelError(f"{self.model}: {error}", status=400)
        return ModelError(f"generation failed: {error}", partial_text=partial)


def _plain(message: dict[str, Any]) -> dict[str, Any]:
    """OpenAI content parts flattened to text: chat templates expect strings."""
    content = message.get("content")
    if isinstance(content, list):
        text = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        return {**message, "content": text}
    return message
