"""Compiled Neuron artefacts, kept under the data dir so a restart skips compilation.

Compiling a Llama for Neuron takes minutes to hours, and its result is only valid for the exact
shapes and compiler it was made with: the key holds the engine, the model (its path and its
config.json), tp_degree, amp, n_positions, batch size and the neuronx-cc version. A change in
any of them is a new key, so stale artefacts are never loaded. An entry is written in a
temporary folder and renamed into place once complete: a crash mid-compile leaves no entry
that looks finished."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from myninja import paths

MARKER = "myninja-compiled.json"
AMPS = ("f32", "f16", "bf16")


@dataclass(frozen=True)
class NeuronShape:
    """What a compiled model is fixed to."""

    tp_degree: int = 2
    amp: str = "bf16"
    n_positions: int = 4096
    batch_size: int = 1


def compiler_version() -> str:
    """neuronx-cc's version, or "none" where it is not installed (then nothing compiles)."""
    try:
        import neuronxcc  # type: ignore[import-not-found]
    except Exception:  # a missing or broken compiler: artefacts cannot be reused safely
        return "none"
    return str(getattr(neuronxcc, "__version__", "unknown"))


def cache_key(engine: str, model_dir: Path, shape: NeuronShape, compiler: str) -> str:
    model_dir = model_dir.resolve()
    config = model_dir / "config.json"
    identity = {
        "engine": engine,
        "model": str(model_dir),
        "config_sha256": hashlib.sha256(config.read_bytes()).hexdigest()
        if config.is_file()
        else "",
        **asdict(shape),
        "compiler": compiler,
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", model_dir.name)[:48] or "model"
    return (
        f"{engine}-{name}-tp{shape.tp_degree}-{shape.amp}-n{shape.n_positions}"
        f"-b{shape.batch_size}-{digest}"
    )


class CompiledCache:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root or paths.data_dir() / "neuron"

    def entry(self, key: str) -> Path:
        return self.root / key

    def has(self, key: str) -> bool:
        return (self.entry(key) / MARKER).is_file()

    def store(self, key: str, save: Callable[[Path], None], details: dict[str, object]) -> Path:
        """Run `save(folder)` into a fresh temporary folder and move it into place."""
        final = self.entry(key)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{key}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            save(tmp)
            (tmp / MARKER).write_text(
                json.dumps({**details, "key": key, "created_at": time.time()}, indent=2)
            )
            shutil.rmtree(final, ignore_errors=True)  # an unfinished entry from an older crash
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return final
