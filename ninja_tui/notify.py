"""Telling the person, while the app is open, that a task needs them or has finished.

Each channel is switched in `[notify]`: a Textual toast, the terminal bell, a marker in the
terminal title, an OSC 9 / OSC 777 escape code and the OS notification (desktop-notifier, with
buttons that answer the task; `notify-send` where D-Bus has no notification server). While the
app is focused only the toast speaks (`quiet_when_focused`): the person is looking at it. The
user's `notify_command`, and the OS notification while no app is open, are the worker's
(agent_graph/tasks/notify.py).

Task text is untrusted (a request pasted from anywhere, a model's answer): everything that
reaches an escape sequence or a notification loses its control characters first, or
"\\x1b]0;…\\x07" in a task would retitle the terminal, or worse.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable
from typing import Any

from textual.app import App
from textual.notifications import SeverityLevel

from myninja.agent_graph.tasks.desktop import (
    APP_NAME,
    BODY_MAX,
    TITLE_MAX,
    DesktopNotices,
    Kind,
    Notice,
    clean,
)
from myninja.config import NotifyConfig

__all__ = ["BODY_MAX", "TITLE_MAX", "Notifier", "clean", "osc2", "osc9", "osc777"]
ESC, ST = "\x1b", "\x1b\\"


def osc_field(text: str, limit: int) -> str:
    """`clean`, and no `;`: it separates OSC fields (and `9;4;…` is a ConEmu command)."""
    return clean(text.replace(";", ","), limit)


def osc9(body: str) -> str:
    return f"{ESC}]9;{osc_field(body, TITLE_MAX + BODY_MAX)}{ST}"


def osc777(title: str, body: str) -> str:
    return f"{ESC}]777;notify;{osc_field(title, TITLE_MAX)};{osc_field(body, BODY_MAX)}{ST}"


def osc2(title: str) -> str:
    return f"{ESC}]2;{osc_field(title, TITLE_MAX)}{ST}"


def tmux_passthrough(sequence: str) -> str:
    """An escape sequence wrapped for tmux's passthrough (`allow-passthrough on`), so that it
    reaches the outer terminal instead of being eaten by tmux: every ESC inside is doubled."""
    return f"{ESC}Ptmux;{sequence.replace(ESC, ESC + ESC)}{ST}"


class AppActions:
    """The OS notification's buttons, acting through the app: an answer goes to the worker
    as one typed in the box would; Open shows the task."""

    def __init__(self, app: App[Any]) -> None:
        self.app = app

    async def answer(self, task_id: str, question_id: str, text: str) -> None:
        target: Any = self.app
        await target.answer_question(task_id, question_id, text)
        await target.refresh_from_history()

    async def open(self, task_id: str) -> None:
        target: Any = self.app
        await target.select_task(task_id)

    def can_open(self) -> bool:
        return hasattr(self.app, "select_task")


def _label(kind: Kind, task: dict[str, Any]) -> tuple[str, SeverityLevel]:
    if kind == "question":
        return "Needs your answer", "warning"
    status = str(task.get("status") or "finished")
    if status == "failed":
        return "Failed", "error"
    return ("Done" if status == "done" else status.capitalize()), "information"


class Notifier:
    """The app's notification channels. `write` receives raw terminal output (escape codes,
    the bell); by default it goes to the app's driver, and nowhere when headless."""

    def __init__(
        self,
        app: App[Any],
        settings: NotifyConfig,
        *,
        write: Callable[[str], None] | None = None,
        which: Callable[[str], str | None] = shutil.which,
    ) -> None:
        self.app = app
        self.settings = settings
        self.write = write or self._write_to_driver
        self.which = which
        self.sent: list[tuple[str, str, str]] = []  # (channel, kind, task id)
        self._title: str | None = None
        self.desktop = DesktopNotices(AppActions(app), which=which)
        self._sending: set[asyncio.Task[Any]] = set()
        self.in_tmux = bool(os.environ.get("TMUX"))

    def _write_to_driver(self, data: str) -> None:
        driver = self.app._driver
        if driver is not None and not driver.is_headless:
            driver.write(data)

    @property
    def looking(self) -> bool:
        """Whether the person looks at the app now (its terminal or browser tab focused)."""
        return bool(getattr(self.app, "app_focus", True))

    def notify(
        self,
        kind: Kind,
        task: dict[str, Any],
        message: str,
        question: dict[str, Any] | None = None,
    ) -> list[str]:
        """Deliver one event on every channel switched on (only the toast while the app is
        focused and `quiet_when_focused`); returns the channels that fired. `question`: the
        open question (its store row), for the OS notification's buttons."""
        wanted = self.settings.on_question if kind == "question" else self.settings.on_finish
        if not wanted:
            return []
        label, severity = _label(kind, task)
        request = clean(str(task.get("text") or ""), TITLE_MAX)
        title = clean(f"{APP_NAME} · {label}: {request}", TITLE_MAX)
        body = clean(message, BODY_MAX) or request
        away = not (self.settings.quiet_when_focused and self.looking)
        fired: list[str] = []
        if self.settings.toast:
            # markup off: "[" in a task is text, not Textual markup that might not parse
            self.app.notify(body, title=f"{label}: {request}", severity=severity, markup=False)
            fired.append("toast")
        if away and self.settings.bell:
            self.write("\a")
            fired.append("bell")
        if away and self.settings.osc != "off":
            sequence = osc9(f"{title}: {body}") if self.settings.osc == "9" else osc777(title, body)
            self.write(tmux_passthrough(sequence) if self.in_tmux else sequence)
            fired.append("osc")
        task_id = str(task.get("id") or "")
        if away and self.settings.desktop:
            asked = None
            if question is not None:
                asked = {**question, "question_id": question.get("question_id", question.get("id"))}
            notice = Notice(kind, task_id, title, body, severity == "error", asked)
            self._send_desktop(notice)
            fired.append("desktop")
        self.sent.extend((channel, kind, task_id) for channel in fired)
        return fired

    def _send_desktop(self, notice: Notice) -> None:
        """In the background: the UI must not wait on a notification server."""
        sending = asyncio.get_running_loop().create_task(self.desktop.send(notice))
        self._sending.add(sending)
        sending.add_done_callback(self._sending.discard)

    async def settle(self) -> None:
        """Wait for notifications in flight and the work of buttons pressed (tests)."""
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
        await self.desktop.settle()

    def set_waiting(self, count: int) -> None:
        """Show how many tasks wait for the person in the terminal title (when switched on)."""
        if not self.settings.title:
            return
        title = f"{APP_NAME} ({count} waiting)" if count > 0 else APP_NAME
        if title != self._title:
            self._title = title
            self.write(osc2(title))
