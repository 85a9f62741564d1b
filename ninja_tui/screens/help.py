"""The help screen (`?`, f1): what the app is, and every key it answers to.

The key table is built from the live bindings, so it cannot drift from what the keys do."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Markdown

GUIDE = """\
## myninja

Type a task in the box at the bottom and press **Enter**; `@coder …` (or `@researcher`,
`@writer`, `@advisor`, `@scheduler`) picks the agent. Tasks run in the background worker:
closing the app stops nothing, and tasks that finish meanwhile show as unread (`•`).

When a task needs you it shows `?` in the list; answer in the box (it says `Answer: …`)
or in the questions inbox. **Escape** leaves the box so the task keys below work;
**ctrl+p** lists every action. The header shows today's tokens and cost; a task's own are
under its title. **ctrl+t** lists the scheduled tasks, with their next run.
"""


def key_rows(bindings: list[Binding]) -> list[tuple[str, str]]:
    """(keys, what they do) for each binding with a description, keys of one action joined."""
    rows: dict[str, list[str]] = {}
    for binding in bindings:
        if not binding.description:
            continue
        key = binding.key_display or binding.key.replace("question_mark", "?")
        keys = rows.setdefault(binding.description, [])
        if key not in keys:
            keys.append(key)
    return [(" / ".join(keys), description) for description, keys in rows.items()]


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical {
        width: 84; max-width: 100%; height: auto; max-height: 100%;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    HelpScreen Markdown { height: auto; margin: 0; }
    HelpScreen DataTable { height: auto; max-height: 16; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        ("escape", "dismiss(None)", "Close"),
        ("question_mark", "dismiss(None)", "Close"),
        ("f1", "dismiss(None)", "Close"),
    ]

    def __init__(self, bindings: list[Binding]) -> None:
        super().__init__()
        self.rows = key_rows(bindings)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Markdown(GUIDE)
            table: DataTable[str] = DataTable(cursor_type="row", zebra_stripes=True)
            table.add_columns("keys", "action")
            table.add_rows(self.rows)
            yield table
