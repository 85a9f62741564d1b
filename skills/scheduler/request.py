"""What a task asks of the scheduler, read from the words a person writes: the calendars and
who owns them ("a 45-minute slot next week for alice=/home/a/alice.ics (Europe/Berlin) and
bob=https://…/bob.ics (America/New_York)"), each one's zone and address, the days, the length,
the working hours, the title, and whether it asks to book the meeting or only to find a time.

The reader is deliberately plain regular expressions: it serves the common phrasings and says
what it understood, so a wrong reading is visible in the answer rather than silent.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

from myninja.skills.scheduler.named_calendars import ME, calendars_in, local_zone, valid_zone

DEFAULT_DURATION = 30
DEFAULT_DAYS = 7
MAX_DAYS = 60  # find_meeting_slots' own limit on days_ahead
# Reserved by RFC 2606: an address there can never reach anyone by mistake.
PLACEHOLDER_DOMAIN = "example.invalid"


_DURATION = re.compile(
    r"(?<![\w.])(?P<h>\d+(?:[.,]\d+)?)\s*-?\s*(?:hours?|hrs?|h)\b"
    r"(?:\s*(?:and\s+)?(?P<hm>\d+)\s*-?\s*(?:minutes?|mins?)\b)?"
    r"|\b(?P<hw>half\s+an?|an?|one|two)\s+hours?\b"
    r"|(?<![\w.])(?P<m>\d+)\s*-?\s*(?:minutes?|mins?)\b",
    re.IGNORECASE,
)
_WORD_HOURS = {"half an": 0.5, "half a": 0.5, "an": 1, "a": 1, "one": 1, "two": 2}
_ISO_DATE = r"\d{4}-\d{2}-\d{2}"
_DATE_RANGE = re.compile(
    rf"\b(?:from|between)\s+(?P<a>{_ISO_DATE})\s+(?:to|until|till|through|and)\s+(?P<b>{_ISO_DATE})",
    re.IGNORECASE,
)
_ON_DATE = re.compile(rf"\bon\s+(?P<d>{_ISO_DATE})", re.IGNORECASE)
_ANY_DATE = re.compile(rf"(?P<d>{_ISO_DATE})")
_NEXT_DAYS = re.compile(
    r"\b(?:(?:in|within|over|during)\s+the\s+next|next|for|within|over)\s+"
    r"(?P<n>\d+)\s*(?P<unit>days?|weeks?)\b",
    re.IGNORECASE,
)
_TIME = r"(?P<{0}h>\d{{1,2}})(?::(?P<{0}m>\d{{2}}))?\s*(?P<{0}p>[ap]\.?m\.?)?"
_HOURS_BETWEEN = re.compile(
    rf"\bbetween\s+{_TIME.format('a')}\s+and\s+{_TIME.format('b')}(?![\d:])", re.IGNORECASE
)
_HOURS_RANGE = re.compile(
    rf"(?<![\d:.]){_TIME.format('a')}\s*(?:-|–|—|to|until|till)\s*{_TIME.format('b')}(?![\d:])",
    re.IGNORECASE,
)
_TITLE = re.compile(
    r"\b(?:invite|invitation|meeting|called|titled|named|subject|for)\b\s*"
    r"(?:for|to|about|called|titled|named|:)?\s*"
    r"""(?:"(?P<dq>[^"\n]{1,120})"|“(?P<cq>[^”\n]{1,120})”|'(?P<sq>[^'\n]{1,120})'|‘(?P<tq>[^’\n]{1,120})’)""",
    re.IGNORECASE,
)


# Asking for the meeting to be booked, not only found: "book it", "put it on my calendar",
# "send the invitation". Drafting ("draft the invite") books nothing.
_BOOK = re.compile(
    r"\bbook\b"
    r"|\b(?:put|add|place)\s+(?:it|this|that|the\s+(?:meeting|event|call|time|slot))\s+"
    r"(?:on|to|in|into)\s+(?:my|our|the)\s+calendars?\b"
    r"|\bsend\s+(?:out\s+)?(?:the\s+|an?\s+)?(?:calendar\s+)?invit(?:e|es|ation|ations)\b",
    re.IGNORECASE,
)
_NEGATED = re.compile(
    r"\b(?:don['’]?t|do\s+not|not|never|without|no\s+need\s+to)\s+(?:\w+\s+){0,2}$", re.I
)


@dataclass(frozen=True)
class Attendee:
    """One calendar named in the task. `email` is None where the task gives none."""

    name: str
    source: str
    zone: str
    zone_written: bool  # False: borrowed from another attendee or the local zone
    email: str | None = None

    @property
    def is_me(self) -> bool:
        return self.name.casefold() in ME


@dataclass(frozen=True)
class MeetingRequest:
    """A meeting as the task asks for it. `problems` (a bad zone, say) mean the tools cannot
    be called with it."""

    attendees: tuple[Attendee, ...]
    start: date
    days: int = DEFAULT_DAYS
    duration_minutes: int = DEFAULT_DURATION
    working_start: str = "09:00"
    working_end: str = "17:00"
    title: str = "Meeting"
    problems: tuple[str, ...] = ()
    book: bool = False  # the task asks to book it (write the event, send the invitation)

    @property
    def last_day(self) -> date:
        return self.start + timedelta(days=self.days - 1)

    def slot_arguments(self) -> dict[str, object]:
        """find_meeting_slots' arguments; names always given, so its text uses ours."""
        return {
            "calendars": [f"{a.name}={a.source}" for a in self.attendees],
            "timezones": [a.zone for a in self.attendees],
            "duration_minutes": self.duration_minutes,
            "days_ahead": self.days,
            "start_date": self.start.isoformat(),
            "working_start": self.working_start,
            "working_end": self.working_end,
        }

    def emails(self) -> dict[str, str]:
        """Each attendee's address: the one in the task, else a placeholder that cannot be
        delivered (the invite tool wants addresses; the task often names only people)."""
        found: dict[str, str] = {}
        taken: set[str] = set()
        for index, attendee in enumerate(self.attendees):
            email = attendee.email or _placeholder(attendee.name, index, taken)
            taken.add(email.casefold())
            found[attendee.name] = email
        return found

    def organizer(self) -> Attendee | None:
        return next((a for a in self.attendees if a.is_me), None)


def meeting_request(task: str, today: date, my_zone: str | None = None) -> MeetingRequest | None:
    """The meeting `task` asks for, read relative to `today`; None when it names no calendar.
    `my_zone` is the person's own time zone where the agent knows it (agent_graph/needs.py)."""
    found, rest = calendars_in(task)
    if not found:
        return None
    problems: list[str] = []
    written = [zone for _, _, zone, _ in found if zone is not None and valid_zone(zone)]
    # Someone whose zone is not written is taken to share the first written one: people on
    # one invitation are more often in one place than not, and the request line says so. The
    # person's own calendar ("me") without one is in the person's zone where that is known.
    fallback = written[0] if written else (my_zone or local_zone())
    attendees: list[Attendee] = []
    taken: set[str] = set()
    for index, (name, source, zone, email) in enumerate(found):
        name = re.sub(r"[=/\\:?#]", "-", name).strip() or f"attendee {index + 1}"
        if name.casefold() in taken:  # two "cal.ics" from different folders
            name = f"{name} ({index + 1})"
        taken.add(name.casefold())
        if zone is not None and not valid_zone(zone):
            problems.append(
                f"unknown time zone {zone!r} for {name} (use an IANA name like Europe/Berlin)"
            )
        if zone is None and my_zone and name.casefold() in ME:
            zone_of = my_zone
        else:
            zone_of = zone if zone is not None else fallback
        attendees.append(
            Attendee(
                name=name,
                source=source,
                zone=zone_of,
                zone_written=zone is not None,
                email=email,
            )
        )
    # The title first, and out of the way: "'Q3 review 2026-01-05'" names no day to search.
    title, rest = _title(rest)
    start, days, rest = _window(rest, today, problems)
    hours = _working_hours(rest)
    return MeetingRequest(
        attendees=tuple(attendees),
        start=start,
        days=days,
        duration_minutes=_duration(rest),
        working_start=hours[0] if hours else "09:00",
        working_end=hours[1] if hours else "17:00",
        title=title,
        problems=tuple(problems),
        book=wants_booking(rest),
    )


def _window(rest: str, today: date, problems: list[str]) -> tuple[date, int, str]:
    """(first day, number of days, `rest` with the dates blanked so no reader sees 12-03)."""
    days: int | None = None
    start: date | None = None
    if span := _DATE_RANGE.search(rest):
        first, last = _iso(span["a"], problems), _iso(span["b"], problems)
        if first and last:
            start, days = first, max(1, (last - first).days + 1)
    elif on := _ON_DATE.search(rest):
        start, days = _iso(on["d"], problems), 1
    elif written := _ANY_DATE.search(rest):  # "from 2026-12-03", or a bare date
        start = _iso(written["d"], problems)
    rest = _ANY_DATE.sub(lambda m: " " * len(m[0]), rest)
    if days is None and (ahead := _NEXT_DAYS.search(rest)):
        days = int(ahead["n"]) * (7 if ahead["unit"].lower().startswith("week") else 1)
    lowered = rest.lower()
    if start is None:
        weekday = today.weekday()
        next_monday = today + timedelta(days=7 - weekday)
        if days is None and re.search(r"\btomorrow\b", lowered):
            start, days = today + timedelta(days=1), 1
        elif days is None and re.search(r"\btoday\b", lowered):
            start, days = today, 1
        elif days is None and re.search(r"\bnext\s+week\b", lowered):
            start, days = next_monday, 5
        elif days is None and re.search(r"\bthis\s+week\b", lowered):
            # At the weekend what is left of "this week" has no working day: the coming one.
            start, days = (today, 5 - weekday) if weekday < 5 else (next_monday, 5)
        else:
            start = today
    # More than the tool searches is cut to what it does; the request line shows the span.
    return start, min(max(1, days or DEFAULT_DAYS), MAX_DAYS), rest


def _iso(text: str, problems: list[str]) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        problems.append(f"{text!r} is not a date")
        return None


def _duration(rest: str) -> int:
    match = _DURATION.search(rest)
    if match is None:
        return DEFAULT_DURATION
    if match["m"]:
        return int(match["m"])
    if match["hw"]:
        hours = _WORD_HOURS[" ".join(match["hw"].lower().split())]
    else:
        hours = float(match["h"].replace(",", "."))
    return round(hours * 60) + int(match["hm"] or 0)


def _working_hours(rest: str) -> tuple[str, str] | None:
    """("HH:MM", "HH:MM") from "between 10:00 and 16:00" or "10am-4pm"; a bare "9-5" is too
    easily something else, so a range needs a colon or am/pm on one side."""
    for pattern, bare_ok in ((_HOURS_BETWEEN, True), (_HOURS_RANGE, False)):
        for match in pattern.finditer(rest):
            marked = any(match[f"{s}m"] or match[f"{s}p"] for s in "ab")
            if not (bare_ok or marked):
                continue
            end = _clock(match["bh"], match["bm"], match["bp"])
            begin = _clock(match["ah"], match["am"], match["ap"])
            if begin is None or end is None:
                continue
            # "1-4pm" is 13:00-16:00, "10-4pm" is 10:00-16:00: the start borrows "pm" only
            # where that still leaves it before the end.
            if match["bp"] and not match["ap"] and begin + 12 * 60 < end and begin < 12 * 60:
                begin += 12 * 60
            if begin < end:
                return _hhmm(begin), _hhmm(end)
    return None


def _clock(hour: str, minute: str | None, meridiem: str | None) -> int | None:
    h, m = int(hour), int(minute or 0)
    if meridiem:
        if not 1 <= h <= 12:
            return None
        h = h % 12 + (12 if meridiem.lower().startswith("p") else 0)
    if h == 24 and m == 0:
        return 23 * 60 + 59  # the tool takes times of day; 24:00 is the day's last minute
    if h > 23 or m > 59:
        return None
    return h * 60 + m


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _title(rest: str) -> tuple[str, str]:
    """(the quoted title, `rest` without it); "Meeting" where none is quoted."""
    match = _TITLE.search(rest)
    if match is None:
        return "Meeting", rest
    text = next(match[g] for g in ("dq", "cq", "sq", "tq") if match[g])
    blanked = rest[: match.start()] + " " * (match.end() - match.start()) + rest[match.end() :]
    return " ".join(text.split()) or "Meeting", blanked


def wants_booking(text: str) -> bool:
    """Whether `text` asks for the meeting to be booked; "do not book it yet" does not."""
    return any(
        not _NEGATED.search(text[max(0, m.start() - 40) : m.start()]) for m in _BOOK.finditer(text)
    )


def _placeholder(name: str, index: int, taken: set[str]) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    local = re.sub(r"[^a-z0-9]+", ".", ascii_name.lower()).strip(".") or f"attendee{index + 1}"
    email = f"{local}@{PLACEHOLDER_DOMAIN}"
    if email.casefold() in taken:
        email = f"{local}.{index + 1}@{PLACEHOLDER_DOMAIN}"
    return email
