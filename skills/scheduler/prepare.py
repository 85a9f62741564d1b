"""The scheduler's `prepare` hook: the work a model would do with tool calls, done in code
before it answers, for models that cannot call tools.

`meeting_request` (request.py) reads the task; `prepare` then runs the skill's own tools
through `draft.use` (so the permission gate and the trace see them as they see a model's calls):
`find_meeting_slots`, then, for the earliest time found, `book_meeting` where the task asks to
book it, else `draft_meeting_invite`. The model is handed the result and only has to present it.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from myninja.skills.api import Draft, ToolError
from myninja.skills.scheduler.booking import booked_start
from myninja.skills.scheduler.request import PLACEHOLDER_DOMAIN, MeetingRequest, meeting_request
from myninja.skills.scheduler.slots import Slot

INSTRUCTION = (
    "Propose time 1 and list the others as alternatives, each with every attendee's local time "
    "as given above, then write the invitation message; the .ics file is already drafted."
)
# The small model copies what it is handed: the sentence to write is spelt out for it.
BOOKED_INSTRUCTION = (
    "Tell the person in one or two sentences, and nothing else: “{title}” is booked for {local}; "
    "invited: {invited}."
)
DRY_RUN_INSTRUCTION = (
    "Tell the person in one or two sentences, and nothing else: this was a dry run, nothing was "
    "written or sent; “{title}” would be booked for {local}; it would invite: {invited}."
)
_OFFER = re.compile(r"^(\d+)\. start_utc=(\S+)$", re.MULTILINE)  # offers are numbered from 1


async def prepare(draft: Draft, *, today: date | None = None) -> str | None:
    """Free times for the calendars the task names, and for the first one the booking (where
    the task asks to book) or a drafted invitation, as text for the model; None when the task
    names no calendar. Never raises for what a tool refuses."""
    request = meeting_request(draft.task, today or date.today(), draft.facts.get("time zone"))
    if request is None:
        return None
    lines = ["Scheduler (worked out before you answer):", *_understood(request)]
    if request.problems:
        lines.append("Could not look for free times: " + "; ".join(request.problems) + ".")
        lines.append("Tell the person what to correct; do not invent times.")
        return "\n".join(lines)
    try:
        slots = await draft.use("find_meeting_slots", request.slot_arguments())
    except ToolError as exc:
        lines.append(f"Could not look for free times: {exc}")
        lines.append("Tell the person what could not be done; do not invent times.")
        return "\n".join(lines)
    lines.extend(_readable(slots, request.duration_minutes))
    first = _OFFER.search(slots)
    # Resumed after the booking began (a question, a crash): its own event now makes that
    # time busy, so the time booked then is booked again (a no-op where it was done), not 1.
    if request.book and (earlier := booked_start(draft.workspace)):
        if not await _book(draft, request, earlier, lines, again=True):
            lines.append("Tell the person what could not be done; do not invent a booking.")
        return "\n".join(lines)
    if first is None:
        lines.append("No time fits, so no invitation was drafted.")
        lines.append("Tell the person, and suggest more days, a shorter meeting or wider hours.")
        return "\n".join(lines)
    if request.book and await _book(draft, request, first[2], lines):
        return "\n".join(lines)
    try:
        invite = await draft.use("draft_meeting_invite", _invite_arguments(request, first[2]))
    except ToolError as exc:
        lines.append(f"Could not draft the invitation: {exc}")
        lines.append("Propose the first time, list the alternatives; no .ics file was written.")
        return "\n".join(lines)
    lines.append("Invitation drafted for time 1 (nothing is sent):")
    lines.extend(invite.strip().splitlines())
    placeholders = [a.name for a in request.attendees if a.email is None]
    if request.organizer() is None:
        placeholders.append("the organizer")
    if placeholders:
        lines.append(
            f"Addresses ending in @{PLACEHOLDER_DOMAIN} are placeholders (no address was given "
            f"for {', '.join(placeholders)}): say they must be replaced before sending."
        )
    lines.append(INSTRUCTION)
    return "\n".join(lines)


async def _book(
    draft: Draft, request: MeetingRequest, start_utc: str, lines: list[str], again: bool = False
) -> bool:
    """Book time 1 (`again`: the time this task booked before) with book_meeting, its
    permissions asked as for a model's call; whether it was booked (or shown as a dry run).
    Refused or failed, `lines` say why and the invitation is drafted instead, so the person
    still has a file to send."""
    what = f"the time this task chose before ({start_utc})" if again else "time 1"
    try:
        result = await draft.use("book_meeting", _book_arguments(request, start_utc))
    except ToolError as exc:
        lines.append(f"Could not book {what}: {exc}")
        return False
    dry = result.startswith("Dry run")
    if not again and not dry:  # so the model does not offer it as an alternative
        lines[:] = [f"{line} (booked)" if line.startswith("1. ") else line for line in lines]
    lines.append(f"Dry run of booking {what}:" if dry else f"Booked {what}:")
    lines.extend(result.strip().splitlines())
    # Each person's own clock, spelt out: a small model otherwise puts "UTC" beside a local time.
    start = datetime.fromisoformat(start_utc.replace("Z", "+00:00"))
    slot = Slot(start, start + timedelta(minutes=request.duration_minutes))
    local = "; ".join(f"{a.name}: {slot.describe(a.zone)}" for a in request.attendees)
    lines.append(f"{'Would be booked' if dry else 'Booked'} for {local} ({slot.describe()}).")
    unreachable = [a.name for a in request.attendees if not a.is_me and a.email is None]
    if unreachable:
        lines.append(f"Not invited, no address given: {', '.join(unreachable)}.")
    invited = [a.email for a in request.attendees if not a.is_me and a.email]
    lines.append(
        (DRY_RUN_INSTRUCTION if dry else BOOKED_INSTRUCTION).format(
            title=request.title,
            local=local.replace("; ", ", "),
            invited=", ".join(invited) or "nobody (no address was given)",
        )
    )
    return True


def _book_arguments(request: MeetingRequest, start_utc: str) -> dict[str, object]:
    """book_meeting's arguments: the attendees with an address (the person is the organizer,
    from [smtp]), and the person's own calendar where the task names a configured one."""
    invited = [a for a in request.attendees if not a.is_me and a.email]
    arguments: dict[str, object] = {
        "title": request.title,
        "start_utc": start_utc,
        "duration_minutes": request.duration_minutes,
        "attendees": [a.email if a.email == a.name else f"{a.name} <{a.email}>" for a in invited],
        "timezones": [a.zone for a in invited],
    }
    me = request.organizer()
    if me is not None and me.source.lower().startswith("cal:"):
        arguments["calendar"] = me.source[len("cal:") :]
    return arguments


def _readable(slots: str, minutes: int) -> list[str]:
    """The tool's offers as one line each, its time in UTC and then every attendee's own,
    without the start_utc lines: a small model quotes those with a wrong zone beside them. The
    model cannot call tools, and the invite is drafted here, so the tool's hint goes too."""
    parts: list[list[str]] = []  # one list per output line
    in_offer = False
    for line in slots.splitlines():
        if match := _OFFER.match(line):
            start = datetime.fromisoformat(match[2].replace("Z", "+00:00"))
            end = start + timedelta(minutes=minutes)
            when = f"{start:%A} {start.day} {start:%B %Y}, {start:%H:%M}–{end:%H:%M} UTC"
            parts.append([f"{match[1]}. {when}"])
            in_offer = True
        elif in_offer and line.startswith("   "):
            parts[-1].append(line.strip())
        else:
            in_offer = False
            if not line.startswith("To invite, call "):
                parts.append([line])
    return ["; ".join(line) for line in parts]


# -- the text for the model -------------------------------------------------------------------


def _understood(request: MeetingRequest) -> list[str]:
    people = []
    for attendee in request.attendees:
        notes = [attendee.zone if attendee.zone_written else f"{attendee.zone}, assumed"]
        if attendee.is_me:
            notes.append("organizer")
        people.append(f"{attendee.name} ({', '.join(notes)})")
    span = (
        request.start.isoformat()
        if request.days == 1
        else f"{request.start.isoformat()} to {request.last_day.isoformat()}"
    )
    return [
        f"Request: {request.duration_minutes}-minute meeting “{request.title}”, {span}, "
        f"working hours {request.working_start}–{request.working_end} local, Monday to Friday.",
        f"Attendees: {', '.join(people)}.",
    ]


def _invite_arguments(request: MeetingRequest, start_utc: str) -> dict[str, object]:
    emails = request.emails()
    me = request.organizer()
    # Without "me" among the calendars the sender is unknown: a placeholder they replace.
    organizer = emails[me.name] if me else f"organizer@{PLACEHOLDER_DOMAIN}"
    return {
        "title": request.title,
        "start_utc": start_utc,
        "duration_minutes": request.duration_minutes,
        "organizer": organizer,
        "attendees": [emails[a.name] for a in request.attendees],
        "timezones": [a.zone for a in request.attendees],
    }
