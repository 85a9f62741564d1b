"""Booking from the command line, end to end: `myninja ask` with a scripted model whose
scheduler calls book_meeting, a real Radicale and a real SMTP server on 127.0.0.1. Without the
permissions the task stops with the question (exit 3) and neither server has anything; with
`--allow calendar_write --allow send_email` the event is written once and the invitation sent
once, and the task's history records the tool's result naming both."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import caldav
import pytest

from myninja import paths
from myninja.backends.keys import KeyStore
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


def test_ask_books_only_with_both_permissions_and_then_once(
    myninja_home: Path, servers: tuple[Radicale, SmtpServer]
) -> None:
    dav, smtp = servers
    scripted_config(
        myninja_home,
        [
            {"match": "Task to plan", "json": {"steps": [{"title": "Book", "instruction": "."}]}},
            {"match": "Candidate:", "json": {"score": 9, "reasons": "ok"}},
            {"match": "tool: .*Wrote event", "reply": "Booked, and Ben is invited."},
            {"match": "tool: .*Dry run", "reply": "Nothing booked: a dry run."},
            {"match": "Attempt 1", "tool_calls": [{"name": "book_meeting", "arguments": BOOK}]},
        ],
    )
    with (myninja_home / "config.toml").open("a") as config:
        config.write(
            '[graph]\nbranches = 1\n[agents.scheduler]\ntools = true\n[keys]\nstore = "file"\n'
            '[scheduler]\ntimezone = "Europe/Berlin"\n'
            f'[calendars.work]\nurl = "{dav.calendar_url("alice")}"\nusername = "alice"\n'
            'timezone = "Europe/Berlin"\nwritable = true\n'
            f'[smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\nsecurity = "none"\n'
            'from_address = "alice@example.de"\n'
        )
    KeyStore("file").set("cal-work", USERS["alice"])
    calendar = caldav.Calendar(
        client=caldav.DAVClient(url=dav.calendar_url("alice"), username="alice",
                                password=USERS["alice"]),
        url=dav.calendar_url("alice"),
    )  # fmt: skip

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
