"""The built-in `scheduler` skill: the tools an agent calls to find a meeting time and draft
the invitation. The calendar logic is in `calendars`, `slots` and `invite`; this module turns
a model's arguments (strings and lists) into their types and their answers into short text a
small model can copy from. Writing to a calendar and sending mail is `booking`'s tool, which
asks the person's permission for each.

Every failure reaches the model as a ToolError: the graph turns those into a line the model
reads and may act on, while any other error would end the task.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field

from myninja.errors import UsageError
from myninja.skills.api import Permission, Skill, ToolContext, ToolError, tool
from myninja.skills.scheduler.booking import book_meeting, booked
from myninja.skills.scheduler.calendars import Busy, CalendarError
from myninja.skills.scheduler.invite import draft_invite
from myninja.skills.scheduler.prepare import prepare
from myninja.skills.scheduler.slots import Slot, WorkingHours, find_slots, iso_utc
from myninja.skills.scheduler.sources import busy_for, caldav_name, check_caldav

MAX_ATTENDEES = 20
MAX_SLOTS = 5
# "anna=..." names an attendee; a URL ("https://x/c.ics?key=v") or a path never starts with
# a bare word followed by "=", because both have "/" or ":" before any "=".
_NAMED = re.compile(r"^\s*([^=/\\:?#]+?)\s*=\s*(.+)$")
_HHMM = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


@dataclass(frozen=True)
class _Attendee:
    name: str
    source: str
    hours: WorkingHours


# -- find_meeting_slots -----------------------------------------------------------------------


def _split(entry: str) -> tuple[str | None, str]:
    """('anna', '/cal.ics') from 'anna=/cal.ics'; (None, '/cal.ics') from '/cal.ics'."""
    named = _NAMED.match(entry)
    return (named.group(1), named.group(2).strip()) if named else (None, entry.strip())


def _calendar_permissions(arguments: dict[str, Any]) -> set[Permission]:
    """A calendar given as a file needs read_files, one given as a URL or a configured CalDAV
    calendar (cal:NAME) the network: a person who named only files is not asked about the
    network."""
    sources = [_split(entry)[1] for entry in arguments["calendars"]]
    return {
        Permission.NETWORK if _URL.match(s) or caldav_name(s) is not None else Permission.READ_FILES
        for s in sources
    }


@tool(permissions=[Permission.READ_FILES, Permission.NETWORK], needs=_calendar_permissions)
def find_meeting_slots(
    calendars: Annotated[
        list[str],
        Field(
            min_length=1,
            max_length=MAX_ATTENDEES,
            description="One calendar per attendee: an .ics file path, an http(s) URL or a "
            "configured CalDAV calendar 'cal:NAME', optionally named as 'name=source', e.g. "
            "'anna=/home/anna/cal.ics'",
        ),
    ],
    timezones: Annotated[
        list[str],
        Field(description="Each attendee's IANA time zone, same order, e.g. 'Europe/Berlin'"),
    ],
    ctx: ToolContext,
    duration_minutes: Annotated[int, Field(ge=5, le=12 * 60)] = 30,
    days_ahead: Annotated[int, Field(ge=1, le=60, description="How many days to search")] = 7,
    start_date: Annotated[
        str | None,
        Field(description="First day to search, YYYY-MM-DD; default: today"),
    ] = None,
    working_start: Annotated[str, Field(description="Working day start, HH:MM local")] = "09:00",
    working_end: Annotated[str, Field(description="Working day end, HH:MM local")] = "17:00",
    working_hours: Annotated[
        list[str] | None,
        Field(
            description="Optional per-attendee hours 'HH:MM-HH:MM', same order; "
            "overrides working_start/working_end"
        ),
    ] = None,
) -> str:
    """Find meeting times when every attendee is free, Monday to Friday within working hours,
    each shown in every attendee's local time. Reads their .ics calendars; books nothing."""
    attendees = _attendees(calendars, timezones, working_start, working_end, working_hours)
    for attendee in attendees:  # an unknown cal:NAME is a wrong argument, not a missing calendar
        try:
            check_caldav(attendee.source, ctx.config)
        except CalendarError as exc:
            raise ToolError(f"find_meeting_slots: {exc.one_line()}") from None
    first_zone = attendees[0].hours.zone
    first_day = _parse_date(start_date) if start_date else datetime.now(first_zone).date()
    start = datetime.combine(first_day, time(0), tzinfo=first_zone)
    end = datetime.combine(first_day + timedelta(days=days_ahead), time(0), tzinfo=first_zone)
    now = datetime.now(UTC)
    if start < now < end:
        start = now  # a time already gone is no offer
    notes: list[str] = []
    busy_by_person: dict[str, list[Busy]] = {}
    # Calendars load in parallel: three slow URLs should cost one time-out, not three.
    with ThreadPoolExecutor(max_workers=min(4, len(attendees))) as pool:
        loaded = list(pool.map(lambda a: _busy(a, start, end, ctx), attendees))
    for attendee, (busy, problem) in zip(attendees, loaded, strict=True):
        if problem is None:
            busy_by_person[attendee.name] = busy
        else:
            notes.append(
                f"Note: {problem}. The times above ignore {attendee.name}'s calendar "
                "(only their working hours count)."
            )
    try:
        found = find_slots(
            busy_by_person,
            start=start,
            end=end,
            duration=timedelta(minutes=duration_minutes),
            working_hours={a.name: a.hours for a in attendees},
            limit=MAX_SLOTS,
        )
    except UsageError as exc:
        raise ToolError(f"find_meeting_slots: {exc.one_line()}") from None
    if end <= now:
        notes.append("Note: all of these days are in the past.")
    return _slot_text(found, attendees, duration_minutes, first_day, days_ahead, notes)


def _attendees(
    calendars: Sequence[str],
    timezones: Sequence[str],
    working_start: str,
    working_end: str,
    working_hours: Sequence[str] | None,
) -> list[_Attendee]:
    """Names, sources and hours, checked before any calendar is read: a bad zone should cost
    no download."""
    if len(timezones) != len(calendars):
        raise ToolError(
            f"find_meeting_slots: give one time zone per calendar "
            f"({len(calendars)} calendars, {len(timezones)} time zones)"
        )
    if working_hours is not None and len(working_hours) != len(calendars):
        raise ToolError(
            f"find_meeting_slots: give one working_hours entry per calendar "
            f"({len(calendars)} calendars, {len(working_hours)} entries)"
        )
    attendees: list[_Attendee] = []
    taken: set[str] = set()
    for index, (entry, tz) in enumerate(zip(calendars, timezones, strict=True)):
        given_name, source = _split(entry)
        if not source:
            raise ToolError(f"find_meeting_slots: calendar {index + 1} is empty")
        name = given_name or _name_from(source, index)
        if name.casefold() in taken:  # two "cal.ics" from different folders
            name = f"{name} ({index + 1})"
        taken.add(name.casefold())
        if working_hours is not None:
            first, _, last = working_hours[index].partition("-")
        else:
            first, last = working_start, working_end
        try:
            hours = WorkingHours(tz.strip(), start=_parse_time(first), end=_parse_time(last))
        except UsageError as exc:
            raise ToolError(f"find_meeting_slots: {name}: {exc.one_line()}") from None
        attendees.append(_Attendee(name, source, hours))
    return attendees


def _name_from(source: str, index: int) -> str:
    """'anna-berlin' for .../anna-berlin.ics; the URL's host where its path names nothing;
    'work' for cal:work."""
    if name := caldav_name(source):
        return name
    if _URL.match(source):
        parts = urlsplit(source)
        stem = Path(parts.path).stem
        return stem or parts.hostname or f"attendee {index + 1}"
    return Path(source).stem or f"attendee {index + 1}"


def _parse_time(value: str) -> time:
    match = _HHMM.match(value)
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ToolError(f"find_meeting_slots: {value!r} is not a time of day as HH:MM")
    return time(int(match.group(1)), int(match.group(2)))


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ToolError(f"find_meeting_slots: start_date {value!r} is not YYYY-MM-DD") from None


def _busy(
    attendee: _Attendee, start: datetime, end: datetime, ctx: ToolContext
) -> tuple[list[Busy], str | None]:
    """(busy intervals, None), or ([], why the calendar could not be used)."""
    try:
        busy = busy_for(
            attendee.source,
            start,
            end,
            owner=attendee.name,
            tz=attendee.hours.tz,
            config=ctx.config,
        )
    except CalendarError as exc:
        return [], str(exc)
    return busy, None


def _slot_text(
    found: list[Slot],
    attendees: list[_Attendee],
    duration_minutes: int,
    first_day: date,
    days_ahead: int,
    notes: list[str],
) -> str:
    last_day = first_day + timedelta(days=days_ahead - 1)
    names = ", ".join(a.name for a in attendees)
    span = f"{first_day.isoformat()} to {last_day.isoformat()}"
    if not found:
        lines = [
            f"No {duration_minutes}-minute time from {span} when {names} are all free within "
            "working hours. Try more days_ahead, a shorter duration or wider working hours."
        ]
    else:
        lines = [f"Free {duration_minutes}-minute times for {names} ({span}):"]
        for number, slot in enumerate(found, 1):
            lines.append(f"{number}. start_utc={iso_utc(slot.start)}")
            lines.extend(f"   {a.name}: {slot.describe(a.hours.tz)}" for a in attendees)
        lines.append(
            "To invite, call draft_meeting_invite with the chosen start_utc; nothing is booked yet."
        )
    lines.extend(notes)
    return "\n".join(lines)


# -- draft_meeting_invite ---------------------------------------------------------------------


@tool(workspace=True)
def draft_meeting_invite(
    title: str,
    start_utc: Annotated[str, Field(description="Start in UTC, e.g. '2025-03-10T14:00:00Z'")],
    duration_minutes: Annotated[int, Field(ge=5, le=24 * 60)],
    organizer: Annotated[str, Field(description="Organizer's email")],
    attendees: Annotated[list[str], Field(min_length=1, description="Attendees' emails")],
    ctx: ToolContext,
    timezones: Annotated[
        list[str] | None,
        Field(description="Attendees' IANA time zones, same order, to show local times"),
    ] = None,
    description: str = "",
    location: str = "",
) -> str:
    """Draft a meeting invitation: saves an .ics file to the task's workspace and returns the
    message text to send with it. It sends nothing; the person sends it."""
    start = _parse_start(start_utc)
    if timezones is not None and len(timezones) != len(attendees):
        raise ToolError(
            f"draft_meeting_invite: give one time zone per attendee "
            f"({len(attendees)} attendees, {len(timezones)} time zones)"
        )
    zones = dict(zip(attendees, timezones, strict=True)) if timezones else None
    slot = Slot(start, start + timedelta(minutes=duration_minutes))
    try:
        ics, message = draft_invite(
            slot,
            title=title,
            organizer=organizer,
            attendees=attendees,
            description=description,
            location=location,
            timezones=zones,
        )
    except UsageError as exc:
        raise ToolError(f"draft_meeting_invite: {exc.one_line()}") from None
    path = ctx.workspace / f"invite-{_slug(title)}.ics"
    # newline="": the .ics already ends its lines with CRLF, as RFC 5545 wants.
    path.write_text(ics, encoding="utf-8", newline="")
    return f"{message}\nInvite file (not sent): {path}"


def _parse_start(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ToolError(
            f"draft_meeting_invite: start_utc {value!r} is not an ISO time "
            "like 2025-03-10T14:00:00Z"
        ) from None
    # The parameter says UTC: a time without an offset is taken as UTC, not as local time.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _slug(text: str) -> str:
    """'Roadmap review: Q2!' → 'roadmap-review-q2': a file name that is safe everywhere."""
    # NFKD first, so "Café" keeps its "e" rather than losing the letter.
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:60].rstrip("-")
    return slug or "meeting"


skill = Skill(
    name="scheduler",
    description="Find meeting times across calendars and time zones, draft invitations "
    "(.ics files), and, with your permission, book them on your calendar and e-mail them",
    tools=[find_meeting_slots, draft_meeting_invite, book_meeting],
    agents=("scheduler",),
    # For models that cannot call tools: the slots and the invite are worked out beforehand.
    prepare=prepare,
    finish=booked,  # what was booked, from the task's ledger, under the answer
)
