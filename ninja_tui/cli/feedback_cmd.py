"""`myninja feedback`: rate a task, correct its answer (the facts the person added are proposed
as memories: agent_graph/history/edit_facts.py) and its routing."""

from __future__ import annotations

import json
from typing import Any, TextIO

import click

from myninja.agent_graph.history import edit_facts
from myninja.config import WORKER_AGENTS
from myninja.config_file import load_config
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
    confirm_mode = load_config().memory.confirm if edited is not None else "always"
    proposed: list[dict[str, Any]] = []
    with history() as store:
        task = find_task(store, task_id)
        with store.batch():  # the edit and the memories it proposes: both, or neither
            if edited is not None:
                proposed = edit_facts.propose(store, task["id"], edited, confirm_mode=confirm_mode)
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
        "memories": [
            {"memory_id": m["id"], "text": m["text"], "status": m["status"], "new": m["new"]}
            for m in proposed
        ],
    }
    if as_json:
        click.echo(json.dumps(record))
        return
    click.echo(f"recorded feedback for {task['id']}")
    for line in memory_lines(proposed):
        click.echo(line)


def memory_lines(proposed: list[dict[str, Any]]) -> list[str]:
    """What an edit proposed, one line a memory, with the command that keeps a proposal."""
    lines = []
    for memory in proposed:
        n, text = memory["id"], memory["text"]
        if memory["status"] == "proposed":
            lines.append(f"remember “{text}”? myninja memory confirm {n} (or reject {n})")
        elif memory["new"]:
            lines.append(f"remembered {n}: {text}")
        else:
            lines.append(f"already remembered {n}: {text}")
    return lines
