"""Drafting the invitation: the .ics parsed back with icalendar (an independent reader of
what we wrote), and the message read as a person would read it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from icalendar import Calendar

from myninja.errors import UsageError
from myninja.skills.scheduler.invite import PRODID, draft_invite
from myninja.skills.scheduler.slots import Slot

# Monday 10 March 2025, 14:00-14:30 UTC: the day after the US change, before the EU one.
SLOT = Slot(datetime(2025, 3, 10, 14, tzinfo=UTC), datetime(2025, 3, 10, 14, 30, tzinfo=UTC))
NOW = datetime(2025, 3, 3, 8, 15, tzinfo=UTC)
ATTENDEES = ["ben@example.com", "chika@example.org", "kenji@example.jp"]
ZONES = {
    "ben@example.com": "America/New_York",
    "chika@example.org": "America/Los_Angeles",
    "kenji@example.jp": "Asia/Tokyo",
}


def draft(**overrides: object) -> tuple[str, str]:
    arguments: dict[str, object] = {
        "title": "Roadmap review; Q2, draft",  # ; and , must survive escaping
        "organizer": "anna@example.de",
        "attendees": ATTENDEES,
        "description": "Walk through the Q2 roadmap\nand agree on owners.",
        "location": "Video call",
        "uid": "roadmap-2025-03-10@example.de",
        "now": NOW,
        "timezones": ZONES,
    }
    arguments.update(overrides)
    return draft_invite(SLOT, **arguments)  # type: ignore[arg-type]


def test_ics_parses_back_with_the_fields_a_client_needs() -> None:
    ics, _ = draft()
    assert ics.startswith("BEGIN:VCALENDAR\r\n") and ics.endswith("END:VCALENDAR\r\n")
    calendar = Calendar.from_ical(ics)
    assert str(calendar["METHOD"]) == "REQUEST"
    assert str(calendar["PRODID"]) == PRODID
    assert str(calendar["VERSION"]) == "2.0"
    events = calendar.events
    assert len(events) == 1
    event = events[0]
    assert str(event["UID"]) == "roadmap-2025-03-10@example.de"
    assert event["DTSTAMP"].dt == NOW
    assert event.start == datetime(2025, 3, 10, 14, tzinfo=UTC)
    assert event.end == datetime(2025, 3, 10, 14, 30, tzinfo=UTC)
    assert "DTSTART:20250310T140000Z" in ics  # UTC on the wire, no TZID to resolve
    assert str(event["SUMMARY"]) == "Roadmap review; Q2, draft"
    assert str(event["DESCRIPTION"]) == "Walk through the Q2 roadmap\nand agree on owners."
    assert str(event["LOCATION"]) == "Video call"
    assert str(event["ORGANIZER"]) == "mailto:anna@example.de"

    attendees = event["ATTENDEE"]
    assert [str(a) for a in attendees] == [f"mailto:{email}" for email in ATTENDEES]
    for attendee in attendees:
        assert attendee.params["ROLE"] == "REQ-PARTICIPANT"
        assert attendee.params["RSVP"] == "TRUE"
        assert attendee.params["PARTSTAT"] == "NEEDS-ACTION"


def test_message_names_each_attendees_local_time() -> None:
    # 14:00 UTC on Mon 10 March is 10:00 EDT (-4) in New York, 07:00 PDT (-7) in Los Angeles
    # and 23:00 JST (+9) in Tokyo.
    _, message = draft()
    assert message.startswith("Hello everyone,\n")
    assert "“Roadmap review; Q2, draft”" in message
    assert "When: Monday 10 March 2025, 14:00–14:30 UTC\n" in message
    assert (
        "  for ben@example.com: Monday 10 March 2025, 10:00–10:30 EDT (America/New_York)\n"
        in message
    )
    assert (
        "  for chika@example.org: Monday 10 March 2025, 07:00–07:30 PDT (America/Los_Angeles)\n"
        in message
    )
    assert "  for kenji@example.jp: Monday 10 March 2025, 23:00–23:30 JST (Asia/Tokyo)\n" in message
    assert "Where: Video call\n" in message
    # The agenda is one line even when the description has several.
    assert "Agenda: Walk through the Q2 roadmap and agree on owners.\n" in message


def test_same_input_same_draft_and_the_defaults() -> None:
    assert draft() == draft()
    ics, message = draft(description="", location="", uid=None, now=None, timezones=None)
    event = Calendar.from_ical(ics).events[0]
    assert str(event["UID"])  # a fresh one was made
    assert "DESCRIPTION" not in event and "LOCATION" not in event
    stamp = event["DTSTAMP"].dt
    assert abs(datetime.now(UTC) - stamp) < timedelta(minutes=5)
    assert "Agenda: Roadmap review; Q2, draft\n" in message  # the title stands in
    assert "Where:" not in message and "  for " not in message


def test_attendees_deduplicated_without_the_organizer() -> None:
    ics, message = draft(
        attendees=["Ben@Example.com", "ben@example.com", "anna@example.de", "mailto:dana@x.io"],
        timezones={"BEN@example.com": "Europe/London"},
    )
    event = Calendar.from_ical(ics).events[0]
    attendees = event["ATTENDEE"]
    attendees = attendees if isinstance(attendees, list) else [attendees]
    assert [str(a) for a in attendees] == ["mailto:Ben@Example.com", "mailto:dana@x.io"]
    # London is still on GMT (+0) on 10 March.
    assert "  for Ben@Example.com: Monday 10 March 2025, 14:00–14:30 GMT (Europe/London)\n" in (
        message
    )


def test_bad_input_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="not an email address for the attendee: 'ben'"):
        draft(attendees=["ben"])
    with pytest.raises(UsageError, match="not an email address for the organizer"):
        draft(organizer="Anna <anna@example.de>")
    with pytest.raises(UsageError, match="at least one attendee"):
        draft(attendees=["anna@example.de"])
    with pytest.raises(UsageError, match="needs a title"):
        draft(title="  ")
    with pytest.raises(UsageError, match="unknown time zone"):
        draft(timezones={"ben@example.com": "Moon/Base"})
