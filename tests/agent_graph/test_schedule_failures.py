"""A schedule whose last `[schedules] pause_after` runs failed pauses itself, says why, and tells
the person through notify_command; `resume` clears the reason and counts afresh. Real
history.db, a real TaskManager on a scripted backend that fails on cue, a fake clock."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC
from pathlib import Path
from typing import Any

from myninja.agent_graph.tasks.manager import TaskManager
from myninja.agent_graph.tasks.schedules import ScheduleBook, Scheduler
from myninja.backends.scripted import Rule, ScriptedBackend
from myninja.config import Config
from tests.agent_graph.test_schedules import DAY, HOUR, MONDAY_7, Clock

OUTAGE = Rule(match="Paint the gate", error="unreachable")


@contextlib.asynccontextmanager
async def running_side(
    data: Path, clock: Clock, pause_after: int, rules: list[Rule], notify: Path | None = None
) -> AsyncIterator[tuple[Scheduler, TaskManager, list[dict[str, Any]]]]:
    """A worker's scheduler whose tasks really run (and fail where `rules` say)."""
    settings: dict[str, Any] = {"schedules": {"pause_after": pause_after}}
    if notify is not None:
        # One write per notice: two commands running at once must not interleave their lines.
        settings["notify_command"] = f'sh -c \'line=$(cat); printf "%s\\n" "$line" >> {notify}\''
    scripted = ScriptedBackend("embedded", rules)
    told: list[dict[str, Any]] = []

    def on_paused(row: dict[str, Any]) -> None:
        told.append(row)
        manager.notifier.schedule_paused(row)

    async with TaskManager.open(
        Config.model_validate(settings), data, backends={"embedded": scripted}
    ) as manager:
        book = ScheduleBook(manager.store, clock=clock, tz=UTC)

        async def submit(text: str, task_id: str) -> str:
            return await manager.submit(text, task_id=task_id)

        pause_after_now = lambda: manager.config.schedules.pause_after  # noqa: E731
        missed = lambda: "once"  # noqa: E731
        yield Scheduler(book, submit, missed, pause_after_now, on_paused), manager, told


async def next_run(scheduler: Scheduler, manager: TaskManager, clock: Clock) -> str:
    """Move the clock a day on, run that day's due task to its end, and settle it."""
    clock.now += DAY
    started = await scheduler.tick()
    for task_id in started:
        await manager.wait(task_id)
    await scheduler.tick()
    return started[0] if started else ""


async def test_three_failed_runs_in_a_row_pause_the_schedule_and_tell_the_person(
    tmp_path: Path,
) -> None:
    data, clock, notify = tmp_path / "data", Clock(MONDAY_7 + HOUR + 5 - DAY), tmp_path / "n"
    async with running_side(data, clock, 3, [OUTAGE], notify) as (scheduler, manager, told):
        schedule_id = scheduler.book.add("every day at 08:00", "Paint the gate")["id"]
        for _ in range(2):
            task_id = await next_run(scheduler, manager, clock)
            assert manager.store.get_task(task_id)["status"] == "failed"  # type: ignore[index]
            assert not scheduler.book.get(schedule_id)["paused"] and told == []
        await next_run(scheduler, manager, clock)
        row = scheduler.book.get(schedule_id)
        assert row["paused"] and told == [row]
        reason = row["paused_reason"]
        assert "last 3 runs in a row failed" in reason and "scripted outage" in reason
        assert [run["outcome"] for run in scheduler.book.runs(schedule_id)] == ["failed"] * 3
        assert await next_run(scheduler, manager, clock) == ""  # paused: nothing runs
        await manager.notifier.drain()
    [sent] = [json.loads(line) for line in notify.read_text().splitlines() if "schedule" in line]
    assert sent["event"] == "schedule_paused" and sent["schedule_id"] == schedule_id
    assert sent["reason"] == reason
    assert sent["resume_command"] == f"myninja schedule resume {schedule_id}"

    async with running_side(data, clock, 3, [OUTAGE]) as (scheduler, manager, told):
        resumed = scheduler.book.resume(schedule_id)
        assert not resumed["paused"] and resumed["paused_reason"] is None
        await next_run(scheduler, manager, clock)  # fails, but the count starts afresh
        assert not scheduler.book.get(schedule_id)["paused"] and told == []


async def test_a_run_that_succeeds_breaks_the_streak(tmp_path: Path) -> None:
    data, clock = tmp_path / "data", Clock(MONDAY_7 + HOUR + 5 - DAY)
    rules = [OUTAGE]
    async with running_side(data, clock, 2, rules) as (scheduler, manager, told):
        schedule_id = scheduler.book.add("every day at 08:00", "Paint the gate")["id"]
        await next_run(scheduler, manager, clock)
        rules.clear()  # the backend is back: this run is done
        await next_run(scheduler, manager, clock)
        rules.append(OUTAGE)
        await next_run(scheduler, manager, clock)
        assert [run["outcome"] for run in scheduler.book.runs(schedule_id)] == [
            "failed",
            "done",
            "failed",
        ]
        assert not scheduler.book.get(schedule_id)["paused"] and told == []
        await next_run(scheduler, manager, clock)
        assert scheduler.book.get(schedule_id)["paused"] and len(told) == 1


async def test_runs_that_cannot_be_submitted_count_as_failed(tmp_path: Path) -> None:
    data, clock = tmp_path / "data", Clock(MONDAY_7 + HOUR + 5 - DAY)
    async with running_side(data, clock, 2, []) as (scheduler, manager, told):
        schedule_id = scheduler.book.add("every day at 08:00", "@writer    ")["id"]
        await next_run(scheduler, manager, clock)
        assert not scheduler.book.get(schedule_id)["paused"]
        await next_run(scheduler, manager, clock)
        [row] = told
        assert row["paused"] and "the task is empty" in row["paused_reason"]
        assert "last 2 runs in a row failed" in row["paused_reason"]


async def test_pause_after_0_never_pauses(tmp_path: Path) -> None:
    data, clock = tmp_path / "data", Clock(MONDAY_7 + HOUR + 5 - DAY)
    async with running_side(data, clock, 0, [OUTAGE]) as (scheduler, manager, told):
        schedule_id = scheduler.book.add("every day at 08:00", "Paint the gate")["id"]
        for _ in range(4):
            await next_run(scheduler, manager, clock)
        assert not scheduler.book.get(schedule_id)["paused"] and told == []
        assert len(scheduler.book.runs(schedule_id)) == 4


def test_a_database_from_before_the_new_columns_gets_them_and_keeps_its_rows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "history.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE schedules (id TEXT PRIMARY KEY, spec TEXT NOT NULL, cron TEXT NOT NULL,"
        " text TEXT NOT NULL, paused INTEGER NOT NULL DEFAULT 0, next_due REAL NOT NULL,"
        " last_run REAL, created_at REAL NOT NULL);"
        "CREATE TABLE schedule_runs (schedule_id TEXT NOT NULL, due_at REAL NOT NULL,"
        " task_id TEXT NOT NULL UNIQUE, text TEXT NOT NULL, manual INTEGER NOT NULL DEFAULT 0,"
        " claimed_at REAL NOT NULL, error TEXT, PRIMARY KEY (schedule_id, due_at));"
        "INSERT INTO schedules VALUES ('s_old', 'every day at 08:00', '0 8 * * *', 'Old one',"
        " 1, 0, NULL, 0);"
        "INSERT INTO schedule_runs VALUES ('s_old', 0, 't_old', 'Old one', 0, 0, 'gone');"
    )
    conn.commit()
    conn.close()
    clock = Clock(MONDAY_7)
    with ScheduleBook.open(path, clock=clock, tz=UTC) as book:
        old = book.get("s_old")
        assert old["paused"] and old["paused_reason"] is None and old["text"] == "Old one"
        [run] = book.runs("s_old")
        assert run["outcome"] is None and run["error"] == "gone"
        assert book.resume("s_old")["counted_from"] == MONDAY_7
        assert book.add("every hour", "New one")["paused_reason"] is None
    with ScheduleBook.open(path, clock=clock, tz=UTC) as book:  # a second open adds nothing
        assert len(book.entries()) == 2
