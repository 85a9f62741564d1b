"""checkpoints.db: LangGraph's AsyncSqliteSaver as every task runs on it.

WAL, synchronous=NORMAL and a busy timeout. The file is checked when opened, as history.db is
(see history/connection.py): a damaged one is moved aside and a fresh one started, and
`saver.recovered` says so (the TaskManager then fails the tasks whose checkpoints were lost).
A write the disk refuses (full, read-only) is one StorageError naming the file, not a bare
sqlite3 error, so the task fails with a reason a person can act on.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NoReturn

import aiosqlite
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from myninja.agent_graph.history.connection import Recovery, check_database, damaged, storage_error
from myninja.errors import MyninjaError


class CheckpointSaver(AsyncSqliteSaver):
    path: Path
    recovered: Recovery | None = None

    async def _raise(self, err: sqlite3.Error) -> NoReturn:
        """Raise `err` as the one line a person can act on, where there is one."""
        with contextlib.suppress(sqlite3.Error, ValueError):
            await self.conn.rollback()  # a failed write must not linger in an open transaction
        if damaged(err):
            raise MyninjaError(
                f"{self.path} is damaged ({err})",
                hint="the next command moves it aside and starts a fresh one",
            ) from err
        translated = storage_error(self.path, err)
        if translated is None:
            raise err
        raise translated from err

    async def aget_tuple(self, config: Any) -> Any:
        try:
            return await super().aget_tuple(config)
        except sqlite3.Error as err:
            await self._raise(err)

    async def aput(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().aput(*args, **kwargs)
        except sqlite3.Error as err:
            await self._raise(err)

    async def aput_writes(self, *args: Any, **kwargs: Any) -> None:
        try:
            await super().aput_writes(*args, **kwargs)
        except sqlite3.Error as err:
            await self._raise(err)

    async def adelete_thread(self, thread_id: str) -> None:
        try:
            await super().adelete_thread(thread_id)
        except sqlite3.Error as err:
            await self._raise(err)


@contextlib.asynccontextmanager
async def open_checkpointer(path: Path) -> AsyncIterator[CheckpointSaver]:
    """checkpoints.db as every task runs on it: WAL, synchronous=NORMAL, a busy timeout."""
    recovered = check_database(path)
    async with aiosqlite.connect(path) as conn:
        saver = CheckpointSaver(conn)
        saver.path, saver.recovered = path, recovered
        try:
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute("PRAGMA synchronous=NORMAL")
            await conn.execute("PRAGMA busy_timeout=10000")
            await saver.setup()
        except sqlite3.Error as err:
            await saver._raise(err)
        yield saver
