"""After the app cancels a task: where the task had already put a meeting on a calendar, ask
(the app's ConfirmDialog) whether to remove it; yes removes it in a thread, since a CalDAV
server may take seconds or time out, and a toast says how it went. The logic is the
scheduler's (myninja.skills.scheduler.unbook); this is only the asking."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from myninja.errors import MyninjaError

if TYPE_CHECKING:
    from textual.app import App

    from myninja.config import Config


def offer_removal(app: App[None], task_id: str, config: Config) -> None:
    """Push the question if the task's ledger shows events still written; else nothing."""
    from myninja.ninja_tui.screens.dialogs import ConfirmDialog
    from myninja.skills.scheduler.unbook import written_events

    try:
        written = written_events(task_id)
    except MyninjaError as exc:  # an unreadable ledger: say so, guess nothing
        app.notify(exc.one_line(), severity="error", timeout=8)
        return
    if not written:
        return
    listed = "; ".join(e.describe() for e in written)

    def answered(yes: bool | None) -> None:
        if yes:
            app.run_worker(partial(_remove, app, task_id, config), thread=True, group="unbook")
        else:
            app.notify(f"Kept. Later: myninja tasks cancel {task_id} --remove-event", timeout=8)

    app.push_screen(ConfirmDialog(f"The task put {listed}. Remove it?"), answered)


def _remove(app: App[None], task_id: str, config: Config) -> None:
    """In a worker thread: remove, then toast from the app's thread."""
    from myninja.skills.scheduler.unbook import remove_written_events

    try:
        removed = remove_written_events(task_id, config)
    except MyninjaError as exc:  # server down, wrong password: the ledger still says written
        app.call_from_thread(app.notify, exc.one_line(), severity="error", timeout=8)
        return
    said = "; ".join(e.describe() for e in removed) or "nothing (already removed)"
    app.call_from_thread(app.notify, f"Removed {said}.")
