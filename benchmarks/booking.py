"""Booking a meeting end to end on the default model: the README's example, as a person runs it.

A Radicale server (CalDAV) on 127.0.0.1 holds the person's calendar ("work", alice, writable);
Bob's calendar is an .ics feed served over HTTP; an SMTP server captures the invitation. Both
calendars have meetings next week, written in their owners' zones (one of them recurring).
In a fresh MYNINJA_HOME with the default config plus `[calendars.work]` and `[smtp]`, it runs

    myninja ask --json --allow network --allow calendar_write --allow send_email \
        'Book a 30-minute meeting "Roadmap review" next week for me=cal:work (Europe/Berlin) and
         bob=URL/bob.ics (America/New_York, bob@example.com)'

and then reads the calendar back with the caldav client and looks at what the SMTP server got.
The first free time is worked out here independently (30-minute steps through both people's
working hours, 09:00-17:00 local, Monday to Friday, less the seeded meetings) and compared with
the event written. Prints JSON: exit code, wall time, the task's events (type and tool), the
event on the server (UID, start with its zone, organizer, attendees), the mail's recipients,
the answer, and checks; beside it, one plain chat call on the same model and prompt (which
books nothing: it is the time a person would spend asking instead). Exit 1 when a check fails.

    python benchmarks/booking.py [--model qwen2.5-coder-1.5b] [--threads N] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.everyday import _clean_env, _run, run_plain  # noqa: E402

BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")
TITLE = "Roadmap review"
ORGANIZER = "alice@example.de"


def next_monday(today: date) -> date:
    return today + timedelta(days=7 - today.weekday())


def seeded(monday: date) -> dict[str, list[tuple[datetime, datetime, str]]]:
    """Each person's meetings next week as (start, end, summary), in their own zone."""

    def at(day: int, hour: int, minute: int, zone: ZoneInfo) -> datetime:
        return datetime.combine(monday + timedelta(days=day), datetime.min.time(), zone).replace(
            hour=hour, minute=minute
        )

    alice = [
        (at(0, 14, 0, BERLIN), at(0, 17, 0, BERLIN), "Planning"),
        (at(1, 15, 0, BERLIN), at(1, 15, 30, BERLIN), "1:1"),
    ]
    # Alice's daily standup recurs (RRULE) from Monday: 16:00-16:30 Berlin every day.
    alice += [(at(d, 16, 0, BERLIN), at(d, 16, 30, BERLIN), "Standup") for d in range(5)]
    bob = [(at(0, 8, 0, NEW_YORK), at(0, 12, 0, NEW_YORK), "Workshop"),
           (at(1, 9, 30, NEW_YORK), at(1, 10, 0, NEW_YORK), "Dentist")]  # fmt: skip
    return {"alice": alice, "bob": bob}


def first_free(monday: date, busy: list[tuple[datetime, datetime, str]]) -> datetime:
    """The first 30-minute start (UTC, on the half hour) inside both people's working hours and
    clear of every meeting: the answer the scheduler should book."""
    moment = datetime.combine(monday, datetime.min.time(), UTC)
    step, length = timedelta(minutes=30), timedelta(minutes=30)
    while moment < datetime.combine(monday + timedelta(days=5), datetime.min.time(), UTC):
        end = moment + length
        inside = all(
            moment.astimezone(z).weekday() < 5
            and moment.astimezone(z).hour >= 9
            and (end.astimezone(z).hour, end.astimezone(z).minute) <= (17, 0)
            and end.astimezone(z).date() == moment.astimezone(z).date()
            for z in (BERLIN, NEW_YORK)
        )
        if inside and not any(s < end and moment < e for s, e, _ in busy):
            return moment
        moment += step
    raise SystemExit("the seeded week has no free time: fix the benchmark's meetings")


def vevent(uid: str, start: datetime, end: datetime, summary: str, rrule: str = "") -> str:
    zone = str(start.tzinfo)
    return (
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n"
        f"DTSTART;TZID={zone}:{start:%Y%m%dT%H%M%S}\r\nDTEND;TZID={zone}:{end:%Y%m%dT%H%M%S}\r\n"
        f"{rrule}SUMMARY:{summary}\r\nEND:VEVENT\r\n"
    )


def calendar_text(events: list[str]) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//myninja bench//EN\r\n"
        + "".join(events)
        + "END:VCALENDAR\r\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="default: the config's default model")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--timeout", type=float, default=1200)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    import caldav

    from myninja.backends.keys import KeyStore
    from myninja.backends.models import resolve_model
    from myninja.config import DEFAULT_MODEL
    from tests.local_http import serving
    from tests.radicale_server import USERS, radicale_server
    from tests.smtp_server import smtp_server

    model, threads = args.model or DEFAULT_MODEL, args.threads
    monday = next_monday(date.today())
    meetings = seeded(monday)
    expected = first_free(monday, meetings["alice"] + meetings["bob"])

    alice_events = [
        vevent(f"alice-{i}", s, e, name)
        for i, (s, e, name) in enumerate(meetings["alice"])
        if name != "Standup"
    ]
    standup = meetings["alice"][2]
    alice_events.append(vevent("alice-standup", standup[0], standup[1], "Standup",
                               "RRULE:FREQ=DAILY;COUNT=5\r\n"))  # fmt: skip
    bob_ics = calendar_text([vevent(f"bob-{i}", s, e, n) for i, (s, e, n) in
                             enumerate(meetings["bob"])]).encode()  # fmt: skip

    class BobFeed(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/calendar")
            self.send_header("Content-Length", str(len(bob_ics)))
            self.end_headers()
            self.wfile.write(bob_ics)

        def log_message(self, *a: object) -> None:
            pass

    work = Path(tempfile.mkdtemp(prefix="myninja-booking-"))
    home = work / "home"
    home.mkdir()
    os.environ["MYNINJA_HOME"] = str(home)  # this process's key store is that home's
    try:
        (work / "dav").mkdir()
        with radicale_server(work / "dav") as dav, smtp_server() as smtp, serving(BobFeed) as feed:
            client = caldav.DAVClient(url=f"{dav.base_url}alice/", username="alice",
                                      password=USERS["alice"])  # fmt: skip
            calendar = client.principal().make_calendar(name="Alice work", cal_id="work")
            for event in alice_events:
                calendar.save_event(calendar_text([event]))
            (home / "config.toml").write_text(
                '[keys]\nstore = "file"\n'
                f'[calendars.work]\nurl = "{dav.calendar_url("alice")}"\nusername = "alice"\n'
                'timezone = "Europe/Berlin"\nwritable = true\n'
                f'[smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\nsecurity = "none"\n'
                f'from_address = "{ORGANIZER}"\n'
            )
            KeyStore("file").set("cal-work", USERS["alice"])
            env = {**_clean_env(), "MYNINJA_HOME": str(home)}
            task = (
                f'Book a 30-minute meeting "{TITLE}" next week for me=cal:work (Europe/Berlin) '
                f"and bob={feed}/bob.ics (America/New_York, bob@example.com)"
            )
            env["MYNINJA_BACKENDS__EMBEDDED__MODEL"] = model
            env["MYNINJA_BACKENDS__EMBEDDED__THREADS"] = str(threads)
            myninja = Path(sys.executable).parent / "myninja"
            allow = ["--allow", "network", "--allow", "calendar_write", "--allow", "send_email"]
            code, stdout, stderr, started = _run(
                [str(myninja), "ask", "--json", *allow, task], env, args.timeout
            )
            wall = time.time() - started
            events = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
            written = [e for e in calendar.events()
                       if not str(e.icalendar_component["UID"]).startswith("alice-")]  # fmt: skip
            on_server = [_described(e) for e in written]
            mails = [{"from": m.mail_from, "to": m.rcpt_tos} for m in smtp.handler.messages]
        plain = run_plain(task, resolve_model(model, home / "data" / "models"), threads,
                          args.timeout)  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)

    done = next((e for e in events if e.get("type") == "task_done"), {})
    booked = [e for e in events if e.get("type") == "tool_result" and e["name"] == "book_meeting"]
    routed = next((e for e in events if e.get("type") == "routed"), {})
    checks = {
        "exit_0": code == 0,
        "one_event_written": len(on_server) == 1,
        "at_the_first_free_time": bool(on_server)
        and on_server[0]["start_utc"] == expected.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "in_the_calendars_zone": bool(on_server) and on_server[0]["tzid"] == "Europe/Berlin",
        "organizer_is_the_person": bool(on_server) and on_server[0]["organizer"] == ORGANIZER,
        "bob_invited": bool(on_server) and on_server[0]["attendees"] == ["bob@example.com"],
        "one_mail_to_bob": mails == [{"from": ORGANIZER, "to": ["bob@example.com"]}],
        "answer_names_the_booking": bool(on_server)
        and on_server[0]["uid"] in (done.get("answer") or ""),
    }
    report = {
        "benchmark": "booking",
        "model": model,
        "threads": threads,
        "task": task,
        "exit_code": code,
        "wall_s": round(wall, 2),
        "events": [
            e["type"] + (f":{e['name']}" if e.get("name") else "")
            for e in events
            if e.get("type") not in ("token",)
        ],
        "routed": {k: routed.get(k) for k in ("agent", "path", "reason")},
        "book_meeting_result": booked[0]["result"] if booked else None,
        "expected_start_utc": expected.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "on_server": on_server,
        "mails": mails,
        "answer": done.get("answer"),
        "plain_call": {"wall_s": round(plain["wall_s"], 2), "answer": plain["answer"]},
        "wall_ratio_vs_plain": round(wall / plain["wall_s"], 2) if plain["wall_s"] else None,
        "checks": checks,
        "error": stderr.strip().splitlines()[-1] if code != 0 and stderr.strip() else None,
    }
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "booking.json").write_text(text + "\n")
    sys.exit(0 if all(checks.values()) else 1)


def _described(event: Any) -> dict[str, Any]:
    vevent = event.icalendar_component
    attendees = vevent.get("ATTENDEE") or []
    if not isinstance(attendees, list):
        attendees = [attendees]
    return {
        "uid": str(vevent["UID"]),
        "summary": str(vevent["SUMMARY"]),
        "start": vevent.start.isoformat(),
        "start_utc": vevent.start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "tzid": vevent["DTSTART"].params.get("TZID"),
        "organizer": str(vevent["ORGANIZER"]).removeprefix("mailto:"),
        "attendees": [str(a).removeprefix("mailto:") for a in attendees],
    }


if __name__ == "__main__":
    main()
