"""`myninja tasks cancel` on a task that had already put a meeting on a calendar, against a real
Radicale on 127.0.0.1: --remove-event takes the event off the server and the ledger says
removed (and a second --remove-event, on the now cancelled task, finds nothing to do);
--keep-event leaves it; --json without either lists it as written_events and leaves it; a
server that is down is one line with exit 4, and the ledger still says written.

The task is a real one (`myninja ask` that stops at a question, so it can still be cancelled);
its booking is made by calling book_meeting directly with that task's id and workspace."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import select
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import caldav
import pytest

from myninja.backends.keys import KeyStore
from myninja.config_file import load_config
from myninja.skills.api import Permission, ToolContext, task_workspace
from myninja.skills.scheduler.booking import LEDGER, book_meeting
from tests.agent_graph.scripts import FENCE_RULES
from tests.cli.test_task_commands import task_json
from tests.conftest import REPO, myninja_cmd, run_myninja, scripted_config
from tests.local_http import free_port
from tests.radicale_server import USERS, Radicale, radicale_server

pytestmark = pytest.mark.timeout(300)

MEETING = {"title": "Roadmap review", "start_utc": "2026-03-10T14:00:00Z", "duration_minutes": 30}


@pytest.fixture
def dav(tmp_path: Path) -> Iterator[Radicale]:
    folder = tmp_path / "dav"
    folder.mkdir()
    with radicale_server(folder) as server:
        client = caldav.DAVClient(
            url=f"{server.base_url}alice/", username="alice", password=USERS["alice"]
        )
        client.principal().make_calendar(name="Alice work", cal_id="work")
        yield server


def configure(home: Path, url: str) -> None:
    scripted_config(home, FENCE_RULES)
    with (home / "config.toml").open("a") as config:
        config.write(
            '[keys]\nstore = "file"\n[scheduler]\ntimezone = "Europe/Berlin"\n'
            f'[calendars.work]\nurl = "{url}"\nusername = "alice"\nwritable = true\n'
        )
    KeyStore("file").set("cal-work", USERS["alice"])


def booked_waiting_task() -> str:
    """A task waiting for an answer (so cancellable) that has booked MEETING; its id."""
    asked = run_myninja("ask", "Paint the fence", "--json")
    assert asked.returncode == 3, asked.stderr
    task_id = json.loads(asked.stdout.splitlines()[-1])["task_id"]
    ctx = ToolContext(
        task_id,
        config=load_config(),
        granted=frozenset({Permission.CALENDAR_WRITE}),
        workspace_dir=task_workspace(task_id),
    )
    result = asyncio.run(book_meeting.call(dict(MEETING), ctx))
    assert "Wrote event" in result
    return task_id


def ledger(task_id: str) -> dict[str, dict[str, object]]:
    return json.loads((task_workspace(task_id) / LEDGER).read_text())


def work_calendar(dav: Radicale) -> caldav.Calendar:
    client = caldav.DAVClient(url=dav.calendar_url("alice"), username="alice",
                              password=USERS["alice"])  # fmt: skip
    return caldav.Calendar(client=client, url=dav.calendar_url("alice"))


def test_cancel_remove_event_takes_it_off_the_calendar_once(
    myninja_home: Path, dav: Radicale
) -> None:
    configure(myninja_home, dav.calendar_url("alice"))
    calendar = work_calendar(dav)
    task_id = booked_waiting_task()
    (event,) = calendar.events()
    uid = str(event.icalendar_component["UID"])

    cancelled = run_myninja("tasks", "cancel", task_id, "--remove-event")
    assert cancelled.returncode == 0, cancelled.stderr
    assert f"removed 'Roadmap review' on calendar work ({uid})" in cancelled.stderr
    assert calendar.events() == []
    assert task_json(task_id)["status"] == "cancelled"
    (entry,) = ledger(task_id).values()
    assert entry["written"]["uid"] == uid and entry["removed"]["was_there"] is True  # type: ignore[index]

    # Again on the cancelled task: nothing left to remove, and not an error.
    again = run_myninja("tasks", "cancel", task_id, "--remove-event", "--json")
    assert again.returncode == 0, again.stderr
    shown = json.loads(again.stdout)
    assert shown["status"] == "cancelled"
    assert shown["written_events"] == [] and shown["removed_events"] == []
    # Without the flag, an ended task is the old one-line usage error.
    plain = run_myninja("tasks", "cancel", task_id)
    assert plain.returncode == 2 and "already ended (cancelled)" in plain.stderr


def test_keep_event_and_json_leave_it_and_remove_later_works(
    myninja_home: Path, dav: Radicale
) -> None:
    configure(myninja_home, dav.calendar_url("alice"))
    calendar = work_calendar(dav)
    kept_id = booked_waiting_task()
    kept = run_myninja("tasks", "cancel", kept_id, "--keep-event")
    assert kept.returncode == 0, kept.stderr
    assert len(calendar.events()) == 1 and "removed" not in ledger(kept_id).popitem()[1]
    # An ended task with an event left: the error says how to remove it.
    ended = run_myninja("tasks", "cancel", kept_id)
    assert ended.returncode == 2 and f"tasks cancel {kept_id} --remove-event" in ended.stderr

    listed_id = booked_waiting_task()
    listed = run_myninja("tasks", "cancel", listed_id, "--json")  # no prompt, no terminal
    assert listed.returncode == 0, listed.stderr
    shown = json.loads(listed.stdout)
    assert shown["status"] == "cancelled" and shown["removed_events"] == []
    (written,) = shown["written_events"]
    assert written["calendar"] == "work" and written["title"] == "Roadmap review"
    assert len(calendar.events()) == 2  # one per task: both still there

    # Later, the script decides: the way to remove it afterwards.
    later = run_myninja("tasks", "cancel", listed_id, "--remove-event", "--json")
    assert later.returncode == 0, later.stderr
    assert [e["uid"] for e in json.loads(later.stdout)["removed_events"]] == [written["uid"]]
    (left,) = calendar.events()
    assert str(left.icalendar_component["UID"]) != written["uid"]


def test_no_terminal_and_no_flag_keeps_it_and_says_how_to_remove(
    myninja_home: Path, dav: Radicale
) -> None:
    configure(myninja_home, dav.calendar_url("alice"))
    task_id = booked_waiting_task()
    cancelled = run_myninja("tasks", "cancel", task_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert "The task put 'Roadmap review' on calendar work (" in cancelled.stderr
    assert f"myninja tasks cancel {task_id} --remove-event" in cancelled.stderr
    assert len(work_calendar(dav).events()) == 1


def test_a_server_that_is_down_is_one_line_and_the_ledger_still_says_written(
    myninja_home: Path, dav: Radicale
) -> None:
    configure(myninja_home, dav.calendar_url("alice"))
    task_id = booked_waiting_task()
    config = (myninja_home / "config.toml").read_text()
    down = f"http://127.0.0.1:{free_port()}/alice/work/"
    (myninja_home / "config.toml").write_text(config.replace(dav.calendar_url("alice"), down))
    failed = run_myninja("tasks", "cancel", task_id, "--remove-event")
    assert failed.returncode == 4, failed.stderr
    (line,) = failed.stderr.strip().splitlines()
    assert "calendar work: cannot reach" in line and "Traceback" not in failed.stderr
    assert task_json(task_id)["status"] == "cancelled"
    assert "removed" not in ledger(task_id).popitem()[1]
    assert len(work_calendar(dav).events()) == 1
    # The server back (the config restored): removing it afterwards works.
    (myninja_home / "config.toml").write_text(config)
    later = run_myninja("tasks", "cancel", task_id, "--remove-event")
    assert later.returncode == 0, later.stderr
    assert work_calendar(dav).events() == []


def on_a_terminal(*args: str, answer: str) -> tuple[int, str]:
    """`myninja ARGS` on a pseudo-terminal, answering `answer` when asked; exit code, output."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(myninja_cmd(*args), stdin=slave, stdout=slave, stderr=slave, cwd=REPO)
    os.close(slave)
    seen, answered = b"", False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if select.select([master], [], [], 0.1)[0]:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the process closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        if not answered and b"[y/N]" in seen:
            os.write(master, answer.encode() + b"\n")
            answered = True
    os.close(master)
    return proc.wait(timeout=30), seen.decode(errors="replace")


@pytest.mark.parametrize("answer", ["y", "n"])
def test_on_a_terminal_it_asks_and_does_what_the_person_says(
    myninja_home: Path, dav: Radicale, answer: str
) -> None:
    configure(myninja_home, dav.calendar_url("alice"))
    task_id = booked_waiting_task()
    code, said = on_a_terminal("tasks", "cancel", task_id, answer=answer)
    assert code == 0, said
    assert "The task put 'Roadmap review' on calendar work (" in said
    assert "Remove it? [y/N]" in said
    assert len(work_calendar(dav).events()) == (0 if answer == "y" else 1)
    assert ("removed" in ledger(task_id).popitem()[1]) is (answer == "y")
