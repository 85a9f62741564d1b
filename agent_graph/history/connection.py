"""Opening history.db so that several processes can share it.

A background worker writes while CLI commands read and write the same file. Two things keep
"database is locked" away: WAL (readers never block the writer) and taking the write lock at the
start of every write transaction (`write_transaction`), where the busy timeout applies. A
transaction that reads first and writes later cannot wait for the lock: SQLite fails it at once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from myninja.errors import MyninjaError

BUSY_TIMEOUT_S = 10.0


def open_database(path: Path) -> Database:
    path.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: the driver never opens a transaction on its own, so every
    # transaction is one we began, with the lock we chose. Threads take turns (see store.py).
    conn = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    try:
        conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
    except sqlite3.DatabaseError as err:
        conn.close()
        raise MyninjaError(
            f"cannot open history database {path}: {err}",
            hint="move the file aside to start a new history",
        ) from err
    return Database(conn, execute_plugins=False)


@contextmanager
def write_transaction(db: Database) -> Iterator[Database]:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on error. Inside an open transaction it joins it."""
    if db.conn.in_transaction:
        yield db
        return
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
    db.conn.execute("COMMIT")


def fetch(db: Database, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict]:
    """Rows as dicts, without sqlite-utils' savepoint around `query` (reads need none)."""
    cursor = db.conn.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
