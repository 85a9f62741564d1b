"""The invitation as an e-mail: an iTIP REQUEST (RFC 5546) carried the iMIP way (RFC 6047).

The calendar is the one `invite.draft_invite` drafts, so the .ics saved to a workspace and the
one mailed out never disagree; here it gains what a mailed request needs: a SEQUENCE for
updates, each attendee's name (CN), and, where the organizer's zone is known, DTSTART/DTEND
in that zone (TZID) with its VTIMEZONE, so a recurring edit or a DST change reads right in
every client. The message is multipart/mixed: a text/plain part and the `text/calendar;
method=REQUEST` part as alternatives (what calendar clients act on), and the same .ics again as
an `invite.ics` attachment for clients that only offer attachments.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from icalendar import Calendar

from myninja.errors import UsageError
from myninja.skills.scheduler.invite import draft_invite
from myninja.skills.scheduler.slots import Slot

ATTACHMENT_NAME = "invite.ics"


def idempotency_key(uid: str, sequence: int) -> str:
    """What identifies one sending of one version of an event: its UID and SEQUENCE."""
    return f"{uid}#{sequence}"


def message_id(key: str, domain: str) -> str:
    """A Message-ID that is the same whenever `key` is: a resend of the same version of an
    invitation is recognisable as the same message (by us, and by mail clients that drop
    duplicates), while an update (a new SEQUENCE) is a new one."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    return f"<invite-{digest}@{domain}>"


def invitation_email(
    slot: Slot,
    *,
    title: str,
    organizer: str,
    attendees: Sequence[str],
    uid: str,
    sequence: int = 0,
    description: str = "",
    location: str = "",
    now: datetime | None = None,
    timezones: Mapping[str, str] | None = None,
    event_tz: str | None = None,
) -> EmailMessage:
    """The e-mail inviting `attendees` to `title` at `slot`, from `organizer`.

    Attendees and the organizer are addresses, optionally with a name ('Ben Okafor
    <ben@example.com>'); an attendee without an address is a UsageError naming every such
    attendee. To holds exactly the attendees with an address, once each, never the organizer.
    `timezones` maps an attendee's address to their IANA zone, for the times in the text;
    `event_tz` is the organizer's zone for DTSTART/DTEND (default: UTC, no VTIMEZONE needed).
    """
    if sequence < 0:
        raise UsageError(f"an invitation's sequence counts up from 0, not {sequence}")
    organizer_name, organizer_address = parseaddr(organizer)
    if "@" not in organizer_address:
        raise UsageError(f"no e-mail address for the organizer: {organizer!r}")
    names = attendee_names(attendees)
    stamp = (now or datetime.now(UTC)).astimezone(UTC)
    ics, text = draft_invite(
        slot,
        title=title,
        organizer=organizer_address,
        attendees=list(names),
        description=description,
        location=location,
        uid=uid,
        now=stamp,
        timezones=timezones,
    )
    calendar = _request_calendar(ics, slot, names, organizer_name, sequence, event_tz)
    event = calendar.events[0]
    # draft_invite dropped duplicates and the organizer: its attendees are the recipients.
    recipients = [str(a).removeprefix("mailto:") for a in event.attendees]
    ics = calendar.to_ical().decode("utf-8")

    message = EmailMessage()
    update = "Updated invitation" if sequence else "Invitation"
    message["Subject"] = f"{update}: {title.strip()} @ {slot.describe(event_tz or 'UTC')}"
    message["From"] = _address(organizer_name, organizer_address)
    message["To"] = [_address(names.get(email, ""), email) for email in recipients]
    message["Date"] = format_datetime(stamp)
    domain = organizer_address.rpartition("@")[2]
    message["Message-ID"] = message_id(idempotency_key(str(event["UID"]), sequence), domain)
    # Quoted-printable: readable where it is ASCII, and no server needs 8BITMIME for the rest.
    message.set_content(text, charset="utf-8", cte="quoted-printable")
    message.add_alternative(
        ics,
        subtype="calendar",
        charset="utf-8",
        cte="quoted-printable",
        params={"method": "REQUEST"},
        disposition="inline",
    )
    message.add_attachment(
        ics.encode("utf-8"), maintype="application", subtype="ics", filename=ATTACHMENT_NAME
    )
    return message


def attendee_names(attendees: Sequence[str]) -> dict[str, str]:
    """{address: display name ('' where none)} in the order given; a UsageError naming every
    attendee that has no address."""
    names: dict[str, str] = {}
    missing: list[str] = []
    for value in attendees:
        name, address = parseaddr(value.strip().removeprefix("mailto:"))
        if "@" not in address:
            missing.append(value.strip() or repr(value))
        else:
            names.setdefault(address, name)
    if missing:
        raise UsageError(
            f"no e-mail address for {', '.join(missing)}",
            hint="give each attendee as name@example.org or 'Name <name@example.org>'",
        )
    return names


def _request_calendar(
    ics: str,
    slot: Slot,
    names: Mapping[str, str],
    organizer_name: str,
    sequence: int,
    event_tz: str | None,
) -> Calendar:
    calendar = Calendar.from_ical(ics)
    event = calendar.events[0]
    event.sequence = sequence
    for attendee in event.attendees:
        name = names.get(str(attendee).removeprefix("mailto:"))
        if name:
            attendee.params["CN"] = name
    if organizer_name:
        event["ORGANIZER"].params["CN"] = organizer_name
    if event_tz is not None:
        start, end = slot.local(event_tz)  # zoneinfo times, so icalendar writes their TZID
        event.start, event.end = start, end
        # The zone's rules for the years around the event: enough for any client, and a few
        # dozen lines rather than every transition since 1970.
        calendar.add_missing_timezones(
            first_date=date(start.year - 1, 1, 1), last_date=date(end.year + 2, 1, 1)
        )
    return calendar


def _address(name: str, address: str) -> Address:
    try:
        return Address(display_name=name, addr_spec=address)
    except (ValueError, IndexError) as exc:  # the header parser's own complaint
        raise UsageError(f"not an e-mail address: {address!r} ({exc})") from None
