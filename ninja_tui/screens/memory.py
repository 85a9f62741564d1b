"""The memories (`myninja memory …` in the app): what the agents are told about the person, and
the facts proposed from the person's answers, waiting for a yes. Keys confirm or reject a
proposed one, add one, and forget one (after a yes).

The memories are read and written through the app's own history store: a second connection to
history.db in the app's process would be unsafe (see ScheduleBook)."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Input, Label, Static

from myninja.agent_graph.history import HistoryStore, memories
from myninja.errors import MyninjaError
from myninja.ninja_tui.screens.dialogs import DIALOG_CSS, ConfirmDialog
from myninja.ninja_tui.widgets.tables import cursor_key

REFRESH_S = 5.0  # a task running meanwhile may propose one


def status_text(row: dict[str, Any]) -> Text:
    if row.get("status") == "proposed":
        return Text("proposed", style="yellow")
    return Text("kept", style="green")


def origin_text(row: dict[str, Any]) -> str:
    return f"task {row['task_id']}" if row["source"] == "task" else "you"


class AddMemoryDialog(ModalScreen[str | None]):
    """One line of text; Enter returns it, escape drops it."""

    DEFAULT_CSS = DIALOG_CSS.format(name="AddMemoryDialog")
    BINDINGS: ClassVar[list[BindingType]] = [("escape", "dismiss(None)", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Remember for the agents (one short fact):")
            yield Input(placeholder="my time zone is Europe/Berlin", id="fact")
            yield Label("Enter keeps it · escape cancels", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#fact", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)


class MemoryScreen(Screen[None]):
    AUTO_FOCUS = "#memories"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("f3", "close", "Close", show=False),
        Binding("y", "confirm", "Keep"),
        Binding("n", "reject", "Reject"),
        Binding("a", "add", "Add"),
        Binding("d,delete", "forget", "Forget", key_display="d"),
    ]
    DEFAULT_CSS = """
    MemoryScreen {
        layout: vertical;
    }
    MemoryScreen #memories {
        height: 1fr;
    }
    MemoryScreen #detail {
        height: auto;
        max-height: 4;
        padding: 0 1;
        color: $text-muted;
    }
    """

    def __init__(self, store: HistoryStore) -> None:
        super().__init__()
        self.store = store
        self.rows: dict[str, dict[str, Any]] = {}  # shown, by id (as text: the table's keys)

    def compose(self) -> ComposeResult:
        yield DataTable(cursor_type="row", zebra_stripes=True, id="memories")
        yield Static(id="detail")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_rows()
        self.set_interval(REFRESH_S, self.refresh_rows)

    def on_resize(self) -> None:
        self.refresh_rows()

    @property
    def table(self) -> DataTable[Any]:
        return self.query_one("#memories", DataTable)

    def refresh_rows(self) -> None:
        # Proposed first: they wait for the person.
        rows = memories.all_memories(self.store)
        rows.sort(key=lambda r: (r.get("status") != "proposed", r["created_at"], r["id"]))
        self.rows = {str(row["id"]): row for row in rows}
        table = self.table
        kept = self.selected_id()
        table.clear(columns=True)
        fixed = {"id": 4, "status": 8, "from": 16}
        width = table.size.width or self.size.width or self.app.size.width
        free = width - sum(fixed.values()) - (len(fixed) + 2) * 2 * table.cell_padding - 2
        table.add_column("id", width=fixed["id"], key="id")
        table.add_column("status", width=fixed["status"], key="status")
        table.add_column("from", width=fixed["from"], key="from")
        table.add_column("memory", width=max(12, free), key="text")
        for key, row in self.rows.items():
            table.add_row(
                key,
                status_text(row),
                origin_text(row),
                Text(row["text"], no_wrap=True, overflow="ellipsis"),
                key=key,
            )
        if kept in self.rows:
            table.move_cursor(row=table.get_row_index(kept))
        self._show_detail()

    def selected_id(self) -> str | None:
        return cursor_key(self.table)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_detail()

    def _show_detail(self) -> None:
        detail = self.query_one("#detail", Static)
        row = self.rows.get(self.selected_id() or "")
        if row is None:
            detail.update("No memories yet. Press a to add one." if not self.rows else "")
            return
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(row["created_at"]))
        text = Text(f"{row['id']}  {when}  {origin_text(row)}  ")
        text.append(row["text"])
        if row.get("status") == "proposed":
            text.append("\ny keeps it (agents are shown it) · n rejects it", style="yellow")
        detail.update(text)

    # -- actions -----------------------------------------------------------------------------

    def _selected(self) -> dict[str, Any] | None:
        row = self.rows.get(self.selected_id() or "")
        if row is None:
            self.notify("No memory is selected.", severity="warning")
        return row

    def _change(self, verb: str, change: Any, memory_id: int) -> None:
        try:
            change(self.store, memory_id)
        except MyninjaError as exc:
            self.notify(exc.one_line(), severity="error", timeout=8)
        else:
            self.notify(f"{verb} memory {memory_id}.")
        self.refresh_rows()

    def action_close(self) -> None:
        self.dismiss(None)

    def action_confirm(self) -> None:
        row = self._selected()
        if row is not None:
            self._change("Kept", memories.confirm, row["id"])

    def action_reject(self) -> None:
        row = self._selected()
        if row is not None:
            self._change("Rejected", memories.reject, row["id"])

    def action_add(self) -> None:
        def added(text: str | None) -> None:
            if text is None:
                return
            try:
                row = memories.add(self.store, text)
            except MyninjaError as exc:
                self.notify(exc.one_line(), severity="error", timeout=8)
                return
            self.notify(f"Remembered {row['id']}.")
            self.refresh_rows()
            self.table.move_cursor(row=self.table.get_row_index(str(row["id"])))

        self.app.push_screen(AddMemoryDialog(), added)

    def action_forget(self) -> None:
        row = self._selected()
        if row is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._change("Forgot", memories.forget, row["id"])

        self.app.push_screen(ConfirmDialog(f"Forget memory {row['id']}?", row["text"]), answered)
