"""A meeting invitation, drafted and never sent: the .ics a calendar client imports (an
iTIP REQUEST, RFC 5546) and the message text a person sends beside it.

Times in the .ics are UTC (`...Z`), so no VTIMEZONE is needed and every client shows them in
its own zone; the message spells the time out in each attendee's zone where it is known.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from icalendar import Calendar, Event, vCalAddress

from myninja.errors import UsageError
from myninja.skills.scheduler.slots import Slot

PRODID = "-//myninja//scheduler//EN"
# Deliberately loose: one @, something on each side, no spaces or angle brackets. Whether
# the mailbox exists is the mail server's business.
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


def draft_invite(
    slot: Slot,
    *,
    title: str,
    organizer: str,
    attendees: Sequence[str],
    description: str = "",
    location: str = "",
    uid: str | None = None,
    now: datetime | None = None,
    timezones: Mapping[str, str] | None = None,
) -> tuple[str, str]:
    """(.ics text, message text) inviting `attendees` (emails) to `title` at `slot`.

    The .ics is one VCALENDAR (METHOD:REQUEST) holding one VEVENT: UID (`uid`, else a new
    random one), DTSTAMP (`now`, else the current time), DTSTART/DTEND in UTC, SUMMARY, the
    ORGANIZER and each attendee as a required participant asked to reply. `timezones` maps an
    email to its owner's IANA zone; the message gives the time in each of those zones, and in
    UTC for everyone else. Attendees are kept in the order given, without duplicates (emails
    compare case-insensitively) and without the organizer."""
    if not title.strip():
        raise UsageError("an invitation needs a title")
    organizer = _checked_email(organizer, "organizer")
    people = _attendees(attendees, organizer)
    if not people:
        raise UsageError("an invitation needs at least one attendee besides the organizer")
    if slot.start.tzinfo is None or slot.end.tzinfo is None or slot.end <= slot.start:
        raise UsageError("an invitation needs an aware slot that ends after it starts")
    zones = {email.lower(): tz for email, tz in (timezones or {}).items()}
    for tz in zones.values():
        slot.local(tz)  # an unknown zone is a UsageError now, not a broken message later
    stamp = (now or datetime.now(UTC)).astimezone(UTC)

    event = Event.new(
        uid=uid or f"{uuid.uuid4()}@myninja",
        stamp=stamp,
        start=slot.start.astimezone(UTC),
        end=slot.end.astimezone(UTC),
        summary=title.strip(),
        description=description.strip() or None,
        location=location.strip() or None,
        organizer=vCalAddress.new(organizer, role="CHAIR"),
        attendees=[
            vCalAddress.new(email, role="REQ-PARTICIPANT", partstat="NEEDS-ACTION", rsvp=True)
            for email in people
        ],
        sequence=0,  # the first version; a changed time would be sent again as SEQUENCE:1
        status="CONFIRMED",
    )
    calendar = Calendar.new(
        prodid=PRODID, method="REQUEST", calscale="GREGORIAN", subcomponents=[event]
    )
    # Calendar.new adds an RFC 7986 UID naming a published calendar; an invitation has no
    # such calendar, and a random value would make the same draft differ run to run.
    calendar.pop("UID", None)
    return calendar.to_ical().decode("utf-8"), _message(
        slot, title.strip(), people, description.strip(), location.strip(), zones
    )


def _message(
    slot: Slot,
    title: str,
    people: list[str],
    description: str,
    location: str,
    zones: Mapping[str, str],
) -> str:
    lines = ["Hello everyone," if len(people) > 1 else "Hello,", ""]
    lines.append(f"I'd like to invite you to “{title}”.")
    lines.append("")
    lines.append(f"When: {slot.describe('UTC')}")
    for email in people:
        tz = zones.get(email.lower())
        if tz is not None:
            lines.append(f"  for {email}: {slot.describe(tz)} ({tz})")
    if location:
        lines.append(f"Where: {location}")
    # One line, so a multi-line description does not break the layout of the block above.
    agenda = " ".join(description.split()) if description else title
    lines.append(f"Agenda: {agenda}")
    lines.append("")
    lines.append(
        "The invitation is attached as an .ics file: please accept or decline it "
        "from your calendar."
    )
    return "\n".join(lines) + "\n"


def _checked_email(value: str, role: str) -> str:
    email = value.strip()
    if email.lower().startswith("mailto:"):
        email = email[len("mailto:") :]
    if not _EMAIL.match(email):
        raise UsageError(f"not an email address for the {role}: {value!r}")
    return email


def _attendees(emails: Sequence[str], organizer: str) -> list[str]:
    seen = {organizer.lower()}
    people: list[str] = []
    for value in emails:
        email = _checked_email(value, "attendee")
        if email.lower() not in seen:
            seen.add(email.lower())
            people.append(email)
    return people
