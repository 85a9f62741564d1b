"""`myninja serve`: host a model behind an OpenAI-compatible API."""

from __future__ import annotations

import os
import socket
from typing import Any

import click

from myninja.config import ServeConfig
from myninja.config_file import load_config
from myninja.errors import UsageError


@click.command()
@click.option(
    "--model",
    help="llama: a named model or a GGUF path; tnx/nxdi: a Hugging Face checkpoint folder "
    "(default: config serve.model).",
)
@click.option("--engine", type=click.Choice(["llama", "tnx", "nxdi"]), help="Inference engine.")
@click.option("--host", help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port (default 8000; 0: any free one).")
@click.option("--threads", type=int, help="CPU threads for the llama engine.")
@click.option("--n-ctx", type=int, default=4096, show_default=True, help="llama: context window.")
@click.option("--tp-degree", type=click.IntRange(1, 128), help="tnx/nxdi: NeuronCores (default 2).")
@click.option("--amp", type=click.Choice(["f32", "f16", "bf16"]), help="tnx/nxdi: precision.")
@click.option(
    "--n-positions", type=click.IntRange(128), help="tnx/nxdi: prompt + reply tokens (4096)."
)
@click.option("--batch-size", type=click.IntRange(1, 64), help="tnx/nxdi: compiled batch (1).")
@click.option(
    "--api-key-env",
    metavar="VAR",
    help="Require clients to send the bearer token held in this environment variable.",
)
def serve(
    model: str | None,
    engine: str | None,
    host: str | None,
    port: int | None,
    threads: int | None,
    n_ctx: int,
    tp_degree: int | None,
    amp: str | None,
    n_positions: int | None,
    batch_size: int | None,
    api_key_env: str | None,
) -> None:
    """Serve a model over an OpenAI-compatible API (/v1/models, /v1/chat/completions).

    The llama engine runs a GGUF with llama.cpp. The tnx and nxdi engines run a Llama on AWS
    Inferentia/Trainium with transformers-neuronx or NxD Inference (installed separately, see
    docs/neuron.md); their first start with given settings compiles, later ones load the
    compiled artefacts from the data dir."""
    import uvicorn

    from myninja.backends.serve.app import create_app

    cfg = load_config().serve
    model = model or cfg.model
    kind = engine or cfg.engine
    api_key = cfg.api_key
    if api_key_env:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise UsageError(f"environment variable {api_key_env} is empty or not set")
    neuron = {
        "tp_degree": tp_degree,
        "amp": amp,
        "n_positions": n_positions,
        "batch_size": batch_size,
    }
    backend = _ready_engine(kind, model, cfg, threads, n_ctx, neuron)
    model_id = os.path.basename(model.rstrip(os.sep)) if os.sep in model else model
    app = create_app(backend, model_id, api_key=api_key, max_body_bytes=cfg.max_body_bytes)
    host = host or cfg.host
    port = cfg.port if port is None else port
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    port = sock.getsockname()[1]
    click.echo(f"myninja serve: {model_id} on http://{host}:{port}/v1", err=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    server.run(sockets=[sock])


def _ready_engine(
    kind: str,
    model: str,
    cfg: ServeConfig,
    threads: int | None,
    n_ctx: int,
    neuron: dict[str, Any],
) -> Any:
    """The engine with its weights checked (llama) or compiled/loaded (tnx, nxdi), before the
    server is announced: a client never meets a half-ready server."""
    from myninja.backends.serve.engines import make_engine
    from myninja.backends.serve.neuron_cache import NeuronShape

    if kind == "llama":
        from myninja.backends.models import resolve_model

        backend = make_engine(kind, model, threads=threads, n_ctx=n_ctx)
        resolve_model(model)  # assemble and check the weights
        return backend
    shape = NeuronShape(
        **{key: cfg.model_dump()[key] if value is None else value for key, value in neuron.items()}
    )
    backend = make_engine(kind, model, shape=shape)
    click.echo(
        f"myninja serve: loading {model} on Neuron (tp {shape.tp_degree}, {shape.amp}, "
        f"{shape.n_positions} positions, batch {shape.batch_size}); a first start with these "
        "settings compiles, which takes a while",
        err=True,
    )
    backend.load()
    source = "compiled artefacts from the cache" if backend.loaded_from_cache else "a fresh compile"
    click.echo(f"myninja serve: model ready ({source})", err=True)
    return backend
