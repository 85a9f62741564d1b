"""`myninja backends`: what is configured, whether it answers, adding and removing servers."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import click

from myninja import paths
from myninja.backends.factory import make_backend, quick_gateway
from myninja.backends.health import probe
from myninja.config import AGENTS, Config, GatewayBackendConfig
from myninja.config_file import load_config, update_config_file
from myninja.errors import EXIT_OK, AuthError, BackendUnreachable, MyninjaError, UsageError


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
            quick = quick_gateway(config, name)
            try:
                await quick.list_models()
            finally:
                await quick.aclose()
        else:
            from myninja.backends.models import NAMED_MODELS, locate_parts, resolve_model

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


NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,39}$")


@backends.command("add")
@click.argument("name")
@click.option("--url", required=True, help="Base URL of the OpenAI-compatible API, ending in /v1.")
@click.option("--model", help="Model used when an agent names none (default: the server's).")
@click.option("--key-name", help="Key store entry holding its API key (default: NAME).")
@click.option(
    "--agent",
    "agents",
    multiple=True,
    type=click.Choice(AGENTS),
    help="Point this agent at the backend (repeatable).",
)
@click.option("--max-concurrency", type=click.IntRange(1, 256), help="Requests in flight (8).")
@click.option("--replace", is_flag=True, help="Overwrite a backend of the same name.")
@click.option("--json", "as_json", is_flag=True)
def backends_add(
    name: str,
    url: str,
    model: str | None,
    key_name: str | None,
    agents: tuple[str, ...],
    max_concurrency: int | None,
    replace: bool,
    as_json: bool,
) -> None:
    """Add an OpenAI-compatible server (vLLM, optimum-neuron, a gateway) as backend NAME.

    It is written to the config file, the named agents are pointed at it, and the server is
    asked for its models (a server that does not answer yet is still added)."""
    if not NAME_PATTERN.match(name):
        raise UsageError(
            f"invalid backend name {name!r}",
            hint="use a letter, then letters, digits, '-' or '_' (e.g. inf2)",
        )
    config = load_config()
    if name in config.backends and not replace:
        raise UsageError(f"backend {name!r} already exists", hint="add --replace to overwrite it")
    entry: dict[str, Any] = {"type": "openai", "url": url.rstrip("/")}
    for key, value in (
        ("model", model),
        ("key_name", key_name),
        ("max_concurrency", max_concurrency),
    ):
        if value is not None:
            entry[key] = value
    changes: dict[str, Any] = {f"backends.{name}": entry}
    changes.update({f"agents.{agent}.backend": name for agent in agents})
    path = paths.config_file()
    update_config_file(path, changes)
    report = asyncio.run(_ask_models(load_config(), name))
    report.update(name=name, url=entry["url"], agents=list(agents), config=str(path))
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    users = f"; {', '.join(agents)} now use it" if agents else ""
    click.echo(f"Added backend {name} ({entry['url']}) to {path}{users}.")
    if report["answered"]:
        click.echo(f"{name} answered: models {', '.join(report['models']) or '(none listed)'}")
        if model and model not in report["models"]:
            click.echo(
                f"Note: the server does not list {model!r}; requests naming it may fail.", err=True
            )
    else:
        click.echo(
            f"{name} did not answer yet: {report['error']}. Start the server (or the SSH "
            f"tunnel), then check with: myninja backends test {name}",
            err=True,
        )


async def _ask_models(config: Config, name: str) -> dict[str, Any]:
    backend = quick_gateway(config, name)
    try:
        return {"answered": True, "models": await backend.list_models(), "error": None}
    except MyninjaError as exc:
        return {"answered": False, "models": [], "error": exc.one_line()}
    finally:
        await backend.aclose()


@backends.command("remove")
@click.argument("name")
def backends_remove(name: str) -> None:
    """Remove backend NAME; agents that used it go back to the embedded backend."""
    config = load_config()
    if name not in config.backends:
        known = ", ".join(sorted(config.backends))
        raise UsageError(f"no backend named {name!r}", hint=f"configured: {known}")
    users = _users(config, name)
    changes: dict[str, Any] = {f"backends.{name}": None}
    changes.update({f"agents.{agent}.backend": None for agent in users})
    new = update_config_file(paths.config_file(), changes)
    moved = {agent: new.agent(agent).backend for agent in users}
    click.echo(f"Removed backend {name}.")
    for agent, backend in moved.items():
        click.echo(f"{agent} now uses {backend}.")
