"""The history screen over a real history.db: typing searches, the Selects filter, Enter hands
back a task id and escape hands back None, all at 80×24."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import DataTable, Footer, Input, Select

from myninja.agent_graph.history import HistoryStore
from myninja.config import WORKER_AGENTS
from myninja.ninja_tui.screens.history import HistoryScreen

DAY = 86_400.0


@pytest.fixture
def store(myninja_home: Path) -> Iterator[HistoryStore]:
    now = time.time()
    with HistoryStore(myninja_home / "history.db") as opened:
        seeded: list[tuple[str, str, str, str, float, str]] = [
            ("fresh", "Fix the flaky websocket test", "coder", "done", now - 1, "Raced teardown"),
            ("poem", "Write a websocket poem", "writer", "failed", now - 3 * DAY, ""),
            ("rfc", "Research websocket standards", "researcher", "done", now - 20 * DAY, ""),
            ("garden", "Plan the garden beds", "advisor", "waiting", now - 100 * DAY, ""),
            ("ode", "Write an ode to tomatoes", "writer", "done", now - 2 * DAY, ""),
        ]
        for task_id, text, agent, status, created, answer in seeded:
            opened.create_task(task_id, text, agent=agent, created_at=created)
            opened.update_task(task_id, status=status, answer=answer or None)
        opened.update_task("rfc", answer="RFC 6455 defines the websocket handshake.")
        yield opened


class Host(App[None]):
    def __init__(self, store: HistoryStore) -> None:
        super().__init__()
        self.store = store
        self.results: list[str | None] = []

    def on_mount(self) -> None:
        self.push_screen(HistoryScreen(self.store), callback=self.results.append)


def shown_ids(app: App[Any]) -> list[str]:
    table = app.screen.query_one(DataTable)
    return [str(key.value) for key in table.rows]


async def wait_for(pilot: Pilot[Any], check: Callable[[], bool], within_s: float = 5) -> None:
    for _ in range(int(within_s / 0.05)):
        if check():
            return
        await pilot.pause(0.05)
    raise AssertionError("the screen never showed what was expected")


def select(app: App[Any], select_id: str, value: str) -> None:
    app.screen.query_one(f"#{select_id}", Select).value = value


async def test_lists_newest_first_and_fits_80_by_24(store: HistoryStore) -> None:
    app = Host(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: len(shown_ids(app)) == 5)
        assert shown_ids(app) == ["fresh", "ode", "poem", "rfc", "garden"]
        screen = app.screen
        assert app.focused is screen.query_one(Input)
        for widget in [screen.query_one(Input), *screen.query(Select), screen.query_one(Footer)]:
            region = widget.region
            assert region.height >= 1 and region.bottom <= 24 and region.right <= 80
        table = screen.query_one(DataTable)
        assert table.region.height >= 6  # room for rows, not just a header
        row = table.get_row("rfc")
        assert "researcher" in str(row[1])
        assert "Research websocket standards" in str(row[3])


async def test_typing_searches_and_filters_narrow_it(store: HistoryStore) -> None:
    app = Host(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press(*"websocket")
        await wait_for(pilot, lambda: set(shown_ids(app)) == {"fresh", "poem", "rfc"})
        table = app.screen.query_one(DataTable)
        assert len(table.columns) == 5  # a query adds the matching snippet
        assert "6455" in str(table.get_row("rfc")[4])

        select(app, "agent", "writer")
        await wait_for(pilot, lambda: shown_ids(app) == ["poem"])
        select(app, "agent", "")
        select(app, "status", "done")
        await wait_for(pilot, lambda: set(shown_ids(app)) == {"fresh", "rfc"})
        select(app, "date", "7d")
        await wait_for(pilot, lambda: shown_ids(app) == ["fresh"])

        await pilot.press(*" handshake")  # every word must match
        await wait_for(pilot, lambda: shown_ids(app) == [])

        app.screen.query_one(Input).value = ""
        select(app, "status", "")
        select(app, "date", "30d")
        await wait_for(pilot, lambda: shown_ids(app) == ["fresh", "ode", "poem", "rfc"])
        assert len(table.columns) == 4
        select(app, "date", "today")
        await wait_for(pilot, lambda: shown_ids(app) == ["fresh"])


async def test_filters_work_from_the_keyboard(store: HistoryStore) -> None:
    app = Host(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: len(shown_ids(app)) == 5)
        app.screen.query_one("#status", Select).focus()
        await pilot.press("enter")  # opens the list: any status, queued, running, waiting, …
        await pilot.press("down", "down", "down", "enter")
        await wait_for(pilot, lambda: shown_ids(app) == ["garden"])
        assert app.screen.query_one("#status", Select).value == "waiting"


async def test_enter_on_a_row_dismisses_with_its_id(store: HistoryStore) -> None:
    app = Host(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press(*"write")
        await wait_for(pilot, lambda: set(shown_ids(app)) == {"poem", "ode"})
        await pilot.press("enter")  # from the query box to the results
        table = app.screen.query_one(DataTable)
        assert app.focused is table
        table.move_cursor(row=shown_ids(app).index("poem"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.results == ["poem"])
        assert not isinstance(app.screen, HistoryScreen)


async def test_escape_dismisses_with_none(store: HistoryStore) -> None:
    app = Host(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press(*"garden")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.results == [None])
        assert not isinstance(app.screen, HistoryScreen)


async def test_the_agent_filter_offers_every_agent_a_task_goes_to(store: HistoryStore) -> None:
    # A task the fast path answered is the assistant's: it must be found by agent too.
    store.create_task("tip", "A tip for focus", agent="assistant", created_at=time.time())
    app = Host(store)
    async with app.run_test(size=(80, 24)) as pilot:
        for agent in WORKER_AGENTS:
            select(app, "agent", agent)  # a value the Select does not offer raises
        select(app, "agent", "assistant")
        await wait_for(pilot, lambda: shown_ids(app) == ["tip"])
        assert shown_ids(app) == ["tip"]
