"""The schedules screen over a real history.db, on a fake clock (MYNINJA_TEST_CLOCK): each
schedule's next run in local time and how far off, its last run's task, pause and resume, run
now, remove after a yes, and Enter handing back the last run's task; then the app's key."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import DataTable, Footer

from myninja.agent_graph.history import HistoryStore
from myninja.agent_graph.tasks.cron import TEST_CLOCK_ENV
from myninja.agent_graph.tasks.schedules import ScheduleBook
from myninja.ninja_tui.app import MyninjaApp
from myninja.ninja_tui.screens.dialogs import ConfirmDialog
from myninja.ninja_tui.screens.schedules import SchedulesScreen
from tests.ninja_tui.test_history_screen import wait_for

# Tuesday 10 March 2026, 06:30 local time.
NOW = datetime(2026, 3, 10, 6, 30).timestamp()
REASON = "paused itself: its last 3 runs in a row failed (the last: backend unreachable)"


def set_clock(path: Path, ts: float) -> None:
    path.write_text(str(ts))


@pytest.fixture
def clock(myninja_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = myninja_home / "clock"
    set_clock(path, NOW)
    monkeypatch.setenv(TEST_CLOCK_ENV, str(path))
    return path


@pytest.fixture
def store(myninja_home: Path, clock: Path) -> Iterator[HistoryStore]:
    with HistoryStore(myninja_home / "history.db") as opened:
        yield opened


@pytest.fixture
def seeded(store: HistoryStore) -> dict[str, str]:
    """Three schedules: a daily one whose last run is a done task, a weekly one that never
    ran, and one that paused itself. Returns their ids and the done task's, by name."""
    book = ScheduleBook(store)
    daily = book.add("every day at 08:00", "@researcher what changed in SQLite")
    weekly = book.add("30 8 * * fri", "@writer draft the weekly notes")
    failing = book.add("every 2 hours", "Check the build")
    run = book.run_now(daily["id"])
    store.create_task(run.task_id, run.text, status="done", created_at=NOW)
    with store.batch():
        store.db.conn.execute(
            "UPDATE schedules SET paused = 1, paused_reason = ? WHERE id = ?",
            (REASON, failing["id"]),
        )
    return {
        "daily": daily["id"],
        "weekly": weekly["id"],
        "failing": failing["id"],
        "task": run.task_id,
    }


class Host(App[None]):
    def __init__(self, store: HistoryStore) -> None:
        super().__init__()
        self.store = store
        self.results: list[str | None] = []
        self.worker_starts = 0

    async def start_worker(self) -> None:
        """As a worker would, at once: submit every claimed run as a queued task."""
        self.worker_starts += 1
        for run in ScheduleBook(self.store).unsubmitted():
            self.store.create_task(run.task_id, run.text, created_at=NOW)

    def on_mount(self) -> None:
        self.push_screen(SchedulesScreen(self.store, self.start_worker), self.results.append)


def table(app: App[Any]) -> DataTable[Any]:
    return app.screen.query_one("#schedules", DataTable)


def row_text(app: App[Any], schedule_id: str) -> list[str]:
    return [str(cell) for cell in table(app).get_row(schedule_id)]


def shown_ids(app: App[Any]) -> list[str]:
    return [str(key.value) for key in table(app).rows]


async def choose(pilot: Pilot[Any], schedule_id: str) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: schedule_id in shown_ids(app))
    table(app).move_cursor(row=shown_ids(app).index(schedule_id))
    await pilot.pause()


@pytest.fixture
def host(store: HistoryStore, seeded: dict[str, str]) -> Host:
    return Host(store)


async def test_lists_schedules_with_their_next_run_at_80_by_24(
    host: Host, seeded: dict[str, str], clock: Path
) -> None:
    async with host.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: len(shown_ids(host)) == 3)
        assert shown_ids(host) == [seeded["daily"], seeded["weekly"], seeded["failing"]]
        # Today at 08:00, 1½ hours off; Friday 08:30, 3 days and 2 hours off.
        spec, text, next_run, last_run, state = row_text(host, seeded["daily"])
        assert (spec, state) == ("every day at 08:00", "on")
        assert "what changed in SQLite" in text
        assert next_run == "08:00 (in 2 h)"
        assert last_run == "✓ 06:30"
        _, _, next_run, last_run, state = row_text(host, seeded["weekly"])
        assert (next_run, last_run, state) == ("Fri 08:30 (in 3 d)", "never", "on")
        _, _, next_run, _, state = row_text(host, seeded["failing"])
        assert next_run == "–" and state == "paused ⚠"
        for widget in (table(host), host.screen.query_one(Footer)):
            assert widget.region.bottom <= 24 and widget.region.right <= 80
        await choose(pilot, seeded["failing"])
        detail = str(host.screen.query_one("#detail").render())
        assert REASON in detail and "0 */2 * * *" in detail and "Check the build" in detail
        await choose(pilot, seeded["daily"])
        detail = str(host.screen.query_one("#detail").render())
        assert f"last run 06:30: done, task {seeded['task']}" in detail
        set_clock(clock, NOW + 7200)  # 08:30, and no worker has run the 08:00 one
        assert isinstance(host.screen, SchedulesScreen)
        host.screen.refresh_rows()
        assert row_text(host, seeded["daily"])[2] == "08:00 (due)"


async def test_pause_and_resume_toggle_the_row_and_the_stored_state(
    host: Host, store: HistoryStore, seeded: dict[str, str], clock: Path
) -> None:
    book = ScheduleBook(store)
    async with host.run_test(size=(80, 24)) as pilot:
        await choose(pilot, seeded["weekly"])
        await pilot.press("p")
        await wait_for(pilot, lambda: row_text(host, seeded["weekly"])[4] == "paused")
        assert book.get(seeded["weekly"])["paused"] is True
        assert row_text(host, seeded["weekly"])[2] == "–"

        set_clock(clock, NOW + 4 * 86_400)  # Saturday: resumed, it waits for next Friday
        await pilot.press("p")
        await wait_for(pilot, lambda: row_text(host, seeded["weekly"])[4] == "on")
        stored = book.get(seeded["weekly"])
        assert stored["paused"] is False
        assert stored["next_due"] == datetime(2026, 3, 20, 8, 30).timestamp()
        assert row_text(host, seeded["weekly"])[2] == "Mar 20 08:30 (in 6 d)"
        assert host.worker_starts == 1  # a resumed schedule needs a worker to run it

        await choose(pilot, seeded["failing"])
        await pilot.press("p")  # resuming clears the reason it paused itself
        await wait_for(pilot, lambda: row_text(host, seeded["failing"])[4] == "on")
        assert book.get(seeded["failing"])["paused_reason"] is None


async def test_remove_asks_first_and_then_removes(
    host: Host, store: HistoryStore, seeded: dict[str, str]
) -> None:
    async with host.run_test(size=(80, 24)) as pilot:
        await choose(pilot, seeded["weekly"])
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(host.screen, ConfirmDialog))
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(host.screen, SchedulesScreen))
        assert seeded["weekly"] in shown_ids(host)

        await pilot.press("delete")
        await wait_for(pilot, lambda: isinstance(host.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_for(pilot, lambda: seeded["weekly"] not in shown_ids(host))
        remaining = [row["id"] for row in ScheduleBook(store).entries()]
        assert remaining == [seeded["daily"], seeded["failing"]]


async def test_run_now_starts_a_task_and_enter_opens_the_last_run(
    host: Host, store: HistoryStore, seeded: dict[str, str]
) -> None:
    async with host.run_test(size=(80, 24)) as pilot:
        await choose(pilot, seeded["weekly"])
        await pilot.press("enter")  # it never ran: nothing to open
        await pilot.pause(0.1)
        assert host.results == [] and isinstance(host.screen, SchedulesScreen)

        await pilot.press("n")
        runs = ScheduleBook(store).runs
        await wait_for(pilot, lambda: bool(runs(seeded["weekly"])))
        [run] = runs(seeded["weekly"])
        assert run["manual"] == 1 and host.worker_starts == 1
        await wait_for(pilot, lambda: row_text(host, seeded["weekly"])[3] == "◌ 06:30")

        await pilot.press("enter")
        await wait_for(pilot, lambda: host.results == [run["task_id"]])
        assert not isinstance(host.screen, SchedulesScreen)


async def test_escape_closes_with_nothing_to_open(host: Host) -> None:
    async with host.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: len(shown_ids(host)) == 3)
        await pilot.press("escape")
        await wait_for(pilot, lambda: host.results == [None])
        assert host.results == [None] and not isinstance(host.screen, SchedulesScreen)


async def test_ctrl_t_opens_the_schedules_and_enter_shows_the_task_in_the_app(
    myninja_home: Path, clock: Path
) -> None:
    data = myninja_home / "data"
    data.mkdir()
    with HistoryStore(data / "history.db") as store:
        book = ScheduleBook(store)
        daily = book.add("every day at 08:00", "Water the plants")
        run = book.run_now(daily["id"])
        store.create_task(run.task_id, run.text, status="done", created_at=NOW)
        store.create_task("t_other", "Something newer", status="done", created_at=NOW + 1)
    app = MyninjaApp(data, refresh_s=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.selected == "t_other")
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: isinstance(app.screen, SchedulesScreen))
        await wait_for(pilot, lambda: shown_ids(app) == [daily["id"]])
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.selected == run.task_id)
        header = app.query_one("#task-header")
        await wait_for(pilot, lambda: "Water the plants" in str(header.render()))
        assert app.selected == run.task_id and not isinstance(app.screen, SchedulesScreen)
