"""`myninja ask`: one task in the foreground, headless. Exit 3 when it needs an answer."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

import click

from myninja.agent_graph.prompts import FAST_AGENT
from myninja.config import WORKER_AGENTS, Config
from myninja.config_file import load_config
from myninja.errors import UsageError
from myninja.ninja_tui.cli.driving import PresetAnswers, drive_here
from myninja.ninja_tui.cli.render import EventPrinter
from myninja.skills.api import Permission


def read_text(text: str) -> str:
    if text == "-":
        text = read_stdin(sys.stdin.read)
    if not text.strip():
        raise UsageError("the task is empty", hint="give it as TEXT, or - to read stdin")
    return text


def read_stdin(read: Callable[[], str]) -> str:
    """What `read` gets from stdin, or one clear error where those bytes are not UTF-8."""
    try:
        return read()
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"stdin is not UTF-8 text: byte 0x{exc.object[exc.start]:02x} at offset {exc.start}",
            hint="pipe in UTF-8 text",
        ) from None


agent_option = click.option(
    "--agent",
    type=click.Choice(WORKER_AGENTS),
    help="Which agent works the task (default: the router decides).",
)
backend_option = click.option(
    "--backend", "backend_name", help="A configured backend every agent of this task uses."
)
model_option = click.option("--model", help="A model name, overriding the agents' own.")
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print the event stream as JSON lines."
)
PERMISSIONS = tuple(permission.value for permission in Permission)
allow_option = click.option(
    "--allow",
    "allow",
    multiple=True,
    type=click.Choice(PERMISSIONS),
    help="Give the task's skills this permission without asking (repeatable).",
)
answers_option = click.option(
    "--answers",
    "answers_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="JSON answers for questions the task may ask (by key or text, or a list in order).",
)


@click.command()
@click.argument("text")
@agent_option
@backend_option
@model_option
@json_option
@answers_option
@allow_option
@click.option(
    "--dry-run",
    is_flag=True,
    help="Book nothing: the scheduler shows the event it would write and the mail it would send.",
)
def ask(
    text: str,
    agent: str | None,
    backend_name: str | None,
    model: str | None,
    as_json: bool,
    answers_file: Path | None,
    allow: tuple[str, ...],
    dry_run: bool,
) -> int:
    """Work a task in the foreground and print the answer. TEXT '-' reads stdin.

    A leading @agent in TEXT picks the agent, like --agent. If the task needs something only
    you know, or a skill needs a permission --allow did not give, the question is printed as
    JSON with the command that answers it (exit 3)."""
    text = read_text(text)
    config = load_config()
    answers = PresetAnswers(answers_file)
    preload_model(config, agent, backend_name, model)
    return asyncio.run(
        _ask(config, text, agent, backend_name, model, as_json, answers, list(allow), dry_run)
    )


def preload_model(
    config: Config, agent: str | None, backend_name: str | None, model: str | None
) -> None:
    """Start loading the embedded model that answers first (the fast path's, or the agent's
    named) while the task runtime starts: on the default model the weights take about as long
    to load as the runtime's imports, and the two can run side by side."""
    from myninja.backends.embedded import EmbeddedBackend
    from myninja.backends.factory import make_backend

    settings = config.agent(agent or FAST_AGENT)
    name = backend_name or settings.backend
    if name not in config.backends:
        return  # the task reports it, in its own words
    backend = make_backend(config, name)
    if isinstance(backend, EmbeddedBackend):
        backend.preload(model or settings.model)


async def _ask(
    config: Config,
    text: str,
    agent: str | None,
    backend: str | None,
    model: str | None,
    as_json: bool,
    answers: PresetAnswers,
    allow: list[str],
    dry_run: bool = False,
) -> int:
    from myninja.agent_graph.tasks.manager import TaskManager

    printer = EventPrinter(as_json)
    async with TaskManager.open(config) as manager:
        task_id = await manager.submit(
            text,
            agent=agent,
            backend=backend,
            model=model,
            start=False,
            allow=allow,
            dry_run=dry_run,
        )

        async def start() -> None:
            manager.start(task_id)

        return await drive_here(manager, task_id, printer, answers, begin=start)
