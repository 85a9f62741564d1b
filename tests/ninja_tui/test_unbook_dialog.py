"""The app's cancel (`c`) on a task that had already put a meeting on a real Radicale: the
ConfirmDialog asks whether to remove it; yes removes it (in a worker thread) and toasts, and
the ledger says removed; no keeps it and says how to remove it later. A real background worker
runs the task (scripted backend); the booking is book_meeting called with the task's id."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import caldav
import pytest
from textual.widgets import Input

from myninja.agent_graph.tasks.client import WorkerClient
from myninja.config_file import load_config
from myninja.ninja_tui.app import MyninjaApp
from myninja.ninja_tui.screens.dialogs import ConfirmDialog
from myninja.skills.api import Permission, ToolContext, task_workspace
from myninja.skills.scheduler.booking import LEDGER, book_meeting
from tests.cli.test_unbook_cmd import MEETING, configure
from tests.ninja_tui.test_app import notices, type_and_enter, wait_for
from tests.radicale_server import USERS, Radicale, radicale_server

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def dav(myninja_home: Path, tmp_path: Path) -> Iterator[Radicale]:
    folder = tmp_path / "dav"
    folder.mkdir()
    with radicale_server(folder) as server:
        client = caldav.DAVClient(
            url=f"{server.base_url}alice/", username="alice", password=USERS["alice"]
        )
        client.principal().make_calendar(name="Alice work", cal_id="work")
        configure(myninja_home, server.calendar_url("alice"))
        yield server
    worker = WorkerClient(myninja_home / "data")
    if asyncio.run(worker.alive()):
        asyncio.run(worker.request("shutdown"))


async def book_for(task_id: str) -> None:
    ctx = ToolContext(
        task_id,
        config=load_config(),
        granted=frozenset({Permission.CALENDAR_WRITE}),
        workspace_dir=task_workspace(task_id),
    )
    assert "Wrote event" in await book_meeting.call(dict(MEETING), ctx)


async def test_cancel_in_the_app_offers_to_remove_the_booked_event(
    myninja_home: Path, dav: Radicale
) -> None:
    client = caldav.DAVClient(url=dav.calendar_url("alice"), username="alice",
                              password=USERS["alice"])  # fmt: skip
    calendar = caldav.Calendar(client=client, url=dav.calendar_url("alice"))
    app = MyninjaApp(myninja_home / "data", refresh_s=0.1)
    async with app.run_test(size=(120, 40)) as pilot:
        box = app.query_one("#ask", Input)
        for answer in ("n", "y"):
            await type_and_enter(pilot, "Paint the fence")
            await wait_for(pilot, lambda: box.placeholder == "Answer: Which colour?")
            task_id = app.selected
            assert task_id is not None
            await book_for(task_id)
            await pilot.press("escape", "c")  # the task keys work outside the box
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
            assert "'Roadmap review' on calendar work" in app.screen.question  # type: ignore[attr-defined]
            await pilot.press(answer)
            ledger = task_workspace(task_id) / LEDGER
            if answer == "n":
                await wait_for(pilot, lambda: any("--remove-event" in n for n in notices(app)))
                (entry,) = json.loads(ledger.read_text()).values()
                assert "removed" not in entry and len(calendar.events()) == 1
                await pilot.press("ctrl+n")
            else:
                await wait_for(pilot, lambda: any(n.startswith("Removed") for n in notices(app)))
                (entry,) = json.loads(ledger.read_text()).values()
                assert entry["removed"]["was_there"] is True
                assert len(calendar.events()) == 1  # the first task's, which was kept
        assert app.store is not None and app.store.get_task(task_id)["status"] == "cancelled"  # type: ignore[index]
