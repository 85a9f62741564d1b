"""Sending an invitation through the SMTP server in `[smtp]`, with aiosmtplib.

All or nothing: every attendee is offered to the server (RCPT) before the message is; if the
server refuses any of them, the envelope is reset and nobody gets an invitation the others
lack. Each failure is one MyninjaError whose exit code says whose move it is: a wrong password
or setting is the person's (2), a server that cannot be reached now is 4.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY

import aiosmtplib

from myninja.config import SmtpConfig
from myninja.errors import AuthError, BackendUnreachable, ConfigError, MyninjaError, UsageError
from myninja.skills.scheduler.itip import message_id

KEY_NAME = "smtp"  # the key store entry holding the password: `myninja keys set smtp`
STEPS_PER_SEND = 4  # connect, login, envelope, data: the whole send is bounded by this many


async def send_invitation(
    message: EmailMessage,
    smtp: SmtpConfig,
    password: str | None,
    *,
    idempotency_key: str,
) -> list[str]:
    """Send `message` to the addresses in its To header, as `smtp.from_address`; return them.

    `idempotency_key` (itip.idempotency_key: the event's UID and SEQUENCE) fixes the
    Message-ID, so sending the same version again is recognisably the same message. With a
    `password`, logs in as `smtp.username` (default: the from address); without, does not."""
    if not smtp.host or not smtp.from_address:
        raise ConfigError(
            "no mail server to send the invitation through",
            hint="set [smtp] host and from_address, and the password with "
            f"`myninja keys set {KEY_NAME}`",
        )
    recipients = [address.addr_spec for address in message["To"].addresses]
    if not recipients:
        raise UsageError("the invitation has no recipients")
    domain = smtp.from_address.rpartition("@")[2]
    del message["Message-ID"]
    message["Message-ID"] = message_id(idempotency_key, domain)
    where = f"{smtp.host}:{smtp.port}"
    try:
        async with asyncio.timeout(smtp.timeout_s * STEPS_PER_SEND):
            await _deliver(message, smtp, smtp.from_address, password, recipients)
    except MyninjaError:
        raise
    except aiosmtplib.SMTPAuthenticationError as exc:
        user = smtp.username or smtp.from_address
        raise AuthError(
            f"the SMTP server {where} refused the login as {user}: {_reply(exc)}",
            hint=f"check [smtp] username, and the password with `myninja keys set {KEY_NAME}`",
        ) from None
    except aiosmtplib.SMTPSenderRefused as exc:
        if exc.code == 530:  # RFC 4954: authentication required
            raise AuthError(
                f"the SMTP server {where} wants a login: {_reply(exc)}",
                hint=f"store the password with `myninja keys set {KEY_NAME}`",
            ) from None
        raise UsageError(
            f"the SMTP server {where} refused the sender {exc.sender}: {_reply(exc)}",
            hint="check [smtp] from_address",
        ) from None
    except aiosmtplib.SMTPResponseException as exc:
        raise MyninjaError(
            f"the SMTP server {where} refused the invitation: {_reply(exc)}"
        ) from None
    except ssl.SSLError as exc:
        raise ConfigError(
            f"TLS with the SMTP server {where} failed: {exc.reason or exc}",
            hint="check [smtp] security and port (starttls: usually 587, tls: 465)",
        ) from None
    except (TimeoutError, aiosmtplib.SMTPTimeoutError):
        raise BackendUnreachable(
            f"the SMTP server {where} did not answer in time", hint="try again later"
        ) from None
    except (OSError, aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected) as exc:
        raise BackendUnreachable(
            f"cannot reach the SMTP server {where}: {_why(exc)}", hint="check [smtp] host and port"
        ) from None
    except aiosmtplib.SMTPException as exc:  # e.g. no STARTTLS or AUTH on offer
        raise ConfigError(
            f"the SMTP server {where}: {exc}", hint="check [smtp] security and port"
        ) from None
    return recipients


async def _deliver(
    message: EmailMessage,
    smtp: SmtpConfig,
    sender: str,
    password: str | None,
    recipients: list[str],
) -> None:
    client = aiosmtplib.SMTP(
        hostname=smtp.host,
        port=smtp.port,
        timeout=smtp.timeout_s,
        use_tls=smtp.security == "tls",
        # True, not None: a server that does not offer STARTTLS is an error, never a quiet
        # fall back to plain text.
        start_tls=smtp.security == "starttls",
    )
    async with client:
        if password:
            await client.login(smtp.username or sender, password)
        # Non-ASCII addresses need the server's SMTPUTF8; ASCII ones go as they always have.
        wide = not all(address.isascii() for address in [sender, *recipients])
        if wide and client.last_ehlo_response is None:
            await client.ehlo()  # what the server supports is known only after EHLO
        if wide and not client.supports_extension("smtputf8"):
            raise UsageError(
                f"the SMTP server {smtp.host}:{smtp.port} does not take non-ASCII addresses "
                "(no SMTPUTF8)"
            )
        options, encoding = (["SMTPUTF8"], "utf-8") if wide else ([], "ascii")
        await client.mail(sender, options=options, encoding=encoding)
        refused: list[aiosmtplib.SMTPRecipientRefused] = []
        for address in recipients:
            try:
                await client.rcpt(address, encoding=encoding)
            except aiosmtplib.SMTPRecipientRefused as exc:
                refused.append(exc)
        if refused:
            await client.rset()  # nobody gets it unless everybody can
            # 4xx is "not now" (a full mailbox, greylisting): worth a retry, unlike 5xx.
            temporary = all(exc.code < 500 for exc in refused)
            error = BackendUnreachable if temporary else UsageError
            raise error(
                f"the SMTP server {smtp.host}:{smtp.port} refused "
                f"{'the attendee' if len(refused) == 1 else 'the attendees'} "
                f"{', '.join(f'{exc.recipient} ({_reply(exc)})' for exc in refused)}; "
                "the invitation was sent to nobody",
                hint="try again later" if temporary else "check the addresses",
            )
        await client.data(message.as_bytes(policy=SMTP_POLICY.clone(utf8=wide)))


def _reply(exc: aiosmtplib.SMTPResponseException) -> str:
    return f"{exc.code} {' '.join(exc.message.split())}"


def _why(exc: BaseException) -> str:
    """'Connection refused' rather than aiosmtplib's wrapping of asyncio's wording of it."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno and cause.errno > 0:
            return os.strerror(cause.errno)
        if (
            isinstance(cause, OSError) and cause.strerror
        ):  # e.g. a host name that resolves to nothing
            return cause.strerror
        cause = cause.__cause__
    return str(exc)
