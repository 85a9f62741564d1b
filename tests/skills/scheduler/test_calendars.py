"""Reading calendars and turning them into busy time: the three fixture calendars
(tests/fixtures/calendars: Anna in Berlin with her own VTIMEZONE, Ben in New York with floating
times and X-WR-TIMEZONE, Chika in Los Angeles with an IANA TZID, UTC times and an all-day
event), small inline calendars for one rule each, and URL calendars from a real HTTP server on
127.0.0.1. Every expected instant is worked out by hand in the comments.

Offsets used below (2025): the US moves to summer time on Sunday 9 March (New York -5 → -4,
Los Angeles -8 → -7), the EU on Sunday 30 March (Berlin +1 → +2)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import ClassVar

import pytest

from myninja.errors import EXIT_USAGE, UsageError
from myninja.skills.research.fetch import USER_AGENT
from myninja.skills.scheduler.calendars import (
    Busy,
    CalendarError,
    busy_intervals,
    load_calendar,
    parse_calendar,
)
from tests.local_http import serving

pytestmark = pytest.mark.timeout(60)

CALENDARS = Path(__file__).resolve().parents[2] / "fixtures" / "calendars"


def utc(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=UTC)


def spans(busy: list[Busy]) -> list[tuple[datetime, datetime, str]]:
    return [(b.start, b.end, b.summary) for b in busy]


def calendar_text(*events: str, header: str = "", one_series: bool = False) -> str:
    """A VCALENDAR around `events` (each the lines between BEGIN:VEVENT and END:VEVENT).
    `one_series`: all share one UID, as a recurring event and its overrides do."""
    body = "".join(
        f"BEGIN:VEVENT\nUID:e{0 if one_series else i}@example.com\n"
        f"DTSTAMP:20250201T000000Z\n{event.strip()}\nEND:VEVENT\n"
        for i, event in enumerate(events)
    )
    return (
        f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//myninja tests//EN\n{header}{body}END:VCALENDAR\n"
    )


# -- the fixture calendars --------------------------------------------------------------------


def test_custom_vtimezone_weekly_rule_with_exdate_across_the_eu_change() -> None:
    """Anna's "Team sync" is 16:00-16:30 every Monday and Thursday in a zone her file defines
    itself ("Anna Office Time", CET/CEST rules); 6 March is an EXDATE. 16:00 CET is 15:00 UTC
    until Sunday 30 March, 16:00 CEST is 14:00 UTC from Monday 31 March on. Her cancelled
    "Offsite planning" on Friday 7 March does not appear."""
    calendar = load_calendar(CALENDARS / "anna-berlin.ics")
    busy = busy_intervals(calendar, utc(3, 1), utc(4, 5), owner="anna", tz="Europe/Berlin")
    cet = [(3, 3), (3, 10), (3, 13), (3, 17), (3, 20), (3, 24), (3, 27)]  # no (3, 6)
    cest = [(3, 31), (4, 3)]
    expected = [(utc(m, d, 15), utc(m, d, 15, 30), "Team sync") for m, d in cet] + [
        (utc(m, d, 14), utc(m, d, 14, 30), "Team sync") for m, d in cest
    ]
    assert spans(busy) == expected
    assert all(b.owner == "anna" for b in busy)
    assert all(b.start.tzinfo is UTC and b.end.tzinfo is UTC for b in busy)


def test_floating_times_read_in_x_wr_timezone_across_the_us_change() -> None:
    """Ben's file has floating times and X-WR-TIMEZONE:America/New_York.
    - Dentist, Fri 7 Mar 10:00-10:30 EST (-5) → 15:00-15:30 UTC
    - Lunch, every Friday 12:00-13:00: 7 Mar EST → 17:00-18:00 UTC; 14 Mar EDT (-4) →
      16:00-17:00 UTC (the wall time stays, the UTC time moves)
    - 1:1, Mon 10 Mar 10:30 EDT with DURATION:PT30M (no DTEND) → 14:30-15:00 UTC
    - Focus time on Wed 12 Mar is TRANSP:TRANSPARENT: not busy."""
    calendar = load_calendar(str(CALENDARS / "ben-new-york.ics"))  # a path given as str
    busy = busy_intervals(calendar, utc(3, 6), utc(3, 15), owner="ben", tz="America/New_York")
    assert spans(busy) == [
        (utc(3, 7, 15), utc(3, 7, 15, 30), "Dentist"),
        (utc(3, 7, 17), utc(3, 7, 18), "Lunch"),
        (utc(3, 10, 14, 30), utc(3, 10, 15), "1:1 with Dana"),
        (utc(3, 14, 16), utc(3, 14, 17), "Lunch"),
    ]


def test_all_day_event_blocks_the_owners_local_day() -> None:
    """Chika's all-day "Offsite" on Tue 11 Mar (DATE values) is her whole Tuesday in Los
    Angeles: 00:00 PDT (-7) = 07:00 UTC to Wed 00:00 PDT = Wed 07:00 UTC. Her "Standup" is in
    UTC (15:30-16:00 Z on Thu 6 Mar) and her "Customer call" has TZID=America/Los_Angeles with
    no VTIMEZONE in the file: Wed 12 Mar 08:00-09:00 PDT → 15:00-16:00 UTC."""
    calendar = load_calendar(CALENDARS / "chika-los-angeles.ics")
    busy = busy_intervals(calendar, utc(3, 6), utc(3, 13), owner="chika", tz="America/Los_Angeles")
    assert spans(busy) == [
        (utc(3, 6, 15, 30), utc(3, 6, 16), "Standup"),
        (utc(3, 11, 7), utc(3, 12, 7), "Offsite"),
        (utc(3, 12, 15), utc(3, 12, 16), "Customer call"),
    ]
    # The same day for someone in Berlin (+1 in March): 10 Mar 23:00 to 11 Mar 23:00 UTC.
    berlin = busy_intervals(calendar, utc(3, 11), utc(3, 12), owner="x", tz="Europe/Berlin")
    assert [(b.start, b.end) for b in berlin if b.summary == "Offsite"] == [
        (utc(3, 10, 23), utc(3, 11, 23))
    ]


# -- one rule at a time -----------------------------------------------------------------------


def test_floating_time_without_x_wr_timezone_uses_the_owners_zone_else_utc() -> None:
    calendar = parse_calendar(
        calendar_text("DTSTART:20250310T090000\nDTEND:20250310T100000\nSUMMARY:Review")
    )
    # 09:00 in Tokyo (+9, no DST) is 00:00 UTC.
    tokyo = busy_intervals(calendar, utc(3, 9), utc(3, 11), owner="kenji", tz="Asia/Tokyo")
    assert spans(tokyo) == [(utc(3, 10, 0), utc(3, 10, 1), "Review")]
    # No zone anywhere: read as UTC.
    plain = busy_intervals(calendar, utc(3, 9), utc(3, 11), owner="kenji")
    assert spans(plain) == [(utc(3, 10, 9), utc(3, 10, 10), "Review")]


def test_x_wr_timezone_wins_for_floating_times_but_all_day_follows_the_owner() -> None:
    calendar = parse_calendar(
        calendar_text(
            "DTSTART:20250310T090000\nDTEND:20250310T093000\nSUMMARY:Call",
            "DTSTART;VALUE=DATE:20250312\nSUMMARY:Holiday",  # a DATE with no end: one day
            header="X-WR-TIMEZONE:America/Chicago\n",
        )
    )
    busy = busy_intervals(calendar, utc(3, 9), utc(3, 14), owner="kenji", tz="Asia/Tokyo")
    assert spans(busy) == [
        # 09:00 in Chicago on 10 Mar is CDT (-5, changed on the 9th): 14:00 UTC.
        (utc(3, 10, 14), utc(3, 10, 14, 30), "Call"),
        # Kenji's 12 March in Tokyo: 12 Mar 00:00 JST = 11 Mar 15:00 UTC, for one day.
        (utc(3, 11, 15), utc(3, 12, 15), "Holiday"),
    ]


def test_moved_and_cancelled_instances_of_a_recurring_event() -> None:
    """A weekly 09:00-09:15 UTC standup on Tuesdays, four times from 4 March (4, 11, 18, 25);
    the 11th moved to 13:00 by a RECURRENCE-ID override, the 18th cancelled by one."""
    calendar = parse_calendar(
        calendar_text(
            "DTSTART:20250304T090000Z\nDTEND:20250304T091500Z\n"
            "RRULE:FREQ=WEEKLY;COUNT=4\nSUMMARY:Standup",
            "RECURRENCE-ID:20250311T090000Z\nDTSTART:20250311T130000Z\n"
            "DTEND:20250311T131500Z\nSUMMARY:Standup (moved)",
            "RECURRENCE-ID:20250318T090000Z\nDTSTART:20250318T090000Z\n"
            "DTEND:20250318T091500Z\nSTATUS:CANCELLED\nSUMMARY:Standup",
            one_series=True,
        )
    )
    busy = busy_intervals(calendar, utc(3, 1), utc(4, 1), owner="ops")
    assert spans(busy) == [
        (utc(3, 4, 9), utc(3, 4, 9, 15), "Standup"),
        (utc(3, 11, 13), utc(3, 11, 13, 15), "Standup (moved)"),
        (utc(3, 25, 9), utc(3, 25, 9, 15), "Standup"),
    ]


def test_window_keeps_overlapping_events_whole_and_drops_touching_ones() -> None:
    calendar = parse_calendar(
        calendar_text(
            "DTSTART:20250305T230000Z\nDTEND:20250306T010000Z\nSUMMARY:Across the start",
            "DTSTART:20250305T220000Z\nDTEND:20250306T000000Z\nSUMMARY:Ends at the start",
            "DTSTART:20250307T000000Z\nDTEND:20250307T010000Z\nSUMMARY:Starts at the end",
            "DTSTART:20250306T120000Z\nSUMMARY:No end, no duration",  # takes no time
        )
    )
    busy = busy_intervals(calendar, utc(3, 6), utc(3, 7), owner="x")
    assert spans(busy) == [(utc(3, 5, 23), utc(3, 6, 1), "Across the start")]


def test_busy_intervals_refuses_naive_windows_and_unknown_zones() -> None:
    calendar = parse_calendar(calendar_text())
    with pytest.raises(UsageError, match="time-zone-aware"):
        busy_intervals(calendar, datetime(2025, 3, 6), utc(3, 7), owner="x")
    with pytest.raises(UsageError, match="unknown time zone 'Mars/Olympus' for x"):
        busy_intervals(calendar, utc(3, 6), utc(3, 7), owner="x", tz="Mars/Olympus")


# -- files that are not calendars -------------------------------------------------------------


def assert_one_line(err: CalendarError, source: str) -> None:
    assert isinstance(err, UsageError) and err.exit_code == EXIT_USAGE
    assert "\n" not in str(err) and source in str(err)
    assert err.source == source


def test_missing_file_directory_and_non_calendar_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.ics"
    with pytest.raises(CalendarError) as info:
        load_calendar(missing)
    assert str(info.value) == f"cannot read calendar {missing}: no such file"
    assert_one_line(info.value, str(missing))

    with pytest.raises(CalendarError, match="it is a directory"):
        load_calendar(tmp_path)

    notes = tmp_path / "notes.ics"
    notes.write_text('{"meeting": "tomorrow"}\n')
    with pytest.raises(CalendarError) as info:
        load_calendar(notes)
    assert str(info.value) == (
        f"cannot read calendar {notes}: not an iCalendar file "
        '(it starts with \'{"meeting": "tomorrow"}\')'
    )

    empty = tmp_path / "empty.ics"
    empty.write_bytes(b"")
    with pytest.raises(CalendarError, match="not an iCalendar file \\(it is empty\\)"):
        load_calendar(empty)


def test_broken_calendar_and_oversized_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.ics"
    broken.write_text("BEGIN:VCALENDAR\nthis is not a content line\nEND:VCALENDAR\n")
    with pytest.raises(CalendarError) as info:
        load_calendar(broken)
    assert str(info.value).startswith(f"cannot read calendar {broken}: not valid iCalendar (")
    assert_one_line(info.value, str(broken))

    big = CALENDARS / "anna-berlin.ics"
    with pytest.raises(CalendarError, match="file larger than 100 bytes"):
        load_calendar(big, max_bytes=100)


def test_a_byte_order_mark_and_crlf_lines_are_fine() -> None:
    text = calendar_text("DTSTART:20250306T090000Z\nDTEND:20250306T100000Z\nSUMMARY:A")
    data = b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode()
    busy = busy_intervals(parse_calendar(data), utc(3, 6), utc(3, 7), owner="x")
    assert spans(busy) == [(utc(3, 6, 9), utc(3, 6, 10), "A")]


# -- calendars at URLs ------------------------------------------------------------------------

ANNA = (CALENDARS / "anna-berlin.ics").read_bytes()


class CalendarHandler(BaseHTTPRequestHandler):
    user_agents: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        self.user_agents.append(self.headers.get("User-Agent", ""))
        if self.path == "/anna.ics":
            self.reply(200, "text/calendar; charset=utf-8", ANNA)
        elif self.path == "/old-link":
            self.send_response(301)
            self.send_header("Location", "/anna.ics")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/login":
            page = b"<!DOCTYPE html>\n<html><body>Please sign in</body></html>"
            self.reply(200, "text/html", page)
        elif self.path == "/huge.ics":
            self.reply(200, "text/calendar", b"BEGIN:VCALENDAR\n" + b"X" * 50_000)
        elif self.path == "/drip.ics":
            self.send_response(200)
            self.send_header("Content-Type", "text/calendar")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            try:
                for _ in range(40):  # at most 12 s; the client gives up long before
                    self.wfile.write(b"X")
                    self.wfile.flush()
                    time.sleep(0.3)
            except OSError:
                pass
        else:
            self.reply(404, "text/plain", b"not here")

    def reply(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[str]:
    CalendarHandler.user_agents = []
    with serving(CalendarHandler) as url:
        yield url


def test_url_calendar_matches_the_file_and_sends_our_user_agent(server: str) -> None:
    from_url = load_calendar(f"{server}/anna.ics")
    from_file = load_calendar(CALENDARS / "anna-berlin.ics")
    window = (utc(3, 1), utc(4, 5))
    assert busy_intervals(from_url, *window, owner="anna") == busy_intervals(
        from_file, *window, owner="anna"
    )
    assert CalendarHandler.user_agents == [USER_AGENT]
    # A moved link is followed.
    moved = load_calendar(f"{server}/old-link")
    assert len(busy_intervals(moved, *window, owner="anna")) == 9


def test_url_404_is_one_clear_error(server: str) -> None:
    url = f"{server}/missing.ics"
    with pytest.raises(CalendarError) as info:
        load_calendar(url)
    assert str(info.value) == f"cannot fetch calendar {url}: HTTP 404 Not Found"
    assert info.value.status == 404
    assert_one_line(info.value, url)


def test_url_serving_a_web_page_is_one_clear_error(server: str) -> None:
    url = f"{server}/login"
    with pytest.raises(CalendarError) as info:
        load_calendar(url)
    assert str(info.value) == (
        f"cannot read calendar {url}: not an iCalendar file (it starts with '<!DOCTYPE html>')"
    )
    assert_one_line(info.value, url)


def test_url_too_big_too_slow_refused_or_unsupported(server: str) -> None:
    with pytest.raises(CalendarError, match="larger than 10000 bytes"):
        load_calendar(f"{server}/huge.ics", max_bytes=10_000)

    began = time.monotonic()
    with pytest.raises(CalendarError, match="timed out after 1 s"):
        load_calendar(f"{server}/drip.ics", timeout_s=1)
    assert time.monotonic() - began < 5  # the deadline held though bytes kept coming

    with socket.socket() as probe:  # a port that was free a moment ago: nobody listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(CalendarError, match="connection failed"):
        load_calendar(f"http://127.0.0.1:{port}/cal.ics", timeout_s=2)

    with pytest.raises(CalendarError, match="scheme 'ftp' is not http, https or webcal"):
        load_calendar("ftp://example.com/cal.ics")
