"""Engines `serve` can host. An engine is a Backend; each is imported only when chosen."""

from __future__ import annotations

from backends.base import Backend
from myninja.errors import ConfigError

ENGINES = ("llama", "tnx", "nxdi")


def make_engine(kind: str, model: str, *, threads: int | None = None, n_ctx: int = 4096) -> Backend:
    if kind == "llama":
        from backends.embedded import EmbeddedBackend

        return EmbeddedBackend("serve", model, threads=threads, n_ctx=n_ctx)
    if kind in ("tnx", "nxdi"):
        raise ConfigError(
            f"engine {kind!r} is not available in this build",
            hint="serve a Neuron model with vLLM or optimum-neuron and add it as a gateway backend",
        )
    raise ConfigError(f"unknown engine {kind!r}", hint=f"choose one of: {', '.join(ENGINES)}")
