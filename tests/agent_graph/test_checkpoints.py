"""checkpoints.db when the saver's own `setup()` cannot write: one line, not a traceback.

The disk is made to refuse for real: a child process runs with a file size limit (RLIMIT_FSIZE,
SIGXFSZ ignored, so a write past it fails with EFBIG), as tests/reliability does. The database
is made beforehand with 64 KiB pages, so that opening it and setting WAL fit under the limit
(the -shm is 32 KiB) and the first page `setup()` writes to the -wal does not."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from myninja.agent_graph.checkpoints import open_checkpointer

LIMIT = 48 * 1024

# Opens the checkpointer under the limit; prints what came out, and where the cause was raised.
CHILD = """
import asyncio, json, resource, signal, sys, traceback
from pathlib import Path
from myninja.agent_graph.checkpoints import open_checkpointer

async def main(db):
    async with open_checkpointer(db):
        pass

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
try:
    asyncio.run(main(Path(sys.argv[1])))
    out = {"type": None}
except Exception as err:
    cause = err.__cause__ or err
    frames = traceback.extract_tb(cause.__traceback__)
    line = err.one_line() if hasattr(err, "one_line") else repr(err)
    out = {"type": type(err).__name__, "line": line, "in": [f.line for f in frames]}
print(json.dumps(out))
"""


def big_paged_database(path: Path) -> None:
    """An empty database in WAL mode whose pages are 64 KiB each."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA page_size=65536")
        conn.execute("VACUUM")  # a page size sticks once the file has been written
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()


@pytest.mark.slow
def test_a_setup_the_disk_refuses_is_one_line(tmp_path: Path) -> None:
    db = tmp_path / "checkpoints.db"
    big_paged_database(db)

    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(db), str(LIMIT)],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["type"] == "StorageError", out
    assert out["line"].startswith(f"cannot write {db}: it reached the file size limit"), out
    assert f"ulimit -f: {LIMIT} bytes" in out["line"], out
    assert "\n" not in out["line"]
    assert any("setup()" in line for line in out["in"]), out  # setup's write, not a PRAGMA


async def test_the_same_database_opens_without_the_limit(tmp_path: Path) -> None:
    """The control: nothing but the limit stops the child above."""
    db = tmp_path / "checkpoints.db"
    big_paged_database(db)

    async with open_checkpointer(db) as saver:
        assert saver.recovered is None
        assert await saver.aget_tuple({"configurable": {"thread_id": "t"}}) is None

    with contextlib.closing(sqlite3.connect(db)) as conn:
        tables = conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
    assert {"checkpoints", "writes"} <= {name for (name,) in tables}
