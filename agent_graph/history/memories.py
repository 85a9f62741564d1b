"""Memories: facts about the person that agents are shown (a time zone, a name, a preference).

Each is kept in history.db's `memories` table with its text, where it came from (`person`:
typed by the person; `task`: from an answer in a task) and when. An FTS5 index (triggers keep
it in step) ranks them against a task's text with bm25; `relevant` picks the best that fit a
token budget. Forgetting one deletes the row, and the trigger deletes its index entry.
"""

from __future__ import annotations

import time
from typing import Any

from myninja.errors import UsageError

from . import search as fts
from .connection import fetch
from .store import HistoryStore

SOURCES = ("person", "task")
MAX_CHARS = 500  # a memory is a fact, not a document: longer text is a mistake
CHARS_PER_TOKEN = 4  # the backend's tokenizer is not at hand here; English averages about 4


def estimate_tokens(text: str) -> int:
    return max(1, -(-len(text) // CHARS_PER_TOKEN))


def add(
    store: HistoryStore, text: str, *, source: str = "person", task_id: str | None = None
) -> dict[str, Any]:
    """Store one memory and return it."""
    text = " ".join(text.split())
    if not text:
        raise UsageError("the memory is empty", hint='give its text: myninja memory add "…"')
    if len(text) > MAX_CHARS:
        raise UsageError(
            f"the memory is {len(text)} characters long; at most {MAX_CHARS}",
            hint="keep one short fact per memory",
        )
    if source not in SOURCES:
        raise UsageError(f"unknown memory source {source!r}", hint=f"one of: {', '.join(SOURCES)}")
    if source == "task" and not task_id:
        raise UsageError("a memory from a task needs the task's id")
    now = time.time()
    with store.batch():
        cursor = store.db.conn.execute(
            "INSERT INTO memories (text, source, task_id, created_at) VALUES (?, ?, ?, ?)",
            (text, source, task_id, now),
        )
        memory_id = cursor.lastrowid
    return {"id": memory_id, "text": text, "source": source, "task_id": task_id, "created_at": now}


def all_memories(store: HistoryStore) -> list[dict[str, Any]]:
    """Every memory, oldest first."""
    return fetch(store.db, "SELECT * FROM memories ORDER BY created_at, id")


def by_ids(store: HistoryStore, ids: list[int]) -> list[dict[str, Any]]:
    """The memories with these ids that are still kept (forgotten ones are gone), in id order."""
    if not ids:
        return []
    marks = ", ".join("?" for _ in ids)
    return fetch(store.db, f"SELECT * FROM memories WHERE id IN ({marks}) ORDER BY id", ids)


def forget(store: HistoryStore, memory_id: str | int) -> dict[str, Any]:
    """Delete one memory (and, by trigger, its index entry); return what was deleted."""
    try:
        number = int(memory_id)
    except (TypeError, ValueError):
        raise UsageError(
            f"memory id {memory_id!r} is not a number", hint="see `myninja memory list`"
        ) from None
    with store.batch():
        rows = fetch(store.db, "SELECT * FROM memories WHERE id = ?", (number,))
        if not rows:
            raise UsageError(f"no memory {number}", hint="see `myninja memory list`")
        store.db.conn.execute("DELETE FROM memories WHERE id = ?", (number,))
    return rows[0]


def relevant(store: HistoryStore, text: str, *, max_tokens: int) -> list[dict[str, Any]]:
    """The memories that share a telling word with `text`, best (bm25) first, as many as fit
    in `max_tokens`: a memory that does not fit is skipped, and a shorter one after it may."""
    match = fts.any_term_query(text)
    if not match or max_tokens <= 0:
        return []
    rows = fetch(
        store.db,
        """
        SELECT memories.id, memories.text FROM memories_fts
        JOIN memories ON memories.id = memories_fts.rowid
        WHERE memories_fts MATCH :match
        ORDER BY bm25(memories_fts), memories.id DESC
        LIMIT 50
        """,
        {"match": match},
    )
    chosen, left = [], max_tokens
    for row in rows:
        cost = estimate_tokens(row["text"])
        if cost <= left:
            chosen.append(row)
            left -= cost
    return chosen
