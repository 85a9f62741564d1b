"""`book_meeting`: put a meeting on the person's CalDAV calendar and e-mail the invitation.

Two permissions, asked separately: `calendar_write` for the event, `send_email` for the
invitation (not asked where there is nobody to invite). With `[scheduler] dry_run = true`
nothing is written or sent; the result shows what would have been.

Exactly once, across crashes and re-runs: the event's UID comes from the task id, the start
and the title, so a re-run writes the same UID, and the calendar write (a PUT to `<UID>.ics`)
replaces rather than duplicates. A ledger in the task's workspace (`booking.json`, replaced
atomically) records what is done, and a re-run skips it. The one window left is between the
SMTP server accepting the message and the ledger recording it: a crash exactly there sends
the invitation again on the re-run, with the same Message-ID (so clients can tell it is the
same message) — SMTP offers no way to ask a server whether it already took a message.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from myninja.errors import MyninjaError
from myninja.skills.api import Draft, Permission, ToolContext, ToolError, tool
from myninja.skills.scheduler.slots import Slot, iso_utc

LEDGER = "booking.json"
TEST_PAUSE_ENV = "MYNINJA_TEST_BOOKING_PAUSE"  # seconds to wait between the write and the send
BRANCHES = ".branches"  # agent_graph's folder of branch workspaces (it sits above us)
_locks: dict[Path, asyncio.Lock] = {}  # parallel branches of one task take turns


def _needs(arguments: dict[str, Any]) -> set[Permission]:
    """Writing always needs calendar_write; e-mail only where there is someone to invite."""
    needed = {Permission.CALENDAR_WRITE}
    if arguments.get("attendees"):
        needed.add(Permission.SEND_EMAIL)
    return needed


@tool(permissions=[Permission.CALENDAR_WRITE, Permission.SEND_EMAIL], needs=_needs)
async def book_meeting(
    title: Annotated[str, Field(min_length=1, max_length=200)],
    start_utc: Annotated[str, Field(description="Start in UTC, e.g. '2025-03-10T14:00:00Z'")],
    duration_minutes: Annotated[int, Field(ge=5, le=24 * 60)],
    ctx: ToolContext,
    attendees: Annotated[
        list[str],
        Field(max_length=20, description="Who to invite: 'Name <name@example.org>' or an email"),
    ] = [],  # noqa: B006  # the schema's default; never mutated
    timezones: Annotated[
        list[str] | None,
        Field(description="Attendees' IANA time zones, same order, for the e-mail's times"),
    ] = None,
    calendar: Annotated[
        str | None,
        Field(description="The configured calendar to write to; default: the writable one"),
    ] = None,
    description: str = "",
    location: str = "",
) -> str:
    """Book a meeting: write it to the person's calendar and e-mail the invitation to the
    attendees. Use a time find_meeting_slots offered and the person agreed to."""
    try:
        return await _book(
            ctx,
            title,
            start_utc,
            duration_minutes,
            attendees,
            timezones,
            calendar,
            description,
            location,
        )
    except MyninjaError as exc:
        raise ToolError(f"book_meeting: {exc.one_line()}") from None


async def _book(
    ctx: ToolContext,
    title: str,
    start_utc: str,
    minutes: int,
    attendees: list[str],
    timezones: list[str] | None,
    name: str | None,
    description: str,
    location: str,
) -> str:
    from myninja.skills.scheduler.caldav_write import (
        calendar_url,
        check_writable,
        plain_event,
        put_event,
        stored_from,
    )
    from myninja.skills.scheduler.sources import password_of

    start = _parse_start(start_utc)
    slot = Slot(start, start + timedelta(minutes=minutes))
    if timezones is not None and len(timezones) != len(attendees):
        raise ToolError(
            f"book_meeting: give one time zone per attendee ({len(attendees)} attendees, "
            f"{len(timezones)} time zones)"
        )
    name = _calendar_name(ctx, name)
    config = ctx.config.calendars[name]
    check_writable(name, config)
    zone = config.timezone or ctx.config.scheduler.timezone or "UTC"
    uid = booking_uid(ctx.task_id, start, title)
    # Everything that can be wrong with the settings is found before anything is written.
    password = password_of(name, ctx.config)
    message = smtp_password = None
    if attendees:
        message, smtp_password = _invitation(
            ctx, slot, title, attendees, timezones, uid, zone, description, location
        )
        stored = stored_from(message)
    else:
        stored = plain_event(slot, title, uid, zone, description, location)
    recipients = [a.addr_spec for a in message["To"].addresses] if message else []

    if ctx.config.scheduler.dry_run:
        url = await asyncio.to_thread(calendar_url, name, config, password)
        lines = [
            "Dry run ([scheduler] dry_run = true): nothing written, nothing sent.",
            f"Would write event {uid} to calendar {name} ({url}):",
            stored.rstrip(),
        ]
        if message is not None:
            lines.append(f"Would send {message['Subject']!r} to {', '.join(recipients)}")
        return "\n".join(lines)

    path = ledger_path(ctx)
    async with _locks.setdefault(path, asyncio.Lock()):
        ledger = read_ledger(path)
        if (other := _other_booking(ledger, uid)) is not None:
            # One meeting per task: a re-run that now finds a later time (its own event makes
            # the first one busy), or a second branch, must not book beside it.
            when = f" at {other['start_utc']}" if other.get("start_utc") else ""
            return (
                f"This task already booked {other.get('title') or 'a meeting'!r}{when} on "
                f"calendar {other['calendar']} (event {other['uid']}): nothing more was written "
                "or sent."
            )
        entry = ledger.setdefault(uid, {})
        notes: list[str] = []
        if "written" not in entry:
            url = await asyncio.to_thread(put_event, name, config, password, stored)
            entry["written"] = {"calendar": name, "uid": uid, "url": url, "title": title,
                                "start_utc": iso_utc(start), "minutes": minutes,
                                "timezone": zone}  # fmt: skip
            write_ledger(path, ledger)
            notes.append(f"Wrote event {uid} to calendar {name} ({url}).")
            if pause := os.environ.get(TEST_PAUSE_ENV):  # tests only: a moment to kill it in
                await asyncio.sleep(float(pause))
        else:
            notes.append(f"Event {uid} was already on calendar {entry['written']['calendar']}.")
        if message is not None and "sent" not in entry:
            notes.append(await _send(ctx, message, smtp_password, uid))
            # A crash here, after the server took the message and before this line, is the
            # one way the invitation goes out twice (see the module's docstring).
            entry["sent"] = {"message_id": message["Message-ID"], "recipients": recipients}
            write_ledger(path, ledger)
        elif message is not None:
            notes.append(
                f"Invitation was already sent to {', '.join(entry['sent']['recipients'])}."
            )
    return " ".join(notes)


async def booked(draft: Draft) -> str | None:
    """The line under a scheduler's answer naming what the task booked, read from its ledger:
    the record stands whatever words the model chose (or left out)."""
    done = []
    for entry in read_ledger(draft.workspace / LEDGER).values():
        written = entry.get("written")
        if not written or "removed" in entry:
            continue
        what = f"Booked {written.get('title')!r}" if written.get("title") else "Booked an event"
        if written.get("start_utc") and written.get("minutes"):
            start = _parse_start(written["start_utc"])
            slot = Slot(start, start + timedelta(minutes=int(written["minutes"])))
            what += f" for {slot.describe(written.get('timezone') or 'UTC')}"
        line = f"{what} on calendar {written['calendar']} (event {written['uid']})"
        if sent := entry.get("sent"):
            line += f"; invitation sent to {', '.join(sent['recipients'])}"
        done.append(line + ".")
    return " ".join(done) or None


def booked_start(workspace: Path) -> str | None:
    """The start (UTC, ISO) of the meeting this task booked and nobody removed, if any: what a
    re-run books again rather than the first time free now (which its own event has taken)."""
    other = _other_booking(read_ledger(workspace / LEDGER), uid=None)
    return other.get("start_utc") if other else None


def _other_booking(ledger: dict[str, dict[str, Any]], uid: str | None) -> dict[str, Any] | None:
    for key, entry in ledger.items():
        if key != uid and "written" in entry and "removed" not in entry:
            return dict(entry["written"])
    return None


def booking_uid(task_id: str, start: datetime, title: str) -> str:
    """The event's UID: the same for the same task, start and title, so a re-run after a
    crash writes over the first attempt's event instead of beside it."""
    key = f"{task_id}|{start.astimezone(UTC).isoformat()}|{' '.join(title.split())}"
    return f"{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}@myninja"


def ledger_path(ctx: ToolContext) -> Path:
    """The task's ledger: in its workspace, above any branch folder, since a booking is one
    per task whichever branch makes it."""
    folder = ctx.workspace
    if folder.parent.name == BRANCHES:
        folder = folder.parent.parent
    return folder / LEDGER


def read_ledger(path: Path) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        # Guessing would risk a second invitation: the person looks at it instead.
        raise ToolError(f"book_meeting: cannot read the booking ledger {path}: {exc}") from None
    return data if isinstance(data, dict) else {}


def write_ledger(path: Path, ledger: dict[str, dict[str, Any]]) -> None:
    """Replace the ledger atomically: a crash leaves the old one or the new one, never half."""
    fd, temp = tempfile.mkstemp(prefix=".booking-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(ledger, out, indent=1, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _calendar_name(ctx: ToolContext, wanted: str | None) -> str:
    calendars = ctx.config.calendars
    if wanted is not None:
        wanted = wanted.removeprefix("cal:")
        if wanted not in calendars:
            known = ", ".join(sorted(calendars)) or "none"
            raise ToolError(f"book_meeting: no calendar {wanted!r} is configured (known: {known})")
        return wanted
    writable = sorted(n for n, c in calendars.items() if c.writable)
    if len(writable) == 1:
        return writable[0]
    if not writable:
        raise ToolError(
            "book_meeting: no calendar is writable: set writable = true under "
            "[calendars.NAME] for the one to book meetings on"
        )
    raise ToolError(f"book_meeting: say which calendar to write to: {', '.join(writable)}")


def _invitation(
    ctx: ToolContext,
    slot: Slot,
    title: str,
    attendees: list[str],
    timezones: list[str] | None,
    uid: str,
    zone: str,
    description: str,
    location: str,
) -> tuple[EmailMessage, str | None]:
    from myninja.backends.keys import key_store
    from myninja.errors import ConfigError
    from myninja.skills.scheduler.itip import attendee_names, invitation_email
    from myninja.skills.scheduler.mail import KEY_NAME

    smtp = ctx.config.smtp
    if not smtp.host or not smtp.from_address:
        raise ConfigError(
            "no mail server to send the invitation through",
            hint="set [smtp] host and from_address (or book with no attendees)",
        )
    zones = None
    if timezones is not None:
        addresses = list(attendee_names(attendees))
        zones = dict(zip(addresses, timezones, strict=False))
    message = invitation_email(
        slot,
        title=title,
        organizer=smtp.from_address,
        attendees=attendees,
        uid=uid,
        description=description,
        location=location,
        timezones=zones,
        event_tz=zone,
    )
    return message, key_store(ctx.config).get(KEY_NAME)


async def _send(ctx: ToolContext, message: EmailMessage, password: str | None, uid: str) -> str:
    from myninja.skills.scheduler.itip import idempotency_key
    from myninja.skills.scheduler.mail import send_invitation

    sent = await send_invitation(
        message, ctx.config.smtp, password, idempotency_key=idempotency_key(uid, 0)
    )
    return f"Sent the invitation {message['Subject']!r} to {', '.join(sent)}."


def _parse_start(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ToolError(
            f"book_meeting: start_utc {value!r} is not an ISO time like 2025-03-10T14:00:00Z"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
