"""`myninja calendars add|list|test|remove` as a person runs them (the real console script, a
temp MYNINJA_HOME, keys in the file store), against a real Radicale server on 127.0.0.1."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import caldav
import pytest

from myninja.backends.keys import KeyStore
from myninja.errors import EXIT_UNREACHABLE, EXIT_USAGE
from tests.conftest import run_myninja
from tests.local_http import WebPage, serving
from tests.radicale_server import USERS, Radicale, radicale_server

pytestmark = pytest.mark.timeout(180)

FILE_STORE = {"MYNINJA_KEYS__STORE": "file"}
# Every Monday 13:00-14:00 UTC from 5 January 2026: one or two instances in any 7 days.
WEEKLY = (
    "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//myninja tests//EN\nBEGIN:VEVENT\nUID:weekly\n"
    "DTSTAMP:20260101T000000Z\nDTSTART:20260105T130000Z\nDTEND:20260105T140000Z\n"
    "RRULE:FREQ=WEEKLY\nSUMMARY:Weekly\nEND:VEVENT\nEND:VCALENDAR\n"
)


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Radicale]:
    with radicale_server(tmp_path_factory.mktemp("radicale")) as server:
        client = caldav.DAVClient(
            url=f"{server.base_url}alice/", username="alice", password=USERS["alice"], timeout=10
        )
        client.principal().make_calendar(name="Work", cal_id="work").save_event(WEEKLY)
        yield server


def myninja(*args: str, password: str | None = None) -> object:
    return run_myninja(*args, env=FILE_STORE, input=password, timeout=120)


def weekly_instances_in_next_7_days(now: datetime) -> int:
    """Counted here, from the RRULE's meaning, not from the server."""
    first = datetime(2026, 1, 5, 13, tzinfo=UTC)
    weeks_before = max(0, (now - first).days // 7 - 1)
    start = first + timedelta(weeks=weeks_before)
    count = 0
    while start < now + timedelta(days=7):
        if start + timedelta(hours=1) > now:
            count += 1
        start += timedelta(weeks=1)
    return count


def test_add_list_test_remove(radicale: Radicale, myninja_home: Path) -> None:
    url = radicale.calendar_url("alice")
    added = myninja(
        "calendars", "add", "work", "--url", url, "--username", "alice",
        "--timezone", "Europe/Berlin", "--password-stdin", password=USERS["alice"] + "\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "password stored as cal-work" in added.stdout
    saved = tomllib.loads((myninja_home / "config.toml").read_text())
    assert saved["calendars"]["work"] == {
        "url": url, "username": "alice", "timezone": "Europe/Berlin",
    }  # fmt: skip
    assert KeyStore("file").get("cal-work") == USERS["alice"]

    listed = myninja("calendars", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert USERS["alice"] not in listed.stdout + listed.stderr
    (row,) = json.loads(listed.stdout)
    assert (row["name"], row["url"], row["writable"], row["password_stored"]) == (
        "work", url, False, True,
    )  # fmt: skip
    plain = myninja("calendars", "list")
    assert "work" in plain.stdout and USERS["alice"] not in plain.stdout

    before = datetime.now(UTC)
    tested = myninja("calendars", "test", "work", "--json")
    after = datetime.now(UTC)
    assert tested.returncode == 0, tested.stderr
    report = json.loads(tested.stdout)
    assert report["calendars"] == [{"name": "Work", "url": url}]
    expected = {weekly_instances_in_next_7_days(before), weekly_instances_in_next_7_days(after)}
    assert report["events_7d"] in expected
    text = myninja("calendars", "test", "work")
    assert text.returncode == 0 and "work: ok" in text.stdout and "Work" in text.stdout

    removed = myninja("calendars", "remove", "work")
    assert removed.returncode == 0, removed.stderr
    assert "its password" in removed.stdout
    assert "calendars" not in tomllib.loads((myninja_home / "config.toml").read_text())
    assert KeyStore("file").get("cal-work") is None
    again = myninja("calendars", "remove", "work")
    assert again.returncode == EXIT_USAGE and "no calendar named 'work'" in again.stderr


def one_error_line(done: object) -> str:
    lines = done.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr  # type: ignore[attr-defined]
    return lines[0]


def test_a_wrong_password_is_one_line_exit_2(radicale: Radicale) -> None:
    url = radicale.calendar_url("alice")
    added = myninja(
        "calendars", "add", "work", "--url", url, "--username", "alice", "--password-stdin",
        password="not-her-password\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    done = myninja("calendars", "test", "work")
    assert done.returncode == EXIT_USAGE
    assert "wrong username or password" in one_error_line(done)


def test_a_missing_password_says_how_to_store_it(radicale: Radicale) -> None:
    url = radicale.calendar_url("alice")
    assert myninja("calendars", "add", "work", "--url", url, "--username", "alice").returncode == 0
    done = myninja("calendars", "test", "work")
    assert done.returncode == EXIT_USAGE
    assert "myninja keys set cal-work" in one_error_line(done)


def test_a_stopped_server_is_one_line_exit_4(tmp_path: Path) -> None:
    with radicale_server(tmp_path) as server:
        url = server.calendar_url("alice")
        added = myninja(
            "calendars", "add", "home", "--url", url, "--username", "alice", "--password-stdin",
            password=USERS["alice"] + "\n",
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
    done = myninja("calendars", "test", "home")
    assert done.returncode == EXIT_UNREACHABLE
    assert "cannot reach" in one_error_line(done)


def test_a_web_page_is_one_line_exit_2() -> None:
    with serving(WebPage) as base:
        assert myninja("calendars", "add", "site", "--url", f"{base}/").returncode == 0
        done = myninja("calendars", "test", "site")
    assert done.returncode == EXIT_USAGE
    assert "is not a CalDAV calendar" in one_error_line(done)


def test_bad_input_is_refused_before_anything_is_written(myninja_home: Path) -> None:
    bad_name = myninja("calendars", "add", "1st", "--url", "https://example.org/dav/")
    assert bad_name.returncode == EXIT_USAGE and "invalid calendar name" in bad_name.stderr
    bad_url = myninja(
        "calendars", "add", "work", "--url", "ftp://example.org/", "--password-stdin",
        password="secret\n",
    )  # fmt: skip
    assert bad_url.returncode == EXIT_USAGE and "http://" in one_error_line(bad_url)
    bad_zone = myninja("calendars", "add", "work", "--url", "https://x.org/", "--timezone", "Mars")
    assert bad_zone.returncode == EXIT_USAGE and "IANA" in bad_zone.stderr
    assert not (myninja_home / "config.toml").exists()
    assert KeyStore("file").get("cal-work") is None
