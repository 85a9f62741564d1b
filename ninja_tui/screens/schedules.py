"""The schedules (`myninja schedule …` in the app): each one's spec as written, its task, the
next run (local time, and how far off), the last run and how its task ended, and whether it is
paused (and why, where it paused itself). Keys pause or resume one, run it now, remove it (after
a yes), and Enter hands the last run's task id back to the app (`dismiss(task_id)`).

The schedules are read through a `ScheduleBook` on the app's own history store: a second
connection to history.db in the app's process would be unsafe (see ScheduleBook)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from myninja.agent_graph.history import HistoryStore
from myninja.agent_graph.tasks.cron import schedule_clock
from myninja.agent_graph.tasks.schedules import ScheduleBook
from myninja.errors import MyninjaError
from myninja.ninja_tui.schedule_run import run_now
from myninja.ninja_tui.screens.dialogs import ConfirmDialog
from myninja.ninja_tui.widgets.tables import cursor_key
from myninja.ninja_tui.widgets.task_list import BADGES

REFRESH_S = 5.0  # "in 3 min" moves on, and runs started now end
WEEK_S = 7 * 86_400


def relative(ts: float, now: float) -> str:
    """How far `ts` is from `now`, roughly: "in 3 h", "5 min ago", "now"."""
    delta = ts - now
    size = abs(delta)
    if size < 60:
        return "now"
    for unit, seconds in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if size >= seconds:
            amount = f"{round(size / seconds)} {unit}"
            break
    return f"in {amount}" if delta > 0 else f"{amount} ago"


def clock_time(ts: float, now: float) -> str:
    """Local time, as short as is unambiguous: "08:00" today, "Tue 08:00" within the week,
    "Dec 21 08:00" further off (with the year when it is not this one)."""
    when, today = datetime.fromtimestamp(ts), datetime.fromtimestamp(now)
    if when.date() == today.date():
        return when.strftime("%H:%M")
    if abs(ts - now) < WEEK_S - 86_400:
        return when.strftime("%a %H:%M")
    return when.strftime("%b %d %H:%M" if when.year == today.year else "%Y-%m-%d %H:%M")


def next_run_text(row: dict[str, Any], now: float) -> Text:
    if row["paused"]:
        return Text("–", style="dim")
    when = clock_time(row["next_due"], now)
    if row["next_due"] <= now:  # the worker runs it on its next look (none runs now)
        return Text(f"{when} (due)", style="yellow")
    return Text(f"{when} ({relative(row['next_due'], now)})")


def run_status(run: dict[str, Any]) -> str:
    """How a run went: its task's status, or why it has none."""
    if run.get("error"):
        return "not started"
    return run.get("status") or "starting"  # claimed; the worker has yet to submit it


def last_run_text(row: dict[str, Any], runs: list[dict[str, Any]], now: float) -> Text:
    """The last run's time, after its task's badge (as in the task list)."""
    when = row.get("last_run") or (runs[0]["claimed_at"] if runs else None)
    if when is None:
        return Text("never", style="dim")
    text = Text()
    if runs:
        mark, style = BADGES.get(run_status(runs[0]), ("·", "dim"))
        text.append(f"{mark} ", style=style)
    text.append(clock_time(when, now))
    return text


def state_text(row: dict[str, Any]) -> Text:
    if not row["paused"]:
        return Text("on", style="green")
    reason = row.get("paused_reason")  # set where it paused itself: below the table
    return Text("paused ⚠" if reason else "paused", style="yellow")


def _one_line(text: str) -> Text:
    return Text(" ".join(text.split()), no_wrap=True, overflow="ellipsis")


class SchedulesTable(DataTable[Any]):
    """A DataTable whose Enter is named in the footer."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Open last run"),
    ]


class SchedulesScreen(Screen[str | None]):
    """Dismissed with the id of the task to show (Enter: the last run's), or None."""

    AUTO_FOCUS = "#schedules"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("ctrl+t", "close", "Close", show=False),
        Binding("p", "toggle_pause", "Pause/resume"),
        Binding("n", "run_now", "Run now"),
        Binding("d,delete", "remove", "Remove", key_display="d"),
    ]
    DEFAULT_CSS = """
    SchedulesScreen {
        layout: vertical;
    }
    SchedulesScreen #schedules {
        height: 1fr;
    }
    SchedulesScreen #detail {
        height: auto;
        max-height: 5;
        padding: 0 1;
        color: $text-muted;
    }
    """

    def __init__(
        self,
        store: HistoryStore,
        start_worker: Callable[[], Awaitable[object]],
        clock: Callable[[], float] = schedule_clock,  # the book's
    ) -> None:
        super().__init__()
        self.book = ScheduleBook(store)
        self.start_worker = start_worker
        self.clock = clock
        self.rows: dict[str, dict[str, Any]] = {}  # shown, by id, with their runs

    def compose(self) -> ComposeResult:
        yield SchedulesTable(cursor_type="row", zebra_stripes=True, id="schedules")
        yield Static(id="detail")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_rows()
        self.set_interval(REFRESH_S, self.refresh_rows)

    def on_resize(self) -> None:
        self.refresh_rows()  # column widths follow the screen's

    # -- the table ---------------------------------------------------------------------------

    @property
    def table(self) -> SchedulesTable:
        return self.query_one("#schedules", SchedulesTable)

    def refresh_rows(self) -> None:
        self.rows = {
            row["id"]: {**row, "runs": self.book.runs(row["id"])} for row in self.book.entries()
        }
        table = self.table
        kept = self.selected_id()
        table.clear(columns=True)
        self._add_columns(table)
        now = self.clock()
        for row in self.rows.values():
            table.add_row(
                _one_line(row["spec"]),
                _one_line(row["text"]),
                next_run_text(row, now),
                last_run_text(row, row["runs"], now),
                state_text(row),
                key=row["id"],
            )
        if kept in self.rows:
            table.move_cursor(row=table.get_row_index(kept))
        self._show_detail()

    def _add_columns(self, table: DataTable[Any]) -> None:
        # "Sep 28 09:00 (in 7 d)" and "✓ Sep 21 13:13" fit; the task's text takes what is left
        # (the line below the table shows it whole).
        fixed = {"schedule": 14, "next run": 21, "last run": 14, "state": 8}
        width = table.size.width or self.size.width or self.app.size.width
        free = width - sum(fixed.values()) - (len(fixed) + 1) * 2 * table.cell_padding - 2
        table.add_column("schedule", width=fixed["schedule"], key="spec")
        table.add_column("task", width=max(8, free), key="text")
        table.add_column("next run", width=fixed["next run"], key="next")
        table.add_column("last run", width=fixed["last run"], key="last")
        table.add_column("state", width=fixed["state"], key="state")

    def selected_id(self) -> str | None:
        return cursor_key(self.table)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_detail()

    def _show_detail(self) -> None:
        detail = self.query_one("#detail", Static)
        row = self.rows.get(self.selected_id() or "")
        if row is None:
            detail.update(
                "No schedules yet. Add one with "
                '`myninja schedule add "every weekday at 08:00" "…"`.'
                if not self.rows
                else ""
            )
            return
        text = Text(f"{row['id']}  {row['spec']} ({row['cron']})")
        if row.get("paused_reason"):
            text.append(f"  {row['paused_reason']}", style="yellow")
        text.append("\n" + " ".join(row["text"].split()))
        if row["runs"]:
            last = row["runs"][0]
            when = clock_time(last["claimed_at"], self.clock())
            text.append(f"\nlast run {when}: {run_status(last)}, task {last['task_id']}")
            text.append("  (Enter opens it)" if last.get("status") else "", style="dim")
        detail.update(text)

    # -- actions -----------------------------------------------------------------------------

    def _selected(self) -> dict[str, Any] | None:
        row = self.rows.get(self.selected_id() or "")
        if row is None:
            self.notify("No schedule is selected.", severity="warning")
        return row

    def action_close(self) -> None:
        self.dismiss(None)

    async def action_toggle_pause(self) -> None:
        row = self._selected()
        if row is None:
            return
        try:
            if row["paused"]:
                self.book.resume(row["id"])
                await self.start_worker()  # it runs the schedules, and stays while any is on
                self.notify(f"Resumed {row['id']}.")
            else:
                self.book.pause(row["id"])
                self.notify(f"Paused {row['id']}.")
        except MyninjaError as exc:
            self.notify(exc.one_line(), severity="error", timeout=8)
        self.refresh_rows()

    def action_run_now(self) -> None:
        row = self._selected()
        if row is not None:
            self.run_worker(self._run_now(row["id"]), group="run-now")

    async def _run_now(self, schedule_id: str) -> None:
        self.notify(f"Starting a run of {schedule_id}…")
        try:
            run = await run_now(self.book, schedule_id, self.start_worker)
        except MyninjaError as exc:
            self.notify(exc.one_line(), severity="error", timeout=8)
        else:
            self.notify(f"Started task {run.task_id}: Enter opens it.")
        if self.is_attached:
            self.refresh_rows()

    def action_remove(self) -> None:
        row = self._selected()
        if row is None:
            return

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            try:
                self.book.remove(row["id"])
            except MyninjaError as exc:
                self.notify(exc.one_line(), severity="error", timeout=8)
            else:
                self.notify(f"Removed {row['id']}; the tasks it ran stay in history.")
            self.refresh_rows()

        question = f"Remove the schedule {row['spec']!r}?"
        self.app.push_screen(ConfirmDialog(question, " ".join(row["text"].split())), answered)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        row = self.rows.get(str(event.row_key.value))
        runs = row["runs"] if row else []
        started = [run for run in runs if run.get("status")]  # a task history holds
        if not started:
            self.notify("This schedule has not run a task yet.", severity="warning")
            return
        self.dismiss(started[0]["task_id"])
