"""Memories in history.db: kept with where they came from, ranked against a task's text within
a token budget, and forgotten everywhere (the FTS index too)."""

from __future__ import annotations

from pathlib import Path

import pytest

from myninja.agent_graph.history import HistoryStore, memories
from myninja.agent_graph.history.connection import open_database
from myninja.agent_graph.history.migrations import MIGRATIONS, migrate
from myninja.errors import UsageError


def _fts_hits(store: HistoryStore, word: str) -> list[int]:
    rows = store.db.conn.execute(
        "SELECT rowid FROM memories_fts WHERE memories_fts MATCH ?", (word,)
    )
    return [row[0] for row in rows]


def test_a_memory_keeps_its_text_origin_and_time(store: HistoryStore) -> None:
    typed = memories.add(store, "  my time zone is\n Europe/Berlin ")
    store.create_task("t1", "plan my week")
    learned = memories.add(store, "I work four days a week", source="task", task_id="t1")
    rows = memories.all_memories(store)
    assert [r["id"] for r in rows] == [typed["id"], learned["id"]]
    assert rows[0]["text"] == "my time zone is Europe/Berlin"  # whitespace folded
    assert (rows[0]["source"], rows[0]["task_id"]) == ("person", None)
    assert (rows[1]["source"], rows[1]["task_id"]) == ("task", "t1")
    assert rows[0]["created_at"] <= rows[1]["created_at"]


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        ("   ", {}, "empty"),
        ("x" * 501, {}, "at most 500"),
        ("a fact", {"source": "dream"}, "unknown memory source"),
        ("a fact", {"source": "task"}, "needs the task"),
    ],
)
def test_bad_memories_are_refused(
    store: HistoryStore, text: str, kwargs: dict[str, str], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        memories.add(store, text, **kwargs)
    assert memories.all_memories(store) == []


def test_forget_removes_the_row_and_its_index_entry(store: HistoryStore) -> None:
    kept = memories.add(store, "my dentist is Dr Weber")
    gone = memories.add(store, "my time zone is Europe/Berlin")
    assert _fts_hits(store, "berlin") == [gone["id"]]
    assert memories.forget(store, str(gone["id"]))["text"] == "my time zone is Europe/Berlin"
    assert [r["id"] for r in memories.all_memories(store)] == [kept["id"]]
    assert _fts_hits(store, "berlin") == []
    assert _fts_hits(store, "dentist") == [kept["id"]]
    assert memories.relevant(store, "meeting time in Berlin", max_tokens=200) == []
    with pytest.raises(UsageError, match=f"no memory {gone['id']}"):
        memories.forget(store, gone["id"])
    with pytest.raises(UsageError, match="not a number"):
        memories.forget(store, "abc")


def test_relevant_ranks_by_the_task_and_keeps_to_the_budget(store: HistoryStore) -> None:
    zone = memories.add(store, "my time zone is Europe/Berlin")
    memories.add(store, "I am allergic to peanuts")
    long_one = memories.add(store, "for meetings " + "always leave a buffer; " * 10)
    short = memories.add(store, "meetings: never on Fridays")
    hits = memories.relevant(store, "Find a time for meetings next week", max_tokens=200)
    assert {h["id"] for h in hits} == {zone["id"], long_one["id"], short["id"]}  # not peanuts
    assert memories.relevant(store, "What is 2+2?", max_tokens=200) == []
    # A budget too small for the long memory skips it and still takes the short ones.
    small = memories.relevant(store, "Find a time for meetings next week", max_tokens=20)
    assert long_one["id"] not in {h["id"] for h in small}
    assert short["id"] in {h["id"] for h in small}
    assert sum(memories.estimate_tokens(h["text"]) for h in small) <= 20
    assert memories.relevant(store, "meetings", max_tokens=0) == []


def test_an_older_history_gains_the_memories_table(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    db = open_database(path)
    migrate(db, MIGRATIONS[:1])  # as written before memories existed
    db.close()
    with HistoryStore(path) as store:
        assert "m002_memories" in store.migrated
        memories.add(store, "my name is Ada")
        assert _fts_hits(store, "ada") == [1]
