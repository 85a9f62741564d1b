"""Undoing a booking: what a task wrote to calendars (from its ledger, `booking.json` in the
task's workspace), and removing it again, for `myninja tasks cancel` and the app's cancel.

Removal is idempotent: an event already gone from the server counts as removed. The ledger is
updated after each event (replaced atomically, as book_meeting does), so a failure part-way
leaves it saying "written" exactly for the events still on a calendar.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from myninja.errors import UsageError
from myninja.skills.api import ToolError, task_workspace
from myninja.skills.scheduler.booking import LEDGER, read_ledger, write_ledger

if TYPE_CHECKING:
    from myninja.config import Config


@dataclass(frozen=True, slots=True)
class WrittenEvent:
    """One event a task put on a calendar and that has not been removed since."""

    calendar: str
    uid: str
    title: str | None = None  # ledgers written before the title was recorded lack it
    url: str | None = None

    def describe(self) -> str:
        what = f"{self.title!r}" if self.title else "an event"
        return f"{what} on calendar {self.calendar} ({self.uid})"

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def ledger_of(task_id: str) -> Path:
    """The task's booking ledger (the top of its workspace, as book_meeting keeps it)."""
    return task_workspace(task_id) / LEDGER


def written_events(task_id: str) -> list[WrittenEvent]:
    """The events the task wrote and nobody removed; [] for a task that booked nothing."""
    return [_event(entry["written"]) for entry in _read(ledger_of(task_id)).values()
            if "written" in entry and "removed" not in entry]  # fmt: skip


def remove_written_events(task_id: str, config: Config) -> list[WrittenEvent]:
    """Remove the task's written events from their calendars; those removed (an event already
    gone from the server included). A CalendarError (server down, wrong password, calendar no
    longer configured) stops at that event: the ledger still says written for it."""
    from myninja.skills.scheduler.caldav_write import remove_event
    from myninja.skills.scheduler.calendars import CalendarError
    from myninja.skills.scheduler.sources import password_of

    path = ledger_of(task_id)
    ledger = _read(path)
    removed: list[WrittenEvent] = []
    for entry in ledger.values():
        if "written" not in entry or "removed" in entry:
            continue
        event = _event(entry["written"])
        settings = config.calendars.get(event.calendar)
        if settings is None:
            raise CalendarError(
                f"calendar {event.calendar} is no longer configured: cannot remove {event.uid}",
                source=event.calendar,
                hint=f"add [calendars.{event.calendar}] back to the config, then run this again",
            )
        password = password_of(event.calendar, config)
        found = remove_event(event.calendar, settings, password, event.uid)
        entry["removed"] = {"at": time.time(), "was_there": found}
        # Written at once: a later event's failure must not forget that this one is gone.
        write_ledger(path, ledger)
        removed.append(event)
    return removed


def _read(path: Path) -> dict[str, dict[str, Any]]:
    try:
        return read_ledger(path)
    except ToolError as exc:  # worded for a model; here a person reads it
        raise UsageError(exc.one_line().removeprefix("book_meeting: ")) from None


def _event(written: dict[str, Any]) -> WrittenEvent:
    return WrittenEvent(
        calendar=str(written["calendar"]),
        uid=str(written["uid"]),
        title=written.get("title"),
        url=written.get("url"),
    )
