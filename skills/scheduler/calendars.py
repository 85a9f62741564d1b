"""Calendars in, busy time out.

`load_calendar` reads an iCalendar (.ics) file from disk or from an http(s)/webcal URL (bounded
in size and time); `busy_intervals` turns one person's calendar into the instants they are
busy between two moments, in UTC, with recurring events expanded by `recurring_ical_events`.

What counts as busy, and why:
- an event's DTSTART/DTEND (or DTSTART + DURATION) as instants: a TZID is resolved by
  icalendar, from the file's VTIMEZONE or as an IANA name;
- a floating time (no TZID, no Z) means wall-clock time where the calendar lives: its
  X-WR-TIMEZONE (Google and Apple exports carry one), else the owner's `tz`, else UTC;
- an all-day event (DATE values) blocks the owner's whole local day(s), midnight to midnight
  in their `tz`: "out of office on Tuesday" means the person's Tuesday, not UTC's;
- TRANSP:TRANSPARENT ("show as free") and STATUS:CANCELLED events do not block.

Every failure is one `CalendarError` whose message names the calendar and says why.
"""

from __future__ import annotations

import re
import time as monotonic_clock
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
import recurring_ical_events
from icalendar import Calendar, Component
from icalendar.error import InvalidCalendar

from myninja.errors import UsageError
from myninja.skills.research.fetch import USER_AGENT

MAX_REDIRECTS = 5
_ACCEPT = "text/calendar, text/plain;q=0.9, */*;q=0.5"
_URL_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
# Floating times are at most 14 hours from UTC (Pacific/Kiritimati): expanding a day more on
# each side catches every event that can reach into the window however its times are read.
_PAD = timedelta(days=1)


class CalendarError(UsageError):
    """A calendar could not be read or understood. `source` is the file or URL as named."""

    def __init__(
        self, message: str, *, source: str, status: int | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.source = source
        self.status = status  # the HTTP status, where a server gave one


@dataclass(frozen=True, slots=True)
class Busy:
    """One stretch of time `owner` is busy: [start, end), both aware and in UTC."""

    owner: str
    start: datetime
    end: datetime
    summary: str = ""


# -- loading ----------------------------------------------------------------------------------


def load_calendar(
    source: str | Path, *, timeout_s: float = 10.0, max_bytes: int = 5_000_000
) -> Calendar:
    """The calendar in the file or at the URL `source` (http, https, or webcal, which is
    https). A file or body over `max_bytes` is refused, not cut: half a calendar would show
    someone free when they are not. A URL gets `timeout_s` per network phase and, checked as
    the body arrives, for the whole download."""
    if isinstance(source, str) and (match := _URL_SCHEME.match(source)):
        scheme = match.group(1).lower()
        if scheme == "webcal":  # a subscription link: the same calendar over https
            url = "https://" + source[match.end() :]
        elif scheme in ("http", "https"):
            url = source
        else:
            raise CalendarError(
                f"cannot fetch calendar {source}: scheme {scheme!r} is not http, https or webcal",
                source=source,
            )
        data = _fetch(url, source, timeout_s=timeout_s, max_bytes=max_bytes)
    else:
        data = _read_file(Path(source).expanduser(), str(source), max_bytes=max_bytes)
    return parse_calendar(data, source=str(source))


def parse_calendar(data: bytes | str, *, source: str = "<text>") -> Calendar:
    """`data` parsed as one VCALENDAR, or a CalendarError naming `source`."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    text = text.lstrip("\ufeff \t\r\n")  # a BOM or blank lines before BEGIN are common
    first_line = text.split("\n", 1)[0].strip()
    if first_line.upper() != "BEGIN:VCALENDAR":
        shown = first_line[:40] + ("…" if len(first_line) > 40 else "")
        what = f"it starts with {shown!r}" if shown else "it is empty"
        raise CalendarError(
            f"cannot read calendar {source}: not an iCalendar file ({what})", source=source
        )
    try:
        calendar = Calendar.from_ical(text)
    except (ValueError, InvalidCalendar) as exc:  # icalendar's parse errors are ValueErrors
        raise CalendarError(
            f"cannot read calendar {source}: not valid iCalendar ({_one_line(exc)})",
            source=source,
        ) from None
    return calendar


def _read_file(path: Path, source: str, *, max_bytes: int) -> bytes:
    try:
        if path.stat().st_size > max_bytes:
            raise CalendarError(
                f"cannot read calendar {source}: file larger than {max_bytes} bytes",
                source=source,
            )
        return path.read_bytes()
    except FileNotFoundError:
        raise CalendarError(f"cannot read calendar {source}: no such file", source=source) from None
    except IsADirectoryError:
        raise CalendarError(
            f"cannot read calendar {source}: it is a directory", source=source
        ) from None
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise CalendarError(f"cannot read calendar {source}: {why}", source=source) from None


def _fetch(url: str, source: str, *, timeout_s: float, max_bytes: int) -> bytes:
    # httpx's timeout is per phase (connect, each read): a server dripping a byte a second
    # never trips it, so the whole download also has a deadline, checked per chunk.
    deadline = monotonic_clock.monotonic() + timeout_s
    headers = {"User-Agent": USER_AGENT, "Accept": _ACCEPT}
    try:
        with (
            httpx.Client(
                headers=headers,
                timeout=timeout_s,
                follow_redirects=True,
                max_redirects=MAX_REDIRECTS,
            ) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code >= 400:
                reason = f" {response.reason_phrase}" if response.reason_phrase else ""
                raise CalendarError(
                    f"cannot fetch calendar {source}: HTTP {response.status_code}{reason}",
                    source=source,
                    status=response.status_code,
                )
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise _too_big(source, max_bytes)
            body = bytearray()
            for chunk in response.iter_bytes():  # decompressed: a gzip bomb is bounded too
                body += chunk
                if len(body) > max_bytes:
                    raise _too_big(source, max_bytes)
                if monotonic_clock.monotonic() > deadline:
                    raise httpx.ReadTimeout("deadline passed")
            return bytes(body)
    except httpx.TimeoutException:
        raise CalendarError(
            f"cannot fetch calendar {source}: timed out after {timeout_s:g} s", source=source
        ) from None
    except httpx.TooManyRedirects:
        raise CalendarError(
            f"cannot fetch calendar {source}: more than {MAX_REDIRECTS} redirects", source=source
        ) from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        kind = "connection failed" if isinstance(exc, httpx.ConnectError) else type(exc).__name__
        raise CalendarError(
            f"cannot fetch calendar {source}: {kind} ({_one_line(exc)})", source=source
        ) from None


def _too_big(source: str, max_bytes: int) -> CalendarError:
    return CalendarError(
        f"cannot fetch calendar {source}: larger than {max_bytes} bytes", source=source
    )


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] or type(exc).__name__


# -- busy time --------------------------------------------------------------------------------


def busy_intervals(
    calendar: Calendar,
    start: datetime,
    end: datetime,
    *,
    owner: str,
    tz: str | None = None,
) -> list[Busy]:
    """When `owner` is busy between `start` and `end` (aware datetimes): every event of
    `calendar` that overlaps [start, end), recurrences expanded, as UTC intervals sorted by
    start. Intervals are not cut at the window's edges. `tz` is the owner's IANA time zone:
    where their all-day events begin and end, and how floating times are read when the
    calendar has no X-WR-TIMEZONE (without either, UTC)."""
    if start.tzinfo is None or end.tzinfo is None:
        raise UsageError("busy_intervals needs time-zone-aware start and end")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    calendar_zone = _zone_or_none(calendar.get("X-WR-TIMEZONE"))
    # All-day events belong to the owner's day; floating times to the calendar's zone first.
    owner_zone: tzinfo = _owner_zone(tz, owner) or calendar_zone or UTC
    floating_zone: tzinfo = calendar_zone or owner_zone
    try:
        # `of` also applies X-WR-TIMEZONE to floating times (via x_wr_timezone).
        occurrences = recurring_ical_events.of(calendar).between(start - _PAD, end + _PAD)
    except Exception as exc:  # a broken RRULE or date: say whose calendar, don't crash
        raise CalendarError(
            f"cannot expand {owner}'s calendar: {_one_line(exc)}", source=owner
        ) from None
    busy: list[Busy] = []
    for event in occurrences:
        if _does_not_block(event):
            continue
        try:
            first, last = event.start, event.end
        except (InvalidCalendar, ValueError) as exc:  # e.g. no DTSTART at all
            raise CalendarError(
                f"cannot read an event in {owner}'s calendar: {_one_line(exc)}", source=owner
            ) from None
        begins = _instant(first, owner_zone if _is_date(first) else floating_zone)
        ends = _instant(last, owner_zone if _is_date(last) else floating_zone)
        # Zero-length events (a DTSTART alone) take no time (RFC 5545 3.6.1); skip them,
        # and anything that ends outside the window.
        if ends <= begins or ends <= start or begins >= end:
            continue
        busy.append(Busy(owner, begins, ends, str(event.get("SUMMARY", ""))))
    busy.sort(key=lambda b: (b.start, b.end, b.summary))
    return busy


def _does_not_block(event: Component) -> bool:
    transparency = str(event.get("TRANSP", "OPAQUE")).upper()
    status = str(event.get("STATUS", "")).upper()
    return transparency == "TRANSPARENT" or status == "CANCELLED"


def _is_date(value: date) -> bool:
    return not isinstance(value, datetime)


def _instant(value: date, zone: tzinfo) -> datetime:
    """A DATE (its local midnight), a floating or an aware datetime, as an aware UTC one."""
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(0), tzinfo=zone)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def _owner_zone(tz: str | None, owner: str) -> ZoneInfo | None:
    if tz is None:
        return None
    zone = _zone_or_none(tz)
    if zone is None:
        raise UsageError(f"unknown time zone {tz!r} for {owner}", hint="use an IANA name")
    return zone


def _zone_or_none(name: object) -> ZoneInfo | None:
    if name is None:
        return None
    try:
        return ZoneInfo(str(name).strip())
    except (ZoneInfoNotFoundError, ValueError):
        return None
