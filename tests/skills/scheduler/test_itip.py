"""The invitation e-mail as built, before any server sees it: who it goes to, what it says when
no zone is known, and the one-line refusals."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from icalendar import Calendar

from myninja.errors import EXIT_USAGE, UsageError
from myninja.skills.scheduler.itip import idempotency_key, invitation_email, message_id
from myninja.skills.scheduler.slots import Slot

SLOT = Slot(datetime(2025, 4, 1, 13, tzinfo=UTC), datetime(2025, 4, 1, 14, tzinfo=UTC))


def build(attendees: list[str], **overrides: object) -> EmailMessage:
    arguments: dict[str, object] = {
        "title": "Planning",
        "organizer": "anna@example.de",
        "attendees": attendees,
        "uid": "u-1@example.de",
        "now": datetime(2025, 3, 20, tzinfo=UTC),
    }
    arguments.update(overrides)
    return invitation_email(SLOT, **arguments)  # type: ignore[arg-type]


def calendar_of(message: EmailMessage) -> Calendar:
    [part] = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    return Calendar.from_ical(part.get_content())


def test_attendees_without_an_address_are_named_in_one_line() -> None:
    with pytest.raises(UsageError) as caught:
        build(["Ben Okafor", "chika@example.org", "Dana"])
    line = caught.value.one_line()
    assert "\n" not in line
    assert "Ben Okafor" in line and "Dana" in line and "chika" not in line.split("(")[0]
    assert caught.value.exit_code == EXIT_USAGE


def test_to_is_each_attendee_once_and_never_the_organizer() -> None:
    message = build(
        ["ben@example.com", "Ben <BEN@example.com>", "Anna <anna@example.de>", "chika@example.org"]
    )
    assert [a.addr_spec for a in message["To"].addresses] == [
        "ben@example.com",
        "chika@example.org",
    ]
    event = calendar_of(message).events[0]
    assert [str(a) for a in event.attendees] == [
        "mailto:ben@example.com",
        "mailto:chika@example.org",
    ]


def test_without_the_organizers_zone_times_are_utc_and_need_no_vtimezone() -> None:
    calendar = calendar_of(build(["ben@example.com"]))
    event = calendar.events[0]
    assert "TZID" not in event["DTSTART"].params
    assert event.start == datetime(2025, 4, 1, 13, tzinfo=UTC)
    assert calendar.timezones == []


def test_an_update_says_so_and_gets_a_new_message_id() -> None:
    first = build(["ben@example.com"])
    update = build(["ben@example.com"], sequence=1)
    assert update["Subject"].startswith("Updated invitation: Planning @ ")
    assert first["Subject"].startswith("Invitation: Planning @ ")
    assert first["Message-ID"] != update["Message-ID"]
    assert update["Message-ID"] == message_id(idempotency_key("u-1@example.de", 1), "example.de")


def test_an_unknown_event_zone_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        build(["ben@example.com"], event_tz="Mars/Olympus_Mons")
