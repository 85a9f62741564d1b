"""Sending the invitation to a real SMTP server (aiosmtpd on 127.0.0.1): what arrives parses
as mail, its calendar part round-trips through icalendar, the envelope goes to exactly the
attendees, and each way sending fails is one line with its exit code."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from icalendar import Calendar

from myninja.config import SmtpConfig
from myninja.errors import EXIT_UNREACHABLE, EXIT_USAGE, MyninjaError
from myninja.skills.scheduler.itip import idempotency_key, invitation_email
from myninja.skills.scheduler.mail import send_invitation
from myninja.skills.scheduler.slots import Slot
from tests.local_http import free_port
from tests.smtp_server import smtp_server

# Tuesday 1 April 2025, 13:00-14:00 UTC: 15:00 CEST in Berlin, 09:00 EDT in New York.
SLOT = Slot(datetime(2025, 4, 1, 13, tzinfo=UTC), datetime(2025, 4, 1, 14, tzinfo=UTC))
ORGANIZER = "anna@example.de"
ATTENDEES = ["Ben Okafor <ben@example.com>", "chika@example.org"]
ADDRESSES = ["ben@example.com", "chika@example.org"]
UID = "planning-2025-04-01@example.de"


def invitation(**overrides: object) -> EmailMessage:
    arguments: dict[str, object] = {
        "title": "Quarterly planning",
        "organizer": f"Anna Schmidt <{ORGANIZER}>",
        # The organizer listed among the attendees too: she must not get her own invitation.
        "attendees": [*ATTENDEES, ORGANIZER],
        "uid": UID,
        "sequence": 2,
        "now": datetime(2025, 3, 20, 9, tzinfo=UTC),
        "timezones": {"ben@example.com": "America/New_York"},
        "event_tz": "Europe/Berlin",
    }
    arguments.update(overrides)
    return invitation_email(SLOT, **arguments)  # type: ignore[arg-type]


def config(port: int, **overrides: object) -> SmtpConfig:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "from_address": ORGANIZER,
        "timeout_s": 5.0,
    }
    values.update(overrides)
    return SmtpConfig.model_validate(values)


async def send(message: EmailMessage, smtp: SmtpConfig, password: str | None = None) -> list[str]:
    return await send_invitation(message, smtp, password, idempotency_key=idempotency_key(UID, 2))


def one_line_error(caught: pytest.ExceptionInfo[MyninjaError]) -> str:
    line = caught.value.one_line()
    assert "\n" not in line and "Traceback" not in line
    return line


async def test_the_captured_invitation_parses_and_round_trips() -> None:
    with smtp_server() as server:
        sent = await send(invitation(), config(server.port))
    assert sent == ADDRESSES
    [captured] = server.handler.messages
    assert captured.mail_from == ORGANIZER
    assert captured.rcpt_tos == ADDRESSES  # exactly the attendees, the organizer not at all

    mail = email.message_from_bytes(captured.content, policy=email.policy.default)
    assert mail.get_content_type() == "multipart/mixed"
    assert mail["From"].addresses[0].addr_spec == ORGANIZER
    assert [a.addr_spec for a in mail["To"].addresses] == ADDRESSES
    assert "Quarterly planning" in mail["Subject"]
    assert mail["Message-ID"] and mail["Date"]

    calendars = [part for part in mail.walk() if part.get_content_type() == "text/calendar"]
    assert len(calendars) == 1
    [part] = calendars
    assert part.get_param("method") == "REQUEST"
    assert part.get_content_charset() == "utf-8"

    calendar = Calendar.from_ical(part.get_content())
    assert str(calendar["METHOD"]) == "REQUEST"
    [event] = calendar.events
    assert str(event["UID"]) == UID
    assert int(event["SEQUENCE"]) == 2
    assert event["DTSTAMP"].dt == datetime(2025, 3, 20, 9, tzinfo=UTC)
    assert event["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert event["DTEND"].params["TZID"] == "Europe/Berlin"
    assert event.start == SLOT.start and event.end == SLOT.end  # the same instants
    assert event.start.hour == 15  # 13:00 UTC is 15:00 CEST
    assert [tz.tz_name for tz in calendar.timezones] == ["Europe/Berlin"]
    assert str(event["ORGANIZER"]) == f"mailto:{ORGANIZER}"
    assert event["ORGANIZER"].params["CN"] == "Anna Schmidt"
    assert [str(a) for a in event.attendees] == [f"mailto:{a}" for a in ADDRESSES]
    for attendee in event.attendees:
        assert attendee.params["ROLE"] == "REQ-PARTICIPANT"
        assert attendee.params["PARTSTAT"] == "NEEDS-ACTION"
        assert attendee.params["RSVP"] == "TRUE"
    assert event.attendees[0].params["CN"] == "Ben Okafor"

    # The same .ics rides along as an attachment for clients that only offer those.
    attachments = list(mail.iter_attachments())
    assert [a.get_filename() for a in attachments] == ["invite.ics"]
    assert attachments[0].get_content_type() == "application/ics"
    attached = Calendar.from_ical(attachments[0].get_content())
    assert str(attached.events[0]["UID"]) == UID

    text = mail.get_body(preferencelist=("plain",))
    assert text is not None
    body = text.get_content()
    assert "Quarterly planning" in body
    assert "Tuesday 1 April 2025, 13:00–14:00 UTC" in body
    assert "ben@example.com: Tuesday 1 April 2025, 09:00–10:00 EDT" in body


async def test_a_resend_of_the_same_version_has_the_same_message_id() -> None:
    with smtp_server() as server:
        await send(invitation(), config(server.port))
        await send(invitation(now=datetime(2025, 3, 21, tzinfo=UTC)), config(server.port))
        await send_invitation(
            invitation(sequence=3),
            config(server.port),
            None,
            idempotency_key=idempotency_key(UID, 3),
        )
    ids = [
        email.message_from_bytes(m.content, policy=email.policy.default)["Message-ID"]
        for m in server.handler.messages
    ]
    assert ids[0] == ids[1] != ids[2]
    assert ids[0].endswith("@example.de>")


async def test_the_right_password_logs_in() -> None:
    with smtp_server(login=("anna", "right horse")) as server:
        sent = await send(invitation(), config(server.port, username="anna"), "right horse")
    assert sent == ADDRESSES
    [captured] = server.handler.messages
    assert captured.login == "anna"


async def test_without_a_password_there_is_no_login() -> None:
    with smtp_server(login=("anna", "right horse")) as server:
        with pytest.raises(MyninjaError) as caught:
            await send(invitation(), config(server.port, username="anna"), None)
    line = one_line_error(caught)
    assert "wants a login" in line and "myninja keys set smtp" in line
    assert caught.value.exit_code == EXIT_USAGE
    assert server.handler.messages == []


async def test_a_wrong_password_is_one_line_and_exit_2() -> None:
    with smtp_server(login=("anna", "right horse")) as server:
        with pytest.raises(MyninjaError) as caught:
            await send(invitation(), config(server.port, username="anna"), "wrong")
    line = one_line_error(caught)
    assert "refused the login as anna" in line and "myninja keys set smtp" in line
    assert caught.value.exit_code == EXIT_USAGE
    assert server.handler.messages == []


async def test_a_server_that_is_down_is_one_line_and_exit_4() -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(MyninjaError) as caught:
        await send(invitation(), config(port))
    line = one_line_error(caught)
    assert f"127.0.0.1:{port}" in line and "cannot reach" in line
    assert caught.value.exit_code == EXIT_UNREACHABLE


async def test_a_refused_attendee_is_named_and_nobody_gets_it() -> None:
    refuse = {"chika@example.org": "550 5.1.1 No such user here"}
    with smtp_server(refuse=refuse) as server:
        with pytest.raises(MyninjaError) as caught:
            await send(invitation(), config(server.port))
    line = one_line_error(caught)
    assert "chika@example.org" in line and "550" in line and "sent to nobody" in line
    assert "ben@example.com" not in line
    assert caught.value.exit_code == EXIT_USAGE
    assert server.handler.messages == []  # all or nothing: Ben did not get it either


async def test_starttls_is_required_not_skipped() -> None:
    # This server offers no STARTTLS: sending in plain text instead would leak the mail.
    with smtp_server() as server:
        with pytest.raises(MyninjaError) as caught:
            await send(invitation(), config(server.port, security="starttls"))
    line = one_line_error(caught)
    assert "STARTTLS" in line
    assert caught.value.exit_code == EXIT_USAGE
    assert server.handler.messages == []


async def test_without_a_mail_server_nothing_is_tried() -> None:
    with pytest.raises(MyninjaError) as caught:
        await send(invitation(), SmtpConfig())
    assert "[smtp] host and from_address" in one_line_error(caught)
    assert caught.value.exit_code == EXIT_USAGE
