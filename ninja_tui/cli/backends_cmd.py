"""`myninja backends`: what is configured, and whether it answers."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import click

from backends.base import Backend, ChatRequest
from backends.factory import make_backend
from myninja.config import Config, GatewayBackendConfig, load_config
from myninja.errors import EXIT_OK, AuthError, BackendUnreachable, MyninjaError


@click.group()
def backends() -> None:
    """List and check model backends."""


def _users(config: Config, name: str) -> list[str]:
    return [agent for agent, cfg in config.agents.items() if cfg.backend == name]


@backends.command("list")
@click.option("--json", "as_json", is_flag=True)
def backends_list(as_json: bool) -> None:
    """List configured backends, whether each is available, and the agents that use them."""
    config = load_config()
    rows = []
    for name, cfg in config.backends.items():
        rows.append(
            {
                "name": name,
                "type": cfg.type,
                "model": cfg.model,
                "url": cfg.url if isinstance(cfg, GatewayBackendConfig) else None,
                "agents": _users(config, name),
            }
        )
    statuses = asyncio.run(_statuses(config))
    for row, status in zip(rows, statuses, strict=True):
        row["status"] = status
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        where = row["url"] or "in-process llama.cpp"
        agents = ", ".join(row["agents"]) or "no agent"
        click.echo(
            f"{row['name']:<12} {row['type']:<9} {row['model'] or '-':<22} {row['status']:<14} "
            f"{where}  ({agents})"
        )


async def _statuses(config: Config) -> list[str]:
    return list(await asyncio.gather(*(_status(config, name) for name in config.backends)))


async def _status(config: Config, name: str) -> str:
    """A quick look, without loading a model or waiting long: 'ok' or what is wrong."""
    cfg = config.backends[name]
    try:
        if isinstance(cfg, GatewayBackendConfig):
            from backends.gateway import GatewayBackend

            probe = GatewayBackend(name, cfg.url, connect_timeout=3, read_timeout=5, max_retries=0)
            try:
                await probe.list_models()
            finally:
                await probe.aclose()
        else:
            from backends.models import NAMED_MODELS, locate_parts, resolve_model

            if cfg.model in NAMED_MODELS:
                missing = [p for p in locate_parts(NAMED_MODELS[cfg.model]) if not p.is_file()]
                if missing:
                    return "model missing"
            else:
                resolve_model(cfg.model)
    except AuthError:
        return "needs a key"
    except BackendUnreachable:
        return "unreachable"
    except MyninjaError:
        return "not available"
    return "ok"


@backends.command("test")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def backends_test(name: str, as_json: bool) -> int:
    """Check that backend NAME answers: its models, one tiny completion, latency, tokens/s."""
    config = load_config()
    backend = make_backend(config, name)
    report = asyncio.run(_probe(backend))
    if as_json:
        click.echo(json.dumps(report, indent=2))
    elif report["ok"]:
        click.echo(
            f"{name}: ok · models: {', '.join(report['models'])} · "
            f"first token {report['first_token_s']:.2f}s · {report['tokens_per_s']:.1f} tok/s · "
            f"reply: {report['reply']!r}"
        )
    else:
        click.echo(f"{name}: FAILED · {report['error']}", err=True)
    return EXIT_OK if report["ok"] else report["exit_code"]


async def _probe(backend: Backend) -> dict[str, Any]:
    report: dict[str, Any] = {"backend": backend.name, "ok": False}
    try:
        started = time.perf_counter()
        report["models"] = await backend.list_models()
        report["models_s"] = round(time.perf_counter() - started, 4)
        request = ChatRequest(
            [{"role": "user", "content": "Reply with one word: hello."}],
            max_tokens=16,
            temperature=0.0,
        )
        started = time.perf_counter()
        first, parts, tokens = None, [], 0
        async for chunk in backend.stream(request):
            if chunk.text:
                first = first or time.perf_counter()
                parts.append(chunk.text)
            if chunk.usage:
                tokens = chunk.usage.completion_tokens
        ended = time.perf_counter()
        decode = ended - (first or ended)
        report.update(
            ok=True,
            reply="".join(parts).strip(),
            first_token_s=round((first or ended) - started, 4),
            total_s=round(ended - started, 4),
            completion_tokens=tokens,
            tokens_per_s=round((tokens - 1) / decode, 2) if decode > 0 and tokens > 1 else 0.0,
        )
    except MyninjaError as exc:
        report.update(error=exc.one_line(), exit_code=exc.exit_code)
    finally:
        await backend.aclose()
    return report
