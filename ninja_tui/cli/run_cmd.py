"""`myninja run`: hand a task to the background worker, and follow it unless --detach."""

from __future__ import annotations

import asyncio
import json

import click

from myninja import paths
from myninja.agent_graph.tasks.client import WorkerClient
from myninja.config_file import load_config
from myninja.ninja_tui.cli.ask import (
    agent_option,
    allow_option,
    backend_option,
    json_option,
    model_option,
    read_text,
)
from myninja.ninja_tui.cli.driving import ensure_worker, follow_worker
from myninja.ninja_tui.cli.render import EventPrinter


@click.command()
@click.argument("text")
@agent_option
@backend_option
@model_option
@json_option
@allow_option
@click.option("--detach", "-d", is_flag=True, help="Print the task id and return at once.")
def run(
    text: str,
    agent: str | None,
    backend_name: str | None,
    model: str | None,
    as_json: bool,
    allow: tuple[str, ...],
    detach: bool,
) -> int:
    """Run a task in the background worker; it goes on after this command exits."""
    text = read_text(text)
    load_config()  # a broken config is reported here, not in the worker's log
    return asyncio.run(_run(text, agent, backend_name, model, as_json, detach, list(allow)))


async def _run(text, agent, backend, model, as_json, detach, allow) -> int:  # type: ignore[no-untyped-def]
    client = WorkerClient(paths.data_dir())
    await ensure_worker(client)
    reply = await client.request(
        "submit", text=text, agent=agent, backend=backend, model=model, allow=allow
    )
    task_id = reply["task_id"]
    if detach:
        click.echo(json.dumps({"task_id": task_id}) if as_json else task_id)
        if not as_json:
            click.echo(f"follow it with: myninja tasks show {task_id}", err=True)
        return 0
    return await follow_worker(client, task_id, EventPrinter(as_json))
