"""Writing events to a CalDAV calendar the person marked `writable = true`.

An event is stored at `<calendar>/<UID>.ics` with a plain PUT (caldav's `add_event`, which
names the resource after the UID and overwrites what is there): writing the same UID again
replaces the event rather than adding a second one, so a booking that is retried after a
crash cannot leave a duplicate behind. Failures are calendar_source's one-line CalendarErrors.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from email.message import EmailMessage
from typing import TYPE_CHECKING

from icalendar import Calendar, Event

from myninja.skills.scheduler.caldav_source import open_calendar, server_request
from myninja.skills.scheduler.calendars import CalendarError
from myninja.skills.scheduler.invite import PRODID
from myninja.skills.scheduler.slots import Slot

if TYPE_CHECKING:
    from myninja.config import CalendarConfig


def check_writable(name: str, config: CalendarConfig) -> None:
    """A CalendarError naming the fix where `name` is not marked writable."""
    if not config.writable:
        raise CalendarError(
            f"calendar {name} is read-only for myninja: set writable = true under "
            f"[calendars.{name}] to let it book meetings there",
            source=name,
        )


def stored_form(calendar: Calendar) -> str:
    """The iCalendar text a CalDAV server stores: an iTIP message less its METHOD (RFC 4791
    §4.1 forbids METHOD in a calendar object resource)."""
    stored = Calendar.from_ical(calendar.to_ical())
    stored.pop("METHOD", None)
    return stored.to_ical().decode("utf-8")


def put_event(name: str, config: CalendarConfig, password: str | None, ics: str) -> str:
    """Store the event `ics` (one VEVENT with a UID) on calendar `name`; its URL."""
    check_writable(name, config)
    calendar = open_calendar(name, config, password)
    # increase_seqno=False: the SEQUENCE is the invitation's, and must match what was mailed.
    event = server_request(name, config, lambda: calendar.add_event(ics, increase_seqno=False))
    return str(event.url)


def remove_event(name: str, config: CalendarConfig, password: str | None, uid: str) -> bool:
    """Delete the event with `uid` from calendar `name`; False where there was none."""
    from caldav.lib import error

    check_writable(name, config)
    calendar = open_calendar(name, config, password)

    def delete() -> bool:
        try:
            calendar.event_by_uid(uid).delete()
        except error.NotFoundError:
            return False
        return True

    return server_request(name, config, delete)


def calendar_url(name: str, config: CalendarConfig, password: str | None) -> str:
    """The URL of the calendar `name` writes to (for a dry run's report)."""
    return str(open_calendar(name, config, password).url)


def stored_from(message: EmailMessage) -> str:
    """The event exactly as mailed (its text/calendar part), in the form a server stores."""
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            return stored_form(Calendar.from_ical(part.get_content()))
    raise AssertionError("an invitation always carries its calendar")


def plain_event(
    slot: Slot, title: str, uid: str, zone: str, description: str, location: str
) -> str:
    """An event with nobody to invite: time blocked on the person's own calendar."""
    start, end = slot.local(zone)
    event = Event.new(
        uid=uid,
        stamp=datetime.now(UTC),
        start=start,
        end=end,
        summary=title.strip(),
        description=description.strip() or None,
        location=location.strip() or None,
    )
    calendar = Calendar.new(prodid=PRODID, subcomponents=[event])
    calendar.pop("UID", None)
    calendar.add_missing_timezones(
        first_date=date(start.year - 1, 1, 1), last_date=date(end.year + 2, 1, 1)
    )
    return calendar.to_ical().decode("utf-8")
