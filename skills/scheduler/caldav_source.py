"""Busy time from a CalDAV calendar (RFC 4791), through the `caldav` library.

How busy time is asked for, and why: a `calendar-query` REPORT for the window's events with
the recurrences expanded (`calendar.search(start, end, event=True, expand=True)`; caldav
expands on the server where it trusts the server to, else on the client), each instance then
read by `calendars.busy_intervals`, so a CalDAV calendar follows the same rules as an .ics
file (transparent and cancelled events do not block, all-day and floating events fall in the
owner's zone). The `free-busy-query` REPORT was measured against Radicale 3.9 and not used:
it does answer, with EXDATEs, TRANSP and STATUS applied, but it places all-day and floating
events in UTC (an all-day event in Berlin came back as 00:00-24:00 UTC), and most servers
(Nextcloud, iCloud) answer it only through the scheduling outbox, if at all.

Every failure is one `CalendarError` line naming the calendar: wrong credentials and a URL
that is not a CalDAV calendar are the person's to fix (exit 2), a server that does not answer
is `CalendarUnreachable` (exit 4). Each request is bounded by the calendar's `timeout_s`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import unquote, urlsplit

from myninja.errors import EXIT_UNREACHABLE
from myninja.skills.scheduler.calendars import Busy, CalendarError, busy_intervals

if TYPE_CHECKING:
    import caldav

    from myninja.config import CalendarConfig

# caldav logs servers' deviations at ERROR with tracebacks; with no handler configured Python
# would print them on stderr. What went wrong reaches the person as our one line instead.
logging.getLogger("caldav").addHandler(logging.NullHandler())
logging.getLogger("caldav").propagate = False

# Floating and all-day events may reach into the window from a day either side (see calendars).
_PAD = timedelta(days=1)
_CALENDAR_TYPE = "{urn:ietf:params:xml:ns:caldav}calendar"
T = TypeVar("T")


class CalendarUnreachable(CalendarError):
    """The calendar's server did not answer: down, unknown host, timed out."""

    exit_code = EXIT_UNREACHABLE


@dataclass(frozen=True)
class FoundCalendar:
    """A calendar collection found on the server."""

    url: str
    display_name: str


def key_name(name: str) -> str:
    """The key store entry that holds calendar `name`'s password."""
    return f"cal-{name}"


def caldav_busy(
    name: str,
    config: CalendarConfig,
    password: str | None,
    start: datetime,
    end: datetime,
    *,
    owner: str,
) -> list[Busy]:
    """When `owner` is busy in [start, end) by the CalDAV calendar `name`, as calendars.py's
    `Busy` intervals in UTC, sorted by start."""
    if start.tzinfo is None or end.tzinfo is None:
        raise CalendarError("caldav_busy needs time-zone-aware start and end", source=name)
    calendar = open_calendar(name, config, password)
    busy: list[Busy] = []
    for item in _events(name, config, calendar, start - _PAD, end + _PAD):
        busy.extend(busy_intervals(item, start, end, owner=owner, tz=config.timezone))
    busy.sort(key=lambda b: (b.start, b.end, b.summary))
    return busy


def count_events(
    name: str, config: CalendarConfig, password: str | None, start: datetime, end: datetime
) -> int:
    """How many event instances (recurrences counted one by one) overlap [start, end)."""
    calendar = open_calendar(name, config, password)
    return len(_events(name, config, calendar, start, end))


def list_calendars(name: str, config: CalendarConfig, password: str | None) -> list[FoundCalendar]:
    """The calendars the account at `config.url` holds (just the one where the URL is one)."""
    client = _client(config, password)
    if _is_calendar(name, config, client):
        calendar = _calendar_at(client, config.url)
        display = server_request(name, config, calendar.get_display_name)
        return [FoundCalendar(config.url, display or _last_segment(config.url))]
    return [_found(c) for c in _account_calendars(name, config, client)]


def open_calendar(name: str, config: CalendarConfig, password: str | None) -> caldav.Calendar:
    """The calendar `name` reads: the URL itself where it is a calendar collection, else the
    account's calendar named by `config.calendar` (display name or URL path), else its first."""
    client = _client(config, password)
    if config.calendar is None and _is_calendar(name, config, client):
        return _calendar_at(client, config.url)
    calendars = _account_calendars(name, config, client)
    if config.calendar is None:
        return calendars[0]
    wanted = config.calendar.strip("/").casefold()
    for calendar in calendars:
        found = _found(calendar)
        path = unquote(urlsplit(found.url).path).strip("/").casefold()
        if wanted in (found.display_name.casefold(), path, path.rsplit("/", 1)[-1]):
            return calendar
    names = ", ".join(_found(c).display_name for c in calendars)
    raise CalendarError(
        f"calendar {name}: no calendar {config.calendar!r} at {config.url}",
        source=name,
        hint=f"found: {names}; set calendar to one of them",
    )


# -- talking to the server --------------------------------------------------------------------


def _client(config: CalendarConfig, password: str | None) -> caldav.DAVClient:
    import caldav  # only where a CalDAV calendar is used: it pulls in niquests and lxml

    return caldav.DAVClient(
        url=config.url,
        username=config.username,
        password=password,
        timeout=config.timeout_s,  # type: ignore[arg-type]  # niquests takes seconds as float
        enable_rfc6764=False,  # the URL is given: no DNS discovery behind the person's back
    )


def _calendar_at(client: caldav.DAVClient, url: str) -> caldav.Calendar:
    import caldav

    return caldav.Calendar(client=client, url=url)


def _is_calendar(name: str, config: CalendarConfig, client: caldav.DAVClient) -> bool:
    """Whether the URL is a calendar collection; a URL that answers no WebDAV properties at all
    (an ordinary web page) is not CalDAV, and says so."""
    from caldav.elements import dav

    def ask() -> object:
        return _calendar_at(client, config.url).get_properties([dav.ResourceType()])

    properties = server_request(name, config, ask)
    kinds = properties.get("{DAV:}resourcetype") if isinstance(properties, dict) else None
    if not kinds:
        raise _not_caldav(name, config.url, "it answers no WebDAV properties")
    return _CALENDAR_TYPE in (kinds if isinstance(kinds, list) else [kinds])


def _account_calendars(
    name: str, config: CalendarConfig, client: caldav.DAVClient
) -> list[caldav.Calendar]:
    calendars = server_request(name, config, lambda: client.principal().calendars())
    if not calendars:
        raise CalendarError(
            f"calendar {name}: the account at {config.url} holds no calendar",
            source=name,
            hint="create one in the calendar app, or point url at a calendar",
        )
    return calendars


def _events(
    name: str,
    config: CalendarConfig,
    calendar: caldav.Calendar,
    start: datetime,
    end: datetime,
) -> list[object]:
    """Each event instance overlapping [start, end), as an icalendar Calendar."""
    first, last = start.astimezone(UTC), end.astimezone(UTC)

    def search() -> list[object]:
        found = calendar.search(start=first, end=last, event=True, expand=True)
        return [item.icalendar_instance for item in found]

    return server_request(name, config, search)


def _found(calendar: caldav.Calendar) -> FoundCalendar:
    url = str(calendar.url)
    try:
        display = calendar.get_display_name()
    except Exception:  # a name is a nicety: the URL still identifies it
        display = None
    return FoundCalendar(url, display or _last_segment(url))


def _last_segment(url: str) -> str:
    return unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]) or url


def server_request(name: str, config: CalendarConfig, request: Callable[[], T]) -> T:
    """`request()`, with what the server or the network answered turned into one line."""
    from caldav.lib import error

    try:
        return request()
    except error.AuthorizationError as exc:
        if getattr(exc, "reason", "") == "Forbidden" or "403" in str(exc):
            why = f"the server refuses {config.username or 'this login'} access to {config.url}"
        else:
            why = f"wrong username or password for {config.url}"
        raise CalendarError(
            f"calendar {name}: {why}",
            source=name,
            status=403 if "Forbidden" in str(exc) else 401,
            hint=f"check username, then `myninja keys set {key_name(name)}`",
        ) from None
    except error.NotFoundError:
        raise CalendarError(
            f"calendar {name}: nothing at {config.url} (HTTP 404)",
            source=name,
            status=404,
            hint="check the url: `myninja calendars test` lists the calendars an account holds",
        ) from None
    except (error.DAVError, AssertionError, ValueError, KeyError) as exc:
        # A 405/501 to PROPFIND or REPORT, HTML where XML was expected: not a CalDAV server.
        raise _not_caldav(name, config.url, _one_line(exc)) from None
    except OSError as exc:  # niquests' ConnectionError and Timeout are OSErrors
        raise CalendarUnreachable(
            f"calendar {name}: cannot reach {config.url} ({_network_reason(exc, config)})",
            source=name,
            hint="is the server running, and the address right?",
        ) from None


def _not_caldav(name: str, url: str, why: str) -> CalendarError:
    return CalendarError(
        f"calendar {name}: {url} is not a CalDAV calendar or account ({why})",
        source=name,
        hint="use the CalDAV URL your calendar's help pages give (see README: Your real calendar)",
    )


def _network_reason(exc: OSError, config: CalendarConfig) -> str:
    text = str(exc)
    if "timed out" in text.lower() or "Timeout" in type(exc).__name__:
        return f"timed out after {config.timeout_s:g} s"
    if "NameResolution" in text or "Name or service not known" in text:
        return "unknown host"
    if "refused" in text.lower():
        return "connection refused"
    return type(exc).__name__


def _one_line(exc: BaseException) -> str:
    # A DAVError quotes the server's whole error page: its status line is what helps.
    text = " ".join(str(exc).split("<", 1)[0].split()).rstrip(" '")
    return text[:160] or type(exc).__name__
