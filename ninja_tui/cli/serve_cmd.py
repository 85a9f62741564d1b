"""`myninja serve`: host a model behind an OpenAI-compatible API."""

from __future__ import annotations

import os
import socket

import click

from myninja.config import load_config
from myninja.errors import UsageError


@click.command()
@click.option("--model", help="A named model or a path to a GGUF (default: config serve.model).")
@click.option("--engine", type=click.Choice(["llama", "tnx", "nxdi"]), help="Inference engine.")
@click.option("--host", help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port (default 8000; 0: any free one).")
@click.option("--threads", type=int, help="CPU threads for the llama engine.")
@click.option("--n-ctx", type=int, default=4096, show_default=True, help="Context window.")
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
    api_key_env: str | None,
) -> None:
    """Serve a model over an OpenAI-compatible API (/v1/models, /v1/chat/completions)."""
    import uvicorn

    from backends.models import resolve_model
    from backends.serve.app import create_app
    from backends.serve.engines import make_engine

    cfg = load_config().serve
    model = model or cfg.model
    api_key = cfg.api_key
    if api_key_env:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise UsageError(f"environment variable {api_key_env} is empty or not set")
    backend = make_engine(engine or cfg.engine, model, threads=threads, n_ctx=n_ctx)
    resolve_model(model)  # assemble and check the weights before announcing the server
    model_id = os.path.basename(model) if os.sep in model else model
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
