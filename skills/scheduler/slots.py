"""Free slots for everyone: times when every attendee is free and inside their own working
hours, in their own time zone.

Working hours are wall-clock times in the person's IANA zone, so they move in UTC when that
zone changes its offset: 09:00 in Europe/Berlin is 08:00 UTC before the last Sunday of March
and 07:00 UTC after it. Each candidate is converted to every attendee's local time with
zoneinfo and checked there, which is what keeps a week that straddles a DST change right.

Pure and deterministic: same input, same slots, no clock and no I/O.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from myninja.errors import UsageError
from myninja.skills.scheduler.calendars import Busy

WEEKDAYS = frozenset(range(5))  # Monday=0 … Friday=4, as datetime.weekday() counts
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


@dataclass(frozen=True, slots=True)
class WorkingHours:
    """When a person takes meetings: from `start` to `end` wall-clock time in `tz` (an IANA
    name) on the weekdays in `days` (Monday=0). One stretch per day; it may not run past
    midnight."""

    tz: str
    start: time = time(9, 0)
    end: time = time(17, 0)
    days: frozenset[int] = WEEKDAYS
    zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            zone = ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise UsageError(
                f"unknown time zone {self.tz!r}", hint="use an IANA name like Europe/Berlin"
            ) from None
        if not self.start < self.end:
            raise UsageError(
                f"working hours must start before they end, not {self.start:%H:%M}–{self.end:%H:%M}"
            )
        if not self.days or not set(self.days) <= set(range(7)):
            raise UsageError(f"working days must be weekday numbers 0–6, not {sorted(self.days)}")
        # Frozen: set once, here. `days` may come as any iterable of ints.
        object.__setattr__(self, "days", frozenset(self.days))
        object.__setattr__(self, "zone", zone)

    def contains(self, start: datetime, end: datetime) -> bool:
        """Whether [start, end) lies inside one working day, compared as local wall time."""
        local_start, local_end = start.astimezone(self.zone), end.astimezone(self.zone)
        return (
            local_start.weekday() in self.days
            and local_start.date() == local_end.date()
            and self.start <= local_start.time()
            and local_end.time() <= self.end
        )


@dataclass(frozen=True, slots=True, order=True)
class Slot:
    """A meeting time: [start, end), both aware and in UTC."""

    start: datetime
    end: datetime

    def local(self, tz: str) -> tuple[datetime, datetime]:
        """The slot's start and end as wall-clock times in `tz` (an IANA name)."""
        try:
            zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise UsageError(f"unknown time zone {tz!r}") from None
        return self.start.astimezone(zone), self.end.astimezone(zone)

    def describe(self, tz: str = "UTC") -> str:
        """E.g. 'Monday 10 March 2025, 09:00–10:00 EDT': one line for a message or a list."""
        start, end = self.local(tz)
        # Name the zone once, unless the slot spans a change of offset (01:30 CET–03:30 CEST).
        first = f"{start:%H:%M}" if start.tzname() == end.tzname() else f"{start:%H:%M %Z}"
        second = f"{end:%H:%M %Z}"
        if end.date() != start.date():  # a slot past local midnight names both days
            second = f"{_day(end)}, {second}"
        return f"{_day(start)}, {first}–{second}"


def iso_utc(moment: datetime) -> str:
    """'2025-03-10T14:00:00Z': a start as the tools take and give it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def find_slots(
    busy_by_person: Mapping[str, Sequence[Busy]],
    *,
    start: datetime,
    end: datetime,
    duration: timedelta,
    working_hours: Mapping[str, WorkingHours],
    step: timedelta = timedelta(minutes=15),
    limit: int = 5,
    distinct: bool = True,
) -> list[Slot]:
    """Up to `limit` slots of `duration` between `start` and `end` (aware) when every
    attendee is free and inside their working hours. The attendees are the people in
    `working_hours`; each person in `busy_by_person` must be one of them (someone without a
    calendar is only bound by their hours).

    Candidates start on a grid of `step` counted from midnight UTC (so 15-minute steps give
    :00/:15/:30/:45 in every zone whose offset is a whole quarter hour). Ranking: earliest start
    first. Starts are unique grid points, so the only tie-break needed is between overlapping
    candidates: with `distinct` (the default) a candidate that overlaps an already chosen slot
    is dropped in favour of the earlier one, so five offers are five different choices rather
    than one hour shifted by 15 minutes; `distinct=False` lists every grid start."""
    if start.tzinfo is None or end.tzinfo is None:
        raise UsageError("find_slots needs time-zone-aware start and end")
    if duration <= timedelta(0) or step <= timedelta(0):
        raise UsageError("find_slots needs a positive duration and step")
    if not working_hours:
        raise UsageError("find_slots needs at least one attendee's working hours")
    missing = sorted(set(busy_by_person) - set(working_hours))
    if missing:
        raise UsageError(f"no working hours for {', '.join(missing)}")
    start, end = start.astimezone(UTC), end.astimezone(UTC)

    merged = [_merge(busy) for busy in busy_by_person.values()]
    hours = list(working_hours.values())
    slots: list[Slot] = []
    candidate = _first_grid_point(start, step)
    while candidate + duration <= end and len(slots) < limit:
        finish = candidate + duration
        if (
            (not distinct or not slots or candidate >= slots[-1].end)
            and all(h.contains(candidate, finish) for h in hours)
            and all(_free(intervals, candidate, finish) for intervals in merged)
        ):
            slots.append(Slot(candidate, finish))
        candidate += step
    return slots


def _first_grid_point(start: datetime, step: timedelta) -> datetime:
    """The first multiple of `step` after the epoch that is not before `start`."""
    steps = -((_EPOCH - start) // step)  # ceiling division on timedeltas
    return _EPOCH + steps * step


def _merge(busy: Sequence[Busy]) -> list[tuple[datetime, datetime]]:
    """Busy intervals sorted and merged, so `_free` can bisect them."""
    merged: list[tuple[datetime, datetime]] = []
    for interval in sorted(busy, key=lambda b: (b.start, b.end)):
        begins, ends = interval.start.astimezone(UTC), interval.end.astimezone(UTC)
        if merged and begins <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], ends))
        else:
            merged.append((begins, ends))
    return merged


def _free(merged: list[tuple[datetime, datetime]], start: datetime, end: datetime) -> bool:
    """Whether [start, end) overlaps none of `merged` (touching ends are free)."""
    # The only interval that can overlap is the last one starting before `end`.
    index = bisect_left(merged, end, key=lambda interval: interval[0]) - 1
    return index < 0 or merged[index][1] <= start


def _day(moment: datetime) -> str:
    """'Monday 10 March 2025', in English whatever the process locale (strftime's %A is not)."""
    month = _MONTH_NAMES[moment.month - 1]
    return f"{_DAY_NAMES[moment.weekday()]} {moment.day} {month} {moment.year}"
