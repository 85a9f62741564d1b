"""Scheduled tasks on a fake clock: real history.db in a temp dir, a real TaskManager (scripted
backend) submitting each run. A process killed between claiming a run and submitting its task,
or inside the claim's transaction, neither loses nor doubles the run after a restart; runs
missed while no worker ran follow the configured policy."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from myninja.agent_graph.tasks.manager import TaskManager
from myninja.agent_graph.tasks.schedules import Run, ScheduleBook, Scheduler, next_after, to_cron
from myninja.backends.scripted import ScriptedBackend
from myninja.config import Config
from myninja.config_file import load_config
from myninja.errors import ConfigError, UsageError

MONDAY_7 = datetime(2026, 12, 7, 7, 0, tzinfo=UTC).timestamp()  # a Monday
HOUR = 3600.0
DAY = 24 * HOUR


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Killed(BaseException):
    """The process dies here: nothing after this point runs (as with kill -9)."""


@contextlib.asynccontextmanager
async def worker_side(
    data: Path, clock: Clock, missed: str = "once", book_class: type[ScheduleBook] = ScheduleBook
) -> AsyncIterator[tuple[Scheduler, TaskManager]]:
    """What one worker process holds: a manager and a scheduler over the data dir."""
    config = Config.model_validate({"schedules": {"missed": missed}})
    scripted = ScriptedBackend("embedded", [])
    async with TaskManager.open(config, data, backends={"embedded": scripted}) as manager:
        book = book_class(manager.store, clock=clock, tz=UTC)

        async def submit(text: str, task_id: str) -> str:
            # Recorded, not run: what is checked here is which tasks exist.
            return await manager.submit(text, task_id=task_id, start=False)

        yield Scheduler(book, submit, lambda: manager.config.schedules.missed), manager


def tasks_and_runs(data: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    conn = sqlite3.connect(data / "history.db")
    conn.row_factory = sqlite3.Row
    try:
        tasks = [dict(r) for r in conn.execute("SELECT id, text, agent FROM tasks")]
        runs = [dict(r) for r in conn.execute("SELECT * FROM schedule_runs ORDER BY due_at")]
    finally:
        conn.close()
    return tasks, runs


def add(data: Path, clock: Clock, spec: str = "every weekday at 08:00") -> str:
    with ScheduleBook.open(data / "history.db", clock=clock, tz=UTC) as book:
        return book.add(spec, "@researcher what changed in SQLite this week")["id"]


@pytest.mark.parametrize(
    ("spec", "cron"),
    [
        ("every day at 08:00", "0 8 * * *"),
        ("Every  Weekday at 7:30", "30 7 * * 1-5"),
        ("every monday at 23:59", "59 23 * * 1"),
        ("every sunday at 00:00", "0 0 * * 0"),
        ("every 15 minutes", "*/15 * * * *"),
        ("every 2 hours", "0 */2 * * *"),
        ("every hour", "0 * * * *"),
        ("0 8 * * 1-5", "0 8 * * 1-5"),
        ("*/5 9-17 * * mon-fri", "*/5 9-17 * * mon-fri"),
    ],
)
def test_phrases_and_cron_expressions(spec: str, cron: str) -> None:
    assert to_cron(spec) == cron


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        ("every weekday at 25:00", "25:00 is not a time of day"),
        ("every 90 minutes", "every 90 minutes is out of range"),
        ("0 25 * * *", "Bad hour"),
        ("tomorrow morning", "has 2 fields"),
    ],
)
def test_bad_schedule_text_says_what_and_how(spec: str, said: str) -> None:
    with pytest.raises(UsageError) as caught:
        to_cron(spec)
    line = caught.value.one_line()
    assert said in line and repr(spec) in line
    assert caught.value.exit_code == 2 and caught.value.hint


def test_next_after_is_the_following_weekday_morning() -> None:
    friday_9 = MONDAY_7 + 4 * DAY + 2 * HOUR
    monday_8 = MONDAY_7 + 7 * DAY + HOUR
    assert next_after("0 8 * * 1-5", friday_9, UTC) == monday_8
    assert next_after("0 8 * * 1-5", MONDAY_7, UTC) == MONDAY_7 + HOUR


async def test_a_due_schedule_runs_once_as_a_task_linked_to_it(tmp_path: Path) -> None:
    data, clock = tmp_path / "data", Clock(MONDAY_7)
    schedule_id = add(data, clock)
    async with worker_side(data, clock) as (scheduler, manager):
        assert await scheduler.tick() == []  # not due before 08:00
        clock.now = MONDAY_7 + HOUR + 5
        [task_id] = await scheduler.tick()
        assert await scheduler.tick() == []  # the same due time never runs twice
        task = manager.store.get_task(task_id)
        assert task is not None and task["agent"] == "researcher"
        assert task["text"] == "what changed in SQLite this week"
        [run] = scheduler.book.runs(schedule_id)
        assert (run["task_id"], run["due_at"], run["status"]) == (
            task_id,
            MONDAY_7 + HOUR,
            "queued",
        )
        row = scheduler.book.get(schedule_id)
        assert row["next_due"] == MONDAY_7 + DAY + HOUR and row["last_run"] == clock.now


async def test_killed_after_the_claim_the_run_is_submitted_once_on_restart(tmp_path: Path) -> None:
    data, clock = tmp_path / "data", Clock(MONDAY_7)
    add(data, clock)
    clock.now = MONDAY_7 + HOUR + 5

    async def dies(text: str, task_id: str) -> str:
        raise Killed

    async with worker_side(data, clock) as (scheduler, _):
        scheduler.submit = dies  # the claim is committed, then the process dies
        with pytest.raises(Killed):
            await scheduler.tick()
    tasks, [claimed] = tasks_and_runs(data)
    assert tasks == []

    clock.now += 120  # restarted two minutes later
    async with worker_side(data, clock) as (scheduler, _):
        assert await scheduler.tick() == [claimed["task_id"]]
        assert await scheduler.tick() == []
    tasks, runs = tasks_and_runs(data)
    assert [t["id"] for t in tasks] == [claimed["task_id"]] and runs == [claimed]


async def test_killed_inside_the_claim_nothing_is_kept_and_the_run_happens_once(
    tmp_path: Path,
) -> None:
    class DiesMidClaim(ScheduleBook):
        def _insert_run(self, conn: sqlite3.Connection, run: Run, now: float, manual: bool) -> None:
            super()._insert_run(conn, run, now, manual)
            raise Killed  # the run row is written, next_due not yet moved, nothing committed

    data, clock = tmp_path / "data", Clock(MONDAY_7)
    schedule_id = add(data, clock)
    clock.now = MONDAY_7 + HOUR + 5
    async with worker_side(data, clock, book_class=DiesMidClaim) as (scheduler, _):
        with pytest.raises(Killed):
            await scheduler.tick()
    assert tasks_and_runs(data) == ([], [])

    async with worker_side(data, clock) as (scheduler, _):
        [task_id] = await scheduler.tick()
        assert await scheduler.tick() == []
        assert scheduler.book.get(schedule_id)["next_due"] == MONDAY_7 + DAY + HOUR
    tasks, [run] = tasks_and_runs(data)
    assert [t["id"] for t in tasks] == [task_id] == [run["task_id"]]


@pytest.mark.parametrize(("missed", "runs_after_downtime"), [("once", 1), ("skip", 0)])
async def test_runs_missed_while_down_follow_the_policy(
    tmp_path: Path, missed: str, runs_after_downtime: int
) -> None:
    data, clock = tmp_path / "data", Clock(MONDAY_7)
    schedule_id = add(data, clock)
    clock.now = MONDAY_7 + 2 * DAY + 5 * HOUR  # Wednesday noon: Mon, Tue, Wed 08:00 missed
    async with worker_side(data, clock, missed) as (scheduler, _):
        assert len(await scheduler.tick()) == runs_after_downtime
        assert await scheduler.tick() == []
        thursday_8 = MONDAY_7 + 3 * DAY + HOUR
        assert scheduler.book.get(schedule_id)["next_due"] == thursday_8
        clock.now = thursday_8 + 10  # on time again: runs under either policy
        assert len(await scheduler.tick()) == 1
    _, runs = tasks_and_runs(data)
    assert len(runs) == runs_after_downtime + 1
    if missed == "once":
        assert runs[0]["due_at"] == MONDAY_7 + HOUR  # the first missed one, run late


async def test_paused_schedules_do_not_run_and_resume_without_catching_up(tmp_path: Path) -> None:
    data, clock = tmp_path / "data", Clock(MONDAY_7)
    schedule_id = add(data, clock, "every 30 minutes")
    async with worker_side(data, clock) as (scheduler, _):
        scheduler.book.pause(schedule_id)
        clock.now += 3 * HOUR
        assert await scheduler.tick() == [] and not scheduler.active
        row = scheduler.book.resume(schedule_id)
        assert row["next_due"] == clock.now + 30 * 60  # 10:00 exactly: the next half hour
        assert await scheduler.tick() == [] and scheduler.active
        run = scheduler.book.run_now(schedule_id)  # a manual run, besides the schedule
        assert await scheduler.tick() == [run.task_id]
        assert await scheduler.tick() == []


async def test_a_run_that_cannot_be_submitted_is_kept_with_its_reason(tmp_path: Path) -> None:
    data, clock = tmp_path / "data", Clock(MONDAY_7)
    with ScheduleBook.open(data / "history.db", clock=clock, tz=UTC) as book:
        schedule_id = book.add("every day at 08:00", "@writer    ")["id"]
    clock.now += HOUR
    async with worker_side(data, clock) as (scheduler, _):
        assert await scheduler.tick() == []
        assert await scheduler.tick() == []  # not tried again and again
        [run] = scheduler.book.runs(schedule_id)
        assert "the task is empty" in run["error"] and run["status"] is None


async def test_a_retiring_worker_is_not_kept_alive_by_schedules(tmp_path: Path) -> None:
    data, clock = tmp_path / "data", Clock(MONDAY_7)
    add(data, clock)
    async with worker_side(data, clock) as (scheduler, _):
        await scheduler.tick()
        assert scheduler.active  # a schedule is on: the worker stays for it
        stop = asyncio.Event()
        ticking = asyncio.create_task(scheduler.run(stop, lambda: True))
        await asyncio.sleep(0.05)
        assert not scheduler.active  # retiring: the new worker runs the schedules
        stop.set()
        await asyncio.wait_for(ticking, 5)


def test_the_missed_policy_is_read_from_the_config_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[schedules]\nmissed = "skip"\n')
    assert load_config(path, environ={}).schedules.missed == "skip"
    assert load_config(path, environ={"MYNINJA_SCHEDULES__MISSED": "once"}).schedules.missed == (
        "once"
    )
    path.write_text('[schedules]\nmissed = "sometimes"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    line = caught.value.one_line()
    assert "schedules.missed" in line and str(path) in line and "\n" not in line


@pytest.fixture
def berlin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_local_times_keep_their_wall_clock_across_daylight_saving(berlin: None) -> None:
    saturday = datetime(2026, 3, 28, 9, 0, tzinfo=UTC).timestamp()  # the clocks go forward
    sunday_8 = next_after("0 8 * * *", saturday)
    assert datetime.fromtimestamp(sunday_8, UTC).hour == 6  # 08:00 CEST, not 07:00 UTC
    assert next_after("0 8 * * *", sunday_8) == sunday_8 + DAY
    # The night the clocks go back, 02:00-02:59 happens twice: due times still move on (the
    # repeated hour runs once), and none is more than that hour late.
    ts = datetime(2026, 10, 24, 23, 0, tzinfo=UTC).timestamp()
    for _ in range(16):
        due = next_after("*/15 * * * *", ts)
        assert ts < due <= ts + HOUR + 15 * 60
        ts = due
