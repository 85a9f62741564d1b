"""The scheduler's tools as an agent calls them (`Tool.call`, JSON arguments, a ToolContext):
the fixture calendars for the week of Thursday 6 March 2025 (see test_slots for how each free
time is worked out), a missing calendar, a calendar served over HTTP from 127.0.0.1, the
invitation written to a workspace and parsed back, and the permissions each tool needs."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from icalendar import Calendar

from myninja.skills.api import (
    Permission,
    PermissionNeeded,
    ToolArgumentError,
    ToolContext,
    ToolError,
)
from myninja.skills.scheduler.skill import draft_meeting_invite, find_meeting_slots, skill
from tests.local_http import serving

pytestmark = pytest.mark.timeout(60)

CALENDARS = Path(__file__).resolve().parents[2] / "fixtures" / "calendars"
READ = frozenset({Permission.READ_FILES, Permission.NETWORK})
ZONES = ["Europe/Berlin", "America/New_York", "America/Los_Angeles"]
# Chika works 07:00-15:00 as in test_slots; with 09:00-17:00 for all three there is no
# common hour at all (Berlin's 17:00 is Los Angeles' 08:00).
HOURS = ["09:00-17:00", "09:00-17:00", "07:00-15:00"]
# The five distinct offers test_slots expects for this week, earliest first.
EXPECTED_STARTS = [
    "2025-03-06T15:00:00Z",
    "2025-03-07T15:30:00Z",
    "2025-03-10T14:00:00Z",
    "2025-03-10T15:30:00Z",
    "2025-03-12T14:00:00Z",
]


def week_args(**overrides: object) -> dict[str, object]:
    arguments: dict[str, object] = {
        "calendars": [
            f"anna={CALENDARS / 'anna-berlin.ics'}",
            f"ben={CALENDARS / 'ben-new-york.ics'}",
            f"chika={CALENDARS / 'chika-los-angeles.ics'}",
        ],
        "timezones": ZONES,
        "start_date": "2025-03-06",
        "working_hours": HOURS,
    }
    arguments.update(overrides)
    return arguments


def starts(text: str) -> list[str]:
    return re.findall(r"^\d+\. start_utc=(\S+)$", text, flags=re.MULTILINE)


def slot_block(text: str, number: int) -> list[str]:
    """The lines of offer `number`: its start_utc line and one line per attendee."""
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(f"{number}. "))
    block = [lines[first]]
    for line in lines[first + 1 :]:
        if not line.startswith("   "):
            break
        block.append(line)
    return block


async def test_week_offers_match_the_slot_finder_in_each_local_time() -> None:
    out = await find_meeting_slots.call(week_args(), ToolContext("t1", granted=READ))
    assert out.splitlines()[0] == (
        "Free 30-minute times for anna, ben, chika (2025-03-06 to 2025-03-12):"
    )
    assert starts(out) == EXPECTED_STARTS
    # 15:00 UTC on Thu 6 March: 16:00 CET (+1), 10:00 EST (-5), 07:00 PST (-8).
    assert slot_block(out, 1) == [
        "1. start_utc=2025-03-06T15:00:00Z",
        "   anna: Thursday 6 March 2025, 16:00–16:30 CET",
        "   ben: Thursday 6 March 2025, 10:00–10:30 EST",
        "   chika: Thursday 6 March 2025, 07:00–07:30 PST",
    ]
    # After the US change (Sun 9 March): New York -4, Los Angeles -7; Berlin still +1.
    assert slot_block(out, 3) == [
        "3. start_utc=2025-03-10T14:00:00Z",
        "   anna: Monday 10 March 2025, 15:00–15:30 CET",
        "   ben: Monday 10 March 2025, 10:00–10:30 EDT",
        "   chika: Monday 10 March 2025, 07:00–07:30 PDT",
    ]
    assert "Note: all of these days are in the past." in out
    assert "could not" not in out and "ignore" not in out


async def test_an_hour_fits_once_and_shared_working_hours_apply_to_all() -> None:
    hour = await find_meeting_slots.call(
        week_args(duration_minutes=60), ToolContext("t1", granted=READ)
    )
    assert starts(hour) == ["2025-03-12T14:00:00Z"]
    # Without per-person hours, 09:00-17:00 everywhere: Berlin ends (16:00 UTC) before Los
    # Angeles starts (17:00 UTC, 16:00 from 10 March), so there is no common time.
    none = await find_meeting_slots.call(
        week_args(working_hours=None), ToolContext("t1", granted=READ)
    )
    assert starts(none) == []
    assert none.startswith("No 30-minute time from 2025-03-06 to 2025-03-12 when anna, ben, ")


async def test_a_missing_calendar_is_a_note_and_only_its_hours_count(tmp_path: Path) -> None:
    missing = tmp_path / "chika.ics"
    args = week_args()
    args["calendars"] = [*args["calendars"][:2], str(missing)]  # type: ignore[index]
    out = await find_meeting_slots.call(args, ToolContext("t1", granted=READ))
    assert f"Note: cannot read calendar {missing}: no such file." in out
    assert "The times above ignore chika's calendar" in out  # named after the file
    # Chika's hours still bind, her Standup (Thu 15:30-16:00 UTC) no longer does.
    assert starts(out) == [
        "2025-03-06T15:00:00Z",
        "2025-03-06T15:30:00Z",
        "2025-03-07T15:30:00Z",
        "2025-03-10T14:00:00Z",
        "2025-03-10T15:30:00Z",
    ]


class _Calendars(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path != "/ben.ics":
            self.send_error(404)
            return
        body = (CALENDARS / "ben-new-york.ics").read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "text/calendar")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


async def test_a_calendar_from_a_url_counts_and_a_404_is_a_note() -> None:
    with serving(_Calendars) as base:
        args = week_args()
        calendars: list[str] = list(args["calendars"])  # type: ignore[call-overload]
        calendars[1] = f"{base}/ben.ics"
        out = await find_meeting_slots.call(
            {**args, "calendars": calendars}, ToolContext("t1", granted=READ)
        )
        # Ben's Dentist (Fri 15:00-15:30 UTC) came over HTTP: Friday's offer is 15:30.
        assert starts(out) == EXPECTED_STARTS
        assert "   ben: Friday 7 March 2025, 10:30–11:00 EST" in out
        calendars[1] = f"ben={base}/gone.ics"
        gone = await find_meeting_slots.call(
            {**args, "calendars": calendars}, ToolContext("t1", granted=READ)
        )
    assert f"Note: cannot fetch calendar {base}/gone.ics: HTTP 404" in gone
    assert starts(gone)[1] == "2025-03-07T15:00:00Z"  # the Dentist no longer blocks


async def test_today_by_default_and_never_in_the_past(tmp_path: Path) -> None:
    empty = tmp_path / "empty.ics"
    empty.write_text("BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//t//EN\nEND:VCALENDAR\n")
    before = datetime.now(UTC)
    out = await find_meeting_slots.call(
        {
            "calendars": [str(empty)],
            "timezones": ["UTC"],
            "working_start": "00:00",
            "working_end": "23:59",
            "days_ahead": 7,
        },
        ToolContext("t1", granted=READ),
    )
    found = [datetime.fromisoformat(s) for s in starts(out)]
    assert len(found) == 5
    assert before <= found[0] < before + timedelta(days=3)  # a weekend may come first
    assert "in the past" not in out


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"timezones": ZONES[:2]}, "one time zone per calendar (3 calendars, 2 time zones)"),
        ({"timezones": ["Europe/Berlin", "Mars/Olympus", "UTC"]}, "unknown time zone"),
        ({"start_date": "6 March"}, "start_date '6 March' is not YYYY-MM-DD"),
        ({"working_hours": ["9-5", "09:00-17:00", "07:00-15:00"]}, "'9' is not a time of day"),
        ({"working_hours": ["17:00-09:00"] * 3}, "start before they end"),
    ],
)
async def test_bad_arguments_are_one_line_tool_errors(
    overrides: dict[str, object], message: str
) -> None:
    # A ToolError (not a UsageError) is what the graph hands back to the model.
    with pytest.raises(ToolError, match=re.escape(message)) as err:
        await find_meeting_slots.call(week_args(**overrides), ToolContext("t1", granted=READ))
    assert "\n" not in str(err.value)


async def test_files_need_read_files_and_urls_the_network() -> None:
    assert find_meeting_slots.permissions == READ
    url_args = week_args(calendars=["http://127.0.0.1:9/a.ics", "webcal://example.org/b.ics"])
    assert find_meeting_slots.needed(week_args()) == {Permission.READ_FILES}
    assert find_meeting_slots.needed(url_args) == {Permission.NETWORK}
    both = week_args(calendars=[f"anna={CALENDARS / 'anna-berlin.ics'}", "ben=https://x/b.ics"])
    assert find_meeting_slots.needed(both) == READ
    files_only = ToolContext("t1", granted=frozenset({Permission.READ_FILES}))
    assert starts(await find_meeting_slots.call(week_args(), files_only))  # it ran
    with pytest.raises(PermissionNeeded) as err:
        await find_meeting_slots.call(both, files_only)
    assert err.value.missing == frozenset({Permission.NETWORK})
    with pytest.raises(ToolArgumentError, match="duration_minutes"):
        await find_meeting_slots.call(
            week_args(duration_minutes=0), ToolContext("t1", granted=READ)
        )


def invite_args(**overrides: object) -> dict[str, object]:
    arguments: dict[str, object] = {
        "title": "Roadmap review: Q2!",
        "start_utc": "2025-03-10T14:00:00Z",
        "duration_minutes": 30,
        "organizer": "anna@example.de",
        "attendees": ["ben@example.com", "chika@example.org"],
        "timezones": ["America/New_York", "America/Los_Angeles"],
        "description": "Agree on owners.",
        "location": "Video call",
    }
    arguments.update(overrides)
    return arguments


async def test_invite_is_written_to_the_workspace_and_parses_back(tmp_path: Path) -> None:
    ctx = ToolContext(task_id="t1", workspace_dir=tmp_path / "ws", granted=frozenset())
    out = await draft_meeting_invite.call(invite_args(), ctx)
    path = tmp_path / "ws" / "invite-roadmap-review-q2.ics"
    assert out.endswith(f"\nInvite file (not sent): {path}")
    assert [p.name for p in (tmp_path / "ws").iterdir()] == [path.name]
    raw = path.read_bytes()
    assert raw.startswith(b"BEGIN:VCALENDAR\r\n")  # CRLF kept, not doubled
    assert b"\r\r\n" not in raw
    event = Calendar.from_ical(raw).events[0]
    assert event.start == datetime(2025, 3, 10, 14, tzinfo=UTC)
    assert event.end == datetime(2025, 3, 10, 14, 30, tzinfo=UTC)
    assert str(event["SUMMARY"]) == "Roadmap review: Q2!"
    assert [str(a) for a in event["ATTENDEE"]] == [
        "mailto:ben@example.com",
        "mailto:chika@example.org",
    ]
    # The message gives each attendee's local time: 10:00 EDT (-4), 07:00 PDT (-7).
    assert "  for ben@example.com: Monday 10 March 2025, 10:00–10:30 EDT" in out
    assert "  for chika@example.org: Monday 10 March 2025, 07:00–07:30 PDT" in out


async def test_an_invite_start_with_another_offset_or_none_is_read_as_said(
    tmp_path: Path,
) -> None:
    ctx = ToolContext(task_id="t1", workspace_dir=tmp_path, granted=frozenset())
    # 10:00 at -04:00 is 14:00 UTC; a time without an offset is taken as UTC.
    for start in ("2025-03-10T10:00:00-04:00", "2025-03-10T14:00"):
        await draft_meeting_invite.call(invite_args(start_utc=start, title="Sync"), ctx)
        event = Calendar.from_ical((tmp_path / "invite-sync.ics").read_bytes()).events[0]
        assert event.start == datetime(2025, 3, 10, 14, tzinfo=UTC), start


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"start_utc": "next Monday"}, "start_utc 'next Monday' is not an ISO time"),
        ({"attendees": ["ben"], "timezones": None}, "not an email address for the attendee"),
        ({"timezones": ["UTC"]}, "one time zone per attendee (2 attendees, 1 time zones)"),
        ({"timezones": ["UTC", "Moon/Base"]}, "unknown time zone 'Moon/Base'"),
    ],
)
async def test_bad_invites_are_tool_errors_and_write_nothing(
    tmp_path: Path, overrides: dict[str, object], message: str
) -> None:
    ws = tmp_path / "ws"
    ctx = ToolContext(task_id="t1", workspace_dir=ws, granted=frozenset())
    with pytest.raises(ToolError, match=re.escape(message)):
        await draft_meeting_invite.call(invite_args(**overrides), ctx)
    assert not ws.exists() or list(ws.iterdir()) == []


async def test_drafting_writes_only_in_the_workspace_and_needs_no_permission(
    tmp_path: Path,
) -> None:
    ws = tmp_path / "ws"
    ctx = ToolContext(task_id="t1", workspace_dir=ws, granted=frozenset())
    assert draft_meeting_invite.workspace and not draft_meeting_invite.permissions
    await draft_meeting_invite.call(invite_args(), ctx)
    assert [p.suffix for p in ws.iterdir()] == [".ics"]


def test_the_skill_is_for_the_scheduler_and_needs_what_its_tools_do() -> None:
    assert skill.name == "scheduler"
    assert skill.agents == ("scheduler",)
    names = [t.name for t in skill.tools]
    assert names == ["find_meeting_slots", "draft_meeting_invite", "book_meeting"]
    # Reading calendars (files or URLs) asks; the invite goes into the task's own workspace;
    # booking writes to the person's calendar and sends mail, each asked for.
    assert skill.permissions == READ | {Permission.CALENDAR_WRITE, Permission.SEND_EMAIL}
    assert "sends nothing" in draft_meeting_invite.description
