"""Tokens and cost on the main screen: the shown task's in its header, today's (local day) in
the app's subtitle, always in view.

Read from history's usage table only when they can have changed: a task chosen, the shown
task's status changed, any task finished; and, while some task runs, every `TICK_S`, so a
running task's count moves without a query on each refresh of the task list."""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from myninja.agent_graph.history.statuses import FINISHED, RESTING
from myninja.ninja_tui.usage_text import usage_text

if TYPE_CHECKING:
    from collections.abc import Callable

    from textual.app import App
    from textual.timer import Timer

    from myninja.agent_graph.history import HistoryStore
    from myninja.agent_graph.history.usage import Line
    from myninja.config import Config
    from myninja.ninja_tui.widgets.task_view import TaskView

TICK_S = 10.0  # while a task runs
MIN_GAP_S = 2.0  # between two reads of today's total: tasks finishing in a burst read it once


def day_start(now: float) -> float:
    """Local midnight before `now`."""
    midnight = datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.timestamp()


def task_usage(store: HistoryStore, config: Config, task_id: str) -> Line:
    from myninja.agent_graph.history import usage as ledger

    return ledger.summarize(config, ledger.calls(store, task_id=task_id), "model")[1]


def today_usage(store: HistoryStore, config: Config, now: float) -> Line:
    from myninja.agent_graph.history import usage as ledger

    return ledger.summarize(config, ledger.calls(store, since=day_start(now)), "model")[1]


class UsageShown:
    """Keeps the shown task's usage and today's total up to date for the app, which says what
    it lists and shows (`listed`, `shown`); the store and config are the app's."""

    def __init__(self, app: App[Any], clock: Callable[[], float] = time.time) -> None:
        self.app = app
        self.clock = clock
        self._shown: tuple[str, str] | None = None  # (task id, status) the view's usage is of
        self._statuses: dict[str, str] | None = None  # as last listed
        self._active = False  # some listed task runs
        self._today_read_at = float("-inf")  # monotonic
        self._day: float | None = None
        self._pending: Timer | None = None

    @property
    def view(self) -> TaskView:
        from myninja.ninja_tui.widgets.task_view import TaskView

        return self.app.query_one(TaskView)

    @property
    def store(self) -> HistoryStore | None:
        return getattr(self.app, "store", None)

    def start(self) -> None:
        self.today()
        self.app.set_interval(TICK_S, self._tick)

    def listed(self, tasks: list[dict[str, Any]]) -> None:
        """The app's task list, read anew: a task that finished since changes today's total."""
        statuses = {t["id"]: t["status"] for t in tasks}
        before, self._statuses = self._statuses, statuses
        # New since the last look, or moved: a task may appear already finished (a quick one
        # run elsewhere). The first look is not news: `start` reads the total.
        finished = before is not None and any(
            status in FINISHED and before.get(task_id) != status
            for task_id, status in statuses.items()
        )
        self._active = any(status not in RESTING for status in statuses.values())
        if finished:
            self.today()

    def shown(self, task: dict[str, Any]) -> None:
        """The task the view shows: its usage is read when it is chosen or its status moves."""
        key = (task["id"], task["status"])
        if key != self._shown or self.view.usage is None:
            self._read_task(key)

    def _read_task(self, key: tuple[str, str]) -> None:
        if self.store is None:
            return
        self._shown = key
        self.view.show_usage(task_usage(self.store, self.app.config, key[0]))

    def today(self) -> None:
        """Read today's total now, or, within `MIN_GAP_S` of the last read, once that is over."""
        wait = self._today_read_at + MIN_GAP_S - time.monotonic()
        if wait > 0:
            if self._pending is None:
                self._pending = self.app.set_timer(wait, self._read_today)
            return
        self._read_today()

    def _read_today(self) -> None:
        self._pending = None
        if self.store is None:
            return
        now = self.clock()
        self._today_read_at = time.monotonic()
        self._day = day_start(now)
        self.app.sub_title = f"today {usage_text(today_usage(self.store, self.app.config, now))}"

    def _tick(self) -> None:
        if self._active:
            self.today()
            shown = self._shown
            if shown is not None and shown[1] not in RESTING and self.view.task_id == shown[0]:
                self._read_task(shown)
        elif self._day != day_start(self.clock()):
            self.today()  # a new day: yesterday's calls leave the total
