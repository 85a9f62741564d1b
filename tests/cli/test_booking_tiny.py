"""Booking from `myninja ask` on the tiny embedded model, which cannot call tools: the
scheduler's prepare hook finds the time on two Radicale calendars, stops with the permission
question (exit 3, nothing written or sent), and once it is answered writes the event to the
person's calendar and e-mails the invitation through a real SMTP server. The answer ends with
the line naming what was booked, whatever the model wrote above it. (The week and the time
found are worked out by hand in tests/skills/scheduler/test_prepare_booking.py.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from myninja.backends.keys import KeyStore
from myninja.skills.scheduler.booking import booking_uid
from tests.conftest import TINY_MODEL, TINY_THREADS, run_myninja
from tests.radicale_server import USERS, Radicale, radicale_server
from tests.skills.scheduler.test_caldav import ALICE_EVENTS, BOB_EVENTS, seed
from tests.skills.scheduler.test_prepare_booking import FIRST, ORGANIZER, alice_calendar
from tests.smtp_server import SmtpServer, smtp_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

# No "@scheduler": the router's own rules send it there (it names calendars).
TASK = (
    'Book a 30-minute meeting "Roadmap review" from 2026-03-09 to 2026-03-13 for me=cal:work '
    "(Europe/Berlin) and bob=cal:bob (America/New_York, bob@example.com)"
)


@pytest.fixture
def servers(
    myninja_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Radicale, SmtpServer]]:
    folder = tmp_path / "dav"
    folder.mkdir()
    with radicale_server(folder) as dav, smtp_server() as smtp:
        seed(dav, "alice", ALICE_EVENTS)
        seed(dav, "bob", BOB_EVENTS)
        (myninja_home / "config.toml").write_text(
            'worker_idle_s = 2\n[keys]\nstore = "file"\n'
            '[skills]\ngrants = { scheduler = ["network"] }\n'  # reading; booking still asks
            f'[calendars.work]\nurl = "{dav.calendar_url("alice")}"\nusername = "alice"\n'
            'timezone = "Europe/Berlin"\nwritable = true\n'
            f'[calendars.bob]\nurl = "{dav.calendar_url("bob")}"\nusername = "bob"\n'
            f'[smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\nsecurity = "none"\n'
            f'from_address = "{ORGANIZER}"\n'
        )
        KeyStore("file").set("cal-work", USERS["alice"])
        KeyStore("file").set("cal-bob", USERS["bob"])
        monkeypatch.setenv("MYNINJA_BACKENDS__EMBEDDED__MODEL", TINY_MODEL)
        monkeypatch.setenv("MYNINJA_BACKENDS__EMBEDDED__THREADS", str(TINY_THREADS))
        monkeypatch.setenv("MYNINJA_AGENTS__SCHEDULER__MAX_TOKENS", "32")
        monkeypatch.setenv("MYNINJA_GRAPH__BRANCHES", "1")
        monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
        yield dav, smtp


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_the_tiny_model_books_on_radicale_after_the_question(
    servers: tuple[Radicale, SmtpServer],
) -> None:
    dav, smtp = servers
    seeded = {str(e.icalendar_component["UID"]) for e in alice_calendar(dav).events()}

    asked = run_myninja("ask", "--json", TASK)
    assert asked.returncode == 3, asked.stderr
    events = json_lines(asked.stdout)
    routed = next(e for e in events if e["type"] == "routed")
    assert routed["agent"] == "scheduler", routed
    question = next(e for e in events if e["type"] == "question")
    assert question["text"].startswith(
        "Allow the scheduler skill to write to your calendar and send e-mail?"
    )
    assert {str(e.icalendar_component["UID"]) for e in alice_calendar(dav).events()} == seeded
    assert smtp.handler.messages == []

    answered = run_myninja("answer", question["task_id"], "allow once", "--json")
    assert answered.returncode == 0, answered.stderr
    later = json_lines(answered.stdout)
    (result,) = [e for e in later if e["type"] == "tool_result" and e["name"] == "book_meeting"]
    uid = booking_uid(question["task_id"], FIRST, "Roadmap review")
    assert not result["error"] and f"Wrote event {uid} to calendar work" in result["result"]
    answer = later[-1]["answer"]
    assert (
        "Booked 'Roadmap review' for Monday 9 March 2026, 15:30–16:00 CET "
        f"on calendar work (event {uid}); "
        "invitation sent to bob@example.com." in answer
    )

    (event,) = [e for e in alice_calendar(dav).events() if str(e.icalendar_component["UID"]) == uid]
    vevent = event.icalendar_component
    assert vevent["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert (vevent.start.hour, vevent.start.minute) == (15, 30)
    assert str(vevent["ORGANIZER"]) == f"mailto:{ORGANIZER}"
    assert str(vevent["ATTENDEE"]) == "mailto:bob@example.com"
    (mail,) = smtp.handler.messages
    assert mail.rcpt_tos == ["bob@example.com"]
