from __future__ import annotations

import sqlite3

import pytest

from myninja.agent_graph.history import HistoryStore
from myninja.errors import UsageError


def test_create_and_get(store: HistoryStore) -> None:
    store.create_task("t1", "Plan my week", agent="scheduler", owner="pid:42", created_at=100.0)
    task = store.get_task("t1")
    assert task is not None
    assert task["text"] == "Plan my week"
    assert task["agent"] == "scheduler"
    assert task["owner"] == "pid:42"
    assert task["status"] == "queued"
    assert task["created_at"] == task["updated_at"] == 100.0
    assert task["finished_at"] is None
    assert task["unread"] is False
    assert task["plan"] is None and task["examples"] is None and task["options"] is None


def test_create_twice_is_an_error(store: HistoryStore) -> None:
    store.create_task("t1", "first")
    with pytest.raises(UsageError, match="already exists"):
        store.create_task("t1", "second")
    assert store.get_task("t1")["text"] == "first"


def test_unknown_status_is_refused(store: HistoryStore) -> None:
    with pytest.raises(UsageError, match="status"):
        store.create_task("t1", "x", status="sleeping")
    store.create_task("t1", "x")
    with pytest.raises(UsageError, match="status"):
        store.update_task("t1", status="sleeping")
    assert store.get_task("t1")["status"] == "queued"


def test_update_encodes_json_and_stamps_times(store: HistoryStore) -> None:
    store.create_task("t1", "x", created_at=100.0)
    plan = {"steps": [{"agent": "coder", "goal": "write it"}]}
    options = {"backend": "gateway", "model": "llama"}
    store.update_task("t1", status="running", plan=plan, examples=["a1", "b2"], unread=True)
    store.update_task("t1", options=options)
    task = store.get_task("t1")
    assert task["plan"] == plan
    assert task["options"] == options
    assert task["examples"] == ["a1", "b2"]
    assert task["unread"] is True
    assert task["updated_at"] > 100.0
    raw = store.db.execute("SELECT plan, examples FROM tasks").fetchone()
    assert raw == ('{"steps": [{"agent": "coder", "goal": "write it"}]}', '["a1", "b2"]')
    assert task["finished_at"] is None

    store.update_task("t1", status="done", answer="42")
    done = store.get_task("t1")
    assert done["finished_at"] is not None and done["answer"] == "42"
    store.update_task("t1", status="done")
    assert store.get_task("t1")["finished_at"] == done["finished_at"]  # stamped once
    store.update_task("t1", status="queued")  # resubmitted
    assert store.get_task("t1")["finished_at"] is None


def test_update_refuses_unknown_columns_and_tasks(store: HistoryStore) -> None:
    store.create_task("t1", "x")
    with pytest.raises(ValueError, match="colour"):
        store.update_task("t1", colour="red")
    with pytest.raises(UsageError, match="no task"):
        store.update_task("nope", status="done")


def test_get_by_prefix(store: HistoryStore) -> None:
    store.create_task("a1b2c3d4", "one")
    store.create_task("a1b2ffff", "two")
    store.create_task("9f9f0000", "three")
    assert store.get_task("9f9f")["text"] == "three"
    assert store.get_task("a1b2c")["text"] == "one"
    assert store.get_task("9f9") is None  # shorter than 4: not a prefix lookup
    assert store.get_task("zzzz") is None
    with pytest.raises(UsageError) as err:
        store.get_task("a1b2")
    assert "a1b2c3d4" in str(err.value) and "a1b2ffff" in str(err.value)


def test_list_tasks_newest_first_with_filters(store: HistoryStore) -> None:
    store.create_task("t1", "a", agent="coder", created_at=1.0)
    store.create_task("t2", "b", agent="writer", created_at=2.0, status="done")
    store.create_task("t3", "c", agent="coder", created_at=3.0, status="running")
    assert [t["id"] for t in store.list_tasks()] == ["t3", "t2", "t1"]
    assert [t["id"] for t in store.list_tasks(agent="coder")] == ["t3", "t1"]
    assert [t["id"] for t in store.list_tasks(status="done")] == ["t2"]
    assert [t["id"] for t in store.list_tasks(status=["done", "queued"])] == ["t2", "t1"]
    assert [t["id"] for t in store.list_tasks(since=2.0)] == ["t3", "t2"]
    assert [t["id"] for t in store.list_tasks(limit=1)] == ["t3"]


def test_unfinished_tasks_oldest_first(store: HistoryStore) -> None:
    for n, status in enumerate(["done", "waiting", "failed", "queued", "cancelled", "running"]):
        store.create_task(f"t{n}", status, status=status, created_at=float(n))
    assert [t["status"] for t in store.unfinished_tasks()] == ["waiting", "queued", "running"]


def test_records_need_an_existing_task(store: HistoryStore) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        store.append_event("ghost", "k", {"type": "token"})
    assert store.db["events"].count == 0
