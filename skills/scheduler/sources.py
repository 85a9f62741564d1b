"""Where an attendee's busy time comes from: an .ics file or URL (calendars.py), or a CalDAV
calendar configured as `[calendars.NAME]` and named `cal:NAME` (caldav_source.py)."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from myninja.config import CALENDAR_NAME, Config
from myninja.skills.scheduler.calendars import Busy, CalendarError, busy_intervals, load_calendar

CALDAV_PREFIX = "cal:"
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def caldav_name(source: str) -> str | None:
    """'work' for 'cal:work'; None for a file or URL."""
    if not source.lower().startswith(CALDAV_PREFIX):
        return None
    return source[len(CALDAV_PREFIX) :].strip()


def is_url(source: str) -> bool:
    return bool(_URL.match(source))


def check_caldav(source: str, config: Config) -> None:
    """A CalendarError (a usage error) where `source` names a CalDAV calendar not configured:
    caught before anything is downloaded."""
    name = caldav_name(source)
    if name is None:
        return
    if not CALENDAR_NAME.fullmatch(name) or name not in config.calendars:
        known = ", ".join(f"cal:{n}" for n in sorted(config.calendars)) or "none"
        raise CalendarError(
            f"no configured calendar {source!r}",
            source=source,
            hint=f"configured: {known}; add one with `myninja calendars add NAME --url URL`",
        )


def busy_for(
    source: str,
    start: datetime,
    end: datetime,
    *,
    owner: str,
    tz: str | None,
    config: Config,
) -> list[Busy]:
    """`owner`'s busy time in [start, end) from `source`: a file path, an http(s)/webcal URL or
    `cal:NAME`. `tz` is the owner's zone (a configured calendar's own timezone wins)."""
    name = caldav_name(source)
    if name is None:
        loaded = load_calendar(source if is_url(source) else Path(source).expanduser())
        return busy_intervals(loaded, start, end, owner=owner, tz=tz)
    check_caldav(source, config)
    from myninja.skills.scheduler.caldav_source import caldav_busy

    calendar = config.calendars[name]
    if calendar.timezone is None and tz is not None:
        calendar = calendar.model_copy(update={"timezone": tz})
    return caldav_busy(name, calendar, password_of(name, config), start, end, owner=owner)


def password_of(name: str, config: Config) -> str | None:
    """Calendar `name`'s password from the key store (`cal-NAME`); None where it needs none.
    A calendar with a username and no stored password is one line saying how to store it."""
    from myninja.backends.keys import key_store
    from myninja.errors import KeyStoreError
    from myninja.skills.scheduler.caldav_source import key_name

    calendar = config.calendars[name]
    try:
        password = key_store(config).get(key_name(name))
    except KeyStoreError as exc:
        raise CalendarError(f"calendar {name}: {exc.one_line()}", source=name) from None
    if password is None and calendar.username:
        raise CalendarError(
            f"calendar {name}: no password stored for {calendar.username}",
            source=name,
            hint=f"run `myninja keys set {key_name(name)}`",
        )
    return password
