# ruff: noqa: F821, F722
"""A private D-Bus session bus (`dbus-daemon --session`, started per test) with a notification
server on it that speaks org.freedesktop.Notifications, records what it is sent and presses
buttons or replies as a person would, by the spec's signals.

No `from __future__ import annotations` here: dbus-fast reads the D-Bus signatures written as
the methods' annotations.
"""

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from dbus_fast.aio import MessageBus
from dbus_fast.service import ServiceInterface, method, signal

NAME = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"


@dataclass
class Sent:
    """One Notify call: who sent it (its bus connection), and what."""

    id: int
    sender: str
    app_name: str
    summary: str
    body: str
    actions: dict[str, str]  # action key -> label
    hints: dict[str, Any] = field(default_factory=dict)


class NotificationServer(ServiceInterface):  # type: ignore[misc]
    def __init__(self, capabilities: list[str]) -> None:
        super().__init__(NAME)
        self.capabilities = capabilities
        self.sent: list[Sent] = []
        self.sender = ""  # set per call by the message handler below

    @method()
    def Notify(
        self,
        app_name: "s",
        replaces_id: "u",
        app_icon: "s",
        summary: "s",
        body: "s",
        actions: "as",
        hints: "a{sv}",
        expire_timeout: "i",
    ) -> "u":
        nid = len(self.sent) + 1
        pairs = dict(zip(actions[::2], actions[1::2], strict=False))
        self.sent.append(Sent(nid, self.sender, app_name, summary, body, pairs, dict(hints)))
        return nid

    @method()
    def GetCapabilities(self) -> "as":
        return self.capabilities

    @method()
    def GetServerInformation(self) -> "ssss":
        return ["myninja-test-notifications", "myninja", "1.0", "1.2"]

    @method()
    def CloseNotification(self, nid: "u") -> None:
        self.NotificationClosed(nid, 3)

    @signal()
    def ActionInvoked(self, nid: "u", action_key: "s") -> "us":
        return [nid, action_key]

    @signal()
    def NotificationReplied(self, nid: "u", text: "s") -> "us":
        return [nid, text]

    @signal()
    def NotificationClosed(self, nid: "u", reason: "u") -> "uu":
        return [nid, reason]

    async def next_sent(self, count: int, within_s: float = 30) -> Sent:
        """The `count`-th notification (1-based), once it has come."""
        for _ in range(int(within_s / 0.05)):
            if len(self.sent) >= count:
                return self.sent[count - 1]
            await asyncio.sleep(0.05)
        raise AssertionError(f"notification {count} never came (got {len(self.sent)})")


def dbus_daemon_present() -> bool:
    return shutil.which("dbus-daemon") is not None


@contextmanager
def session_bus() -> Iterator[str]:
    """A fresh session bus for one test; its address."""
    daemon = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--print-address=1", "--nopidfile"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert daemon.stdout is not None
        address = daemon.stdout.readline().strip()
        if not address:
            raise RuntimeError("dbus-daemon printed no address")
        yield address
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


@asynccontextmanager
async def notification_server(
    address: str, capabilities: list[str] | None = None
) -> AsyncIterator[NotificationServer]:
    """The server on the bus at `address`, with the spec's capabilities (actions, a body,
    KDE's inline reply)."""
    bus = await MessageBus(bus_address=address).connect()
    server = NotificationServer(capabilities or ["actions", "body", "inline-reply"])

    def note_sender(message: Any) -> None:
        if message.member == "Notify":
            server.sender = message.sender

    bus.add_message_handler(note_sender)  # runs before the method handler
    bus.export(PATH, server)
    await bus.request_name(NAME)
    try:
        yield server
    finally:
        bus.disconnect()
