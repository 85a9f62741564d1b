"""`myninja tasks`: list, show, search, cancel and resume the tasks kept in history."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from myninja import paths
from myninja.agent_graph.history import HistoryStore
from myninja.agent_graph.history.statuses import NEVER_RESUMED, STATUSES
from myninja.agent_graph.tasks.client import WorkerClient
from myninja.config_file import load_config
from myninja.errors import MyninjaError, UsageError
from myninja.ninja_tui.cli.ask import json_option
from myninja.ninja_tui.cli.driving import ensure_worker, follow_worker
from myninja.ninja_tui.cli.render import EventPrinter

if TYPE_CHECKING:
    from myninja.skills.scheduler.unbook import WrittenEvent


@contextmanager
def history() -> Iterator[HistoryStore]:
    store = HistoryStore(paths.data_dir() / "history.db")
    try:
        yield store
    finally:
        store.close()


def find_task(store: HistoryStore, task_id: str) -> dict[str, Any]:
    """The task with this id (or unique id prefix); a UsageError where there is none."""
    task = store.get_task(task_id)
    if task is None:
        raise UsageError(f"no task {task_id!r}", hint="see `myninja tasks list`")
    return task


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "-"


def _line(task: dict[str, Any]) -> str:
    text = " ".join(task["text"].split())
    text = text if len(text) <= 60 else text[:59] + "…"
    agent = task.get("agent") or "-"
    return f"{task['id']}  {task['status']:<9} {agent:<10} {_when(task['created_at'])}  {text}"


@click.group()
def tasks() -> None:
    """Tasks kept on this machine."""


@tasks.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="Only tasks with this status.")
@click.option("--agent", help="Only tasks of this agent.")
@click.option("--limit", type=int, default=30, show_default=True)
@json_option
def tasks_list(status: str | None, agent: str | None, limit: int, as_json: bool) -> None:
    """The newest tasks first."""
    with history() as store:
        rows = store.list_tasks(status=status, agent=agent, limit=limit)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        for row in rows:
            click.echo(_line(row))


@tasks.command("show")
@click.argument("task_id")
@json_option
def tasks_show(task_id: str, as_json: bool) -> None:
    """A task: its plan, branches and scores, questions and answer."""
    with history() as store:
        task = find_task(store, task_id)
        events = store.events(task["id"])
        questions = store.questions(task["id"], status=None)
        feedback = store.feedback(task["id"])
    if as_json:
        click.echo(
            json.dumps(
                {**task, "events": events, "questions": questions, "feedback": feedback},
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    click.echo(
        f"{task['id']}  {task['status']}  agent: {task.get('agent') or '-'}  "
        f"created {_when(task['created_at'])}"
    )
    click.echo(f"task: {task['text']}")
    for event in events:
        kind = event["type"]
        if kind == "plan":
            click.echo(f"plan (attempt {event['round']}):")
            for i, step in enumerate(event["steps"], 1):
                click.echo(f"  {i}. {step['title']}: {step['instruction']}")
        elif kind == "evaluation":
            click.echo(f"  {event['branch_id']}: {event['score']:g}/10  {event['reasons']}")
        elif kind == "selected":
            click.echo(
                f"  kept {event['branch_id']}" + (" (best effort)" if event["best_effort"] else "")
            )
        elif kind == "replan":
            click.echo(f"replanned: {event['reason']}")
    for q in questions:
        state = f"answered: {q['answer']}" if q["status"] == "answered" else "OPEN"
        click.echo(f"question {q['id']}: {q['text']}  [{state}]")
        if q["status"] == "open":
            click.echo(f'  answer with: myninja answer {task["id"]} {q["id"]} "..."')
    if task.get("answer"):
        click.echo("\n" + task["answer"])
    if task.get("error"):
        click.echo(f"error: {task['error']}")
    for fb in feedback:
        click.echo(f"rated {fb['rating']}" + (f": {fb['note']}" if fb.get("note") else ""))


@tasks.command("search")
@click.argument("query")
@click.option("--limit", type=int, default=20, show_default=True)
@json_option
def tasks_search(query: str, limit: int, as_json: bool) -> None:
    """Full-text search over task texts, answers and sources."""
    with history() as store:
        rows = store.search(query, limit=limit)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for row in rows:
        click.echo(_line(row))
        if row.get("snippet"):
            click.echo(f"    {row['snippet']}")


@tasks.command("cancel")
@click.argument("task_id")
@click.option(
    "--remove-event/--keep-event",
    "remove",
    default=None,
    help="Remove (or keep) calendar events the task wrote, without asking. --remove-event "
    "also works on a task already cancelled: it is how to remove them later.",
)
@json_option
def tasks_cancel(task_id: str, remove: bool | None, as_json: bool) -> None:
    """Stop a task (running or waiting). Where it had already put a meeting on a calendar,
    it asks whether to remove the event; --remove-event / --keep-event decide for scripts,
    and --json without either lists them as written_events (remove them later with
    `myninja tasks cancel ID --remove-event`)."""
    from myninja.agent_graph.history.statuses import FINISHED
    from myninja.skills.scheduler.unbook import written_events

    with history() as store:
        task = find_task(store, task_id)
    written = written_events(task["id"])
    ended = task["status"] in FINISHED
    if ended and not remove:
        hint = f"remove its events with `myninja tasks cancel {task['id']} --remove-event`"
        raise UsageError(
            f"task {task['id']} already ended ({task['status']})", hint=hint if written else None
        )
    if not ended:
        asyncio.run(_cancel(task["id"]))
        with history() as store:
            task = find_task(store, task["id"])
        written = written_events(task["id"])  # again: it may have booked while it stopped
    if written and remove is None and not as_json:
        remove = _ask_to_remove(task["id"], written)
    removed = _remove_events(task["id"]) if written and remove else []
    if as_json:
        click.echo(
            json.dumps(
                {
                    "task_id": task["id"],
                    "status": task["status"],
                    "written_events": [e.as_json() for e in written if e not in removed],
                    "removed_events": [e.as_json() for e in removed],
                },
                ensure_ascii=False,
            )
        )
    else:
        click.echo(
            f"already {task['status']}: {task['id']}" if ended else f"cancelled {task['id']}",
            err=True,
        )
        if ended and not written:
            click.echo("no calendar events to remove", err=True)
        for event in removed:
            click.echo(f"removed {event.describe()}", err=True)


def _ask_to_remove(task_id: str, written: list[WrittenEvent]) -> bool:
    """On a terminal, one question per task (each event named); elsewhere, say how to."""
    listed = "; ".join(e.describe() for e in written)
    if not sys.stdin.isatty():
        click.echo(
            f"The task put {listed}. Kept; remove with "
            f"`myninja tasks cancel {task_id} --remove-event`.",
            err=True,
        )
        return False
    return click.confirm(f"The task put {listed}. Remove it?", default=False, err=True)


def _remove_events(task_id: str) -> list[WrittenEvent]:
    from myninja.skills.scheduler.unbook import remove_written_events

    # A CalendarError (down: exit 4, wrong password: exit 2) is one line from the CLI's
    # handler; the ledger still says written for what was not removed.
    return remove_written_events(task_id, load_config())


async def _cancel(task_id: str) -> None:
    client = WorkerClient(paths.data_dir())
    if await client.alive():
        await client.request("cancel", task_id=task_id)
        return
    from myninja.agent_graph.tasks.manager import TaskManager

    async with TaskManager.open(load_config()) as manager:
        await manager.cancel(task_id)


@tasks.command("resume")
@click.argument("task_id")
@json_option
@click.option("--detach", "-d", is_flag=True, help="Return at once; the worker goes on.")
def tasks_resume(task_id: str, as_json: bool, detach: bool) -> int:
    """Continue an unfinished or failed task in the background worker from its last
    checkpoint. A failed one shows only what happens from now (its old failure is not news)."""
    with history() as store:
        task = find_task(store, task_id)
        after_seq = store.last_seq(task["id"]) if task["status"] == "failed" else 0
    return asyncio.run(_resume(task["id"], task["status"], as_json, detach, after_seq))


async def _resume(
    task_id: str, status: str, as_json: bool, detach: bool, after_seq: int = 0
) -> int:
    """`status` is the task's as the person asked: a worker started after a crash picks
    unfinished tasks up by itself, and may have ended this one before our request comes."""
    client = WorkerClient(paths.data_dir())
    await ensure_worker(client)
    try:
        await client.request("resume", task_id=task_id)
    except MyninjaError:
        with history() as store:
            ended_meanwhile = (
                status not in NEVER_RESUMED and find_task(store, task_id)["status"] in NEVER_RESUMED
            )
        if not ended_meanwhile:
            raise
    if detach:
        return 0
    code = await follow_worker(client, task_id, EventPrinter(as_json), after_seq)
    if after_seq:
        with history() as store:
            task = find_task(store, task_id)
            if task["status"] == "failed" and store.last_seq(task_id) == after_seq:
                # Failed again the same way (its failure event is stored once): say why.
                click.echo(f"myninja: error: {task['error']}", err=True)
    return code
