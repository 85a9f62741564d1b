"""The scheduler's calendar logic, as plain typed functions: read ICS calendars
(`calendars`), find times that suit everyone across time zones (`slots`), and draft the
invitation (`invite`). Mailing it as an iTIP request is `itip` and `mail`, imported where
they are used, so loading the skill does not load aiosmtplib."""

from myninja.skills.scheduler.calendars import (
    Busy,
    CalendarError,
    busy_intervals,
    load_calendar,
    parse_calendar,
)
from myninja.skills.scheduler.invite import draft_invite
from myninja.skills.scheduler.slots import Slot, WorkingHours, find_slots

__all__ = [
    "Busy",
    "CalendarError",
    "Slot",
    "WorkingHours",
    "busy_intervals",
    "draft_invite",
    "find_slots",
    "load_calendar",
    "parse_calendar",
]
