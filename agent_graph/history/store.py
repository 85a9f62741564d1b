"""The history store: every task with its events, branches, questions, citations and feedback.

One `HistoryStore` per process over history.db. Other processes use the same file at the same
time (the background worker writes while CLI commands read and write): every write takes the
write lock up front (see connection.py). A lock serialises threads on the one connection, so a
store may be handed to `asyncio.to_thread`. Timestamps are Unix seconds.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from myninja import paths
from myninja.errors import UsageError

from . import search as fts
from .connection import fetch, open_database, write_transaction
from .migrations import migrate
from .statuses import FINISHED, STATUSES, UNFINISHED

RATINGS = ("good", "bad", "edit")  # "edit": a row that only carries an edited answer
QUESTION_STATUSES = ("open", "answered")
MIN_PREFIX = 4  # shorter prefixes match too much to be meant

_TASK_JSON = ("plan", "examples", "options")


def default_path() -> Path:
    return paths.data_dir() / "history.db"


class HistoryStore:
    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self.db: Database = open_database(self.path)
        self._lock = threading.RLock()
        try:
            self.migrated = migrate(self.db)  # the names applied by this open; usually none
        except BaseException:
            self.db.close()
            raise
        # Names update_task may set: checked, because they are spliced into the SQL.
        self._task_columns = set(self.db["tasks"].columns_dict) - {"id"}

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock, write_transaction(self.db):
            yield self.db.conn

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Several writes in one transaction: one commit, all or none. Await nothing inside:
        the lock is held (and re-entered by this thread) until the block ends."""
        with self._write():
            yield

    def _fetch(self, sql: str, params: Iterable[Any] | dict[str, Any] = ()) -> list[dict]:
        with self._lock:
            return fetch(self.db, sql, params if isinstance(params, dict) else tuple(params))

    # -- tasks -------------------------------------------------------------------------------

    def create_task(
        self,
        task_id: str,
        text: str,
        *,
        agent: str | None = None,
        status: str = "queued",
        owner: str | None = None,
        created_at: float | None = None,
    ) -> None:
        _check(status, STATUSES, "task status")
        now = time.time() if created_at is None else created_at
        finished_at = now if status in FINISHED else None
        try:
            with self._write() as conn:
                conn.execute(
                    "INSERT INTO tasks (id, text, agent, status, owner, created_at, updated_at,"
                    " finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (task_id, text, agent, status, owner, now, now, finished_at),
                )
        except sqlite3.IntegrityError as err:
            if "UNIQUE" not in str(err):
                raise
            raise UsageError(f"task {task_id} already exists") from err

    def update_task(self, task_id: str, **fields: Any) -> None:
        """Set the given columns. A finished status stamps `finished_at` (once); an unfinished
        one clears it, unless `finished_at` is given."""
        unknown = set(fields) - self._task_columns
        if unknown:  # perhaps a column added since we looked
            with self._lock:
                self._task_columns = set(self.db["tasks"].columns_dict) - {"id"}
            unknown = set(fields) - self._task_columns
        if unknown:
            raise ValueError(f"not task columns: {', '.join(sorted(unknown))}")
        if "status" in fields:
            _check(fields["status"], STATUSES, "task status")
        now = time.time()
        values = {name: _encode(value) for name, value in fields.items()}
        values.setdefault("updated_at", now)
        assignments = [f"{name} = :{name}" for name in values]
        if "status" in fields and "finished_at" not in fields:
            finished = fields["status"] in FINISHED
            assignments.append(
                "finished_at = coalesce(finished_at, :now)" if finished else "finished_at = NULL"
            )
        with self._write() as conn:
            cursor = conn.execute(
                f"UPDATE tasks SET {', '.join(assignments)} WHERE id = :task_id",
                {**values, "now": now, "task_id": task_id},
            )
            if cursor.rowcount == 0:
                raise UsageError(f"no task {task_id}")

    def get_task(self, task_id: str) -> dict[str, Any] | None:
        """The task with this id, or with the one id that starts with it (at least 4 chars)."""
        rows = self._fetch("SELECT * FROM tasks WHERE id = ?", (task_id,))
        if not rows and len(task_id) >= MIN_PREFIX:
            rows = self._fetch(
                "SELECT * FROM tasks WHERE substr(id, 1, ?) = ? ORDER BY created_at DESC LIMIT 11",
                (len(task_id), task_id),
            )
            if len(rows) > 1:
                ids = ", ".join(row["id"] for row in rows[:10]) + (", …" if len(rows) > 10 else "")
                raise UsageError(
                    f"task id prefix {task_id!r} is ambiguous: {ids}",
                    hint="give more of the id",
                )
        return _task(rows[0]) if rows else None

    def list_tasks(
        self,
        *,
        status: str | Iterable[str] | None = None,
        agent: str | None = None,
        limit: int | None = 50,
        since: float | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first. `status` may be one status or several; `since` bounds `created_at`."""
        where, params = ["1"], []
        if status is not None:
            wanted = [status] if isinstance(status, str) else list(status)
            where.append(f"status IN ({', '.join('?' for _ in wanted)})")
            params += wanted
        if agent is not None:
            where.append("agent = ?")
            params.append(agent)
        if since is not None:
            where.append("created_at >= ?")
            params.append(since)
        params.append(-1 if limit is None else limit)
        rows = self._fetch(
            f"SELECT * FROM tasks WHERE {' AND '.join(where)}"
            " ORDER BY created_at DESC, rowid DESC LIMIT ?",
            params,
        )
        return [_task(row) for row in rows]

    def unfinished_tasks(self) -> list[dict[str, Any]]:
        """Queued, running or waiting tasks, oldest first: the order to resume them in."""
        return self.list_tasks(status=UNFINISHED, limit=None)[::-1]

    # -- events ------------------------------------------------------------------------------

    def append_event(self, task_id: str, key: str, event: dict[str, Any]) -> int | None:
        """Store `event` with the task's next seq and return it; None when `key` was stored
        before (a replayed step). The task must exist."""
        with self._write() as conn:
            if self._has_event(conn, task_id, key):
                return None
            (seq,) = conn.execute(
                "SELECT coalesce(max(seq), 0) + 1 FROM events WHERE task_id = ?", (task_id,)
            ).fetchone()
            data = {**event, "seq": seq}
            conn.execute(
                "INSERT INTO events (task_id, seq, key, type, ts, data) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    task_id,
                    seq,
                    key,
                    event.get("type", ""),
                    event.get("ts") or time.time(),
                    json.dumps(data, ensure_ascii=False),
                ),
            )
            return seq

    def events(self, task_id: str, *, after_seq: int = 0) -> list[dict[str, Any]]:
        rows = self._fetch(
            "SELECT seq, data FROM events WHERE task_id = ? AND seq > ? ORDER BY seq",
            (task_id, after_seq),
        )
        return [{**json.loads(row["data"]), "seq": row["seq"]} for row in rows]

    def last_seq(self, task_id: str) -> int:
        """The seq of the task's last stored event; 0 before the first."""
        rows = self._fetch("SELECT max(seq) AS seq FROM events WHERE task_id = ?", (task_id,))
        return rows[0]["seq"] or 0

    def has_event(self, task_id: str, key: str) -> bool:
        with self._lock:
            return self._has_event(self.db.conn, task_id, key)

    @staticmethod
    def _has_event(conn: sqlite3.Connection, task_id: str, key: str) -> bool:
        query = "SELECT 1 FROM events WHERE task_id = ? AND key = ?"
        return conn.execute(query, (task_id, key)).fetchone() is not None

    # -- branches ----------------------------------------------------------------------------

    def record_branch(
        self,
        task_id: str,
        *,
        step: int,
        round: int,
        branch_id: str,
        agent: str,
        temperature: float,
        text: str,
        score: float | None = None,
        reasons: str | None = None,
        kept: bool = False,
    ) -> None:
        """Insert or replace one branch's attempt (keyed by task, step, round and branch)."""
        with self._write() as conn:
            conn.execute(
                """
                INSERT INTO branches
                    (task_id, step, round, branch_id, agent, temperature, text, score, reasons,
                     kept)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (task_id, step, round, branch_id) DO UPDATE SET
                    agent = excluded.agent, temperature = excluded.temperature,
                    text = excluded.text, score = excluded.score, reasons = excluded.reasons,
                    kept = excluded.kept
                """,
                (task_id, step, round, branch_id, agent, temperature, text, score, reasons, kept),
            )

    def branches(self, task_id: str) -> list[dict[str, Any]]:
        rows = self._fetch(
            "SELECT * FROM branches WHERE task_id = ? ORDER BY step, round, branch_id", (task_id,)
        )
        return [{**row, "kept": bool(row["kept"])} for row in rows]

    # -- questions ---------------------------------------------------------------------------

    def record_question(
        self,
        task_id: str,
        question_id: str,
        text: str,
        *,
        choices: list[str] | None = None,
        key: str | None = None,
        step: int | None = None,
        branch_id: str | None = None,
    ) -> bool:
        """Store an open question (its id is the interrupt id); False if it was stored before."""
        with self._write() as conn:
            cursor = conn.execute(
                """
                INSERT INTO questions
                    (id, task_id, text, choices, key, step, branch_id, status, asked_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, 'open', ?)
                ON CONFLICT (id) DO NOTHING
                """,
                (question_id, task_id, text, _encode(choices), key, step, branch_id, time.time()),
            )
            return cursor.rowcount == 1

    def answer_question(self, question_id: str, answer: str) -> dict[str, Any]:
        """Record the answer and return the question. An unknown or answered one is an error."""
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE questions SET status = 'answered', answer = ?, answered_at = ?"
                " WHERE id = ? AND status = 'open'",
                (answer, time.time(), question_id),
            )
            rows = fetch(self.db, "SELECT * FROM questions WHERE id = ?", (question_id,))
            if not rows:
                raise UsageError(f"no question {question_id}")
            if cursor.rowcount == 0:
                raise UsageError(f"question {question_id} was already answered")
        return _question(rows[0])

    def questions(
        self, task_id: str | None = None, *, status: str | None = "open"
    ) -> list[dict[str, Any]]:
        """Questions of one task (or of all), open ones by default; status None means all."""
        where, params = ["1"], []
        if task_id is not None:
            where.append("task_id = ?")
            params.append(task_id)
        if status is not None:
            _check(status, QUESTION_STATUSES, "question status")
            where.append("status = ?")
            params.append(status)
        rows = self._fetch(
            f"SELECT * FROM questions WHERE {' AND '.join(where)} ORDER BY asked_at, rowid",
            params,
        )
        return [_question(row) for row in rows]

    # -- citations ---------------------------------------------------------------------------

    def record_citation(
        self, task_id: str, n: int, *, passage_id: str, title: str, source: str, text: str
    ) -> None:
        """Insert or replace citation [n] of a task."""
        with self._write() as conn:
            conn.execute(
                """
                INSERT INTO citations (task_id, n, passage_id, title, source, text)
                VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (task_id, n) DO UPDATE SET passage_id = excluded.passage_id,
                    title = excluded.title, source = excluded.source, text = excluded.text
                """,
                (task_id, n, passage_id, title, source, text),
            )

    def citations(self, task_id: str) -> list[dict[str, Any]]:
        return self._fetch("SELECT * FROM citations WHERE task_id = ? ORDER BY n", (task_id,))

    # -- feedback and routing corrections ----------------------------------------------------

    def add_feedback(
        self,
        task_id: str,
        rating: str,
        *,
        note: str | None = None,
        edited_answer: str | None = None,
    ) -> None:
        _check(rating, RATINGS, "rating")
        with self._write() as conn:
            conn.execute(
                "INSERT INTO feedback (task_id, rating, note, edited_answer, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (task_id, rating, note, edited_answer, time.time()),
            )

    def feedback(self, task_id: str) -> list[dict[str, Any]]:
        return self._fetch(
            "SELECT * FROM feedback WHERE task_id = ? ORDER BY created_at, id", (task_id,)
        )

    def add_route_correction(self, text: str, agent: str, *, task_id: str | None = None) -> None:
        """The agent a task should have gone to: the router is shown these as examples."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO route_corrections (task_id, text, agent, created_at)"
                " VALUES (?, ?, ?, ?)",
                (task_id, text, agent, time.time()),
            )

    def route_examples(self, text: str, limit: int = 5) -> list[dict[str, Any]]:
        """Corrections most like `text` ({"text", "agent"}); the latest when none is alike."""
        with self._lock:
            return fts.route_examples(self.db, text, limit=limit)

    # -- search ------------------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        limit: int = 20,
        status: str | None = None,
        agent: str | None = None,
        since: float | None = None,
    ) -> list[dict[str, Any]]:
        """Tasks whose text, answer or cited passages hold every word of `query`, best first:
        id, text, status, agent, created_at and `snippet` (of the answer, hits in « »).
        `since` bounds `created_at`, as in `list_tasks`.
        Any text is a valid query; one without words finds nothing."""
        with self._lock:
            return fts.search_tasks(
                self.db, query, limit=limit, status=status, agent=agent, since=since
            )

    def similar_successful(
        self, text: str, *, limit: int = 3, exclude_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Done, not badly rated tasks whose request is most like `text`: id, text, agent, plan
        (decoded) and answer. Examples for the planner."""
        with self._lock:
            rows = fts.similar_successful(self.db, text, limit=limit, exclude_id=exclude_id)
        return [{**row, "plan": _decode(row["plan"])} for row in rows]


def _check(value: Any, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise UsageError(f"unknown {what} {value!r}", hint=f"one of: {', '.join(allowed)}")


def _encode(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, list | dict) else value


def _decode(value: str | None) -> Any:
    """JSON columns are written by `_encode`; text someone else stored there is returned as is."""
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return value


def _task(row: dict[str, Any]) -> dict[str, Any]:
    decoded = {name: _decode(row[name]) for name in _TASK_JSON}
    return {**row, **decoded, "unread": bool(row["unread"])}


def _question(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "choices": _decode(row["choices"])}
