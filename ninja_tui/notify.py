"""Telling the person, while the app is open, that a task needs them or has finished.

Each channel is switched in `[notify]`: a Textual toast, the terminal bell, a marker in the
terminal title, an OSC 9 / OSC 777 desktop notification and `notify-send`. The user's
`notify_command` is not here: the background worker runs it, so it fires with no app open.

Task text is untrusted (a request pasted from anywhere, a model's answer): everything that
reaches an escape sequence or a notify-send argument loses its control characters first, or
"\\x1b]0;…\\x07" in a task would retitle the terminal, or worse.
"""

from __future__ import annotations

import html
import shutil
import subprocess
import unicodedata
from collections.abc import Callable
from typing import Any, Literal

from textual.app import App
from textual.notifications import SeverityLevel

from myninja.config import NotifyConfig

Kind = Literal["question", "finished"]
APP_NAME = "myninja"
ESC, ST = "\x1b", "\x1b\\"
TITLE_MAX = 80
BODY_MAX = 200
# Unicode categories dropped: Cc holds C0/C1 controls (ESC, BEL, CSI 0x9b, OSC 0x9d),
# Cf the invisible bidi overrides that can make a notification read backwards.
_DROPPED = ("Cc", "Cf")


def clean(text: str, limit: int) -> str:
    """One line of printable text, at most `limit` characters."""
    kept = "".join(" " if unicodedata.category(ch) in _DROPPED else ch for ch in text)
    line = " ".join(kept.split())  # newlines, tabs and runs of spaces become one space
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def osc_field(text: str, limit: int) -> str:
    """`clean`, and no `;`: it separates OSC fields (and `9;4;…` is a ConEmu command)."""
    return clean(text.replace(";", ","), limit)


def osc9(body: str) -> str:
    return f"{ESC}]9;{osc_field(body, TITLE_MAX + BODY_MAX)}{ST}"


def osc777(title: str, body: str) -> str:
    return f"{ESC}]777;notify;{osc_field(title, TITLE_MAX)};{osc_field(body, BODY_MAX)}{ST}"


def osc2(title: str) -> str:
    return f"{ESC}]2;{osc_field(title, TITLE_MAX)}{ST}"


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
        # notify-send runs detached; kept so it is reaped once done instead of lingering.
        self._children: list[subprocess.Popen[bytes]] = []

    def _write_to_driver(self, data: str) -> None:
        driver = self.app._driver
        if driver is not None and not driver.is_headless:
            driver.write(data)

    def notify(self, kind: Kind, task: dict[str, Any], message: str) -> list[str]:
        """Deliver one event on every channel switched on; returns the channels that fired."""
        wanted = self.settings.on_question if kind == "question" else self.settings.on_finish
        if not wanted:
            return []
        label, severity = _label(kind, task)
        request = clean(str(task.get("text") or ""), TITLE_MAX)
        title = clean(f"{APP_NAME} · {label}: {request}", TITLE_MAX)
        body = clean(message, BODY_MAX) or request
        fired: list[str] = []
        if self.settings.toast:
            # markup off: "[" in a task is text, not Textual markup that might not parse
            self.app.notify(body, title=f"{label}: {request}", severity=severity, markup=False)
            fired.append("toast")
        if self.settings.bell:
            self.write("\a")
            fired.append("bell")
        if self.settings.osc == "9":
            self.write(osc9(f"{title}: {body}"))
            fired.append("osc")
        elif self.settings.osc == "777":
            self.write(osc777(title, body))
            fired.append("osc")
        if self.settings.desktop and self._notify_send(title, body, severity):
            fired.append("desktop")
        task_id = str(task.get("id") or "")
        self.sent.extend((channel, kind, task_id) for channel in fired)
        return fired

    def _notify_send(self, title: str, body: str, severity: SeverityLevel) -> bool:
        program = self.which("notify-send")
        if program is None:
            return False
        self._children = [child for child in self._children if child.poll() is None]
        urgency = "critical" if severity == "error" else "normal"
        argv = [
            program,
            f"--app-name={APP_NAME}",
            f"--urgency={urgency}",
            "--",  # a body that starts with "-" is text, not an option
            title,
            html.escape(body, quote=False),  # servers read the body as (a little) markup
        ]
        try:  # fire and forget: the UI must not wait on a notification daemon
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

    def set_waiting(self, count: int) -> None:
        """Show how many tasks wait for the person in the terminal title (when switched on)."""
        if not self.settings.title:
            return
        title = f"{APP_NAME} ({count} waiting)" if count > 0 else APP_NAME
        if title != self._title:
            self._title = title
            self.write(osc2(title))
