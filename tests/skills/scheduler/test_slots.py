"""Free slots across time zones. The main case reads the three fixture calendars
(tests/fixtures/calendars) for the week Thursday 6 – Wednesday 12 March 2025, which straddles
the US change to summer time (Sunday 9 March): New York and Los Angeles move an hour closer to
Berlin, so the common window grows. The rest use hand-made busy intervals, one rule each.

Working hours in UTC, worked out by hand:
  Anna,  Berlin,      09:00-17:00, CET (+1) all week:     08:00-16:00 UTC
  Ben,   New York,    09:00-17:00, EST (-5) Thu/Fri:      14:00-22:00 UTC
                                   EDT (-4) Mon-Wed:      13:00-21:00 UTC
  Chika, Los Angeles, 07:00-15:00, PST (-8) Thu/Fri:      15:00-23:00 UTC
                                   PDT (-7) Mon-Wed:      14:00-22:00 UTC
  All three: Thu/Fri 15:00-16:00 UTC, Mon/Tue/Wed 14:00-16:00 UTC, nothing at the weekend.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from myninja.errors import UsageError
from myninja.skills.scheduler.calendars import Busy, busy_intervals, load_calendar
from myninja.skills.scheduler.slots import Slot, WorkingHours, find_slots

CALENDARS = Path(__file__).resolve().parents[2] / "fixtures" / "calendars"
MINUTES_30 = timedelta(minutes=30)

HOURS = {
    "anna": WorkingHours("Europe/Berlin"),
    "ben": WorkingHours("America/New_York"),
    "chika": WorkingHours("America/Los_Angeles", start=time(7), end=time(15)),
}
FILES = {
    "anna": "anna-berlin.ics",
    "ben": "ben-new-york.ics",
    "chika": "chika-los-angeles.ics",
}
WEEK = (datetime(2025, 3, 6, tzinfo=UTC), datetime(2025, 3, 13, tzinfo=UTC))


def utc(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=UTC)


def slot(month: int, day: int, hour: int, minute: int, length: timedelta = MINUTES_30) -> Slot:
    begins = utc(month, day, hour, minute)
    return Slot(begins, begins + length)


@pytest.fixture(scope="module")
def week_busy() -> dict[str, list[Busy]]:
    return {
        person: busy_intervals(
            load_calendar(CALENDARS / name), *WEEK, owner=person, tz=HOURS[person].tz
        )
        for person, name in FILES.items()
    }


# Busy inside the common windows (see test_calendars for how each instant is derived):
#   Thu 6:  Anna's Team sync 15:00-15:30 is an EXDATE (free); Chika's Standup 15:30-16:00
#           → free 15:00-15:30
#   Fri 7:  Anna's cancelled 15:00-16:00 does not count; Ben's Dentist 15:00-15:30
#           → free 15:30-16:00
#   Mon 10: Ben's 1:1 14:30-15:00 (10:30 EDT); Anna's Team sync 15:00-15:30 (16:00 CET)
#           → free 14:00-14:30 and 15:30-16:00
#   Tue 11: Chika's all-day Offsite (07:00 Tue - 07:00 Wed UTC) → nothing
#   Wed 12: Ben's Focus time 14:00-15:00 is transparent (free); Chika's Customer call
#           15:00-16:00 → free 14:00-15:00
EVERY_30_MINUTE_START = [
    slot(3, 6, 15, 0),
    slot(3, 7, 15, 30),
    slot(3, 10, 14, 0),
    slot(3, 10, 15, 30),
    slot(3, 12, 14, 0),
    slot(3, 12, 14, 15),
    slot(3, 12, 14, 30),
]


def test_every_start_for_three_people_across_the_us_dst_change(
    week_busy: dict[str, list[Busy]],
) -> None:
    found = find_slots(
        week_busy,
        start=WEEK[0],
        end=WEEK[1],
        duration=MINUTES_30,
        working_hours=HOURS,
        limit=50,
        distinct=False,
    )
    assert found == EVERY_30_MINUTE_START


def test_default_offers_are_distinct_earliest_first(week_busy: dict[str, list[Busy]]) -> None:
    # Wed 14:15 overlaps the chosen 14:00-14:30 and is dropped; 14:30 touches it and stays.
    # The default limit of 5 cuts the sixth (Wed 14:30).
    found = find_slots(
        week_busy, start=WEEK[0], end=WEEK[1], duration=MINUTES_30, working_hours=HOURS
    )
    assert found == [
        slot(3, 6, 15, 0),
        slot(3, 7, 15, 30),
        slot(3, 10, 14, 0),
        slot(3, 10, 15, 30),
        slot(3, 12, 14, 0),
    ]


def test_an_hour_fits_only_on_wednesday(week_busy: dict[str, list[Busy]]) -> None:
    found = find_slots(
        week_busy, start=WEEK[0], end=WEEK[1], duration=timedelta(hours=1), working_hours=HOURS
    )
    assert found == [slot(3, 12, 14, 0, timedelta(hours=1))]


def test_no_slot_is_in_anyones_off_hours(week_busy: dict[str, list[Busy]]) -> None:
    # Checked independently of WorkingHours.contains: each end in each person's wall time.
    found = find_slots(
        week_busy,
        start=WEEK[0],
        end=WEEK[1],
        duration=MINUTES_30,
        working_hours=HOURS,
        limit=50,
        distinct=False,
    )
    limits = {"anna": (9 * 60, 17 * 60), "ben": (9 * 60, 17 * 60), "chika": (7 * 60, 15 * 60)}
    for offer in found:
        for person, (first, last) in limits.items():
            zone = ZoneInfo(HOURS[person].tz)
            begins, ends = offer.start.astimezone(zone), offer.end.astimezone(zone)
            assert begins.weekday() < 5, (person, offer)
            assert begins.hour * 60 + begins.minute >= first, (person, offer)
            assert ends.hour * 60 + ends.minute <= last, (person, offer)


def test_before_the_us_change_the_common_window_is_an_hour_shorter() -> None:
    # Nobody busy. Thu 6 Mar (EST/PST) the three overlap 15:00-16:00 UTC; Mon 10 Mar
    # (EDT/PDT) 14:00-16:00 UTC: a 2-hour meeting fits on Monday only.
    found = find_slots(
        {},
        start=WEEK[0],
        end=WEEK[1],
        duration=timedelta(hours=2),
        working_hours=HOURS,
        limit=1,
    )
    assert found == [slot(3, 10, 14, 0, timedelta(hours=2))]


def test_berlin_nine_oclock_is_eight_utc_before_the_eu_change_and_seven_after() -> None:
    # Fri 28 Mar 2025 is CET (+1), Mon 31 Mar CEST (+2) after Sunday 30 March. A full
    # 8-hour day fits once per working day: 09:00-17:00 local.
    found = find_slots(
        {"anna": []},
        start=datetime(2025, 3, 28, tzinfo=UTC),
        end=datetime(2025, 4, 1, tzinfo=UTC),
        duration=timedelta(hours=8),
        working_hours={"anna": WorkingHours("Europe/Berlin")},
    )
    assert found == [
        Slot(utc(3, 28, 8), utc(3, 28, 16)),
        Slot(utc(3, 31, 7), utc(3, 31, 15)),
    ]


def test_grid_alignment_touching_busy_and_distinct_choice() -> None:
    hours = {"sam": WorkingHours("UTC", start=time(9), end=time(12))}
    busy = {"sam": [Busy("sam", utc(3, 10, 10), utc(3, 10, 11), "Busy")]}
    # Starting at 08:07: candidates are on the quarter hours, so 09:00 is the first in hours.
    # 10:00-11:00 is busy; an hour ending at 10:00 or starting at 11:00 only touches it.
    every = find_slots(
        busy,
        start=utc(3, 10, 8, 7),
        end=utc(3, 10, 18),
        duration=timedelta(minutes=45),
        working_hours=hours,
        limit=20,
        distinct=False,
    )
    assert [s.start for s in every] == [
        utc(3, 10, 9, 0),
        utc(3, 10, 9, 15),
        utc(3, 10, 11, 0),
        utc(3, 10, 11, 15),
    ]
    distinct = find_slots(
        busy,
        start=utc(3, 10, 8, 7),
        end=utc(3, 10, 18),
        duration=timedelta(minutes=45),
        working_hours=hours,
        limit=20,
    )
    assert [s.start for s in distinct] == [utc(3, 10, 9, 0), utc(3, 10, 11, 0)]
    # A start not on the grid moves to the next quarter hour: 09:07 → 09:15.
    late = find_slots(
        busy,
        start=utc(3, 10, 9, 7),
        end=utc(3, 10, 18),
        duration=timedelta(minutes=45),
        working_hours=hours,
        limit=1,
    )
    assert late == [Slot(utc(3, 10, 9, 15), utc(3, 10, 10, 0))]


def test_half_hour_zone_and_custom_days() -> None:
    # Kolkata is +5:30 with no DST: 10:00 IST is 04:30 UTC. Priya works Sunday to Thursday,
    # so Fri 7 and Sat 8 March are skipped and Sunday 9 March is the next day.
    hours = {"priya": WorkingHours("Asia/Kolkata", start=time(10), days=frozenset({6, 0, 1, 2, 3}))}
    found = find_slots(
        {},
        start=utc(3, 7, 0),
        end=utc(3, 10, 0),
        duration=timedelta(hours=1),
        working_hours=hours,
        limit=1,
    )
    assert found == [Slot(utc(3, 9, 4, 30), utc(3, 9, 5, 30))]


def test_slot_in_local_time() -> None:
    offer = slot(3, 10, 14, 0)
    start, end = offer.local("America/New_York")
    assert (start.hour, start.minute, end.hour, end.minute) == (10, 0, 10, 30)
    assert start.utcoffset() == timedelta(hours=-4)
    assert offer.describe("America/New_York") == "Monday 10 March 2025, 10:00–10:30 EDT"
    assert offer.describe() == "Monday 10 March 2025, 14:00–14:30 UTC"
    # 23:45 Monday in Tokyo (+9) to 00:15 Tuesday names both days.
    late = Slot(utc(3, 10, 14, 45), utc(3, 10, 15, 15))
    assert late.describe("Asia/Tokyo") == (
        "Monday 10 March 2025, 23:45–Tuesday 11 March 2025, 00:15 JST"
    )
    # Across the Berlin change itself (02:00 CET → 03:00 CEST on 30 March): both zones named.
    change = Slot(utc(3, 30, 0, 30), utc(3, 30, 1, 30))
    assert change.describe("Europe/Berlin") == "Sunday 30 March 2025, 01:30 CET–03:30 CEST"


def test_bad_input_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown time zone 'Europe/Atlantis'"):
        WorkingHours("Europe/Atlantis")
    with pytest.raises(UsageError, match="start before they end"):
        WorkingHours("UTC", start=time(17), end=time(9))
    with pytest.raises(UsageError, match="time-zone-aware"):
        find_slots(
            {},
            start=datetime(2025, 3, 10),
            end=utc(3, 11, 0),
            duration=MINUTES_30,
            working_hours=HOURS,
        )
    with pytest.raises(UsageError, match="no working hours for dora"):
        find_slots(
            {"dora": []},
            start=WEEK[0],
            end=WEEK[1],
            duration=MINUTES_30,
            working_hours=HOURS,
        )
    with pytest.raises(UsageError, match="positive duration"):
        find_slots({}, start=WEEK[0], end=WEEK[1], duration=timedelta(0), working_hours=HOURS)
