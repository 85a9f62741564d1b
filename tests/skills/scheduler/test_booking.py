"""book_meeting against a real Radicale (CalDAV) and a real aiosmtpd (SMTP) on 127.0.0.1: the
event lands on the calendar once and the invitation reaches exactly the attendees once, however
often the tool runs for the same task, including after a failure between the write and the
send; a dry run touches neither server; a calendar not marked writable is one line."""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import caldav
import pytest

from myninja.backends.keys import KeyStore
from myninja.config import Config
from myninja.skills.api import Permission, ToolContext, ToolError
from myninja.skills.scheduler.booking import LEDGER, book_meeting, booking_uid
from myninja.skills.scheduler.caldav_write import remove_event
from tests.local_http import free_port
from tests.radicale_server import USERS, Radicale, radicale_server
from tests.smtp_server import SmtpServer, smtp_server

pytestmark = pytest.mark.timeout(120)

BOTH = frozenset({Permission.CALENDAR_WRITE, Permission.SEND_EMAIL})
ORGANIZER = "alice@example.de"
ARGUMENTS = {
    "title": "Quarterly planning",
    "start_utc": "2026-03-10T14:00:00Z",  # 15:00 in Berlin (CET), 10:00 in New York (EDT)
    "duration_minutes": 45,
    "attendees": ["Ben Okafor <ben@example.com>", "chika@example.org"],
    "timezones": ["America/New_York", "Africa/Lagos"],
}


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Radicale]:
    with radicale_server(tmp_path_factory.mktemp("radicale")) as server:
        client = caldav.DAVClient(
            url=f"{server.base_url}alice/", username="alice", password=USERS["alice"]
        )
        client.principal().make_calendar(name="Alice work", cal_id="work")
        client.principal().make_calendar(name="Alice home", cal_id="home")
        yield server


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def calendar(radicale: Radicale) -> Iterator[caldav.Calendar]:
    """Alice's work calendar, emptied after each test."""
    client = caldav.DAVClient(url=radicale.calendar_url("alice"), username="alice",
                              password=USERS["alice"])  # fmt: skip
    found = caldav.Calendar(client=client, url=radicale.calendar_url("alice"))
    yield found
    for event in found.events():
        event.delete()


def context(
    radicale: Radicale,
    smtp_port: int,
    workspace: Path,
    *,
    task_id: str = "task-1",
    granted: frozenset[Permission] = BOTH,
    **scheduler: object,
) -> ToolContext:
    config = Config.model_validate(
        {
            "keys": {"store": "file"},
            "scheduler": {"timezone": "Europe/Berlin", **scheduler},
            "calendars": {
                "work": {
                    "url": radicale.calendar_url("alice"),
                    "username": "alice",
                    "timezone": "Europe/Berlin",
                    "writable": True,
                },
                "home": {"url": radicale.calendar_url("alice", "home"), "username": "alice"},
            },
            "smtp": {"host": "127.0.0.1", "port": smtp_port, "security": "none",
                     "from_address": ORGANIZER, "timeout_s": 5},
        }
    )  # fmt: skip
    store = KeyStore("file")
    store.set("cal-work", USERS["alice"])
    store.set("cal-home", USERS["alice"])
    return ToolContext(task_id, config=config, granted=granted, workspace_dir=workspace)


async def test_booking_writes_one_event_and_sends_one_invitation_however_often_it_runs(
    radicale: Radicale, smtp: SmtpServer, calendar: caldav.Calendar, tmp_path: Path
) -> None:
    ctx = context(radicale, smtp.port, tmp_path)
    uid = booking_uid("task-1", datetime(2026, 3, 10, 14, tzinfo=UTC), "Quarterly planning")
    first = await book_meeting.call(dict(ARGUMENTS), ctx)
    assert f"Wrote event {uid} to calendar work" in first
    assert "to ben@example.com, chika@example.org" in first
    (event,) = calendar.events()
    vevent = event.icalendar_component
    assert str(vevent["UID"]) == uid
    assert vevent["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert vevent.start.hour == 15 and vevent.duration.total_seconds() == 45 * 60
    assert str(vevent["ORGANIZER"]) == f"mailto:{ORGANIZER}"
    attendees = {str(a): a.params.get("CN") for a in vevent.get("ATTENDEE")}
    assert attendees == {"mailto:ben@example.com": "Ben Okafor", "mailto:chika@example.org": None}
    assert any(c.name == "VTIMEZONE" for c in event.icalendar_instance.subcomponents)
    assert "METHOD" not in event.icalendar_instance  # a stored object, not an iTIP message
    (mail,) = smtp.handler.messages
    assert mail.mail_from == ORGANIZER
    assert mail.rcpt_tos == ["ben@example.com", "chika@example.org"]
    parsed = email.message_from_bytes(mail.content, policy=email.policy.default)
    assert uid in parsed.get_body(("calendar",)).get_content()  # type: ignore[union-attr]

    # Again, in a new context for the same task (a re-run): nothing new anywhere.
    again = await book_meeting.call(dict(ARGUMENTS), context(radicale, smtp.port, tmp_path))
    assert "already on calendar work" in again and "already sent" in again
    assert len(calendar.events()) == 1 and len(smtp.handler.messages) == 1
    ledger = json.loads((tmp_path / LEDGER).read_text())
    assert ledger[uid]["written"]["calendar"] == "work"
    assert ledger[uid]["sent"]["recipients"] == ["ben@example.com", "chika@example.org"]
    # Another task booking the same meeting is another booking (another UID).
    other = context(radicale, smtp.port, tmp_path / "other", task_id="task-2")
    await book_meeting.call(dict(ARGUMENTS), other)
    assert len(calendar.events()) == 2 and len(smtp.handler.messages) == 2


async def test_a_failure_between_the_write_and_the_send_is_finished_by_the_rerun_once(
    radicale: Radicale, smtp: SmtpServer, calendar: caldav.Calendar, tmp_path: Path
) -> None:
    # The mail server is down at first: the event is written, the sending fails.
    down = context(radicale, free_port(), tmp_path)
    with pytest.raises(ToolError, match="cannot reach the SMTP server"):
        await book_meeting.call(dict(ARGUMENTS), down)
    assert len(calendar.events()) == 1 and smtp.handler.messages == []
    uid = next(iter(json.loads((tmp_path / LEDGER).read_text())))
    # The process is gone (a new context, nothing kept in memory); the re-run sends only.
    rerun = await book_meeting.call(dict(ARGUMENTS), context(radicale, smtp.port, tmp_path))
    assert "already on calendar work" in rerun and "Sent the invitation" in rerun
    assert len(calendar.events()) == 1 and len(smtp.handler.messages) == 1
    # A ledger lost altogether (killed before its first write): the same UID is written over,
    # not beside, the event already there.
    (tmp_path / LEDGER).unlink()
    await book_meeting.call(dict(ARGUMENTS), context(radicale, smtp.port, tmp_path))
    (event,) = calendar.events()
    assert str(event.icalendar_component["UID"]) == uid
    ctx = context(radicale, smtp.port, tmp_path)
    work = ctx.config.calendars["work"]
    assert remove_event("work", work, USERS["alice"], uid) is True
    assert remove_event("work", work, USERS["alice"], uid) is False
    assert calendar.events() == []


async def test_one_task_books_one_meeting_even_when_asked_for_another_time(
    radicale: Radicale, smtp: SmtpServer, calendar: caldav.Calendar, tmp_path: Path
) -> None:
    # A re-run whose slot search now sees the task's own event as busy, or a second branch,
    # asks for a later time: the task's booking stands, and nothing else is written or sent.
    ctx = context(radicale, smtp.port, tmp_path)
    await book_meeting.call(dict(ARGUMENTS), ctx)
    later = {**ARGUMENTS, "start_utc": "2026-03-11T14:00:00Z"}
    again = await book_meeting.call(later, ctx)
    uid = booking_uid("task-1", datetime(2026, 3, 10, 14, tzinfo=UTC), "Quarterly planning")
    assert again == (
        "This task already booked 'Quarterly planning' at 2026-03-10T14:00:00Z on calendar work "
        f"(event {uid}): nothing more was written or sent."
    )
    (event,) = calendar.events()
    assert str(event.icalendar_component["UID"]) == uid
    assert len(smtp.handler.messages) == 1
    # Another task books its own meeting.
    other = await book_meeting.call(later, context(radicale, smtp.port, tmp_path / "other",
                                                   task_id="task-2"))  # fmt: skip
    assert "Wrote event" in other and len(calendar.events()) == 2


async def test_a_dry_run_writes_and_sends_nothing_and_shows_what_it_would(
    radicale: Radicale, smtp: SmtpServer, calendar: caldav.Calendar, tmp_path: Path
) -> None:
    ctx = context(radicale, smtp.port, tmp_path, dry_run=True)
    shown = await book_meeting.call(dict(ARGUMENTS), ctx)
    assert shown.startswith("Dry run ([scheduler] dry_run = true): nothing written")
    assert f"calendar work ({radicale.calendar_url('alice')})" in shown
    assert "BEGIN:VEVENT" in shown and "DTSTART;TZID=Europe/Berlin:20260310T150000" in shown
    assert "Would send 'Invitation: Quarterly planning" in shown
    assert shown.endswith("to ben@example.com, chika@example.org")
    assert calendar.events() == [] and smtp.handler.messages == []
    assert not (tmp_path / LEDGER).exists()


async def test_no_attendees_needs_only_calendar_write_and_sends_nothing(
    radicale: Radicale, smtp: SmtpServer, calendar: caldav.Calendar, tmp_path: Path
) -> None:
    alone = {"title": "Focus", "start_utc": "2026-03-11T08:00:00Z", "duration_minutes": 60}
    assert book_meeting.needed(alone) == {Permission.CALENDAR_WRITE}
    assert book_meeting.needed(ARGUMENTS) == BOTH
    ctx = context(radicale, smtp.port, tmp_path, granted=frozenset({Permission.CALENDAR_WRITE}))
    done = await book_meeting.call(alone, ctx)
    assert "Wrote event" in done and "Sent" not in done
    (event,) = calendar.events()
    assert event.icalendar_component["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert "ATTENDEE" not in event.icalendar_component and smtp.handler.messages == []


async def test_a_calendar_not_marked_writable_is_one_line_naming_the_fix(
    radicale: Radicale, smtp: SmtpServer, calendar: caldav.Calendar, tmp_path: Path
) -> None:
    ctx = context(radicale, smtp.port, tmp_path)
    with pytest.raises(ToolError) as caught:
        await book_meeting.call({**ARGUMENTS, "calendar": "home"}, ctx)
    line = str(caught.value)
    assert "\n" not in line
    assert (
        "calendar home is read-only for myninja: set writable = true under [calendars.home]" in line
    )
    unknown = {**ARGUMENTS, "calendar": "nope"}
    with pytest.raises(ToolError, match=r"no calendar 'nope' is configured \(known: home, work\)"):
        await book_meeting.call(unknown, ctx)
    with pytest.raises(ToolError, match="is not an ISO time"):
        await book_meeting.call({**ARGUMENTS, "start_utc": "tuesday"}, ctx)
    assert calendar.events() == [] and smtp.handler.messages == []
    assert not (tmp_path / LEDGER).exists()
