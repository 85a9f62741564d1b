"""Busy time and meeting slots from CalDAV calendars on a real Radicale server (started on
127.0.0.1 by tests/radicale_server.py), seeded with the caldav client.

The week searched is Monday 9 to Friday 13 March 2026: New York is already on daylight time
(from 8 March, UTC-4), Berlin not yet (until 29 March, UTC+1), Los Angeles on daylight time
(UTC-7). Alice's weekly meeting was written in February, in EST: its March instances must move
with New York's clock, not stay at February's UTC time."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import caldav
import pytest

from myninja.backends.keys import KeyStore
from myninja.config import CalendarConfig, Config
from myninja.errors import EXIT_UNREACHABLE, EXIT_USAGE
from myninja.skills.api import Permission, ToolContext, ToolError
from myninja.skills.scheduler.caldav_source import CalendarUnreachable, caldav_busy, open_calendar
from myninja.skills.scheduler.calendars import CalendarError
from myninja.skills.scheduler.skill import find_meeting_slots
from tests.local_http import WebPage, serving
from tests.radicale_server import USERS, Radicale, radicale_server

pytestmark = pytest.mark.timeout(120)

NETWORK = frozenset({Permission.NETWORK})

ALICE_EVENTS = [
    # One meeting, written in Berlin's zone: 10:00-11:00 CET is 09:00-10:00 UTC.
    "UID:alice-single\nDTSTART;TZID=Europe/Berlin:20260309T100000\n"
    "DTEND;TZID=Europe/Berlin:20260309T110000\nSUMMARY:Berlin review",
    # Every Monday 09:00-10:00 New York time from 2 February (EST), but not on 16 March.
    "UID:alice-weekly\nDTSTART;TZID=America/New_York:20260202T090000\n"
    "DTEND;TZID=America/New_York:20260202T100000\nRRULE:FREQ=WEEKLY;BYDAY=MO\n"
    "EXDATE;TZID=America/New_York:20260316T090000\nSUMMARY:NY weekly",
    # "Show as free": it must not block Tuesday 13:00-14:00 UTC.
    "UID:alice-free\nDTSTART:20260310T130000Z\nDTEND:20260310T140000Z\nTRANSP:TRANSPARENT\n"
    "SUMMARY:Focus time (free)",
]
BOB_EVENTS = [
    # 06:00-07:30 Los Angeles (PDT) is 13:00-14:30 UTC; 08:00-09:00 PDT is 15:00-16:00 UTC.
    "UID:bob-early\nDTSTART;TZID=America/Los_Angeles:20260309T060000\n"
    "DTEND;TZID=America/Los_Angeles:20260309T073000\nSUMMARY:Standup",
    "UID:bob-late\nDTSTART;TZID=America/Los_Angeles:20260309T080000\n"
    "DTEND;TZID=America/Los_Angeles:20260309T090000\nSUMMARY:1:1",
]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def ics(body: str) -> str:
    return (
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//myninja tests//EN\nBEGIN:VEVENT\n"
        f"DTSTAMP:20260101T000000Z\n{body}\nEND:VEVENT\nEND:VCALENDAR\n"
    )


def seed(server: Radicale, user: str, events: list[str]) -> None:
    client = caldav.DAVClient(
        url=f"{server.base_url}{user}/", username=user, password=USERS[user], timeout=10
    )
    calendar = client.principal().make_calendar(name=f"{user.title()} work", cal_id="work")
    for event in events:
        calendar.save_event(ics(event))


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Radicale]:
    with radicale_server(tmp_path_factory.mktemp("radicale")) as server:
        seed(server, "alice", ALICE_EVENTS)
        seed(server, "bob", BOB_EVENTS)
        yield server


def calendar_config(server: Radicale, user: str, **extra: object) -> CalendarConfig:
    return CalendarConfig.model_validate(
        {"url": server.calendar_url(user), "username": user, **extra}
    )


def test_busy_time_has_the_single_event_and_the_weekly_instances_in_their_zones(
    radicale: Radicale,
) -> None:
    alice = calendar_config(radicale, "alice", timezone="Europe/Berlin")
    busy = caldav_busy(
        "alice", alice, USERS["alice"], utc("2026-03-09T00:00"), utc("2026-03-24T00:00"), owner="a"
    )
    assert [(b.start, b.end, b.summary) for b in busy] == [
        (utc("2026-03-09T09:00"), utc("2026-03-09T10:00"), "Berlin review"),
        # 09:00 EDT: 13:00 UTC, where February's instances were at 14:00 UTC.
        (utc("2026-03-09T13:00"), utc("2026-03-09T14:00"), "NY weekly"),
        # 16 March is an EXDATE; the transparent event on the 10th does not block.
        (utc("2026-03-23T13:00"), utc("2026-03-23T14:00"), "NY weekly"),
    ]
    february = caldav_busy(
        "alice", alice, USERS["alice"], utc("2026-02-02T00:00"), utc("2026-02-03T00:00"), owner="a"
    )
    assert [(b.start, b.end) for b in february] == [
        (utc("2026-02-02T14:00"), utc("2026-02-02T15:00"))
    ]


def test_an_account_url_finds_the_calendar_by_name_or_path(radicale: Radicale) -> None:
    account = f"{radicale.base_url}alice/"
    for wanted in ("Alice work", "work", "/alice/work/"):
        cfg = CalendarConfig(url=account, username="alice", calendar=wanted)
        assert str(open_calendar("a", cfg, USERS["alice"]).url) == radicale.calendar_url("alice")
    first = CalendarConfig(url=account, username="alice")  # no name: the first (only) one
    assert str(open_calendar("a", first, USERS["alice"]).url) == radicale.calendar_url("alice")
    with pytest.raises(CalendarError) as caught:
        open_calendar("a", first.model_copy(update={"calendar": "home"}), USERS["alice"])
    assert re.search(r"no calendar 'home'.*found: Alice work", caught.value.one_line())


def slot_context(radicale: Radicale) -> ToolContext:
    config = Config.model_validate(
        {
            "keys": {"store": "file"},
            "calendars": {
                user: {"url": radicale.calendar_url(user), "username": user} for user in USERS
            },
        }
    )
    store = KeyStore("file")
    for user, password in USERS.items():
        store.set(f"cal-{user}", password)
    return ToolContext("t1", config=config, granted=NETWORK)


async def test_find_meeting_slots_reads_both_caldav_calendars(radicale: Radicale) -> None:
    # Alice works 09:00-17:00 Berlin (08:00-16:00 UTC), Bob 09:00-17:00 New York (13:00-21:00
    # UTC): together 13:00-16:00 UTC. Monday: Alice is busy 13:00-14:00, Bob 13:00-14:30 and
    # 15:00-16:00, leaving 14:30-15:00, too short for an hour. Tuesday 13:00 is free (Alice's
    # event there is transparent): the first hour both have.
    arguments = {
        "calendars": ["alice=cal:alice", "bob=cal:bob"],
        "timezones": ["Europe/Berlin", "America/New_York"],
        "duration_minutes": 60,
        "days_ahead": 5,
        "start_date": "2026-03-09",
    }
    out = await find_meeting_slots.call(arguments, slot_context(radicale))
    offers = re.findall(r"^\d+\. start_utc=(\S+)$", out, flags=re.MULTILINE)
    assert offers[0] == "2026-03-10T13:00:00Z", out
    assert "ignore" not in out  # both calendars were read
    half = await find_meeting_slots.call(
        {**arguments, "duration_minutes": 30}, slot_context(radicale)
    )
    assert re.findall(r"start_utc=(\S+)", half)[0] == "2026-03-09T14:30:00Z", half


async def test_a_caldav_calendar_needs_the_network_and_must_be_configured(
    radicale: Radicale,
) -> None:
    arguments = {"calendars": ["cal:alice"], "timezones": ["Europe/Berlin"]}
    assert find_meeting_slots.needed(arguments) == {Permission.NETWORK}
    with pytest.raises(ToolError, match=r"no configured calendar 'cal:carol'.*cal:alice, cal:bob"):
        await find_meeting_slots.call(
            {"calendars": ["cal:carol"], "timezones": ["UTC"]}, slot_context(radicale)
        )


def test_a_wrong_password_is_one_line_and_a_usage_error(radicale: Radicale) -> None:
    alice = calendar_config(radicale, "alice")
    with pytest.raises(CalendarError) as caught:
        caldav_busy(
            "alice", alice, "wrong", utc("2026-03-09T00:00"), utc("2026-03-10T00:00"), owner="a"
        )
    assert caught.value.exit_code == EXIT_USAGE
    line = caught.value.one_line()
    assert "wrong username or password" in line and "myninja keys set cal-alice" in line
    assert "\n" not in line


def test_a_stopped_server_is_one_line_and_unreachable(tmp_path: Path) -> None:
    with radicale_server(tmp_path) as server:
        alice = calendar_config(server, "alice")
    assert server.proc.poll() is not None  # stopped
    with pytest.raises(CalendarUnreachable) as caught:
        caldav_busy(
            "alice", alice, "x", utc("2026-03-09T00:00"), utc("2026-03-10T00:00"), owner="a"
        )
    assert caught.value.exit_code == EXIT_UNREACHABLE
    assert "cannot reach" in caught.value.one_line() and "connection refused" in str(caught.value)


def test_a_web_page_is_not_caldav() -> None:
    with serving(WebPage) as base:
        page = CalendarConfig(url=f"{base}/calendar/")
        with pytest.raises(CalendarError) as caught:
            caldav_busy(
                "web", page, None, utc("2026-03-09T00:00"), utc("2026-03-10T00:00"), owner="a"
            )
    assert caught.value.exit_code == EXIT_USAGE
    line = caught.value.one_line()
    assert "is not a CalDAV calendar" in line and "<" not in line, line


class Silent(BaseHTTPRequestHandler):
    def do_PROPFIND(self) -> None:
        time.sleep(30)  # never answers in time

    def log_message(self, *args: object) -> None:
        pass


def test_a_server_that_does_not_answer_times_out_in_one_line() -> None:
    with serving(Silent) as base:
        slow = CalendarConfig(url=f"{base}/cal/", timeout_s=0.5)
        began = time.monotonic()
        with pytest.raises(CalendarUnreachable) as caught:
            caldav_busy(
                "slow", slow, None, utc("2026-03-09T00:00"), utc("2026-03-10T00:00"), owner="a"
            )
        assert time.monotonic() - began < 15  # not the 30 s the server takes
    assert "timed out after 0.5 s" in caught.value.one_line()
