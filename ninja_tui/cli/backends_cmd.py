"""`myninja backends`: what is configured, and whether it answers."""

from __future__ import annotations

import asyncio
import json

import click

from backends.factory import make_backend
from backends.health import probe
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
    report = asyncio.run(probe(backend))
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
