"""Several processes (and threads) on one history.db: nobody sees "database is locked"."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from myninja.agent_graph.history import HistoryStore
from myninja.agent_graph.history.connection import BUSY_TIMEOUT_S
from myninja.agent_graph.history.migrations import MIGRATIONS

REPO = Path(__file__).resolve().parents[3]

# Opens the store, says it is ready, waits for the starting gun, then appends its events.
APPENDER = """
import sys, time
from pathlib import Path
from myninja.agent_graph.history import HistoryStore

path, name, count, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
store = HistoryStore(path)
Path(f"{go}.{name}").touch()
while not go.exists():
    time.sleep(0.001)
for i in range(count):
    assert store.append_event("t1", f"{name}-{i}", {"type": "token", "text": f"{name}-{i}"})
store.close()
"""

# Opens a store that may not exist yet (so the migrations race) and adds a task.
OPENER = """
import sys, time
from pathlib import Path
from myninja.agent_graph.history import HistoryStore

path, name, go = sys.argv[1], sys.argv[2], Path(sys.argv[3])
while not go.exists():
    time.sleep(0.001)
with HistoryStore(path) as store:
    store.create_task(name, f"task of {name}")
"""


def _start(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        assert "locked" not in stderr


def _wait_for(paths: list[Path], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        assert time.monotonic() < deadline, "writers did not start"
        time.sleep(0.01)


@pytest.mark.slow
def test_two_processes_append_to_one_task(store: HistoryStore, tmp_path: Path) -> None:
    store.create_task("t1", "shared")
    go = tmp_path / "go"
    names = ["a", "b"]
    procs = [_start(APPENDER, str(store.path), name, "200", str(go)) for name in names]
    _wait_for([Path(f"{go}.{name}") for name in names])
    go.touch()
    _finish(procs)

    events = store.events("t1")
    assert [e["seq"] for e in events] == list(range(1, 401))
    for name in names:  # each writer's events in its own order, none lost
        mine = [e["text"] for e in events if e["text"].startswith(f"{name}-")]
        assert mine == [f"{name}-{i}" for i in range(200)]


@pytest.mark.slow
def test_processes_opening_a_new_file_at_once(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "history.db"
    go = tmp_path / "go"
    names = [f"p{n}" for n in range(4)]
    procs = [_start(OPENER, str(path), name, str(go)) for name in names]
    time.sleep(0.5)  # let the interpreters start, so the opens overlap
    go.touch()
    _finish(procs)

    with HistoryStore(path) as store:
        assert store.migrated == []
        assert sorted(t["id"] for t in store.list_tasks()) == names
        # Each migration recorded once, though four processes raced to run them.
        assert [row["name"] for row in store.db["_migrations"].rows] == [
            m.__name__ for m in MIGRATIONS
        ]


def test_threads_share_one_store(store: HistoryStore) -> None:
    store.create_task("t1", "shared")

    def append(name: str) -> None:
        for i in range(50):
            store.append_event("t1", f"{name}-{i}", {"type": "token"})

    threads = [threading.Thread(target=append, args=(f"th{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [e["seq"] for e in store.events("t1")] == list(range(1, 201))


def test_a_writer_waits_for_another_writer(store: HistoryStore) -> None:
    other = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock for a while
    other.execute("INSERT INTO tasks (id, text, created_at, updated_at) VALUES ('o', 'x', 0, 0)")
    released = threading.Timer(0.5, lambda: other.execute("COMMIT"))
    released.start()
    started = time.monotonic()
    store.create_task("t1", "waits its turn")
    assert time.monotonic() - started >= 0.4
    released.join()
    other.close()
    assert sorted(t["id"] for t in store.list_tasks()) == ["o", "t1"]


def test_readers_do_not_block_the_writer(store: HistoryStore) -> None:
    store.create_task("t1", "before")
    reader = sqlite3.connect(store.path, isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM tasks").fetchone() == (1,)  # a snapshot
    started = time.monotonic()
    store.create_task("t2", "during a read")
    assert time.monotonic() - started < BUSY_TIMEOUT_S / 2  # did not wait out the busy timeout
    assert reader.execute("SELECT count(*) FROM tasks").fetchone() == (1,)  # still its snapshot
    reader.execute("COMMIT")
    assert reader.execute("SELECT count(*) FROM tasks").fetchone() == (2,)
    reader.close()


WRITE_ONE = """
import sys
from pathlib import Path
from myninja.agent_graph.history import HistoryStore
store = HistoryStore(Path(sys.argv[1]))
store.create_task(sys.argv[2], "from another process")
store.close()
"""


def test_a_second_store_in_one_process_keeps_the_first_seeing_other_processes(
    tmp_path: Path,
) -> None:
    # Opening history.db again in a process that has it open must not drop that process's locks
    # on the file (any close() of a descriptor of it does): another process closing its own
    # connection would then delete the -wal and -shm in use, and the first store would stop
    # seeing commits made after that.
    path = tmp_path / "history.db"
    first = HistoryStore(path)
    first.create_task("t0", "here")
    second = HistoryStore(path)
    try:
        for task_id in ("t1", "t2"):
            done = subprocess.run(
                [sys.executable, "-c", WRITE_ONE, str(path), task_id],
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
        assert (tmp_path / "history.db-wal").exists()  # still in use: nobody deleted it
        assert {t["id"] for t in first.list_tasks()} == {"t0", "t1", "t2"}
    finally:
        second.close()
        first.close()
