"""The schema of history.db, grown by numbered migrations that each run once.

A migration is a function of the `Database`, registered with `@migration` and recorded by name in
`_migrations` when applied. Never edit or drop an applied one: add the next number. All pending
migrations run in one write transaction, so two processes opening a new file cannot both run them.
That needs sqlite-utils 4, whose table methods join an open transaction (3.x commits it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from sqlite_utils import Database

from .connection import write_transaction

Migration = Callable[[Database], None]
MIGRATIONS: list[Migration] = []
TABLE = "_migrations"


def migration(fn: Migration) -> Migration:
    if any(m.__name__ == fn.__name__ for m in MIGRATIONS):
        raise ValueError(f"migration {fn.__name__} is registered twice")
    MIGRATIONS.append(fn)
    return fn


def applied(db: Database) -> set[str]:
    if not db[TABLE].exists():
        return set()
    return {row[0] for row in db.execute(f"SELECT name FROM {TABLE}").fetchall()}


def migrate(db: Database, migrations: Sequence[Migration] = MIGRATIONS) -> list[str]:
    """Apply the migrations not yet recorded, in order; return the names applied."""
    if not {m.__name__ for m in migrations} - applied(db):
        return []  # the usual case: no write lock needed
    done: list[str] = []
    with write_transaction(db):
        if not db[TABLE].exists():
            db[TABLE].create({"name": str, "applied_at": float}, pk="name")
        already = applied(db)  # again, under the lock: another process may have run them
        for fn in migrations:
            if fn.__name__ in already:
                continue
            fn(db)
            db[TABLE].insert({"name": fn.__name__, "applied_at": time.time()})
            done.append(fn.__name__)
    return done


def _task_fk(column: str = "task_id") -> list[tuple[str, str, str]]:
    return [(column, "tasks", "id")]


@migration
def m001_initial(db: Database) -> None:
    db["tasks"].create(
        {
            "id": str,
            "text": str,
            "agent": str,
            "status": str,  # queued | running | waiting | done | failed | cancelled
            "answer": str,
            "error": str,
            "created_at": float,
            "updated_at": float,
            "finished_at": float,
            "owner": str,  # the process running it, e.g. "pid:1234"
            "plan": str,  # JSON
            "route_reason": str,
            "examples": str,  # JSON list of the past task ids the planner was shown
            "options": str,  # JSON: what the submitter chose (backend, model), kept for a resume
            "unread": int,
        },
        pk="id",
        not_null={"id", "text", "status", "created_at", "updated_at", "unread"},
        defaults={"status": "queued", "unread": 0},
    )
    db["tasks"].create_index(["created_at"])
    db["tasks"].create_index(["status"])

    db["events"].create(
        {"task_id": str, "seq": int, "key": str, "type": str, "ts": float, "data": str},
        pk=("task_id", "seq"),
        not_null={"task_id", "seq", "key", "type", "ts", "data"},
        foreign_keys=_task_fk(),
    )
    # The idempotency key: a replayed node cannot record the same event twice.
    db["events"].create_index(["task_id", "key"], unique=True)

    db["branches"].create(
        {
            "task_id": str,
            "step": int,
            "round": int,
            "branch_id": str,
            "agent": str,
            "temperature": float,
            "text": str,
            "score": float,
            "reasons": str,
            "kept": int,
        },
        pk=("task_id", "step", "round", "branch_id"),
        not_null={"task_id", "step", "round", "branch_id", "kept"},
        defaults={"kept": 0},
        foreign_keys=_task_fk(),
    )

    db["questions"].create(
        {
            "id": str,  # the LangGraph interrupt id
            "task_id": str,
            "text": str,
            "choices": str,  # JSON list
            "key": str,
            "step": int,
            "branch_id": str,
            "status": str,  # open | answered
            "answer": str,
            "asked_at": float,
            "answered_at": float,
        },
        pk="id",
        not_null={"id", "task_id", "text", "status", "asked_at"},
        defaults={"status": "open"},
        foreign_keys=_task_fk(),
    )
    db["questions"].create_index(["task_id", "status"])
    db["questions"].create_index(["status"])

    db["citations"].create(
        {
            "task_id": str,
            "n": int,
            "passage_id": str,
            "title": str,
            "source": str,  # a path or a URL
            "text": str,
        },
        pk=("task_id", "n"),
        not_null={"task_id", "n"},
        foreign_keys=_task_fk(),
    )

    db["feedback"].create(
        {
            "id": int,
            "task_id": str,
            "rating": str,  # good | bad
            "note": str,
            "edited_answer": str,
            "created_at": float,
        },
        pk="id",
        not_null={"task_id", "rating", "created_at"},
        foreign_keys=_task_fk(),
    )
    db["feedback"].create_index(["task_id"])

    db["route_corrections"].create(
        {"id": int, "task_id": str, "text": str, "agent": str, "created_at": float},
        pk="id",
        not_null={"text", "agent", "created_at"},
        foreign_keys=_task_fk(),
    )

    # Porter stemming: "running" finds "run". Triggers keep each index in step with its table.
    db["tasks"].enable_fts(["text", "answer"], create_triggers=True, tokenize="porter")
    db["citations"].enable_fts(["title", "text", "source"], create_triggers=True, tokenize="porter")
    db["route_corrections"].enable_fts(["text"], create_triggers=True, tokenize="porter")


@migration
def m002_memories(db: Database) -> None:
    # What the person asked the agents to remember (agent_graph/history/memories.py).
    db["memories"].create(
        {
            "id": int,
            "text": str,
            "source": str,  # person (typed) | task (from an answer in task_id)
            "task_id": str,
            "created_at": float,
        },
        pk="id",
        not_null={"text", "source", "created_at"},
    )
    db["memories"].enable_fts(["text"], create_triggers=True, tokenize="porter")


@migration
def m003_memory_proposals(db: Database) -> None:
    # Memories proposed from a person's answers (agent_graph/history/memories.py): `status` is
    # kept (agents are shown it) or proposed (waiting for the person's yes; never shown or
    # exported). A memory from an answer keeps the question, its key, the bare answer and the
    # agent that asked, so the same question is answered from it next time.
    table = db["memories"]
    table.add_column("status", str, not_null_default="kept")
    table.add_column("question", str)
    table.add_column("key", str)
    table.add_column("answer", str)
    table.add_column("agent", str)
    table.add_column("confirmed_at", float)
    table.create_index(["status"])
