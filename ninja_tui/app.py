"""The Textual app: a view over the history store, with tasks handed to the background worker.

It lists the tasks history holds (read twice a second). The selected task's view is built from
its events: those history holds when the person selects it, read once, then each one the
task's feed from the worker brings, tokens included (without a worker, the events stored
since are read at each refresh instead). What the person types goes to the worker: a new
task, or the answer to a question. It runs no agent logic itself, so closing it stops nothing."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
import time
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, OptionList

from myninja import paths
from myninja.agent_graph.events import question_key
from myninja.agent_graph.history import edit_facts
from myninja.agent_graph.history.statuses import FINISHED, RESTING
from myninja.agent_graph.tasks.client import WorkerClient
from myninja.agent_graph.tasks.presence import mark_closed, mark_open
from myninja.config import Config
from myninja.config_file import load_config, update_config_file
from myninja.errors import MyninjaError
from myninja.ninja_tui.notify import Notifier
from myninja.ninja_tui.widgets.sources import SourceList
from myninja.ninja_tui.widgets.task_list import TaskList
from myninja.ninja_tui.widgets.task_view import TaskView
from myninja.ninja_tui.widgets.usage import UsageShown

# The history store (sqlite-utils) and the other screens are imported when first needed: the
# first frame must not wait for them (benchmarks/tui_render.py times it).
if TYPE_CHECKING:
    from myninja.agent_graph.history import HistoryStore

ASK_PLACEHOLDER = "Ask myninja… (@coder, @writer, … picks an agent)"
# Keys that act on the selected task: letters, so they work only outside the input box.
TASK_ACTIONS = {"cancel_task", "retry_task", "rate", "edit_answer", "copy_answer", "export_answer"}


class MyninjaApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "myninja"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("ctrl+n", "new_task", "New"),
        Binding("ctrl+o", "inbox", "Questions"),
        Binding("ctrl+s", "history", "History"),
        Binding("ctrl+t", "schedules", "Schedules", show=False),
        Binding("f2", "settings", "Settings"),
        Binding("f3", "memory", "Memory", show=False),
        Binding("f1", "help", "Help"),
        Binding("question_mark", "help", "Help", show=False),
        Binding("escape", "leave_box", "Task keys", show=False),
        Binding("c", "cancel_task", "Cancel"),
        Binding("r", "retry_task", "Retry"),
        Binding("plus", "rate('good')", "Good"),
        Binding("minus", "rate('bad')", "Bad"),
        Binding("a", "edit_answer", "Edit"),
        Binding("y", "copy_answer", "Copy"),
        Binding("e", "export_answer", "Export"),
    ]

    def __init__(
        self,
        data_dir: Path | None = None,
        refresh_s: float = 0.5,
        config: Config | None = None,
        config_path: Path | None = None,
    ) -> None:
        super().__init__()
        self.data_dir = data_dir or paths.data_dir()
        self.config_path = config_path or paths.config_file()
        self.config = config or load_config(self.config_path)
        self.refresh_s = refresh_s
        self.worker_client = WorkerClient(self.data_dir)
        self.notifier = Notifier(self, self.config.notify)
        self.store: HistoryStore | None = None
        self.selected: str | None = None
        # While composing, the box starts a new task whatever is shown; picking a task in the
        # list (or starting one) makes the box answer that task's open question instead.
        self.composing = True
        self._statuses: dict[str, str] | None = None  # last seen, to notice what changed
        self._following: str | None = None
        self._follow_failed_at = 0.0
        self._feed_down = False  # no worker to follow through: refreshes read new events
        self._reload = False  # the person chose the shown task again: read its rows again
        self._refreshing = asyncio.Lock()
        self._refresh_again = False
        self.usage = UsageShown(self)  # the shown task's tokens and cost, and today's

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="main"):
            yield TaskList(id="tasks")
            yield TaskView(id="view")
        yield Input(placeholder=ASK_PLACEHOLDER, id="ask")
        yield Footer()

    async def on_mount(self) -> None:
        if self.config.tui.theme in self.available_themes:
            self.theme = self.config.tui.theme
        self.query_one("#ask", Input).focus()
        self.call_after_refresh(self._open_history)

    async def _open_history(self) -> None:
        from myninja.agent_graph.history import HistoryStore

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._presence = mark_open(self.data_dir)  # the worker leaves telling us to the app
        self.store = HistoryStore(self.data_dir / "history.db")
        unread = [t for t in self.store.list_tasks(limit=200) if t.get("unread")]
        if unread:
            noun = "task" if len(unread) == 1 else "tasks"
            self.notify(f"{len(unread)} {noun} finished while you were away (marked •)")
        await self.refresh_from_history()
        self._refresher = self.set_interval(self.refresh_s, self.refresh_from_history)
        self.usage.start()

    def on_unmount(self) -> None:
        if hasattr(self, "_refresher"):
            self._refresher.stop()
        if hasattr(self, "_presence"):
            mark_closed(self._presence)
        with contextlib.suppress(Exception):  # the terminal may be gone already
            self.notifier.set_waiting(0)  # leave no "(n waiting)" title behind
        if self.store is not None:
            self.store.close()
            self.store = None

    def watch_theme(self, theme: str) -> None:
        # Remember the person's choice (from the palette) for the next start.
        if getattr(self, "config", None) is None or theme == self.config.tui.theme:
            return
        with contextlib.suppress(MyninjaError, OSError):
            self.config = update_config_file(self.config_path, {"tui.theme": theme})

    # Refreshing from history --------------------------------------------------------------
    @property
    def refreshing(self) -> bool:
        """Whether a refresh is under way (it may await the answer's rendering)."""
        return self._refreshing.locked()

    async def refresh_from_history(self) -> None:
        if self._refreshing.locked():
            self._refresh_again = True  # what changed meanwhile (a new selection) is shown next
            return
        async with self._refreshing:
            self._refresh_again = True
            while self._refresh_again and self.store is not None:
                self._refresh_again = False
                try:
                    await self._refresh(self.store)
                except NoMatches:
                    return  # the app is closing and its widgets are already gone

    async def _refresh(self, store: HistoryStore) -> None:
        tasks = store.list_tasks(limit=200)
        self._notice_changes(store, tasks)
        self.usage.listed(tasks)
        if self.selected is None and tasks:
            self.selected = tasks[0]["id"]
        self.query_one(TaskList).show(tasks, self.selected)
        view = self.query_one(TaskView)
        task = self._selected_row(store, tasks, view)
        box = self.query_one("#ask", Input)
        if task is None:
            box.placeholder = ASK_PLACEHOLDER
            return
        if view.task_id != task["id"] or self._reload:
            # Chosen now: its rows, read once; its feed brings what follows.
            self._reload = False
            events, questions = store.events(task["id"]), store.questions(task["id"])
            await view.load(task, events, questions, store.citations(task["id"]))
        else:
            if self._feed_down and (task["status"] not in RESTING or view.row != task):
                for event in store.events(task["id"], after_seq=view.seq):
                    view.add(event)
            await view.show(task)
        view.refresh_token_counts()
        self.usage.shown(task)
        if task.get("unread") and not self.composing:
            # Read once the person chose it (or started it); the task shown on start is not.
            store.update_task(task["id"], unread=0)
        asking = view.questions and not self.composing
        box.placeholder = f"Answer: {view.questions[0]['text']}" if asking else ASK_PLACEHOLDER
        self._follow(task)

    def _selected_row(
        self, store: HistoryStore, tasks: list[dict[str, Any]], view: TaskView
    ) -> dict[str, Any] | None:
        """The selected task's row: from the list, else (an older task chosen in history) the
        row the view has, read when it was chosen."""
        if self.selected is None:
            return None
        row = next((t for t in tasks if t["id"] == self.selected), None)
        if row is None and (view.task_id != self.selected or self._reload):
            row = store.get_task(self.selected)
        return row or (view.row if view.task_id == self.selected else None)

    def _notice_changes(self, store: HistoryStore, tasks: list[dict[str, Any]]) -> None:
        """Notify about tasks that began waiting or finished since the last refresh."""
        statuses = {t["id"]: t["status"] for t in tasks}
        before, self._statuses = self._statuses, statuses
        self.notifier.set_waiting(sum(s == "waiting" for s in statuses.values()))
        if before is None:
            return  # first look: what happened while the app was closed shows as unread
        for task in tasks:
            old = before.get(task["id"])
            if old == task["status"]:
                continue
            if task["status"] == "waiting":
                questions = store.questions(task["id"])
                asked = questions[0]["text"] if questions else "a question"
                first = questions[0] if questions else None
                self.notifier.notify("question", task, f"Needs you: {asked}", first)
            # A cancel is the person's own doing: nothing to tell them.
            elif task["status"] in FINISHED - {"cancelled"} and old is not None:
                # The title names the task; the body says how it ended: its answer or error.
                said = task.get("answer" if task["status"] == "done" else "error")
                self.notifier.notify("finished", task, _short(str(said or task["text"]), 120))

    # Following the selected task -----------------------------------------------------------
    def _follow(self, task: dict[str, Any]) -> None:
        if task["status"] in RESTING:
            # The shown task's own feed ends by itself once it has handed on every event up to
            # the rest (the question a waiting task asks): cutting it here could drop those.
            if self._following is not None and self._following != task["id"]:
                self.workers.cancel_group(self, "follow")
                self._following = None
            return
        if self._following == task["id"] or time.monotonic() - self._follow_failed_at < 5:
            return
        self._following = task["id"]
        after_seq = self.query_one(TaskView).seq
        self.run_worker(self._stream(task["id"], after_seq), group="follow", exclusive=True)

    async def _stream(self, task_id: str, after_seq: int) -> None:
        """Apply the task's feed to the view while it is shown: tokens stream into the answer,
        stored events extend the view's events."""
        view = self.query_one(TaskView)
        try:
            async for reply in self.worker_client.follow(task_id, after_seq):
                self._feed_down = False
                if view.task_id != task_id:
                    return  # another task is shown: it has its own feed
                event = reply.get("event")
                if event is None:  # at rest: the task's row says how it ended
                    self.call_later(self.refresh_from_history)
                elif event["type"] == "token":
                    await view.stream_token(event.get("branch_id") or "", event["text"])
                elif view.add(event):
                    await view.show()
        except (OSError, MyninjaError):
            self._follow_failed_at = time.monotonic()
            self._feed_down = True  # no worker: refreshes read what history gets meanwhile
        finally:
            if self._following == task_id:
                self._following = None

    # Selecting and sending ----------------------------------------------------------------
    async def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        # Only the person's own moves in the list choose a task; the list highlighting the
        # shown task after a refresh is not a choice.
        if isinstance(event.option_list, TaskList) and event.option.id:
            if event.option_list.has_focus:
                await self.select_task(event.option.id)

    async def select_task(self, task_id: str) -> None:
        self.selected, self.composing, self._reload = task_id, False, True
        await self.refresh_from_history()

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "ask":
            return
        text = event.value.strip()
        if not text:
            return
        event.input.value = ""
        try:
            await self._send(text)
        except MyninjaError as exc:
            self.notify(exc.one_line(), severity="error", timeout=8)
        await self.refresh_from_history()

    async def _send(self, text: str) -> None:
        """Answer the selected task's open question, or start a new task."""
        if self.store is not None and self.selected and not self.composing:
            questions = self.store.questions(self.selected)
            if questions:
                await self.answer_question(self.selected, questions[0]["id"], text)
                return
        await self.submit(text)

    async def _ensure_worker(self) -> None:
        if notice := await self.worker_client.ensure():  # a busy worker of other code retired
            self.notify(notice, timeout=10)

    async def submit(self, text: str, **options: Any) -> None:
        await self._ensure_worker()
        reply: dict[str, Any] = await self.worker_client.request("submit", text=text, **options)
        self.selected, self.composing = reply["task_id"], False

    async def answer_question(self, task_id: str, question_id: str, text: str) -> None:
        await self._ensure_worker()
        await self.worker_client.request(
            "answer", task_id=task_id, question_id=question_id, text=text
        )

    def on_source_list_chosen(self, event: SourceList.Chosen) -> None:
        from myninja.ninja_tui.screens.dialogs import PassageDialog

        self.push_screen(PassageDialog(event.citation))

    # Actions --------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Task keys are letters: they are hidden (and off) while the box takes the typing,
        # and, like "new task", only belong to the main screen.
        on_main = self.screen is self.screen_stack[0]
        if action in TASK_ACTIONS:
            return on_main and self.selected is not None and not isinstance(self.focused, Input)
        if action in ("new_task", "leave_box"):
            return on_main
        return True

    def action_leave_box(self) -> None:
        if isinstance(self.focused, Input) and self.screen is self.screen_stack[0]:
            self.query_one(TaskList).focus()

    def action_new_task(self) -> None:
        if self.screen is not self.screen_stack[0]:
            return
        self.selected, self.composing = None, True
        box = self.query_one("#ask", Input)
        box.placeholder = ASK_PLACEHOLDER
        box.focus()

    def action_help(self) -> None:
        from myninja.ninja_tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(list(self._bindings_for_help())))

    def _bindings_for_help(self) -> Iterable[Binding]:
        for binding in self.BINDINGS:
            if isinstance(binding, Binding):
                yield binding
        yield Binding("ctrl+p", "command_palette", "Every action (command palette)")

    def action_inbox(self) -> None:
        from myninja.ninja_tui.screens.inbox import InboxScreen

        if isinstance(self.screen, InboxScreen):
            self.pop_screen()
            return
        self.push_screen(InboxScreen(self._open_questions, self.answer_question))

    def _open_questions(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        if self.store is None:
            return []
        pairs, seen = [], set()
        for question in self.store.questions():
            task = self.store.get_task(question["task_id"])
            same = (question["task_id"], question_key(question["text"]))
            if task is not None and task["status"] == "waiting" and same not in seen:
                seen.add(same)  # one answer serves every copy of a question (runtime.answer)
                pairs.append((question, task))
        return pairs

    def action_history(self) -> None:
        from myninja.ninja_tui.screens.history import HistoryScreen

        if self.store is None or isinstance(self.screen, HistoryScreen):
            return

        self.push_screen(HistoryScreen(self.store), self._show_chosen)

    async def _show_chosen(self, task_id: str | None) -> None:
        """What a screen handed back: the task to show, if any."""
        if task_id:
            await self.select_task(task_id)

    def action_schedules(self) -> None:
        from myninja.ninja_tui.screens.schedules import SchedulesScreen

        if self.store is None or isinstance(self.screen, SchedulesScreen):
            return
        self.push_screen(SchedulesScreen(self.store, self._ensure_worker), self._show_chosen)

    def action_memory(self) -> None:
        from myninja.ninja_tui.screens.memory import MemoryScreen

        if self.store is not None and not isinstance(self.screen, MemoryScreen):
            self.push_screen(MemoryScreen(self.store))

    def action_settings(self) -> None:
        from myninja.ninja_tui.screens.settings import SettingsScreen

        if isinstance(self.screen, SettingsScreen):
            return

        def saved(changed: bool | None) -> None:
            if not changed:
                return
            try:
                self.config = load_config(self.config_path)
            except MyninjaError as exc:
                self.notify(exc.one_line(), severity="error", timeout=8)
                return
            self.notifier.settings = self.config.notify
            self.notify("Settings saved; new tasks use them.")

        self.push_screen(SettingsScreen(self.config_path), saved)

    def _selected_task(self) -> dict[str, Any] | None:
        if self.store is None or self.selected is None:
            return None
        return self.store.get_task(self.selected)

    async def action_cancel_task(self) -> None:
        task = self._selected_task()
        if task is None:
            return
        if task["status"] in FINISHED:
            self.notify(f"The task is already {task['status']}.")
            return
        try:
            await self._ensure_worker()
            await self.worker_client.request("cancel", task_id=task["id"])
        except MyninjaError as exc:
            self.notify(exc.one_line(), severity="error")
            return
        from myninja.ninja_tui.unbook_offer import offer_removal

        offer_removal(self, task["id"], self.config)  # a meeting it had booked: remove it?

    async def action_retry_task(self) -> None:
        task = self._selected_task()
        if task is None:
            return
        options = {k: v for k, v in (task.get("options") or {}).items() if v}
        try:
            await self.submit(task["text"], agent=task.get("agent"), **options)
        except MyninjaError as exc:
            self.notify(exc.one_line(), severity="error", timeout=8)
            return
        self.notify("Started again as a new task.")
        await self.refresh_from_history()

    def action_rate(self, rating: str) -> None:
        from myninja.ninja_tui.screens.dialogs import RateDialog

        task = self._selected_task()
        if task is None:
            return

        def rated(result: tuple[str, str] | None) -> None:
            if result is None or self.store is None:
                return
            self.store.add_feedback(task["id"], result[0], note=result[1] or None)
            self.notify(f"Rated {result[0]}. Thanks: it shapes what myninja learns.")

        self.push_screen(RateDialog(task, rating), rated)

    def action_edit_answer(self) -> None:
        from myninja.ninja_tui.screens.dialogs import EditAnswerDialog

        task = self._selected_task()
        if task is None or self.store is None:
            return
        if not task.get("answer"):
            self.notify("This task has no answer yet.", severity="warning")
            return
        edits = [
            f["edited_answer"] for f in self.store.feedback(task["id"]) if f.get("edited_answer")
        ]
        current = edits[-1] if edits else task["answer"]

        def edited(text: str | None) -> None:
            if text is None or self.store is None:
                return
            if text.strip() == current.strip():
                self.notify("No change.")
                return
            if not text.strip():
                self.notify("An empty answer is not saved.", severity="warning")
                return
            store, mode = self.store, self.config.memory.confirm
            with store.batch():  # the edit and the memories it proposes: both, or neither
                proposed = edit_facts.propose(store, task["id"], text.strip(), confirm_mode=mode)
                store.add_feedback(task["id"], "edit", edited_answer=text.strip())
            self.notify("Edit saved: it will be preferred over the original in training exports.")
            if proposed:
                waiting = [m for m in proposed if m["status"] == "proposed"]
                kept = [m for m in proposed if m["status"] == "kept"]
                said = [f"remember “{m['text']}”?" for m in waiting]
                said += [f"remembered: {m['text']}" for m in kept]
                keys = " Keep or reject it in Memory (f3)." if waiting else ""
                self.notify(" ".join(said) + keys, title="Memory", timeout=10)

        self.push_screen(EditAnswerDialog(task, current), edited)

    def action_copy_answer(self) -> None:
        task = self._selected_task()
        if task is None or not task.get("answer"):
            self.notify("This task has no answer yet.", severity="warning")
            return
        self.copy_to_clipboard(task["answer"])
        self.notify("Answer copied to the clipboard.")

    def action_export_answer(self) -> None:
        from myninja.ninja_tui.screens.dialogs import ExportDialog

        task = self._selected_task()
        if task is None or not task.get("answer"):
            self.notify("This task has no answer yet.", severity="warning")
            return
        default = Path.cwd() / f"{_slug(task['text'])}-{task['id']}.md"

        def write(path: Path | None) -> None:
            if path is None or self.store is None:
                return
            try:
                export_markdown(path, task, self.store.citations(task["id"]))
            except OSError as exc:  # FileExistsError included
                self.notify(f"Not exported: {exc}", severity="error", timeout=8)
                return
            self.notify(f"Exported to {path}")

        self.push_screen(ExportDialog(default), write)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        everywhere = [
            ("New task", "Start typing a new task (ctrl+n)", self.action_new_task),
            ("Questions", "Every open question, answerable in place (ctrl+o)", self.action_inbox),
            (
                "History",
                "Search past tasks by text, agent, status, date (ctrl+s)",
                self.action_history,
            ),
            (
                "Schedules",
                "Scheduled tasks: next run, pause, run now, remove (ctrl+t)",
                self.action_schedules,
            ),
            (
                "Settings",
                "Backend and model per agent, health checks, keys, skill permissions (f2)",
                self.action_settings,
            ),
            ("Help", "Keys and how the app works (? / f1)", self.action_help),
        ]
        on_task = [
            ("Cancel task", "Stop the selected task (c)", self.action_cancel_task),
            ("Retry task", "Run the selected task again as a new one (r)", self.action_retry_task),
            (
                "Rate good",
                "Mark the answer good, with a note (+)",
                partial(self.action_rate, "good"),
            ),
            ("Rate bad", "Mark the answer bad, with a note (-)", partial(self.action_rate, "bad")),
            (
                "Edit answer",
                "Correct the answer; training prefers the edit over the original (a)",
                self.action_edit_answer,
            ),
            ("Copy answer", "Copy the answer to the clipboard (y)", self.action_copy_answer),
            ("Export answer", "Write the answer as a Markdown file (e)", self.action_export_answer),
        ]
        for title, help_text, callback in everywhere + (on_task if self.selected else []):
            yield SystemCommand(title, help_text, callback)
        yield from super().get_system_commands(screen)


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "answer"


def export_markdown(path: Path, task: dict[str, Any], citations: list[dict[str, Any]]) -> None:
    """Write the task's answer (and its sources) as Markdown, whole or not at all."""
    if path.exists():
        raise FileExistsError(f"{path} exists; choose another name")
    lines = [f"# {_short(task['text'], 120)}", "", task["answer"].strip(), ""]
    if citations:
        lines += ["## Sources", ""]
        lines += [
            f"[{c['n']}] {c.get('title') or ''} {c.get('source') or ''}".rstrip() for c in citations
        ]
        lines.append("")
    lines.append(f"<!-- myninja task {task['id']}, agent {task.get('agent') or '-'} -->")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".export-", suffix=".md")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")
        os.link(tmp, path)  # fails rather than replace a file that appeared meanwhile
    finally:
        os.unlink(tmp)
