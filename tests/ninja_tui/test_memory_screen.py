"""The memory screen over a real history.db: proposed memories first, y keeps one, n rejects
one, a adds one, d forgets one (after a yes, from the FTS index too), all at 80×24."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import DataTable, Footer

from myninja.agent_graph.history import HistoryStore, memories
from myninja.ninja_tui.screens.memory import MemoryScreen


@pytest.fixture
def store(myninja_home: Path) -> Iterator[HistoryStore]:
    with HistoryStore(myninja_home / "history.db") as opened:
        opened.create_task("t1", "Book a call with anna", agent="scheduler")
        memories.add(opened, "I am allergic to peanuts")  # 1, kept
        memories.propose(  # 2, proposed
            opened,
            task_id="t1",
            question="Which time zone are you in?",
            answer="Europe/Berlin",
            agent="scheduler",
        )
        memories.propose(  # 3, proposed
            opened, task_id="t1", question="Who is on the team?", answer="anna, ben and chika"
        )
        yield opened


class Host(App[None]):
    def __init__(self, store: HistoryStore) -> None:
        super().__init__()
        self.store = store

    def on_mount(self) -> None:
        self.push_screen(MemoryScreen(self.store))


def shown(app: App[Any]) -> list[tuple[str, str]]:
    """(id, status) of each row, top to bottom."""
    table = app.screen.query_one(DataTable)
    return [(str(key.value), str(table.get_row(key)[1])) for key in table.rows]


def statuses(store: HistoryStore) -> dict[int, str]:
    return {row["id"]: row["status"] for row in memories.all_memories(store)}


async def wait_for(pilot: Pilot[Any], check: Callable[[], bool], within_s: float = 5) -> None:
    for _ in range(int(within_s / 0.05)):
        if check():
            return
        await pilot.pause(0.05)
    raise AssertionError("the screen never showed what was expected")


async def test_lists_proposed_first_and_fits_80_by_24(store: HistoryStore) -> None:
    app = Host(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: len(shown(app)) == 3)
        assert shown(app) == [("2", "proposed"), ("3", "proposed"), ("1", "kept")]
        table = app.screen.query_one(DataTable)
        assert "Europe/Berlin" in str(table.get_row("2")[3])
        assert "task t1" in str(table.get_row("2")[2])
        assert str(table.get_row("1")[2]) == "you"
        for widget in (table, app.screen.query_one(Footer)):
            assert widget.region.bottom <= 24 and widget.region.right <= 80
        assert table.region.height >= 6


async def test_keys_keep_reject_add_and_forget(store: HistoryStore) -> None:
    app = Host(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: len(shown(app)) == 3)
        await pilot.press("y")  # the cursor is on the first proposal: the time zone
        await wait_for(pilot, lambda: statuses(store)[2] == "kept")
        assert ("2", "kept") in shown(app)
        assert [m["id"] for m in memories.relevant(store, "time zone", max_tokens=200)] == [2]

        app.screen.query_one(DataTable).move_cursor(row=0)  # the team, still proposed
        assert shown(app)[0] == ("3", "proposed")
        await pilot.press("n")
        await wait_for(pilot, lambda: 3 not in statuses(store))
        assert [key for key, _ in shown(app)] == ["1", "2"]

        await pilot.press("y")  # a kept one cannot be kept again: a notice, no change
        await pilot.pause(0.1)
        assert statuses(store) == {1: "kept", 2: "kept"}

        await pilot.press("a")
        await pilot.press(*"my desk is in room 4")
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(statuses(store)) == 3)
        added = memories.all_memories(store)[-1]
        assert (added["text"], added["source"], added["status"]) == (
            "my desk is in room 4",
            "person",
            "kept",
        )
        assert (str(added["id"]), "kept") in shown(app)

        table = app.screen.query_one(DataTable)
        table.move_cursor(row=table.get_row_index("2"))
        await pilot.press("d")
        await pilot.press("n")  # no: nothing is forgotten
        await pilot.pause(0.1)
        assert 2 in statuses(store)
        await pilot.press("d", "y")
        await wait_for(pilot, lambda: 2 not in statuses(store))
        hits = store.db.conn.execute(
            "SELECT rowid FROM memories_fts WHERE memories_fts MATCH 'berlin'"
        ).fetchall()
        assert hits == []
        assert "2" not in [key for key, _ in shown(app)]


async def test_an_empty_list_says_how_to_add(myninja_home: Path) -> None:
    with HistoryStore(myninja_home / "history.db") as empty:
        app = Host(empty)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.1)
            assert shown(app) == []
            assert "Press a to add one" in str(app.screen.query_one("#detail").render())
            await pilot.press("escape")
            await pilot.pause(0.05)
            assert not isinstance(app.screen, MemoryScreen)


async def test_f3_opens_it_from_the_app(myninja_home: Path) -> None:
    from myninja.ninja_tui.app import MyninjaApp

    data = myninja_home / "data"
    data.mkdir(parents=True, exist_ok=True)
    with HistoryStore(data / "history.db") as seeded:
        memories.add(seeded, "my name is Ada")
    app = MyninjaApp(data, refresh_s=3600, config_path=myninja_home / "config.toml")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.store is not None)
        await pilot.press("f3")
        await wait_for(pilot, lambda: isinstance(app.screen, MemoryScreen))
        await wait_for(pilot, lambda: shown(app) == [("1", "kept")])
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, MemoryScreen))
        assert not isinstance(app.screen, MemoryScreen) and app.store is not None
