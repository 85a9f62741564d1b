"""The scheduler's prepare hook: the task read into tool arguments (`meeting_request`), and the
skill's real tools run on real .ics files for a model that cannot call them (`prepare`).

The end-to-end week is Thursday 6 – Wednesday 12 March 2025, three zones, working hours
09:00-17:00 local for everyone, worked out by hand in UTC:
  alice, Berlin,   CET (+1) all week:                 08:00-16:00
  bob,   New York, EST (-5) Thu/Fri, EDT (-4) from Sun 9 March (the US change):
                                                      14:00-22:00, then 13:00-21:00
  me,    London,   GMT (+0) all week:                 09:00-17:00
  Together: Thu/Fri 14:00-16:00, Mon-Wed 13:00-16:00 (the DST change opens an hour).
Busy (UTC): alice's Team sync Mon/Thu 15:00-15:30 except Thu 6 (EXDATE); bob's Dentist
Fri 7 15:00-15:30 and 1:1 Mon 10 14:30-15:00 (floating, X-WR-TIMEZONE New York); my all-day
Offsite on Tue 11 (my whole London day) and a call Wed 12 13:00-14:00.
One-hour times, earliest first, no two overlapping:
  Thu 6 14:00 and 15:00; Fri 7 14:00 (15:00 hits the Dentist); Mon 10 13:00 (09:00 EDT;
  14:00 hits the 1:1, 15:00 the sync); Tue 11 nothing (all-day); Wed 12 14:00 (13:00 hits
  my call).
"""

from __future__ import annotations

import re
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from myninja.skills.api import Draft, Permission, ToolContext, ToolError
from myninja.skills.scheduler.calendars import busy_intervals, load_calendar
from myninja.skills.scheduler.prepare import INSTRUCTION, prepare
from myninja.skills.scheduler.request import Attendee, MeetingRequest, meeting_request
from myninja.skills.scheduler.skill import skill
from myninja.skills.scheduler.slots import WorkingHours, find_slots
from tests.local_http import serving
from tests.skills.scheduler.test_skill import _Calendars

pytestmark = pytest.mark.timeout(60)

CALENDARS = Path(__file__).resolve().parents[2] / "fixtures" / "calendars"
TODAY = date(2025, 3, 6)  # a Thursday
ALL = frozenset(Permission)
EXAMPLE = (
    "Find a 45-minute slot next week for alice=/home/a/alice.ics (Europe/Berlin), "
    "bob=https://cal.example/bob.ics (America/New_York) and me=/home/me/me.ics "
    "(Europe/London), and draft the invite for 'Q3 planning'"
)
# Hand-worked above.
EXPECTED_STARTS = [
    "2025-03-06T14:00:00Z",
    "2025-03-06T15:00:00Z",
    "2025-03-07T14:00:00Z",
    "2025-03-10T13:00:00Z",
    "2025-03-12T14:00:00Z",
]
ZONES = {"alice": "Europe/Berlin", "bob": "America/New_York", "me": "Europe/London"}
MY_CALENDAR = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//myninja tests//me//EN
BEGIN:VEVENT
UID:me-offsite@example.com
DTSTAMP:20250201T000000Z
DTSTART;VALUE=DATE:20250311
DTEND;VALUE=DATE:20250312
SUMMARY:Offsite
END:VEVENT
BEGIN:VEVENT
UID:me-call@example.com
DTSTAMP:20250201T000000Z
DTSTART;TZID=Europe/London:20250312T130000
DTEND;TZID=Europe/London:20250312T140000
SUMMARY:Supplier call
END:VEVENT
END:VCALENDAR
"""


def request(task: str, today: date = TODAY) -> MeetingRequest:
    found = meeting_request(task, today)
    assert found is not None, task
    return found


# -- reading the task -------------------------------------------------------------------------


def test_the_example_task_becomes_the_tools_arguments() -> None:
    found = request(EXAMPLE)
    assert found.attendees == (
        Attendee("alice", "/home/a/alice.ics", "Europe/Berlin", zone_written=True),
        Attendee("bob", "https://cal.example/bob.ics", "America/New_York", zone_written=True),
        Attendee("me", "/home/me/me.ics", "Europe/London", zone_written=True),
    )
    assert found.title == "Q3 planning"
    assert found.problems == ()
    # "next week" from Thursday 6 March is Monday 10 to Friday 14.
    assert found.slot_arguments() == {
        "calendars": [
            "alice=/home/a/alice.ics",
            "bob=https://cal.example/bob.ics",
            "me=/home/me/me.ics",
        ],
        "timezones": ["Europe/Berlin", "America/New_York", "Europe/London"],
        "duration_minutes": 45,
        "days_ahead": 5,
        "start_date": "2025-03-10",
        "working_start": "09:00",
        "working_end": "17:00",
    }


@pytest.mark.parametrize(
    ("phrase", "minutes"),
    [
        ("a 45-minute slot", 45),
        ("45 min", 45),
        ("1 hour", 60),
        ("1.5 hours", 90),
        ("90 minutes", 90),
        ("an hour", 60),
        ("half an hour", 30),
        ("2 hours 15 minutes", 135),
        ("a slot", 30),
    ],
)
def test_durations(phrase: str, minutes: int) -> None:
    assert request(f"Find {phrase} for /cals/a.ics").duration_minutes == minutes


@pytest.mark.parametrize(
    ("phrase", "today", "start", "days"),
    [
        ("tomorrow", TODAY, date(2025, 3, 7), 1),
        ("today", TODAY, TODAY, 1),
        ("this week", TODAY, TODAY, 2),  # Thursday and Friday
        ("this week", date(2025, 3, 8), date(2025, 3, 10), 5),  # a Saturday: the coming week
        ("next week", TODAY, date(2025, 3, 10), 5),
        ("next week", date(2025, 3, 10), date(2025, 3, 17), 5),  # on a Monday: the one after
        ("next week", date(2025, 3, 9), date(2025, 3, 10), 5),  # on a Sunday: tomorrow's
        ("on 2026-12-03", TODAY, date(2026, 12, 3), 1),
        ("from 2026-12-03", TODAY, date(2026, 12, 3), 7),
        ("from 2026-12-03 for 3 days", TODAY, date(2026, 12, 3), 3),
        ("from 2026-12-03 to 2026-12-10", TODAY, date(2026, 12, 3), 8),
        ("in the next 10 days", TODAY, TODAY, 10),
        ("in the next 2 weeks", TODAY, TODAY, 14),
        ("in the next 90 days", TODAY, TODAY, 60),  # the tool searches at most 60
        ("soon", TODAY, TODAY, 7),
    ],
)
def test_windows(phrase: str, today: date, start: date, days: int) -> None:
    found = request(f"A 30 min slot {phrase} for alice=/cals/a.ics", today)
    assert (found.start, found.days) == (start, days)


@pytest.mark.parametrize(
    ("phrase", "hours"),
    [
        ("between 10:00 and 16:00", ("10:00", "16:00")),
        ("10am-4pm", ("10:00", "16:00")),
        ("1-4pm", ("13:00", "16:00")),
        ("10-4pm", ("10:00", "16:00")),
        ("9:30 to 17:30", ("09:30", "17:30")),
        ("between 8 and 12", ("08:00", "12:00")),
        ("1-2 times", ("09:00", "17:00")),  # no colon, no am/pm: not hours
    ],
)
def test_working_hours(phrase: str, hours: tuple[str, str]) -> None:
    found = request(f"Meet {phrase} on 2026-12-03 with bob=/cals/b.ics")
    assert (found.working_start, found.working_end) == hours
    assert found.start == date(2026, 12, 3)  # the date was not read as a time


@pytest.mark.parametrize(
    ("task", "title"),
    [
        (EXAMPLE, "Q3 planning"),
        ('Set up a call called "Budget  review" with /c/a.ics', "Budget review"),
        ("Draft an invitation titled “Launch” for /c/a.ics", "Launch"),
        ("Find a time for /c/a.ics", "Meeting"),
    ],
)
def test_titles(task: str, title: str) -> None:
    assert request(task).title == title


def test_a_title_is_not_read_for_the_window_or_the_length() -> None:
    found = request("Invite for 'Review 2026-01-05, 90 minutes' tomorrow, 1 hour, /c/a.ics")
    assert found.title == "Review 2026-01-05, 90 minutes"
    assert (found.start, found.days, found.duration_minutes) == (date(2025, 3, 7), 1, 60)


def test_other_ways_of_naming_calendars_zones_and_addresses() -> None:
    found = request(
        "Alice's calendar at ~/cals/alice.ics in Asia/Tokyo, my calendar: /me.ics, "
        "bob (https://x.org/c/bob.ics, America/Chicago, bob@x.org), "
        "carol (cal/carol.ics) in Europe/Paris, /shared/team-room.ics and "
        "https://calendar.example.net/"
    )
    assert [(a.name, a.source, a.zone, a.zone_written, a.email) for a in found.attendees] == [
        ("Alice", "~/cals/alice.ics", "Asia/Tokyo", True, None),
        ("me", "/me.ics", "Asia/Tokyo", False, None),  # the first written zone
        ("bob", "https://x.org/c/bob.ics", "America/Chicago", True, "bob@x.org"),
        ("carol", "cal/carol.ics", "Europe/Paris", True, None),
        ("team-room", "/shared/team-room.ics", "Asia/Tokyo", False, None),  # named by its file
        ("calendar.example.net", "https://calendar.example.net/", "Asia/Tokyo", False, None),
    ]
    assert found.organizer() == found.attendees[1]
    assert found.emails() == {
        "Alice": "alice@example.invalid",
        "me": "me@example.invalid",
        "bob": "bob@x.org",
        "carol": "carol@example.invalid",
        "team-room": "team.room@example.invalid",
        "calendar.example.net": "calendar.example.net@example.invalid",
    }


def test_quoted_paths_and_two_calendars_with_one_stem() -> None:
    found = request("Use '/a/my cal.ics' and \"/b/my cal.ics\" tomorrow.")
    assert [(a.name, a.source) for a in found.attendees] == [
        ("my cal", "/a/my cal.ics"),
        ("my cal (2)", "/b/my cal.ics"),
    ]


def test_without_any_written_zone_the_local_zone_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    found = request("Find 30 minutes for a=/c/a.ics and b=/c/b.ics")
    assert [(a.zone, a.zone_written) for a in found.attendees] == [("Asia/Kolkata", False)] * 2


@pytest.mark.parametrize(
    "task",
    [
        "Find a 30-minute slot next week with Alice and Bob",
        "Summarise /home/me/report.pdf for tomorrow",
        "",
    ],
)
def test_no_calendar_no_request(task: str) -> None:
    assert meeting_request(task, TODAY) is None


def test_a_bad_zone_is_a_problem_not_a_guess() -> None:
    found = request("a=/c/a.ics (Europe/Berlen) and b=/c/b.ics (UTC)")
    assert found.problems == (
        "unknown time zone 'Europe/Berlen' for a (use an IANA name like Europe/Berlin)",
    )
    # b has the only valid zone; the bad one is kept as written, not replaced.
    assert [a.zone for a in found.attendees] == ["Europe/Berlen", "UTC"]


# -- prepare, with the skill's real tools -----------------------------------------------------


class Recorder:
    """A hook's `use` that runs the skill's own tools with `granted`, recording the calls."""

    def __init__(self, workspace: Path, granted: frozenset[Permission] = ALL) -> None:
        self.workspace = workspace
        self.granted = granted
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, name: str, arguments: dict[str, Any]) -> str:
        self.calls.append((name, arguments))
        context = ToolContext(task_id="t1", workspace_dir=self.workspace, granted=self.granted)
        return await skill.tool(name).call(arguments, context)


def draft_of(task: str, use: Any, workspace: Path) -> Draft:
    return Draft(task=task, agent="scheduler", task_id="t1", use=use, workspace=workspace)


def starts(text: str) -> list[str]:
    """The offers' UTC starts, from lines like "1. Thursday 6 March 2025, 15:00–16:00 UTC; …"."""
    found = re.findall(r"^\d+\. \w+ (\d+ \w+ \d{4}), (\d\d:\d\d)–", text, flags=re.MULTILINE)
    return [
        datetime.strptime(f"{day} {clock}", "%d %B %Y %H:%M").strftime("%Y-%m-%dT%H:%M:00Z")
        for day, clock in found
    ]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "cals"
    folder.mkdir()
    alice = folder / "alice.ics"
    shutil.copy(CALENDARS / "anna-berlin.ics", alice)
    bob = folder / "bob.ics"  # served over HTTP in the test; the file is for the check
    shutil.copy(CALENDARS / "ben-new-york.ics", bob)
    me = folder / "me.ics"
    me.write_text(MY_CALENDAR, encoding="utf-8")
    return {"alice": alice, "bob": bob, "me": me}


def independent_starts(files: dict[str, Path]) -> list[str]:
    """The same week through calendars.py and slots.py directly, without the tools."""
    begin = datetime(2025, 3, 6, tzinfo=ZoneInfo("Europe/Berlin"))  # the first zone's day
    end = begin + timedelta(days=7)
    busy = {
        name: busy_intervals(load_calendar(files[name]), begin, end, owner=name, tz=zone)
        for name, zone in ZONES.items()
    }
    found = find_slots(
        busy,
        start=begin,
        end=end,
        duration=timedelta(hours=1),
        working_hours={name: WorkingHours(zone) for name, zone in ZONES.items()},
    )
    return [s.start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for s in found]


async def test_prepare_finds_the_times_and_drafts_the_invite(
    tmp_path: Path, files: dict[str, Path]
) -> None:
    workspace = tmp_path / "ws"
    use = Recorder(workspace)
    with serving(_Calendars) as base:  # serves ben's calendar as /ben.ics
        task = (
            f"Find a 1 hour slot in the next 7 days for alice={files['alice']} "
            f"(Europe/Berlin, alice@example.de), bob={base}/ben.ics (America/New_York) "
            f"and me={files['me']} (Europe/London), and draft the invite for 'Q3 planning'"
        )
        text = await prepare(draft_of(task, use, workspace), today=TODAY)
    assert text is not None
    assert [name for name, _ in use.calls] == ["find_meeting_slots", "draft_meeting_invite"]

    lines = text.splitlines()
    assert lines[1] == (
        "Request: 60-minute meeting “Q3 planning”, 2025-03-06 to 2025-03-12, "
        "working hours 09:00–17:00 local, Monday to Friday."
    )
    assert lines[2] == (
        "Attendees: alice (Europe/Berlin), bob (America/New_York), me (Europe/London, organizer)."
    )
    assert starts(text) == EXPECTED_STARTS == independent_starts(files)
    # Each attendee's local time, across the US change: 09:00 EST would be 14:00 UTC.
    # One line per offer, its UTC time first; no start_utc for a small model to mislabel.
    assert (
        "1. Thursday 6 March 2025, 14:00–15:00 UTC; alice: Thursday 6 March 2025, 15:00–16:00 CET; "
        "bob: Thursday 6 March 2025, 09:00–10:00 EST; me: Thursday 6 March 2025, 14:00–15:00 GMT"
    ) in lines
    assert "; bob: Monday 10 March 2025, 09:00–10:00 EDT;" in text
    assert "start_utc" not in text
    assert "Tuesday 11 March" not in text  # my all-day offsite
    assert not any(line.startswith("To invite, call ") for line in lines)

    path = workspace / "invite-q3-planning.ics"
    assert f"Invite file (not sent): {path}" in lines
    event = Calendar.from_ical(path.read_bytes()).events[0]
    assert event.start == datetime(2025, 3, 6, 14, tzinfo=UTC)
    assert event.end == datetime(2025, 3, 6, 15, tzinfo=UTC)
    assert str(event["SUMMARY"]) == "Q3 planning"
    assert str(event["ORGANIZER"]) == "mailto:me@example.invalid"
    # The organizer is not invited to their own meeting; alice's address is hers.
    assert [str(a) for a in event["ATTENDEE"]] == [
        "mailto:alice@example.de",
        "mailto:bob@example.invalid",
    ]
    assert (
        "  for bob@example.invalid: Thursday 6 March 2025, 09:00–10:00 EST (America/New_York)"
        in lines
    )
    assert "placeholders (no address was given for bob, me)" in text
    assert lines[-1] == INSTRUCTION


async def test_the_example_wording_reaches_the_tools(
    tmp_path: Path, files: dict[str, Path]
) -> None:
    """The brief's own task, with local files: 45 minutes in the week after TODAY."""
    task = EXAMPLE.replace("/home/a/alice.ics", str(files["alice"]))
    task = task.replace("https://cal.example/bob.ics", str(files["bob"]))
    task = task.replace("/home/me/me.ics", str(files["me"]))
    workspace = tmp_path / "ws"
    text = await prepare(draft_of(task, Recorder(workspace), workspace), today=TODAY)
    assert text is not None
    # Mon 10 13:00-13:45 and 13:45-14:30 (the 1:1 starts 14:30), then 15:30 (after the sync);
    # Tuesday is the offsite; Wed 12 from 14:00 (my call ends then); bob's focus time is free.
    assert starts(text) == [
        "2025-03-10T13:00:00Z",
        "2025-03-10T13:45:00Z",
        "2025-03-12T14:00:00Z",
        "2025-03-12T14:45:00Z",
        "2025-03-13T13:00:00Z",
    ]
    event = Calendar.from_ical((workspace / "invite-q3-planning.ics").read_bytes()).events[0]
    assert event.start == datetime(2025, 3, 10, 13, tzinfo=UTC)
    assert event.end == datetime(2025, 3, 10, 13, 45, tzinfo=UTC)


async def test_no_time_no_invite(tmp_path: Path, files: dict[str, Path]) -> None:
    workspace = tmp_path / "ws"
    use = Recorder(workspace)
    task = f"Find an hour on 2025-03-08 for a={files['alice']} and b={files['me']}"
    text = await prepare(draft_of(task, use, workspace), today=TODAY)
    assert text is not None
    assert [name for name, _ in use.calls] == ["find_meeting_slots"]  # a Saturday
    assert "No 60-minute time from 2025-03-08 to 2025-03-08" in text
    assert "no invitation was drafted" in text
    assert not workspace.exists() or list(workspace.iterdir()) == []


async def test_an_unreadable_calendar_is_said_and_the_rest_still_count(
    tmp_path: Path, files: dict[str, Path]
) -> None:
    missing = tmp_path / "gone.ics"
    task = f"30 min tomorrow, a={files['alice']} (Europe/Berlin), b={missing}, invite for 'Sync'"
    workspace = tmp_path / "ws"
    text = await prepare(draft_of(task, Recorder(workspace), workspace), today=TODAY)
    assert text is not None
    assert f"Note: cannot read calendar {missing}: no such file." in text
    assert starts(text)[0] == "2025-03-07T08:00:00Z"  # Friday 09:00 in Berlin, for both
    assert (workspace / "invite-sync.ics").exists()


async def test_a_denied_permission_is_reported_not_raised(
    tmp_path: Path, files: dict[str, Path]
) -> None:
    workspace = tmp_path / "ws"
    task = (
        f"An hour in the next 7 days for a={files['alice']} (Europe/Berlin) and "
        f"me={files['me']} (Europe/London)"
    )
    # Nothing granted: the real tool refuses before reading anything.
    nothing = Recorder(workspace, granted=frozenset())
    text = await prepare(draft_of(task, nothing, workspace), today=TODAY)
    assert text is not None
    assert "Could not look for free times: tool 'find_meeting_slots' needs permission" in text
    assert "do not invent times" in text
    assert not workspace.exists() or list(workspace.iterdir()) == []
    # Reading allowed: the times are there, and the invite, drafted in the task's own
    # workspace, needed nothing more.
    reading = Recorder(workspace, granted=frozenset({Permission.READ_FILES, Permission.NETWORK}))
    text = await prepare(draft_of(task, reading, workspace), today=TODAY)
    assert text is not None
    assert starts(text)[0] == "2025-03-06T09:00:00Z"  # 09:00 GMT, 10:00 CET
    assert "Could not draft the invitation" not in text
    assert [p.suffix for p in workspace.iterdir()] == [".ics"]


async def test_what_the_gate_says_reaches_the_model(tmp_path: Path) -> None:
    async def deny(name: str, arguments: dict[str, Any]) -> str:
        raise ToolError("the person did not allow the scheduler skill to do that")

    text = await prepare(draft_of(EXAMPLE, deny, tmp_path), today=TODAY)
    assert text is not None
    assert (
        "Could not look for free times: the person did not allow the scheduler skill to do that"
        in text
    )


async def test_a_bad_zone_calls_no_tool(tmp_path: Path) -> None:
    use = Recorder(tmp_path)
    text = await prepare(
        draft_of("a=/c/a.ics (Europe/Berlen), b=/c/b.ics tomorrow", use, tmp_path), today=TODAY
    )
    assert text is not None
    assert "Could not look for free times: unknown time zone 'Europe/Berlen' for a" in text
    assert use.calls == []


async def test_no_calendar_nothing_to_prepare(tmp_path: Path) -> None:
    use = Recorder(tmp_path)
    assert await prepare(draft_of("What is a good agenda?", use, tmp_path)) is None
    assert use.calls == []


def test_the_skill_prepares() -> None:
    assert skill.prepare is prepare


def test_an_address_as_the_name_is_the_attendees_address() -> None:
    found = request("ann@x.org=/c/ann.ics (Europe/Oslo) and me=/c/me.ics")
    assert [(a.name, a.email) for a in found.attendees] == [
        ("ann@x.org", "ann@x.org"),
        ("me", None),
    ]
