"""A real SMTP server on 127.0.0.1 for the invitation tests: aiosmtpd in its own thread, on a
free port, keeping every envelope it accepts. Optionally it demands a login (plain text is
allowed on loopback), or refuses some recipients as a real server refuses unknown mailboxes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.local_http import free_port


@dataclass
class Captured:
    """One accepted message: the envelope's sender and recipients, the bytes of DATA, and the
    user the client logged in as (None: no login)."""

    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    login: str | None


@dataclass
class CapturingHandler:
    """Keeps what the server accepted; refuses RCPT to the addresses in `refuse`, and MAIL
    before a login where `login_required`."""

    refuse: dict[str, str] = field(default_factory=dict)  # address -> "550 5.1.1 reply"
    login_required: bool = False
    messages: list[Captured] = field(default_factory=list)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        # aiosmtpd's own auth_required warns about plain text on every connection; loopback
        # is the one place plain text is fine, so the rule is kept here instead.
        if self.login_required and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        assert isinstance(content, bytes)
        login = session.auth_data.login.decode() if session.authenticated else None
        self.messages.append(
            Captured(str(envelope.mail_from), list(envelope.rcpt_tos), bytes(content), login)
        )
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: CapturingHandler


@contextmanager
def smtp_server(
    *, login: tuple[str, str] | None = None, refuse: dict[str, str] | None = None
) -> Iterator[SmtpServer]:
    """Serve SMTP on 127.0.0.1 for the block. With `login` (user, password), AUTH is required
    and only that pair is accepted."""
    handler = CapturingHandler(refuse=dict(refuse or {}), login_required=login is not None)
    options: dict[str, Any] = {}
    if login is not None:
        user, password = login[0].encode(), login[1].encode()

        def authenticator(
            server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
        ) -> AuthResult:
            ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
                user,
                password,
            )
            # handled=False: aiosmtpd then answers 535 itself (True would leave it silent).
            return AuthResult(success=ok, handled=False, auth_data=data)

        # Plain-text AUTH: loopback only, as a local relay takes it; the test has no TLS.
        options = {"authenticator": authenticator, "auth_require_tls": False}
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, handler)
    finally:
        controller.stop()
