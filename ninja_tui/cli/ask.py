"""`myninja ask`: one task, headless, answer streamed to stdout (or events as JSON lines)."""

from __future__ import annotations

import asyncio
import sys

import click

from agent_graph.events import Event
from agent_graph.single_call import run_single_call
from backends.factory import make_backend
from myninja.config import load_config
from myninja.errors import EXIT_OK, UsageError

WORKER_AGENTS = ("researcher", "coder", "advisor", "scheduler", "writer")


@click.command()
@click.argument("text")
@click.option("--agent", type=click.Choice(WORKER_AGENTS), help="Which agent answers.")
@click.option("--backend", "backend_name", help="A configured backend, overriding the agent's.")
@click.option("--model", help="A model name, overriding the agent's.")
@click.option("--json", "as_json", is_flag=True, help="Print the event stream as JSON lines.")
def ask(
    text: str, agent: str | None, backend_name: str | None, model: str | None, as_json: bool
) -> int:
    """Ask a task and stream the answer. TEXT '-' reads the task from stdin."""
    if text == "-":
        text = sys.stdin.read()
    if not text.strip():
        raise UsageError("the task is empty", hint="give it as TEXT, or - to read stdin")
    config = load_config()
    agent = agent or config.default_agent
    agent_config = config.agent(agent)
    backend = make_backend(config, backend_name or agent_config.backend)
    return asyncio.run(_run(text, agent, backend, agent_config, model, as_json))


async def _run(text, agent, backend, agent_config, model, as_json) -> int:  # type: ignore[no-untyped-def]
    code = EXIT_OK
    try:
        async for event in run_single_call(
            text, agent=agent, backend=backend, agent_config=agent_config, model=model
        ):
            code = _show(event, as_json) or code
    finally:
        await backend.aclose()
    return code


def _show(event: Event, as_json: bool) -> int:
    if as_json:
        print(event.to_json(), flush=True)
    elif event.type == "token":
        sys.stdout.write(event.data["text"])
        sys.stdout.flush()
    elif event.type == "task_done":
        sys.stdout.write("\n")
    if event.type == "task_failed":
        if not as_json:
            if event.data.get("partial_text"):
                sys.stdout.write("\n")
            print(f"myninja: error: {event.data['error']}", file=sys.stderr)
        return int(event.data["exit_code"])
    return EXIT_OK
