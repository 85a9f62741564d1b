"""`myninja feedback`: rate a task, and correct its routing."""

from __future__ import annotations

import json
from typing import TextIO

import click

from myninja.config import WORKER_AGENTS
from myninja.errors import UsageError
from myninja.ninja_tui.cli.tasks_cmd import find_task, history


@click.command()
@click.argument("task_id")
@click.option("--good", "rating", flag_value="good", help="The answer was good.")
@click.option("--bad", "rating", flag_value="bad", help="The answer was bad.")
@click.option("--note", help="What was good or wrong.")
@click.option(
    "--edit",
    "edit_file",
    type=click.File("r", encoding="utf-8"),
    help="A file with the answer as it should have been ('-': stdin); preferred over the "
    "original in training exports.",
)
@click.option(
    "--agent",
    type=click.Choice(WORKER_AGENTS),
    help="The agent that should have taken the task (teaches the router).",
)
@click.option("--json", "as_json", is_flag=True)
def feedback(
    task_id: str,
    rating: str | None,
    note: str | None,
    edit_file: TextIO | None,
    agent: str | None,
    as_json: bool,
) -> None:
    """Rate TASK_ID --good or --bad (with a --note), give its corrected answer with --edit FILE,
    or correct its routing with --agent."""
    if rating is None and agent is None and edit_file is None:
        raise UsageError(
            "nothing to record", hint="give --good or --bad, --edit FILE, and/or --agent AGENT"
        )
    try:
        edited = edit_file.read() if edit_file is not None else None
    except UnicodeDecodeError:
        raise UsageError(f"--edit {edit_file.name}: not UTF-8 text") from None  # type: ignore[union-attr]
    if edited is not None and not edited.strip():
        raise UsageError(f"the edited answer in {edit_file.name} is empty")  # type: ignore[union-attr]
    if note and not rating and edited is None:
        raise UsageError("a note goes with a rating", hint="add --good or --bad")
    with history() as store:
        task = find_task(store, task_id)
        if rating or edited is not None:
            store.add_feedback(task["id"], rating or "edit", note=note, edited_answer=edited)
        if agent:
            store.add_route_correction(task["text"], agent, task_id=task["id"])
    record = {
        "task_id": task["id"],
        "rating": rating,
        "note": note,
        "edited": edited is not None,
        "agent": agent,
    }
    click.echo(json.dumps(record) if as_json else f"recorded feedback for {task['id']}")
