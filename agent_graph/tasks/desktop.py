"""The OS notification: desktop-notifier (D-Bus on Linux, macOS, Windows) with buttons that act
on the task (Allow once / Deny for a permission, a reply field or the choices for a question,
Open), and `notify-send` where no notification server answers on D-Bus.

The app sends one while it is not focused (ninja_tui/notify.py); the worker sends one while no
app is open (agent_graph/tasks/presence.py). Each passes its own `Actions`: the app answers
through the worker, the worker through its task manager.

Task text is untrusted (a pasted request, a model's answer): `clean` leaves one line of printable
text, so nothing in a task can reach a terminal or a notification server as control codes.
"""

from __future__ import annotations

import asyncio
import html
import logging
import os
import platform
import shutil
import subprocess
import time
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from myninja.agent_graph.permissions import ALLOW_ONCE, DENY, asks_permission

APP_NAME = "myninja"
TITLE_MAX = 80
BODY_MAX = 200
ACTION_WINDOW_S = 3600  # a worker stays this long for a notice's buttons (its callbacks)
MAX_CHOICE_BUTTONS = 3  # more than this, and the reply field (or Open) answers instead
# Unicode categories dropped: Cc holds C0/C1 controls (ESC, BEL, CSI 0x9b, OSC 0x9d),
# Cf the invisible bidi overrides that can make a notification read backwards.
_DROPPED = ("Cc", "Cf")

Kind = Literal["question", "finished"]
Channel = Literal["desktop-notifier", "notify-send"]


def clean(text: str, limit: int) -> str:
    """One line of printable text, at most `limit` characters."""
    kept = "".join(" " if unicodedata.category(ch) in _DROPPED else ch for ch in text)
    line = " ".join(kept.split())  # newlines, tabs and runs of spaces become one space
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


@dataclass(frozen=True)
class Notice:
    """One thing to tell the person: a task that asks (with its open question) or finished."""

    kind: Kind
    task_id: str
    title: str
    body: str
    urgent: bool = False
    question: dict[str, Any] | None = None  # an open question: its id, text, choices, key


class Actions(Protocol):
    """What a button does, in the process that sent the notification."""

    async def answer(self, task_id: str, question_id: str, text: str) -> None: ...

    async def open(self, task_id: str) -> None: ...

    def can_open(self) -> bool: ...


@dataclass(frozen=True)
class Button:
    """A button: its stable action key (what D-Bus reports back), its label and the answer it
    gives (None: it opens the task)."""

    key: str
    label: str
    answer: str | None = None


def buttons_for(notice: Notice, can_open: bool) -> tuple[list[Button], bool]:
    """The buttons of a notice, and whether it carries a reply field (a question answered in
    words)."""
    buttons: list[Button] = []
    reply = False
    question = notice.question
    if notice.kind == "question" and question is not None:
        choices = [str(c) for c in question.get("choices") or []]
        if asks_permission(question.get("key")):
            # "always allow" is a lasting grant: given where the whole question is shown.
            buttons += [Button("allow", "Allow once", ALLOW_ONCE), Button("deny", "Deny", DENY)]
        elif choices and len(choices) <= MAX_CHOICE_BUTTONS:
            buttons += [Button(f"choice-{i}", c, c) for i, c in enumerate(choices)]
        else:
            reply = True
    if can_open:
        buttons.append(Button("open", "Open"))
    return buttons, reply


def session_bus_present() -> bool:
    """Whether a D-Bus session bus can be reached (Linux); elsewhere desktop-notifier has its
    own way. A worker started outside the desktop session (cron's `@reboot`, a shell over ssh)
    lacks DBUS_SESSION_BUS_ADDRESS while the user's bus is at its standard place: it is named
    then, as systemd's user manager would (dbus-fast looks at the variable only)."""
    if platform.system() != "Linux":
        return True
    if os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return True
    standard = Path(f"/run/user/{os.getuid()}/bus")
    if standard.is_socket():
        os.environ["DBUS_SESSION_BUS_ADDRESS"] = f"unix:path={standard}"
        return True
    return False


@dataclass
class DesktopNotices:
    """Sends notices on the OS's notification centre; remembers what it sent (`sent`, for the
    app's record) and keeps the notifier alive so its buttons' callbacks arrive."""

    actions: Actions
    which: Callable[[str], str | None] = shutil.which
    sent: list[tuple[Channel, str]] = field(default_factory=list)  # (channel, task id)
    _notifier: Any = None
    _usable: bool | None = None  # None: not tried yet
    _capabilities: frozenset[Any] = frozenset()
    _running: set[asyncio.Task[Any]] = field(default_factory=set)
    _awaiting: dict[str, float] = field(default_factory=dict)  # task id -> when its notice went
    _children: list[subprocess.Popen[bytes]] = field(default_factory=list)

    async def send(self, notice: Notice) -> Channel | None:
        """Deliver `notice`; the channel that took it, or None where there is none."""
        if await self._desktop_notifier_ready():
            await self._send_desktop(notice)
            channel: Channel | None = "desktop-notifier"
            if notice.question is not None:
                self._awaiting[notice.task_id] = time.monotonic()
        else:
            channel = "notify-send" if self._notify_send(notice) else None
        if channel is not None:
            self.sent.append((channel, notice.task_id))
        return channel

    async def _desktop_notifier_ready(self) -> bool:
        if self._usable is None:
            self._usable = False
            if session_bus_present():
                try:
                    from desktop_notifier import DesktopNotifier

                    notifier = DesktopNotifier(app_name=APP_NAME)
                    # Connects, and raises where no notification server is on the bus
                    # (desktop-notifier's own send only logs such a failure).
                    self._capabilities = await asyncio.wait_for(notifier.get_capabilities(), 5)
                except Exception as exc:  # no bus, no server, a platform without a backend
                    logging.getLogger(__name__).debug("desktop-notifier unusable: %s", exc)
                else:
                    self._notifier, self._usable = notifier, True
        return bool(self._usable)

    async def _send_desktop(self, notice: Notice) -> None:
        from desktop_notifier import Button as DnButton
        from desktop_notifier import ReplyField, Urgency

        buttons, reply = buttons_for(notice, self.actions.can_open())
        shown = [
            DnButton(title=b.label, identifier=b.key, on_pressed=self._pressed(notice, b))
            for b in buttons
        ]
        reply_field = None
        if reply:
            reply_field = ReplyField(
                title="Answer", button_title="Send", on_replied=self._replied(notice)
            )
        on_clicked = None
        if self.actions.can_open():
            on_clicked = self._pressed(notice, Button("open", "Open"))
        await self._notifier.send(
            title=clean(notice.title, TITLE_MAX),
            message=clean(notice.body, BODY_MAX),
            urgency=Urgency.Critical if notice.urgent else Urgency.Normal,
            buttons=shown,
            reply_field=reply_field,
            on_clicked=on_clicked,
        )

    def _pressed(self, notice: Notice, button: Button) -> Callable[[], None]:
        def pressed() -> None:
            if button.answer is None:
                self._spawn(self.actions.open(notice.task_id))
            elif notice.question is not None:
                self._answer(notice, button.answer)

        return pressed

    def _replied(self, notice: Notice) -> Callable[[str], None]:
        def replied(text: str) -> None:
            if text.strip():
                self._answer(notice, text.strip())

        return replied

    def _answer(self, notice: Notice, text: str) -> None:
        self._awaiting.pop(notice.task_id, None)
        question_id = str((notice.question or {}).get("question_id") or "")
        self._spawn(self.actions.answer(notice.task_id, question_id, text))

    def awaiting_press(self) -> bool:
        """Whether a question's notice went out lately and its buttons are not used yet: the
        worker stays to act on them."""
        now = time.monotonic()
        self._awaiting = {t: at for t, at in self._awaiting.items() if now - at < ACTION_WINDOW_S}
        return bool(self._awaiting)

    def _spawn(self, work: Awaitable[Any]) -> None:
        """Run a button's work on this loop (desktop-notifier calls back synchronously); a
        failure is logged, never raised into the notification library."""

        async def run() -> None:
            try:
                await work
            except Exception:
                logging.getLogger(__name__).warning("a notification's action failed", exc_info=True)

        task = asyncio.get_running_loop().create_task(run())
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def settle(self) -> None:
        """Wait for the buttons' work in flight (tests; a worker stopping)."""
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    def _notify_send(self, notice: Notice) -> bool:
        program = self.which("notify-send")
        if program is None:
            return False
        self._children = [child for child in self._children if child.poll() is None]
        argv = [
            program,
            f"--app-name={APP_NAME}",
            f"--urgency={'critical' if notice.urgent else 'normal'}",
            "--",  # a body that starts with "-" is text, not an option
            clean(notice.title, TITLE_MAX),
            # servers read the body as (a little) markup
            html.escape(clean(notice.body, BODY_MAX), quote=False),
        ]
        try:  # fire and forget: nothing may wait on a notification daemon
            child = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError:
            return False
        self._children.append(child)
        return True
