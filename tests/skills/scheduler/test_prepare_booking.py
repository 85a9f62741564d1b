"""The scheduler's prepare hook books the meeting when the task asks it to, for a model that
cannot call tools (the embedded default): the free time is read from two calendars on a real
Radicale server, the event is written to the person's own calendar there and the invitation
goes to a real SMTP server, through the same tools (and permissions) a model's call would use.

The week is Monday 9 to Friday 13 March 2026. Worked out by hand in UTC:
  me (alice, Berlin, CET +1): working hours 08:00-16:00; busy Monday 09:00-10:00 (Berlin
      review) and 13:00-14:00 (NY weekly, 09:00 EDT).
  bob (New York, EDT -4 from 8 March): working hours 13:00-21:00; busy Monday 13:00-14:30
      and 15:00-16:00 (his events are written in Los Angeles time).
  Together on Monday: 13:00-16:00, less the busy times: 14:30-15:00 only. The first
  30-minute time is Monday 14:30 UTC, 15:30 in Berlin, 10:30 in New York.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import caldav
import pytest

from myninja.backends.keys import KeyStore
from myninja.config import Config
from myninja.skills.api import Draft, Permission, ToolContext, ToolError
from myninja.skills.scheduler.booking import booked, booking_uid
from myninja.skills.scheduler.prepare import INSTRUCTION, prepare
from myninja.skills.scheduler.request import wants_booking
from myninja.skills.scheduler.skill import skill
from tests.radicale_server import USERS, Radicale, radicale_server
from tests.skills.scheduler.test_caldav import ALICE_EVENTS, BOB_EVENTS, seed
from tests.smtp_server import SmtpServer, smtp_server

pytestmark = pytest.mark.timeout(120)

TODAY = date(2026, 3, 5)
ORGANIZER = "alice@example.de"
TASK = (
    'Book a 30-minute meeting "Roadmap review" from 2026-03-09 to 2026-03-13 for me=cal:work '
    "(Europe/Berlin) and bob=cal:bob (America/New_York, bob@example.com)"
)
FIRST = datetime(2026, 3, 9, 14, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("task", "book"),
    [
        ("Book 30 minutes next week with bob=b.ics", True),
        ("Find an hour for a=a.ics and b=b.ics and put it on my calendar", True),
        ("find a slot for a=a.ics, add the meeting to my calendar", True),
        ("a slot for a=a.ics and b=b.ics, then send the invitations", True),
        ("Find a time for a=a.ics and send out an invite", True),
        ("Find an hour for a=a.ics and b=b.ics and draft the invite", False),
        ("Find an hour for a=a.ics but don't book it yet", False),
        ("Find an hour for a=a.ics; do not send the invitation", False),
        ("When are a=a.ics and b=b.ics both free? No need to book anything", False),
        ("Find a time to discuss the bookkeeping with a=a.ics", False),
    ],
)
def test_which_tasks_ask_to_book(task: str, book: bool) -> None:
    assert wants_booking(task) is book


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[Radicale, SmtpServer]]:
    folder = tmp_path / "dav"
    folder.mkdir()
    with radicale_server(folder) as dav, smtp_server() as smtp:
        seed(dav, "alice", ALICE_EVENTS)
        seed(dav, "bob", BOB_EVENTS)
        yield dav, smtp


class Tools:
    """A hook's `use` running the skill's real tools with the calendars and the mail server
    configured, and `refused` tools failing as a denied permission does."""

    def __init__(self, dav: Radicale, smtp: SmtpServer, workspace: Path, refused: str = "") -> None:
        self.workspace = workspace
        self.refused = refused
        self.calls: list[str] = []
        self.config = Config.model_validate(
            {
                "keys": {"store": "file"},
                "calendars": {
                    "work": {"url": dav.calendar_url("alice"), "username": "alice",
                             "timezone": "Europe/Berlin", "writable": True},
                    "bob": {"url": dav.calendar_url("bob"), "username": "bob"},
                },
                "smtp": {"host": "127.0.0.1", "port": smtp.port, "security": "none",
                         "from_address": ORGANIZER, "timeout_s": 5},
            }
        )  # fmt: skip
        KeyStore("file").set("cal-work", USERS["alice"])
        KeyStore("file").set("cal-bob", USERS["bob"])

    async def __call__(self, name: str, arguments: dict[str, Any]) -> str:
        self.calls.append(name)
        if name == self.refused:
            raise ToolError("the person did not allow the scheduler skill to do that")
        context = ToolContext(
            task_id="t1",
            config=self.config,
            granted=frozenset(Permission),
            workspace_dir=self.workspace,
        )
        return await skill.tool(name).call(arguments, context)


def draft_of(task: str, use: Any, workspace: Path) -> Draft:
    return Draft(task=task, agent="scheduler", task_id="t1", use=use, workspace=workspace)


def alice_calendar(dav: Radicale) -> caldav.Calendar:
    client = caldav.DAVClient(url=dav.calendar_url("alice"), username="alice",
                              password=USERS["alice"])  # fmt: skip
    return caldav.Calendar(client=client, url=dav.calendar_url("alice"))


async def test_prepare_books_the_first_time_and_invites_once(
    servers: tuple[Radicale, SmtpServer], tmp_path: Path
) -> None:
    dav, smtp = servers
    workspace = tmp_path / "ws"
    tools = Tools(dav, smtp, workspace)
    text = await prepare(draft_of(TASK, tools, workspace), today=TODAY)
    assert text is not None
    assert tools.calls == ["find_meeting_slots", "book_meeting"]  # no draft: the mail has it
    (offered,) = [line for line in text.splitlines() if line.startswith("1. ")]
    assert offered.startswith("1. Monday 9 March 2026, 14:30–15:00 UTC")
    assert offered.endswith("(booked)")  # not to be offered as an alternative
    assert sum(line.endswith("(booked)") for line in text.splitlines()) == 1
    assert (
        "Booked for me: Monday 9 March 2026, 15:30–16:00 CET; "
        "bob: Monday 9 March 2026, 10:30–11:00 EDT (Monday 9 March 2026, 14:30–15:00 UTC)."
    ) in text
    uid = booking_uid("t1", FIRST, "Roadmap review")
    assert "Booked time 1:" in text and f"Wrote event {uid} to calendar work" in text
    assert "Sent the invitation 'Invitation: Roadmap review" in text
    assert text.endswith(
        "“Roadmap review” is booked for me: Monday 9 March 2026, 15:30–16:00 CET, "
        "bob: Monday 9 March 2026, 10:30–11:00 EDT; invited: bob@example.com."
    )

    written = [e for e in alice_calendar(dav).events() if str(e.icalendar_component["UID"]) == uid]
    (event,) = written
    vevent = event.icalendar_component
    assert vevent["DTSTART"].params["TZID"] == "Europe/Berlin"  # the calendar's own zone
    assert (vevent.start.hour, vevent.start.minute) == (15, 30)
    assert vevent.duration.total_seconds() == 30 * 60
    assert str(vevent["ORGANIZER"]) == f"mailto:{ORGANIZER}"
    (attendee,) = [vevent["ATTENDEE"]]  # the person is the organizer, not an attendee
    assert (str(attendee), attendee.params["CN"]) == ("mailto:bob@example.com", "bob")
    (mail,) = smtp.handler.messages
    assert mail.rcpt_tos == ["bob@example.com"]

    line = await booked(draft_of(TASK, tools, workspace))
    assert line == (
        "Booked 'Roadmap review' for Monday 9 March 2026, 15:30–16:00 CET "
        f"on calendar work (event {uid}); "
        "invitation sent to bob@example.com."
    )

    # The node runs again after a resume: nothing is written or sent a second time.
    again = await prepare(draft_of(TASK, tools, workspace), today=TODAY)
    assert again is not None and f"Event {uid} was already on calendar work" in again
    assert "Invitation was already sent to bob@example.com" in again
    assert len([e for e in alice_calendar(dav).events()
                if str(e.icalendar_component["UID"]) == uid]) == 1  # fmt: skip
    assert len(smtp.handler.messages) == 1


async def test_a_refused_booking_drafts_the_invitation_instead(
    servers: tuple[Radicale, SmtpServer], tmp_path: Path
) -> None:
    dav, smtp = servers
    workspace = tmp_path / "ws"
    tools = Tools(dav, smtp, workspace, refused="book_meeting")
    text = await prepare(draft_of(TASK, tools, workspace), today=TODAY)
    assert text is not None
    assert tools.calls == ["find_meeting_slots", "book_meeting", "draft_meeting_invite"]
    assert "Could not book time 1: the person did not allow the scheduler skill" in text
    assert "Invitation drafted for time 1 (nothing is sent):" in text
    assert text.endswith(INSTRUCTION)
    assert [p.suffix for p in workspace.iterdir()] == [".ics"]
    assert smtp.handler.messages == []
    assert await booked(draft_of(TASK, tools, workspace)) is None


async def test_finding_a_time_books_nothing(
    servers: tuple[Radicale, SmtpServer], tmp_path: Path
) -> None:
    dav, smtp = servers
    workspace = tmp_path / "ws"
    tools = Tools(dav, smtp, workspace)
    task = TASK.replace("Book a", "Find a") + ", and draft the invite"
    text = await prepare(draft_of(task, tools, workspace), today=TODAY)
    assert text is not None
    assert tools.calls == ["find_meeting_slots", "draft_meeting_invite"]
    before = {str(e.icalendar_component["UID"]) for e in alice_calendar(dav).events()}
    assert before == {"alice-single", "alice-weekly", "alice-free"}
    assert smtp.handler.messages == []


async def test_an_attendee_without_an_address_is_said_not_invited(
    servers: tuple[Radicale, SmtpServer], tmp_path: Path
) -> None:
    dav, smtp = servers
    workspace = tmp_path / "ws"
    tools = Tools(dav, smtp, workspace)
    task = TASK.replace(", bob@example.com", "")
    text = await prepare(draft_of(task, tools, workspace), today=TODAY)
    assert text is not None
    assert "Not invited, no address given: bob." in text
    assert smtp.handler.messages == []  # nobody to send to: the event only
    line = await booked(draft_of(task, tools, workspace))
    assert line is not None and "invitation" not in line
