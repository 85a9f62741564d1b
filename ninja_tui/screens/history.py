"""Search past tasks: full text over requests, answers and sources, narrowed by agent, status
and date. The screen only reads the history store; picking a task hands its id back to the app
(`dismiss(task_id)`), which decides how to show it."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, Select, Static

from myninja.agent_graph.history import HistoryStore
from myninja.agent_graph.history.search import SNIPPET_CLOSE, SNIPPET_OPEN
from myninja.agent_graph.history.store import STATUSES
from myninja.config import WORKER_AGENTS
from myninja.ninja_tui.widgets.tables import cursor_key
from myninja.ninja_tui.widgets.task_list import BADGES

ANY = ""  # the "no filter" choice of every Select
DATE_CHOICES = {"today": "today", "7d": "last 7 days", "30d": "last 30 days"}
DEBOUNCE_S = 0.15  # typing fast runs one search, not one per key
LIST_LIMIT = 200
SEARCH_LIMIT = 100
DAY_S = 86_400


def since_for(choice: str, now: float) -> float | None:
    """The earliest `created_at` a date choice keeps; None for any time."""
    if choice == "today":
        return (
            datetime.fromtimestamp(now)
            .replace(hour=0, minute=0, second=0, microsecond=0)
            .timestamp()
        )
    if choice in ("7d", "30d"):
        return now - int(choice[:-1]) * DAY_S
    return None


def short_date(ts: float, now: float) -> str:
    """Time of day for today, month and day this year, the full date before."""
    when, today = datetime.fromtimestamp(ts), datetime.fromtimestamp(now)
    if when.date() == today.date():
        return when.strftime("%H:%M")
    return when.strftime("%b %d" if when.year == today.year else "%Y-%m-%d")


def marked_snippet(snippet: str | None) -> Text:
    """The search snippet with its hits highlighted instead of wrapped in « »."""
    text = Text(no_wrap=True, overflow="ellipsis")
    rest = " ".join((snippet or "").split())
    while SNIPPET_OPEN in rest:
        before, _, rest = rest.partition(SNIPPET_OPEN)
        hit, _, rest = rest.partition(SNIPPET_CLOSE)
        text.append(before)
        text.append(hit, style="bold reverse")
    text.append(rest)
    return text


def _one_line(text: str) -> Text:
    return Text(" ".join(text.split()), no_wrap=True, overflow="ellipsis")


class ResultsTable(DataTable[Any]):
    """A DataTable whose Enter is named in the footer."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "select_cursor", "Open task")]


class HistoryScreen(Screen[str | None]):
    """Dismissed with the chosen task's id, or None when closed with escape."""

    AUTO_FOCUS = "#query"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        # Hidden: every widget binds down itself, so the footer would never show it anyway.
        Binding("down", "to_results", "Results", show=False),
    ]
    DEFAULT_CSS = """
    HistoryScreen {
        layout: vertical;
    }
    HistoryScreen #query {
        margin: 0 1;
    }
    HistoryScreen #filters {
        height: 1;
        margin: 0 1 1 1;
    }
    HistoryScreen #filters Select {
        width: 1fr;
        margin-right: 1;
    }
    HistoryScreen #results {
        height: 1fr;
    }
    HistoryScreen #summary {
        height: 1;
        padding: 0 1;
        color: $text-muted;
    }
    """

    def __init__(self, store: HistoryStore) -> None:
        super().__init__()
        self.store = store
        self._pending: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Input(placeholder="Search requests, answers and sources…", id="query")
        with Horizontal(id="filters"):
            yield Select(
                [("any agent", ANY), *((a, a) for a in WORKER_AGENTS)],
                value=ANY,
                allow_blank=False,
                compact=True,
                id="agent",
            )
            yield Select(
                [("any status", ANY), *((s, s) for s in STATUSES)],
                value=ANY,
                allow_blank=False,
                compact=True,
                id="status",
            )
            yield Select(
                [("any time", ANY), *((label, key) for key, label in DATE_CHOICES.items())],
                value=ANY,
                allow_blank=False,
                compact=True,
                id="date",
            )
        yield ResultsTable(cursor_type="row", zebra_stripes=True, id="results")
        yield Static(id="summary")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_results()

    # -- events ------------------------------------------------------------------------------

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self._pending is not None:
            self._pending.stop()
        self._pending = self.set_timer(DEBOUNCE_S, self.refresh_results)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.refresh_results()  # at once: Enter should not wait for the debounce
        self.action_to_results()

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self.refresh_results()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.dismiss(event.row_key.value)

    def on_resize(self) -> None:
        self.refresh_results()  # column widths follow the screen's

    def action_close(self) -> None:
        self.dismiss(None)

    def action_to_results(self) -> None:
        table = self.query_one("#results", ResultsTable)
        if table.row_count:
            table.focus()

    # -- results -----------------------------------------------------------------------------

    def _filters(self) -> dict[str, Any]:
        def value(select_id: str) -> str:
            chosen = self.query_one(f"#{select_id}", Select).value
            return chosen if isinstance(chosen, str) else ANY

        return {
            "agent": value("agent") or None,
            "status": value("status") or None,
            "since": since_for(value("date"), time.time()),
        }

    def find(self) -> tuple[str, list[dict[str, Any]]]:
        """The query as typed and the tasks it and the filters select, best or newest first."""
        query = self.query_one("#query", Input).value.strip()
        filters = self._filters()
        if query:
            return query, self.store.search(query, limit=SEARCH_LIMIT, **filters)
        return query, self.store.list_tasks(limit=LIST_LIMIT, **filters)

    def refresh_results(self) -> None:
        self._pending = None
        query, tasks = self.find()
        table = self.query_one("#results", ResultsTable)
        kept = cursor_key(table)
        table.clear(columns=True)
        self._add_columns(table, with_snippet=bool(query))
        now = time.time()
        for task in tasks:
            mark, style = BADGES.get(task["status"], ("·", ""))
            cells: list[Any] = [
                Text(mark, style=style),
                task.get("agent") or "–",
                short_date(task["created_at"], now),
                _one_line(task["text"]),
            ]
            if query:
                cells.append(marked_snippet(task.get("snippet")))
            table.add_row(*cells, key=task["id"])
        if kept is not None and kept in {t["id"] for t in tasks}:
            table.move_cursor(row=table.get_row_index(kept))
        self.query_one("#summary", Static).update(_summary(len(tasks), query))

    def _add_columns(self, table: DataTable[Any], *, with_snippet: bool) -> None:
        fixed = {"status": 1, "agent": 10, "date": 10}
        columns = len(fixed) + (2 if with_snippet else 1)
        width = table.size.width or self.size.width or self.app.size.width
        # What the fixed columns, cell padding and a scrollbar leave goes to the text columns.
        free = max(20, width - sum(fixed.values()) - columns * 2 * table.cell_padding - 2)
        text_width = free * 2 // 5 if with_snippet else free
        table.add_column(" ", width=fixed["status"], key="status")
        table.add_column("agent", width=fixed["agent"], key="agent")
        table.add_column("date", width=fixed["date"], key="date")
        table.add_column("task", width=text_width, key="text")
        if with_snippet:
            table.add_column("match", width=free - text_width, key="snippet")


def _summary(count: int, query: str) -> str:
    if count == 0:
        return "No task matches." if query else "No tasks yet."
    noun = "task" if count == 1 else "tasks"
    return f"{count} {noun}{' found' if query else ''} · ↓ moves to the list, Enter opens one"
