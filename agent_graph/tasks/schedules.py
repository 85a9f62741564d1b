"""Scheduled tasks: a cron expression (or a plain phrase translated to one: cron.py) and a task's
text, kept in history.db beside the tasks they start. The worker runs the due ones (`Scheduler`).

No run is lost or doubled when the worker is killed at any moment: a run is first *claimed*,
in one transaction that records it (`schedule_runs`, with the task id it will have) and moves
the schedule's `next_due` on; only then is the task submitted under that id. A claim whose
task never got submitted (a kill between the two) is submitted on the next tick, under the
same id, so it runs exactly once. `(schedule_id, due_at)` is unique: one claim per due time.

Runs missed while no worker ran follow `[schedules] missed`: "once" runs one of them as soon
as a worker runs, "skip" runs none and waits for the next due time.

Each run's outcome is noted once its task ends (`settle`): "failed" where the task failed or
could not be submitted. A schedule whose last `[schedules] pause_after` runs all failed pauses
itself, with the reason in `paused_reason`, and the person is told (`on_paused`: the worker
runs notify_command). `resume` clears it; runs before the resume no longer count.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import Any

from myninja.agent_graph.history import HistoryStore
from myninja.agent_graph.history.connection import fetch
from myninja.agent_graph.history.statuses import FINISHED
from myninja.agent_graph.tasks.cron import next_after, schedule_clock, to_cron
from myninja.agent_graph.tasks.manager import new_task_id
from myninja.errors import MyninjaError, UsageError

__all__ = ["Run", "ScheduleBook", "Scheduler", "next_after", "to_cron"]

MISSED_POLICIES = ("once", "skip")
# A due time this far behind the clock was missed (the worker was down), not merely reached
# between two ticks.
MISSED_AFTER_S = 60.0
TICK_S = 1.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schedules (
    id TEXT PRIMARY KEY,
    spec TEXT NOT NULL,          -- as the person wrote it
    cron TEXT NOT NULL,          -- what it means
    text TEXT NOT NULL,          -- the task, @agent mention included
    paused INTEGER NOT NULL DEFAULT 0,
    next_due REAL NOT NULL,
    last_run REAL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS schedule_runs (
    schedule_id TEXT NOT NULL,
    due_at REAL NOT NULL,
    task_id TEXT NOT NULL UNIQUE,
    text TEXT NOT NULL,          -- kept: a claimed run is submitted even if its schedule goes
    manual INTEGER NOT NULL DEFAULT 0,
    claimed_at REAL NOT NULL,
    error TEXT,                  -- why the task could not be submitted
    PRIMARY KEY (schedule_id, due_at)
);
"""
# Columns added later: databases made before them get them on open (ALTER TABLE ADD COLUMN
# keeps every row; the new column is NULL in them).
_ADDED = {
    "schedules": {
        "paused_reason": "TEXT",  # why it paused itself (NULL: on, or paused by the person)
        "counted_from": "REAL",  # runs claimed before this (the last resume) do not count
    },
    "schedule_runs": {"outcome": "TEXT"},  # done | failed | cancelled, once the run ended
}


@dataclass(frozen=True)
class Run:
    schedule_id: str
    due_at: float
    task_id: str
    text: str


class ScheduleBook:
    """The schedules and their runs in history.db, on the connection of a `HistoryStore`:
    a second connection in the same process would be unsafe (closing any file of a database
    drops the process's POSIX locks on it, and another process may then delete the -wal and
    -shm under our feet). Every read and write is one `batch` of the store: its lock keeps the
    store's other threads out of our transactions."""

    def __init__(
        self,
        store: HistoryStore,
        *,
        clock: Callable[[], float] = schedule_clock,
        tz: tzinfo | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.tz = tz
        with self._write() as conn:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            for table, columns in _ADDED.items():
                have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
                for name, kind in columns.items():
                    if name not in have:
                        conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")

    @classmethod
    @contextmanager
    def open(
        cls, path: Path, *, clock: Callable[[], float] = schedule_clock, tz: tzinfo | None = None
    ) -> Iterator[ScheduleBook]:
        """A book over history.db at `path`, on a store of its own (a process without one)."""
        with HistoryStore(path) as store:
            yield cls(store, clock=clock, tz=tz)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self.store.batch():
            yield self.store.db.conn

    def _fetch(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self.store.batch():
            return fetch(self.store.db, sql, params)

    # The person's commands ------------------------------------------------------------------
    def add(self, spec: str, text: str) -> dict[str, Any]:
        cron = to_cron(spec)
        if not text.strip():
            raise UsageError("the scheduled task is empty", hint="write what you want done")
        now = self.clock()
        row = {
            "id": f"s_{uuid.uuid4().hex[:8]}",
            "spec": spec,
            "cron": cron,
            "text": text,
            "paused": 0,
            "next_due": next_after(cron, now, self.tz),
            "last_run": None,
            "created_at": now,
        }
        with self._write() as conn:
            conn.execute(
                f"INSERT INTO schedules ({', '.join(row)}) VALUES (:{', :'.join(row)})", row
            )
        return self.get(row["id"])

    def get(self, schedule_id: str) -> dict[str, Any]:
        rows = self._fetch(
            "SELECT * FROM schedules WHERE id = ? OR id LIKE ? ORDER BY id = ? DESC",
            (schedule_id, f"{schedule_id}%", schedule_id),
        )
        if not rows or (len(rows) > 1 and rows[0]["id"] != schedule_id):
            raise UsageError(f"no schedule {schedule_id!r}", hint="see `myninja schedule list`")
        return _shown(rows[0])

    def entries(self) -> list[dict[str, Any]]:
        rows = self._fetch("SELECT * FROM schedules ORDER BY created_at")
        return [_shown(row) for row in rows]

    def runs(self, schedule_id: str) -> list[dict[str, Any]]:
        """Its runs, newest first, with the status of each one's task."""
        return self._fetch(
            "SELECT r.*, t.status FROM schedule_runs r LEFT JOIN tasks t ON t.id = r.task_id"
            " WHERE r.schedule_id = ? ORDER BY r.claimed_at DESC",
            (schedule_id,),
        )

    def remove(self, schedule_id: str) -> None:
        found = self.get(schedule_id)["id"]
        with self._write() as conn:
            conn.execute("DELETE FROM schedules WHERE id = ?", (found,))

    def pause(self, schedule_id: str) -> dict[str, Any]:
        found = self.get(schedule_id)["id"]
        with self._write() as conn:
            conn.execute(
                "UPDATE schedules SET paused = 1, paused_reason = NULL WHERE id = ?", (found,)
            )
        return self.get(found)

    def resume(self, schedule_id: str) -> dict[str, Any]:
        """Runs again from the next due time: the paused stretch is not caught up, and the
        failed runs before it no longer count towards pausing it again."""
        row = self.get(schedule_id)
        now = self.clock()
        due = next_after(row["cron"], now, self.tz)
        with self._write() as conn:
            conn.execute(
                "UPDATE schedules SET paused = 0, paused_reason = NULL, next_due = ?,"
                " counted_from = ? WHERE id = ?",
                (due, now, row["id"]),
            )
        return self.get(row["id"])

    def run_now(self, schedule_id: str) -> Run:
        """Claim one run at once, besides the schedule's own (the worker submits it)."""
        row = self.get(schedule_id)
        now = self.clock()
        run = Run(row["id"], now, new_task_id(), row["text"])
        with self._write() as conn:
            self._insert_run(conn, run, now, manual=True)
            conn.execute("UPDATE schedules SET last_run = ? WHERE id = ?", (now, row["id"]))
        return run

    # The worker's side -------------------------------------------------------------------
    def active(self) -> bool:
        return bool(self._fetch("SELECT 1 FROM schedules WHERE paused = 0 LIMIT 1"))

    def due_ids(self) -> list[str]:
        rows = self._fetch(
            "SELECT id FROM schedules WHERE paused = 0 AND next_due <= ? ORDER BY next_due",
            (self.clock(),),
        )
        return [row["id"] for row in rows]

    def claim(self, schedule_id: str, missed: str) -> Run | None:
        """In one transaction: record the due run and move `next_due` past now. None where it
        is no longer due (claimed already, paused, removed) or was missed and `missed` skips."""
        now = self.clock()
        with self._write() as conn:
            found = fetch(
                self.store.db,
                "SELECT * FROM schedules WHERE id = ? AND paused = 0 AND next_due <= ?",
                (schedule_id, now),
            )
            if not found:
                return None
            row = found[0]
            upcoming = next_after(row["cron"], now, self.tz)
            skip = missed == "skip" and now - row["next_due"] > MISSED_AFTER_S
            run = None
            if not skip:
                run = Run(row["id"], row["next_due"], new_task_id(), row["text"])
                self._insert_run(conn, run, now, manual=False)
            conn.execute(
                "UPDATE schedules SET next_due = ?, last_run = coalesce(?, last_run) WHERE id = ?",
                (upcoming, None if skip else now, row["id"]),
            )
            return run

    def _insert_run(self, conn: sqlite3.Connection, run: Run, now: float, manual: bool) -> None:
        conn.execute(
            "INSERT INTO schedule_runs (schedule_id, due_at, task_id, text, manual, claimed_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (run.schedule_id, run.due_at, run.task_id, run.text, int(manual), now),
        )

    def unsubmitted(self) -> list[Run]:
        """Claimed runs whose task is not in history yet (nor failed to submit)."""
        rows = self._fetch(
            "SELECT r.* FROM schedule_runs r LEFT JOIN tasks t ON t.id = r.task_id"
            " WHERE t.id IS NULL AND r.error IS NULL ORDER BY r.claimed_at"
        )
        return [Run(r["schedule_id"], r["due_at"], r["task_id"], r["text"]) for r in rows]

    def submitted(self, task_id: str) -> bool:
        return bool(self._fetch("SELECT 1 FROM tasks WHERE id = ?", (task_id,)))

    def failed(self, run: Run, error: str) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE schedule_runs SET error = ? WHERE task_id = ?", (error, run.task_id)
            )

    def settle(self, pause_after: int) -> list[dict[str, Any]]:
        """Note the outcome of each run whose task ended (or could not be submitted) since the
        last call; pause each schedule whose last `pause_after` runs (0: never) all failed.
        Returns the schedules paused now, with their reason."""
        ended = ", ".join(f"'{status}'" for status in sorted(FINISHED))
        paused = []
        with self._write() as conn:
            rows = fetch(
                self.store.db,
                "SELECT r.task_id, r.schedule_id, r.error, t.status FROM schedule_runs r"
                " LEFT JOIN tasks t ON t.id = r.task_id WHERE r.outcome IS NULL"
                f" AND (r.error IS NOT NULL OR t.status IN ({ended}))",
            )
            for row in rows:
                outcome = "failed" if row["error"] else row["status"]
                conn.execute(
                    "UPDATE schedule_runs SET outcome = ? WHERE task_id = ?",
                    (outcome, row["task_id"]),
                )
            for schedule_id in dict.fromkeys(row["schedule_id"] for row in rows):
                reason = self._failing(schedule_id, pause_after)
                if reason:
                    conn.execute(
                        "UPDATE schedules SET paused = 1, paused_reason = ? WHERE id = ?",
                        (reason, schedule_id),
                    )
                    paused.append(_shown(fetch(self.store.db, _ONE, (schedule_id,))[0]))
        return paused

    def _failing(self, schedule_id: str, pause_after: int) -> str | None:
        """Why the schedule pauses itself: its last `pause_after` runs all failed."""
        if pause_after < 1:
            return None
        last = fetch(
            self.store.db,
            "SELECT r.error AS run_error, t.error, r.outcome FROM schedule_runs r"
            " JOIN schedules s ON s.id = r.schedule_id LEFT JOIN tasks t ON t.id = r.task_id"
            " WHERE r.schedule_id = ? AND s.paused = 0 AND r.outcome IS NOT NULL"
            " AND r.claimed_at >= coalesce(s.counted_from, 0)"
            " ORDER BY r.claimed_at DESC, r.due_at DESC LIMIT ?",
            (schedule_id, pause_after),
        )
        if len(last) < pause_after or any(run["outcome"] != "failed" for run in last):
            return None
        error = last[0]["run_error"] or last[0]["error"] or "no reason recorded"
        runs = "run" if pause_after == 1 else f"{pause_after} runs in a row"
        return f"paused itself: its last {runs} failed (the last: {error})"


_ONE = "SELECT * FROM schedules WHERE id = ?"


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "paused": bool(row["paused"])}


Submit = Callable[[str, str], Awaitable[Any]]  # (text, task_id)


class Scheduler:
    """Claims the due runs of a `ScheduleBook` and submits each as an ordinary task."""

    def __init__(
        self,
        book: ScheduleBook,
        submit: Submit,
        missed: Callable[[], str],
        pause_after: Callable[[], int] = lambda: 0,
        on_paused: Callable[[dict[str, Any]], None] = lambda row: None,
    ) -> None:
        self.book = book
        self.submit = submit
        self.missed = missed
        self.pause_after = pause_after
        self.on_paused = on_paused  # tells the person a schedule paused itself, and why
        self.active = False  # any schedule not paused: the worker stays for it

    async def tick(self) -> list[str]:
        """Submit what is claimed and not yet submitted, then claim and submit what is due;
        note the runs that ended, pausing a schedule that keeps failing. Returns the ids of the
        tasks submitted."""
        started = [run.task_id for run in self.book.unsubmitted() if await self._submit(run)]
        for schedule_id in self.book.due_ids():
            run = self.book.claim(schedule_id, self.missed())
            if run is not None and await self._submit(run):
                started.append(run.task_id)
        for row in self.book.settle(self.pause_after()):
            print(f"myninja: schedule {row['id']} {row['paused_reason']}", flush=True)  # log
            self.on_paused(row)
        self.active = self.book.active()
        return started

    async def _submit(self, run: Run) -> bool:
        try:
            await self.submit(run.text, run.task_id)
        except MyninjaError as err:
            if not self.book.submitted(run.task_id):  # not a second worker's copy of it
                self.book.failed(run, err.one_line())
            return False
        return True

    async def run(self, stop: asyncio.Event, paused: Callable[[], bool]) -> None:
        """Tick until `stop`; skip ticks while `paused()` (a retiring worker takes no new
        tasks). A tick that fails is retried on the next one: its claims are kept."""
        while not stop.is_set():
            if paused():
                self.active = False  # no longer ours to run: nothing keeps the worker
            else:
                try:
                    await self.tick()
                except (MyninjaError, sqlite3.Error) as err:
                    print(f"myninja: schedules: {err}", flush=True)  # the worker's log
            try:
                await asyncio.wait_for(stop.wait(), TICK_S)
            except TimeoutError:
                pass
