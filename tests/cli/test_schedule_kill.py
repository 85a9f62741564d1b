"""Schedules survive a real worker process killed with SIGKILL and started again: on a fake clock
(MYNINJA_TEST_CLOCK, read by the worker's schedules), each due time ends with exactly one run
and one finished task in history, none lost, none doubled, whether the kill comes right after
the claim, right after the task is recorded, or at some moment in between; runs missed while
no worker ran follow `[schedules] missed`. Scripted backend: the tasks end at once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from myninja import paths
from myninja.agent_graph.tasks.cron import TEST_CLOCK_ENV
from myninja.agent_graph.tasks.schedules import ScheduleBook
from tests.agent_graph.scripts import FENCE_RULES
from tests.agent_graph.test_schedules import DAY, HOUR, MONDAY_7
from tests.conftest import myninja_cmd, scripted_config

MONDAY_8 = MONDAY_7 + HOUR
SetClock = Callable[[float], None]


@pytest.fixture
def set_clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SetClock:
    """The clock of every worker this test starts: a file it rewrites atomically."""
    path = tmp_path / "clock"

    def write(ts: float) -> None:
        tmp = path.with_name("clock.tmp")
        tmp.write_text(repr(ts))
        os.replace(tmp, path)

    write(MONDAY_7)
    monkeypatch.setenv(TEST_CLOCK_ENV, str(path))
    monkeypatch.setenv("TZ", "UTC")
    return write


class Workers:
    """Real `myninja worker` processes, one at a time, killed with SIGKILL."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.data / "worker.log", "ab") as log:
            self.proc = subprocess.Popen(
                myninja_cmd("worker"), stdout=log, stderr=log, stdin=subprocess.DEVNULL
            )

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            assert self.proc.wait(timeout=30) == -signal.SIGKILL
        self.proc = None


@pytest.fixture
def workers(myninja_home: Path) -> Iterator[Workers]:
    running = Workers(paths.data_dir())
    yield running
    running.kill()


def history(data: Path) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The schedule's runs (by due time) and every task's status, read as another process."""
    conn = sqlite3.connect(data / "history.db", timeout=30)
    conn.row_factory = sqlite3.Row
    try:
        runs = [dict(r) for r in conn.execute("SELECT * FROM schedule_runs ORDER BY due_at")]
        tasks = {r["id"]: r["status"] for r in conn.execute("SELECT id, status FROM tasks")}
    except sqlite3.OperationalError:  # not made yet: no worker has opened it
        return [], {}
    finally:
        conn.close()
    return runs, tasks


def next_due(data: Path) -> float:
    conn = sqlite3.connect(data / "history.db", timeout=30)
    try:
        [(due,)] = conn.execute("SELECT next_due FROM schedules").fetchall()
    finally:
        conn.close()
    return float(due)


def wait_until(data: Path, check: Callable[[list[dict[str, Any]], dict[str, str]], bool]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if check(*history(data)):
            return
        time.sleep(0.05)
    log = (data / "worker.log").read_text(errors="replace")[-3000:]
    raise AssertionError(f"timed out; runs and tasks: {history(data)}\nworker.log: {log}")


def ran(due: float) -> Callable[[list[dict[str, Any]], dict[str, str]], bool]:
    """The run of `due` is claimed, its task recorded and finished."""

    def check(runs: list[dict[str, Any]], tasks: dict[str, str]) -> bool:
        mine = [run for run in runs if run["due_at"] == due]
        return bool(mine) and all(tasks.get(run["task_id"]) == "done" for run in mine)

    return check


def claimed(due: float) -> Callable[[list[dict[str, Any]], dict[str, str]], bool]:
    return lambda runs, tasks: any(run["due_at"] == due for run in runs)


def recorded(due: float) -> Callable[[list[dict[str, Any]], dict[str, str]], bool]:
    return lambda runs, tasks: any(r["due_at"] == due and r["task_id"] in tasks for r in runs)


# Where the kill falls: as soon as the run is claimed, as soon as its task is recorded, or a
# while after the clock reached the due time (before the worker's tick, or during its work).
KILL_POINTS: list[Callable[[float], Any]] = [claimed, recorded, 0.0, 0.7]


@pytest.mark.parametrize("missed", ["once", "skip"])
def test_a_killed_worker_neither_loses_nor_doubles_a_run(
    myninja_home: Path, set_clock: SetClock, workers: Workers, missed: str
) -> None:
    scripted_config(myninja_home, FENCE_RULES, idle_s=600)
    with (myninja_home / "config.toml").open("a") as config:
        config.write(f'[schedules]\nmissed = "{missed}"\n')
    data = paths.data_dir()
    data.mkdir(parents=True)
    with ScheduleBook.open(data / "history.db", clock=lambda: MONDAY_7, tz=UTC) as book:
        schedule_id = book.add("every day at 08:00", "Paint the gate")["id"]

    expected = []
    workers.start()
    for day, point in enumerate(KILL_POINTS):
        due = MONDAY_8 + day * DAY
        expected.append(due)
        set_clock(due + 5)
        if isinstance(point, float):
            time.sleep(point)
        else:
            wait_until(data, point(due))
        workers.kill()
        workers.start()
        wait_until(data, ran(due))

    # Down across three due times, back at noon of the third: "once" runs the first of them,
    # "skip" none; either way the next one is the following 08:00.
    workers.kill()
    first_missed = MONDAY_8 + len(KILL_POINTS) * DAY
    set_clock(first_missed + 2 * DAY + 4 * HOUR)
    workers.start()
    wednesday = first_missed + 3 * DAY
    if missed == "once":
        expected.append(first_missed)
        wait_until(data, ran(first_missed))
    else:
        wait_until(data, lambda runs, tasks: next_due(data) == wednesday)
    time.sleep(3)  # a few ticks: nothing else runs until Wednesday 08:00
    expected.append(wednesday)
    set_clock(wednesday + 5)
    wait_until(data, ran(wednesday))
    time.sleep(2)
    workers.kill()

    runs, tasks = history(data)
    assert [run["due_at"] for run in runs] == expected  # each due time once, none lost
    assert sorted(run["task_id"] for run in runs) == sorted(tasks)  # one task per run
    assert set(tasks.values()) == {"done"}
    assert all(run["schedule_id"] == schedule_id and not run["error"] for run in runs)
    with ScheduleBook.open(data / "history.db", clock=lambda: wednesday + 5, tz=UTC) as book:
        assert book.get(schedule_id)["next_due"] == wednesday + DAY
