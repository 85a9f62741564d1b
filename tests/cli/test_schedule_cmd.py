"""`myninja schedule` as a user types it, on a scripted backend: add, list, run-now (an ordinary
task in history, run by the background worker and linked to its schedule), pause, resume,
remove, --json, and bad schedule text."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from myninja import paths
from myninja.agent_graph.tasks.client import WorkerClient
from myninja.errors import MyninjaError
from tests.agent_graph.scripts import FENCE_RULES
from tests.cli.test_task_commands import wait_for_status
from tests.conftest import run_myninja, scripted_config


@pytest.fixture
def scripted_home(myninja_home: Path) -> Iterator[Path]:
    yield scripted_config(myninja_home, FENCE_RULES)
    # The worker stays while a schedule is on: stop it, so that no test leaves one behind.
    with contextlib.suppress(OSError, MyninjaError):
        asyncio.run(WorkerClient(paths.data_dir()).request("shutdown"))


def schedule(*args: str) -> Any:
    done = run_myninja("schedule", *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_schedule_commands_run_a_task_linked_to_its_schedule(scripted_home: Path) -> None:
    added = schedule("add", "every weekday at 08:00", "Paint the gate")
    assert (added["cron"], added["spec"], added["paused"]) == (
        "0 8 * * 1-5",
        "every weekday at 08:00",
        False,
    )
    [listed] = schedule("list")
    assert listed["id"] == added["id"] and listed["runs"] == []

    ran = schedule("run-now", added["id"][:5])  # a unique prefix will do
    task = wait_for_status(ran["task_id"], "done", "failed")
    assert task["status"] == "done" and task["text"] == "Paint the gate"
    [listed] = schedule("list")
    [run] = listed["runs"]
    assert (run["task_id"], run["status"], run["manual"]) == (ran["task_id"], "done", 1)

    assert schedule("pause", added["id"])["paused"] is True
    assert schedule("resume", added["id"])["paused"] is False
    plain = run_myninja("schedule", "list")
    assert added["id"] in plain.stdout and "every weekday at 08:00" in plain.stdout

    removed = run_myninja("schedule", "remove", added["id"])
    assert removed.returncode == 0 and schedule("list") == []
    assert wait_for_status(ran["task_id"], "done")["id"] == ran["task_id"]  # history keeps it


@pytest.mark.parametrize(
    ("when", "said"),
    [("every weekday at 8am", "has 4 fields"), ("61 8 * * *", "Bad minute")],
)
def test_bad_schedule_text_is_one_line_and_exit_2(
    scripted_home: Path, when: str, said: str
) -> None:
    done = run_myninja("schedule", "add", when, "Paint the gate")
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("myninja: error: schedule") and said in line
    assert "every day at HH:MM" in line  # how to write it


def test_an_unknown_schedule_is_one_line(scripted_home: Path) -> None:
    done = run_myninja("schedule", "pause", "s_nothere")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "myninja: error: no schedule 's_nothere' (see `myninja schedule list`)"
    )


def test_a_schedule_that_keeps_failing_pauses_itself_and_list_says_why(
    scripted_home: Path,
) -> None:
    scripted_config(scripted_home, [{"match": "Break the gate", "error": "unreachable"}])
    with (scripted_home / "config.toml").open("a") as config:
        config.write("[schedules]\npause_after = 1\n")
    added = schedule("add", "every day at 08:00", "Break the gate")
    ran = schedule("run-now", added["id"])
    assert wait_for_status(ran["task_id"], "done", "failed")["status"] == "failed"
    deadline = time.monotonic() + 15
    while not (listed := schedule("list")[0])["paused"] and time.monotonic() < deadline:
        time.sleep(0.2)  # the worker notes the run's end on its next tick
    assert listed["paused"] and "its last run failed" in listed["paused_reason"]
    assert "scripted outage" in listed["paused_reason"]
    [line, why] = run_myninja("schedule", "list").stdout.splitlines()
    assert "paused" in line and why.strip().startswith("paused itself")
    assert why.strip().endswith(f"`myninja schedule resume {added['id']}`")
    resumed = schedule("resume", added["id"])
    assert resumed["paused"] is False and resumed["paused_reason"] is None
