"""Following a task through the worker when nothing runs it: a task whose end could not be
recorded (a full disk) ends the follow with one line instead of hanging; a task another
process runs (a foreground `ask`) is followed, with what that process stores, until it ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from myninja.agent_graph.events import make_event
from myninja.agent_graph.history import HistoryStore
from myninja.agent_graph.tasks.client import WorkerClient
from myninja.agent_graph.tasks.owners import process_owner
from myninja.errors import MyninjaError
from tests.agent_graph.scripts import FENCE_RULES
from tests.conftest import scripted_config


@pytest.fixture
async def worker(myninja_home: Path) -> AsyncIterator[tuple[WorkerClient, HistoryStore]]:
    scripted_config(myninja_home, FENCE_RULES, idle_s=30)
    data = myninja_home / "data"
    client = WorkerClient(data)
    await client.ensure()
    store = HistoryStore(data / "history.db")
    try:
        yield client, store
    finally:
        store.close()
        await client.request("shutdown")


async def ends(client: WorkerClient, task_id: str) -> list[dict]:
    return [reply async for reply in client.follow(task_id)]


async def test_a_task_whose_end_was_lost_ends_the_follow_with_one_line(
    worker: tuple[WorkerClient, HistoryStore],
) -> None:
    client, store = worker
    store.create_task("t_lost0000001", "a lost task", agent="writer", status="running",
                      owner="pid:999999:1")  # fmt: skip
    with pytest.raises(MyninjaError) as raised:
        await asyncio.wait_for(ends(client, "t_lost0000001"), 20)
    assert "its end could not be recorded" in str(raised.value)
    assert "'running'" in str(raised.value)


async def test_a_task_another_process_runs_is_followed_until_it_ends(
    worker: tuple[WorkerClient, HistoryStore],
) -> None:
    client, store = worker
    store.create_task("t_fore0000001", "run elsewhere", agent="writer", status="running",
                      owner=process_owner())  # this process: alive, not the worker  # fmt: skip
    follow = asyncio.create_task(ends(client, "t_fore0000001"))
    await asyncio.sleep(5)  # longer than the worker's grace for orphans
    assert not follow.done()
    # What the other process stores reaches the follow from history.
    answer = {"v": 1, **make_event("answer", text="from elsewhere"), "task_id": "t_fore0000001"}
    store.append_event("t_fore0000001", "elsewhere", answer)
    await asyncio.sleep(1.5)
    store.update_task("t_fore0000001", status="done", answer="finished elsewhere")
    replies = await asyncio.wait_for(follow, 10)
    assert [r["event"]["text"] for r in replies if "event" in r] == ["from elsewhere"]
    assert replies[-1] == {"ok": True, "end": "done"}
