"""SVG snapshots of the main screens at 80×24 and 120×40, over a fixed history.

A changed look fails here until the snapshots are reviewed and updated with
`pytest tests/ninja_tui/test_snapshots.py --snapshot-update`."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from myninja.agent_graph.tasks.cron import TEST_CLOCK_ENV
from myninja.ninja_tui.app import MyninjaApp
from tests.ninja_tui.seed import T0, seed_history

SIZES = [(80, 24), (120, 40)]
DONE_TASK = "t_0000000000a1"


@pytest.fixture(autouse=True)
def in_home(myninja_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The settings screen shows the config file's path: a relative one looks the same each run.
    monkeypatch.chdir(myninja_home)
    # The schedules' next runs read "in 3 h" from the seeded moment, not from today.
    (myninja_home / "clock").write_text(str(T0))
    monkeypatch.setenv(TEST_CLOCK_ENV, str(myninja_home / "clock"))


def seeded_app(home: Path) -> MyninjaApp:
    data = home / "data"
    seed_history(data)
    # No refresh while the picture is taken: the seeded history does not change.
    app = MyninjaApp(data, refresh_s=3600, config_path=Path("config.toml"))
    app.selected = DONE_TASK  # shown from the first refresh on
    return app


async def show_done_task(pilot: Pilot) -> None:
    """Once the app has opened its history (just after the first frame), wait until the view
    shows the done task (a busy machine may take a few frames)."""
    app = pilot.app
    assert isinstance(app, MyninjaApp)
    while app.store is None:
        await pilot.pause(0.05)
    for _ in range(100):
        if "Find a time" in str(app.query_one("#task-header").render()):
            return
        await pilot.pause(0.05)


async def settle(pilot: Pilot) -> None:
    app = pilot.app
    assert isinstance(app, MyninjaApp)
    for _ in range(100):  # until the refresh under way (rendering the answer) is over
        if not app.refreshing:
            break
        await pilot.pause(0.05)
    for box in [*pilot.app.query(Input), *pilot.app.screen.query(Input)]:
        box.cursor_blink = False  # a blinking cursor would be caught on or off by chance
    await pilot.pause(0.2)
    await pilot.wait_for_scheduled_animations()
    await pilot.pause(0.2)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_main_screen(snap_compare, myninja_home: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    async def shown(pilot: Pilot) -> None:
        await show_done_task(pilot)
        await settle(pilot)

    assert snap_compare(seeded_app(myninja_home), terminal_size=size, run_before=shown)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("key", ["ctrl+o", "ctrl+s", "ctrl+t", "f2", "f1"])
def test_screen(snap_compare, myninja_home: Path, size: tuple[int, int], key: str) -> None:  # type: ignore[no-untyped-def]
    async def open_screen(pilot: Pilot) -> None:
        await show_done_task(pilot)
        await pilot.press(key)
        await settle(pilot)

    assert snap_compare(seeded_app(myninja_home), terminal_size=size, run_before=open_screen)
