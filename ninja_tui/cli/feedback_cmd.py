"""`myninja feedback`: rate a task, and correct its routing."""

from __future__ import annotations

import json

import click

from agent_graph.prompts import WORKER_AGENTS
from myninja.errors import UsageError
from ninja_tui.cli.tasks_cmd import _task, history


@click.command()
@click.argument("task_id")
@click.option("--good", "rating", flag_value="good", help="The answer was good.")
@click.option("--bad", "rating", flag_value="bad", help="The answer was bad.")
@click.option("--note", help="What was good or wrong.")
@click.option(
    "--agent",
    type=click.Choice(WORKER_AGENTS),
    help="The agent that should have taken the task (teaches the router).",
)
@click.option("--json", "as_json", is_flag=True)
def feedback(
    task_id: str, rating: str | None, note: str | None, agent: str | None, as_json: bool
) -> None:
    """Rate TASK_ID --good or --bad (with a --note), or correct its routing with --agent."""
    if rating is None and agent is None:
        raise UsageError("nothing to record", hint="give --good or --bad, and/or --agent AGENT")
    with history() as store:
        task = _task(store, task_id)
        if rating:
            store.add_feedback(task["id"], rating, note=note)
        if agent:
            store.add_route_correction(task["text"], agent, task_id=task["id"])
    record = {"task_id": task["id"], "rating": rating, "note": note, "agent": agent}
    click.echo(json.dumps(record) if as_json else f"recorded feedback for {task['id']}")
