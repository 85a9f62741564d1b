"""A scheduled task end to end on the tiny embedded model: `myninja schedule add` starts the real
worker, which runs the task when the (fake) clock reaches its due time; the task lands in
history, done with an answer and linked to its schedule, and notify_command hears of it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from myninja import paths
from myninja.agent_graph.tasks.client import WorkerClient
from myninja.agent_graph.tasks.cron import TEST_CLOCK_ENV
from myninja.errors import MyninjaError
from tests.agent_graph.test_schedules import HOUR, MONDAY_7
from tests.cli.test_task_commands import task_json
from tests.conftest import KNOWN_TIME_ZONE, TINY_MODEL, TINY_THREADS, run_myninja


@pytest.fixture
def tiny_home(
    myninja_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """The tiny model, a notify_command writing what it gets to a file, a fake clock."""
    notified = tmp_path / "notified.json"
    command = f"sh -c 'cat > {notified}'"
    (myninja_home / "config.toml").write_text(
        f"worker_idle_s = 120\nnotify_command = {json.dumps(command)}\n"
    )
    monkeypatch.setenv("MYNINJA_BACKENDS__EMBEDDED__MODEL", TINY_MODEL)
    monkeypatch.setenv("MYNINJA_BACKENDS__EMBEDDED__THREADS", str(TINY_THREADS))
    for name, value in KNOWN_TIME_ZONE.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MYNINJA_GRAPH__BRANCHES", "1")
    for agent in ("ASSISTANT", "ADVISOR", "WRITER", "CODER", "RESEARCHER", "SCHEDULER"):
        monkeypatch.setenv(f"MYNINJA_AGENTS__{agent}__MAX_TOKENS", "24")
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.setenv(TEST_CLOCK_ENV, str(tmp_path / "clock"))
    monkeypatch.setenv("TZ", "UTC")
    set_clock(tmp_path / "clock", MONDAY_7)
    yield notified
    with contextlib.suppress(OSError, MyninjaError):
        asyncio.run(WorkerClient(paths.data_dir()).request("shutdown"))


def set_clock(path: Path, ts: float) -> None:
    tmp = path.with_name("clock.tmp")
    tmp.write_text(repr(ts))
    os.replace(tmp, path)


def listed() -> dict[str, Any]:
    done = run_myninja("schedule", "list", "--json")
    assert done.returncode == 0, done.stderr
    [row] = json.loads(done.stdout)
    return dict(row)


@pytest.mark.slow
def test_a_scheduled_task_runs_on_the_tiny_model_and_notifies(tiny_home: Path) -> None:
    added = run_myninja("schedule", "add", "every day at 08:00", "Say hello.", "--json")
    assert added.returncode == 0, added.stderr  # and the worker runs
    schedule_id = json.loads(added.stdout)["id"]
    assert listed()["runs"] == []  # 07:00: not due yet

    set_clock(Path(os.environ[TEST_CLOCK_ENV]), MONDAY_7 + HOUR + 1)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        runs = listed()["runs"]
        if runs and runs[0]["status"] in ("done", "failed", "cancelled", "waiting"):
            break
        time.sleep(1)
    [run] = runs
    assert run["due_at"] == MONDAY_7 + HOUR and run["manual"] == 0
    task = task_json(run["task_id"])
    assert task["status"] == "done", task
    assert task["text"] == "Say hello." and (task["answer"] or "").strip()

    deadline = time.monotonic() + 30  # the command runs beside the task's end
    while not (tiny_home.exists() and tiny_home.read_text()) and time.monotonic() < deadline:
        time.sleep(0.2)
    told = json.loads(tiny_home.read_text())
    assert (told["event"], told["task_id"], told["status"]) == ("finished", task["id"], "done")
    assert told["answer"] == task["answer"]
    [run] = listed()["runs"]
    assert run["schedule_id"] == schedule_id and run["outcome"] == "done"
