"""The OS notification by focus: nothing while the app is focused (a toast only), from the app
while it is blurred, from the worker while no app is open; and its buttons act on the task.
A private session bus (`dbus-daemon --session`) carries it to a notification server of the
test's, which presses the buttons and replies by the spec's own signals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual import events

from myninja.agent_graph.history import HistoryStore
from myninja.agent_graph.tasks.client import WorkerClient
from myninja.agent_graph.tasks.presence import app_open
from myninja.ninja_tui.app import MyninjaApp
from tests.cli.test_acp import otter_home
from tests.dbus_notifications import (
    NotificationServer,
    dbus_daemon_present,
    notification_server,
    session_bus,
)
from tests.ninja_tui.test_app import type_and_enter, wait_for

pytestmark = pytest.mark.skipif(not dbus_daemon_present(), reason="dbus-daemon is not installed")
OTTERS = "@coder What do my otter notes say?"


@pytest.fixture
def data_dir(myninja_home: Path, tmp_path: Path) -> Iterator[Path]:
    otter_home(myninja_home, tmp_path)
    data = myninja_home / "data"
    yield data
    client = WorkerClient(data)
    if asyncio.run(client.alive()):
        asyncio.run(client.request("shutdown"))


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[NotificationServer]:
    with session_bus() as address:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
        async with notification_server(address) as running:
            yield running


def status(data_dir: Path, task_id: str) -> str:
    store = HistoryStore(data_dir / "history.db")
    try:
        return (store.get_task(task_id) or {}).get("status", "")
    finally:
        store.close()


def answer_of(data_dir: Path, task_id: str) -> Any:
    store = HistoryStore(data_dir / "history.db")
    try:
        return (store.get_task(task_id) or {}).get("answer")
    finally:
        store.close()


async def test_focused_the_app_only_toasts_and_the_worker_stays_quiet(
    data_dir: Path, server: NotificationServer
) -> None:
    app = MyninjaApp(data_dir, refresh_s=0.1)
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.app_focus
        await type_and_enter(pilot, OTTERS)
        task_id = app.selected
        await wait_for(pilot, lambda: ("toast", "question", task_id) in app.notifier.sent)
        await app.notifier.settle()
        await pilot.pause(1.0)  # time for a wrong notification, from the app or the worker
        assert [c for c, kind, _ in app.notifier.sent if kind == "question"] == ["toast"]
        assert server.sent == []
        assert any("Needs your answer" in (n.title or "") for n in app._notifications)


async def test_blurred_a_permission_is_allowed_from_the_notification(
    data_dir: Path, server: NotificationServer
) -> None:
    app = MyninjaApp(data_dir, refresh_s=0.1)
    async with app.run_test(size=(120, 40)) as pilot:
        app.post_message(events.AppBlur())  # the person switches to another window
        await pilot.pause()
        assert not app.app_focus
        # Typing would count as looking at the app again (Textual): submitted as the box does.
        await app.submit("Paint the fence")
        fence = app.selected
        asked = await server.next_sent(1)
        assert asked.app_name == "myninja" and "Which colour?" in asked.body
        assert asked.summary.startswith("myninja · Needs your answer: Paint the fence")
        assert "inline-reply" in asked.actions  # a question in words: the reply field
        await app.submit(OTTERS)
        otters = app.selected
        permission = await server.next_sent(2)
        assert "Allow the files skill to read your files?" in permission.body
        assert {k: permission.actions[k] for k in ("allow", "deny")} == {
            "allow": "Allow once",
            "deny": "Deny",
        }
        assert permission.actions["open"] == "Open"
        # The person presses "Allow once" (once the app has taken the server's reply to its
        # Notify: a button pressed before that is not yet the app's to hear).
        await wait_for(pilot, lambda: len(app.notifier.desktop.sent) == 2)
        server.ActionInvoked(permission.id, "allow")
        await wait_for(pilot, lambda: status(data_dir, otters) == "done")
        assert answer_of(data_dir, otters) == "They hold hands."
        # ... and replies "blue" to the other in the notification's own field.
        server.NotificationReplied(asked.id, "blue")
        await wait_for(pilot, lambda: status(data_dir, fence) == "done")
        assert answer_of(data_dir, fence) == "Painted it blue"
        # Both finished while blurred: two more notices; Open on the fence's shows it.
        await server.next_sent(4)
        await wait_for(pilot, lambda: len(app.notifier.desktop.sent) == 4)
        done = next(s for s in server.sent[2:] if "Paint the fence" in s.summary)
        assert done.summary.startswith("myninja · Done") and set(done.actions) >= {"open"}
        assert app.selected == otters
        server.ActionInvoked(done.id, "open")
        await wait_for(pilot, lambda: app.selected == fence)
        # All from the app itself: while it is open the worker sends none.
        assert len({s.sender for s in server.sent}) == 1 and len(server.sent) == 4


async def test_closed_the_worker_notifies_and_its_deny_button_answers(
    data_dir: Path, server: NotificationServer
) -> None:
    app = MyninjaApp(data_dir, refresh_s=0.1)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app_open(data_dir))
    assert not app_open(data_dir)  # the app is closed: from now on the worker tells
    client = WorkerClient(data_dir)
    await client.ensure()  # started with the test's bus in its environment
    reply = await client.request("submit", text=OTTERS)
    task_id = reply["task_id"]
    asked = await server.next_sent(1)
    assert "Allow the files skill" in asked.body and "deny" in asked.actions
    await asyncio.sleep(1.0)  # a person's reaction: the worker has taken its Notify's reply
    server.ActionInvoked(asked.id, "deny")
    for _ in range(300):
        if status(data_dir, task_id) == "done":
            break
        await asyncio.sleep(0.1)
    assert answer_of(data_dir, task_id) == "I was not allowed to read it."
    finished = await server.next_sent(2)
    assert finished.summary.startswith("myninja · Done") and "not allowed" in finished.body
