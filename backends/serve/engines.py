"""Engines `serve` can host. An engine is a Backend; each is imported only when chosen."""

from __future__ import annotations

from myninja.backends.base import Backend
from myninja.backends.serve.neuron_cache import NeuronShape
from myninja.errors import ConfigError

ENGINES = ("llama", "tnx", "nxdi")


def make_engine(
    kind: str,
    model: str,
    *,
    threads: int | None = None,
    n_ctx: int = 4096,
    shape: NeuronShape | None = None,
) -> Backend:
    if kind == "llama":
        from myninja.backends.embedded import EmbeddedBackend

        return EmbeddedBackend("serve", model, threads=threads, n_ctx=n_ctx)
    if kind == "tnx":
        from myninja.backends.serve.tnx import TnxEngine

        return TnxEngine(model, shape or NeuronShape())
    if kind == "nxdi":
        from myninja.backends.serve.nxdi import NxdiEngine

        return NxdiEngine(model, shape or NeuronShape())
    raise ConfigError(f"unknown engine {kind!r}", hint=f"choose one of: {', '.join(ENGINES)}")
