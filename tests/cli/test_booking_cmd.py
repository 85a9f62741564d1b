"""Booking from the command line, end to end: `myninja ask` with a scripted model whose
scheduler calls book_meeting, a real Radicale and a real SMTP server on 127.0.0.1. Without the
permissions the task stops with the question (exit 3) and neither server has anything; with
`--allow calendar_write --allow send_email` the event is written once and the invitation sent
once, and the task's history records the tool's result naming both. A real worker SIGKILLed
after the calendar write and before the mail (held there by MYNINJA_TEST_BOOKING_PAUSE) and
resumed with `myninja tasks resume` ends with one event and one invitation."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import caldav
import pytest

from myninja import paths
from myninja.backends.keys import KeyStore
from myninja.skills.scheduler.booking import TEST_PAUSE_ENV
from tests.cli.test_task_commands import task_json, wait_for_status
from tests.conftest import run_myninja, scripted_config
from tests.radicale_server import USERS, Radicale, radicale_server
from tests.smtp_server import SmtpServer, smtp_server

pytestmark = pytest.mark.timeout(300)

BOOK = {
    "title": "Roadmap review",
    "start_utc": "2026-03-10T14:00:00Z",
    "duration_minutes": 30,
    "attendees": ["Ben Okafor <ben@example.com>"],
    "timezones": ["America/New_York"],
}
TASK = "@scheduler Book the roadmap review with Ben on Tuesday 10 March at 14:00 UTC"


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[Radicale, SmtpServer]]:
    folder = tmp_path / "dav"
    folder.mkdir()
    with radicale_server(folder) as dav, smtp_server() as smtp:
        client = caldav.DAVClient(
            url=f"{dav.base_url}alice/", username="alice", password=USERS["alice"]
        )
        client.principal().make_calendar(name="Alice work", cal_id="work")
        yield dav, smtp


def configure(home: Path, dav: Radicale, smtp: SmtpServer) -> caldav.Calendar:
    """A scripted scheduler that books BOOK, the calendar and the mail server; the calendar."""
    scripted_config(
        home,
        [
            {"match": "Task to plan", "json": {"steps": [{"title": "Book", "instruction": "."}]}},
            {"match": "Candidate:", "json": {"score": 9, "reasons": "ok"}},
            {"match": "tool: .*Dry run", "reply": "Nothing booked: a dry run."},
            # A first run wrote the event; a resumed one found it already there.
            {"match": "tool: .*calendar work", "reply": "Booked, and Ben is invited."},
            {"match": "Attempt 1", "tool_calls": [{"name": "book_meeting", "arguments": BOOK}]},
        ],
    )
    with (home / "config.toml").open("a") as config:
        config.write(
            '[graph]\nbranches = 1\n[agents.scheduler]\ntools = true\n[keys]\nstore = "file"\n'
            '[scheduler]\ntimezone = "Europe/Berlin"\n'
            f'[calendars.work]\nurl = "{dav.calendar_url("alice")}"\nusername = "alice"\n'
            'timezone = "Europe/Berlin"\nwritable = true\n'
            f'[smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\nsecurity = "none"\n'
            'from_address = "alice@example.de"\n'
        )
    KeyStore("file").set("cal-work", USERS["alice"])
    client = caldav.DAVClient(url=dav.calendar_url("alice"), username="alice",
                              password=USERS["alice"])  # fmt: skip
    return caldav.Calendar(client=client, url=dav.calendar_url("alice"))


def test_ask_books_only_with_both_permissions_and_then_once(
    myninja_home: Path, servers: tuple[Radicale, SmtpServer]
) -> None:
    dav, smtp = servers
    calendar = configure(myninja_home, dav, smtp)

    asked = run_myninja("ask", TASK)
    assert asked.returncode == 3, asked.stderr
    question = json.loads(asked.stdout.splitlines()[-1])
    assert question["question"].startswith(
        "Allow the scheduler skill to write to your calendar and send e-mail?"
    )
    assert calendar.events() == [] and smtp.handler.messages == []

    only_calendar = run_myninja("ask", TASK, "--allow", "calendar_write")
    assert only_calendar.returncode == 3, only_calendar.stderr
    assert "send e-mail" in only_calendar.stdout
    assert calendar.events() == [] and smtp.handler.messages == []

    # A dry run, set for one command through the environment: the event and the recipients
    # are shown, and neither server hears of them.
    both = ("--allow", "calendar_write", "--allow", "send_email")
    dry = run_myninja("ask", "--json", TASK, *both, env={"MYNINJA_SCHEDULER__DRY_RUN": "true"})
    assert dry.returncode == 0, dry.stderr
    (shown,) = [json.loads(line) for line in dry.stdout.splitlines() if '"tool_result"' in line]
    assert "SUMMARY:Roadmap review" in shown["result"] and "ben@example.com" in shown["result"]
    assert calendar.events() == [] and smtp.handler.messages == []

    # `ask --dry-run` stays a dry run when its permission question is answered later.
    flagged = run_myninja("ask", "--json", "--dry-run", TASK)
    assert flagged.returncode == 3, flagged.stderr
    asked_events = [json.loads(line) for line in flagged.stdout.splitlines()]
    question = next(e for e in asked_events if e["type"] == "question")
    answered = run_myninja("answer", question["task_id"], "allow once", "--json")
    assert answered.returncode == 0, answered.stderr
    later = [json.loads(line) for line in answered.stdout.splitlines()]
    (shown,) = [e for e in later if e["type"] == "tool_result"]
    assert shown["result"].startswith("Dry run") and "ben@example.com" in shown["result"]
    assert later[-1]["answer"].startswith("Nothing booked: a dry run.")
    assert calendar.events() == [] and smtp.handler.messages == []

    booked = run_myninja(
        "ask", "--json", TASK, "--allow", "calendar_write", "--allow", "send_email"
    )
    assert booked.returncode == 0, booked.stderr
    events = [json.loads(line) for line in booked.stdout.splitlines()]
    (result,) = [e for e in events if e["type"] == "tool_result"]
    assert result["name"] == "book_meeting" and not result["error"]
    assert "to calendar work" in result["result"] and "ben@example.com" in result["result"]
    answer = events[-1]["answer"]
    # The ledger is in the task's folder, and the answer names it beside the workspace.
    assert answer.startswith("Booked, and Ben is invited.\n\nFiles: booking.json in ")
    (event,) = calendar.events()
    assert str(event.icalendar_component["SUMMARY"]) == "Roadmap review"
    (mail,) = smtp.handler.messages
    assert mail.rcpt_tos == ["ben@example.com"]
    # The history keeps the result: what was written where, and to whom it was sent.
    with sqlite3.connect(paths.data_dir() / "history.db") as db:
        kept = db.execute(
            "SELECT data FROM events WHERE task_id = ? AND type = 'tool_result'",
            (events[-1]["task_id"],),
        ).fetchall()
    (data,) = [json.loads(row[0]) for row in kept]
    assert data["result"] == result["result"]


def test_a_worker_killed_between_the_write_and_the_send_books_once_on_resume(
    myninja_home: Path, servers: tuple[Radicale, SmtpServer]
) -> None:
    dav, smtp = servers
    calendar = configure(myninja_home, dav, smtp)
    both = ("--allow", "calendar_write", "--allow", "send_email")
    # The worker this starts pauses inside book_meeting after the calendar write.
    started = run_myninja("run", TASK, *both, "--detach", "--json", env={TEST_PAUSE_ENV: "60"})
    assert started.returncode == 0, started.stderr
    task_id = json.loads(started.stdout)["task_id"]
    deadline = time.monotonic() + 60
    while not calendar.events():
        assert time.monotonic() < deadline, task_json(task_id)
        time.sleep(0.1)
    owner = task_json(task_id)["owner"]
    assert owner.startswith("pid:")
    os.kill(int(owner.split(":")[1]), signal.SIGKILL)  # pid:PID:START_TIME
    time.sleep(0.5)
    assert smtp.handler.messages == []  # killed between the write and the send

    resumed = run_myninja("tasks", "resume", task_id)  # a new worker, without the pause
    assert resumed.returncode == 0, resumed.stderr
    task = wait_for_status(task_id, "done", "failed", timeout=120)
    assert task["status"] == "done", task
    assert task["answer"].startswith("Booked, and Ben is invited.")
    (event,) = calendar.events()  # written once, not again beside itself
    assert str(event.icalendar_component["SUMMARY"]) == "Roadmap review"
    (mail,) = smtp.handler.messages  # and the invitation sent once
    assert mail.rcpt_tos == ["ben@example.com"]
