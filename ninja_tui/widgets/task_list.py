"""The list of tasks, newest first, with a status badge and an unread mark."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

BADGES = {
    "queued": ("◌", "dim"),
    "running": ("●", "yellow"),
    "waiting": ("?", "bold magenta"),
    "done": ("✓", "green"),
    "failed": ("✗", "red"),
    "cancelled": ("–", "dim"),
}


def task_label(task: dict[str, Any]) -> Text:
    mark, style = BADGES.get(task["status"], ("·", ""))
    label = Text()
    label.append(f"{mark} ", style=style)
    if task.get("unread"):
        label.append("• ", style="bold cyan")
    label.append(" ".join(task["text"].split())[:70])
    return label


class TaskList(OptionList):
    """Rebuilt only when a task's status or text changed, so the highlight stays put."""

    def show(self, tasks: list[dict[str, Any]], selected: str | None) -> None:
        """List `tasks` with `selected` highlighted (the app, not the list, owns selection)."""
        signature = [(t["id"], t["status"], bool(t.get("unread"))) for t in tasks]
        if signature != getattr(self, "_signature", None):
            self._signature = signature
            self.clear_options()
            self.add_options([Option(task_label(t), id=t["id"]) for t in tasks])
        ids = [t["id"] for t in tasks]
        if selected in ids and self.highlighted != ids.index(selected):
            self.highlighted = ids.index(selected)
