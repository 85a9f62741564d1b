"""A task's feed, on a real TaskManager (scripted backend, real history in a temp dir): stored
events replayed, then live ones, in seq order, each exactly once, then where the task rests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from myninja.agent_graph.events import make_event
from myninja.agent_graph.tasks.branch_tree import BranchTree, branch_row
from myninja.agent_graph.tasks.feed import Cursor, TaskFeed
from myninja.agent_graph.tasks.manager import TaskManager
from myninja.backends.scripted import Rule, ScriptedBackend
from myninja.config import Config
from tests.agent_graph.scripts import PLAN_ONE_STEP, ROUTE, three_branches

STORY = " ".join(f"word{i}" for i in range(40))
RULES = [ROUTE, PLAN_ONE_STEP, *three_branches((4, 9, 6))]
# The same task, its branches streaming slowly enough to open a feed half-way.
SLOW_RULES = [
    {**rule, "reply": f"{rule['reply']} {STORY}", "token_delay": 0.01} if "reply" in rule else rule
    for rule in RULES
]


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[TaskManager]:
    scripted = ScriptedBackend("embedded", [Rule(**r) for r in SLOW_RULES])
    config = Config.model_validate({"graph": {"adaptive": False, "judge": "each"}})
    async with TaskManager.open(
        config, tmp_path / "data", backends={"embedded": scripted}
    ) as opened:
        yield opened


async def drain(feed: TaskFeed) -> list[dict[str, Any]]:
    with feed:
        return [item async for item in feed]


def stored_seqs(items: list[dict[str, Any]]) -> list[int]:
    return [i["event"]["seq"] for i in items if "event" in i and i["event"]["seq"]]


def test_a_cursor_lets_each_stored_event_through_once_and_tokens_always() -> None:
    cursor = Cursor(after_seq=2)
    token = {"type": "token", "seq": 0}
    passed = [cursor.admit(e) for e in ({"seq": 2}, {"seq": 3}, token, {"seq": 3}, token)]
    assert passed == [False, True, True, False, True]
    assert cursor.seq == 3
    assert cursor.behind({"seq": 5}) and not cursor.behind({"seq": 4})


async def test_a_feed_opened_half_way_has_every_stored_event_once_in_order(
    manager: TaskManager,
) -> None:
    task_id = await manager.submit("Write a limerick about tmux")
    for _ in range(500):  # until the branches are writing
        if any(e["type"] == "branch_started" for e in manager.store.events(task_id)):
            break
        await asyncio.sleep(0.01)
    items = await asyncio.wait_for(drain(manager.feed(task_id)), 60)
    stored = manager.store.events(task_id)
    assert stored_seqs(items) == [e["seq"] for e in stored] == list(range(1, len(stored) + 1))
    assert [i["event"] for i in items if "event" in i and i["event"]["seq"]] == stored
    assert any(i["event"]["type"] == "token" for i in items if "event" in i)  # and live ones
    assert items[-1] == {"end": "done"}


async def test_a_feed_after_a_seq_starts_after_it_and_a_rested_task_ends_at_once(
    manager: TaskManager,
) -> None:
    task_id = await manager.submit("Write a limerick about tmux")
    await manager.wait(task_id)
    last = manager.store.last_seq(task_id)
    items = await asyncio.wait_for(drain(manager.feed(task_id, after_seq=last - 2)), 5)
    assert stored_seqs(items) == [last - 1, last]
    assert items[-1] == {"end": "done"}


async def test_an_event_stored_without_being_heard_comes_first_in_its_place(
    manager: TaskManager,
) -> None:
    store = manager.store
    store.create_task("t_feedgap0001", "a gap", status="running", owner=manager.owner)
    feed = manager.feed("t_feedgap0001")
    items: list[dict[str, Any]] = []

    async def collect() -> None:
        with feed:
            async for item in feed:
                items.append(item)

    following = asyncio.create_task(collect())
    await asyncio.sleep(0.05)
    # Stored behind the hub's back (as another writer would), then one published after it.
    routed = make_event("routed", agent="writer", path="plan")
    store.append_event("t_feedgap0001", "quiet", {"v": 1, **routed, "task_id": "t_feedgap0001"})
    manager.recorder.store_event("t_feedgap0001", "loud", make_event("answer", text="hi"))
    store.update_task("t_feedgap0001", status="done")
    await asyncio.wait_for(following, 5)
    assert [(i["event"]["seq"], i["event"]["type"]) for i in items[:-1]] == [
        (1, "routed"),
        (2, "answer"),
    ]
    assert items[-1] == {"end": "done"}


async def test_the_branch_rows_in_history_are_the_fold_the_app_draws(manager: TaskManager) -> None:
    task_id = await manager.submit("Write a limerick about tmux")
    await manager.wait(task_id)
    tree = BranchTree()
    tree.extend(manager.store.events(task_id))
    (plan,) = tree.rounds
    drawn = [branch_row(b) for step in plan["steps"] for b in step["branches"]]
    rows = [{k: v for k, v in r.items() if k != "task_id"} for r in manager.store.branches(task_id)]
    assert sorted(drawn, key=lambda b: b["branch_id"]) == rows  # rows come sorted by branch
    assert [(r["score"], r["kept"]) for r in rows] == [(4, False), (9, True), (6, False)]
