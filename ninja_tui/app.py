"""The Textual app: a view over the history store, with tasks handed to the background worker.

It renders what history holds (refreshed twice a second) and sends what the person types to
the worker: a new task, or the answer to the selected task's open question. It runs no agent
logic itself, so closing it stops nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from textual.app import App, ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.widgets import Footer, Header, Input, OptionList

from agent_graph.history import HistoryStore
from agent_graph.worker import WorkerClient
from myninja import paths
from myninja.errors import MyninjaError
from ninja_tui.widgets.task_list import TaskList
from ninja_tui.widgets.task_view import TaskView

ASK_PLACEHOLDER = "Ask myninja… (@coder, @writer, … picks an agent)"


class MyninjaApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "myninja"
    BINDINGS: ClassVar[list[BindingType]] = [
        ("ctrl+q", "quit", "Quit"),
        ("ctrl+n", "new_task", "New task"),
        ("ctrl+x", "cancel_task", "Cancel task"),
    ]

    def __init__(self, data_dir: Path | None = None, refresh_s: float = 0.5) -> None:
        super().__init__()
        self.data_dir = data_dir or paths.data_dir()
        self.refresh_s = refresh_s
        self.worker_client = WorkerClient(self.data_dir)
        self.store: HistoryStore | None = None
        self.selected: str | None = None
        # While composing, the box starts a new task whatever is shown; picking a task in the
        # list (or starting one) makes the box answer that task's open question instead.
        self.composing = True

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="main"):
            yield TaskList(id="tasks")
            yield TaskView(id="view")
        yield Input(placeholder=ASK_PLACEHOLDER, id="ask")
        yield Footer()

    def on_mount(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = HistoryStore(self.data_dir / "history.db")
        self.refresh_from_history()
        self._refresher = self.set_interval(self.refresh_s, self.refresh_from_history)
        self.query_one("#ask", Input).focus()

    def on_unmount(self) -> None:
        self._refresher.stop()
        if self.store is not None:
            self.store.close()
            self.store = None

    def refresh_from_history(self) -> None:
        if self.store is None:
            return  # closed
        try:
            self._refresh(self.store)
        except NoMatches:
            pass  # the app is closing and its widgets are already gone

    def _refresh(self, store: HistoryStore) -> None:
        tasks = store.list_tasks(limit=200)
        if self.selected is None and tasks:
            self.selected = tasks[0]["id"]
        self.query_one(TaskList).show(tasks, self.selected)
        if self.selected is None:
            return
        task = store.get_task(self.selected)
        if task is None:
            return
        questions = store.questions(task["id"])
        self.query_one(TaskView).show(task, store.events(task["id"]), questions)
        if task.get("unread"):
            store.update_task(task["id"], unread=0)
        box = self.query_one("#ask", Input)
        asking = questions and not self.composing
        box.placeholder = f"Answer: {questions[0]['text']}" if asking else ASK_PLACEHOLDER

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        # Only the person's own moves in the list choose a task; the list highlighting the
        # shown task after a refresh is not a choice.
        if event.option.id and event.option_list.has_focus:
            self.selected, self.composing = event.option.id, False
            self.refresh_from_history()

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            return
        event.input.value = ""
        try:
            await self._send(text)
        except MyninjaError as exc:
            self.notify(exc.one_line(), severity="error", timeout=8)
        self.refresh_from_history()

    async def _send(self, text: str) -> None:
        """Answer the selected task's open question, or start a new task."""
        assert self.store is not None
        questions = (
            self.store.questions(self.selected) if self.selected and not self.composing else []
        )
        await self.worker_client.ensure()
        if questions:
            await self.worker_client.request(
                "answer", task_id=self.selected, question_id=questions[0]["id"], text=text
            )
            return
        reply: dict[str, Any] = await self.worker_client.request("submit", text=text)
        self.selected, self.composing = reply["task_id"], False

    def action_new_task(self) -> None:
        self.selected, self.composing = None, True
        box = self.query_one("#ask", Input)
        box.placeholder = ASK_PLACEHOLDER
        box.focus()

    async def action_cancel_task(self) -> None:
        if self.selected is None:
            return
        try:
            await self.worker_client.ensure()
            await self.worker_client.request("cancel", task_id=self.selected)
        except MyninjaError as exc:
            self.notify(exc.one_line(), severity="error")
