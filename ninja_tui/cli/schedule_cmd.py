"""`myninja schedule`: tasks that run on a schedule (a cron expression or a plain phrase), each
run an ordinary task in history. The background worker runs them (agent_graph/tasks/
schedules.py); adding, resuming or running one now starts it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import click

from myninja import paths
from myninja.agent_graph.history.connection import make_folder
from myninja.agent_graph.tasks.client import WorkerClient
from myninja.agent_graph.tasks.schedules import ScheduleBook
from myninja.ninja_tui.cli.driving import ensure_worker
from myninja.ninja_tui.schedule_run import run_now

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@contextmanager
def book() -> Iterator[ScheduleBook]:
    make_folder(paths.data_dir())  # a file in the way, a read-only parent: one clear line
    with ScheduleBook.open(paths.data_dir() / "history.db") as opened:
        yield opened


def _start_worker() -> None:
    """The worker runs the schedules, and stays while any is on."""
    asyncio.run(ensure_worker(WorkerClient(paths.data_dir())))


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "-"


def _line(row: dict[str, Any]) -> str:
    state = "paused" if row["paused"] else "on"
    text = " ".join(row["text"].split())
    text = text if len(text) <= 50 else text[:49] + "…"
    line = (
        f"{row['id']}  {state:<6}  next {_when(None if row['paused'] else row['next_due'])}"
        f"  last {_when(row['last_run'])}  {row['spec']} ({row['cron']})  {text}"
    )
    reason = row.get("paused_reason")
    return f"{line}\n    {reason}; `myninja schedule resume {row['id']}`" if reason else line


def _show(row: dict[str, Any], as_json: bool) -> None:
    click.echo(json.dumps(row, ensure_ascii=False, indent=2) if as_json else _line(row))


@click.group()
def schedule() -> None:
    """Tasks that run on a schedule, in the background worker."""


@schedule.command("add")
@click.argument("when")
@click.argument("text")
@json_option
def schedule_add(when: str, text: str, as_json: bool) -> None:
    """Run TEXT (an @agent mention first, if you like) WHEN: a cron expression ("0 8 * * 1-5")
    or "every day|weekday|monday… at HH:MM", "every N minutes|hours"."""
    with book() as schedules:
        row = schedules.add(when, text)
    _show(row, as_json)
    _start_worker()


@schedule.command("list")
@json_option
def schedule_list(as_json: bool) -> None:
    """Every schedule, with its next and last run (local time)."""
    with book() as schedules:
        rows = [{**row, "runs": schedules.runs(row["id"])} for row in schedules.entries()]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        for row in rows:
            click.echo(_line(row))


@schedule.command("remove")
@click.argument("schedule_id")
def schedule_remove(schedule_id: str) -> None:
    """Remove a schedule; the tasks it ran stay in history."""
    with book() as schedules:
        found = schedules.get(schedule_id)["id"]
        schedules.remove(found)
    click.echo(f"removed {found}")


@schedule.command("pause")
@click.argument("schedule_id")
@json_option
def schedule_pause(schedule_id: str, as_json: bool) -> None:
    """Stop running a schedule until it is resumed."""
    with book() as schedules:
        row = schedules.pause(schedule_id)
    _show(row, as_json)


@schedule.command("resume")
@click.argument("schedule_id")
@json_option
def schedule_resume(schedule_id: str, as_json: bool) -> None:
    """Run a paused schedule again, from its next due time (the paused stretch is not caught
    up); one that paused itself after failed runs starts counting failures afresh."""
    with book() as schedules:
        row = schedules.resume(schedule_id)
    _show(row, as_json)
    _start_worker()


@schedule.command("run-now")
@click.argument("schedule_id")
@json_option
def schedule_run_now(schedule_id: str, as_json: bool) -> None:
    """Run a schedule's task once now, besides its schedule; prints the task's id."""
    with book() as schedules:
        client = WorkerClient(paths.data_dir())
        run = asyncio.run(run_now(schedules, schedule_id, partial(ensure_worker, client)))
    if as_json:
        click.echo(json.dumps({"schedule_id": run.schedule_id, "task_id": run.task_id}))
    else:
        click.echo(f"{run.task_id}  (see `myninja tasks show {run.task_id}`)")
