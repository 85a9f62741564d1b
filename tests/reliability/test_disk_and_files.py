"""Disk and files: a read-only data folder, a full disk, damaged databases, broken configs.

Each is met through the CLI, as a person meets it: one clear line (what, where, how to fix), the
exit code docs/architecture.md gives, no traceback, and nothing lost. "Nothing lost" is checked by
bytes: every file of the data folder is hashed before and after, and the tasks and events of
history.db are compared row by row.

These tests run as root in CI, where chmod does not stop a write. There the command runs with
CAP_DAC_OVERRIDE dropped from its bounding set (prctl before exec), so a read-only folder or
file stops it as it stops any user; where even that is impossible the test says so and skips.
A full disk is real: a file size limit (RLIMIT_FSIZE, with SIGXFSZ ignored, so writes fail
with EFBIG) everywhere, and a small tmpfs (ENOSPC) where this process may mount one.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import random
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent_graph.scripts import FENCE_RULES, judge
from tests.conftest import REPO, myninja_cmd, scripted_config

BIG = "word " * 200_000  # a 1 MB reply: more than the room left on the "full" disk
RULES = [{"match": r"Huge.*Attempt 1\.", "reply": BIG}, judge("word", 8), *FENCE_RULES]
DONE_TEXTS = ("Write a line one", "Write a line two")
WAITING_TEXT = "Paint the fence"  # asks which colour
# The person's other files in the data folder, which no recovery may touch.
OTHER_FILES = {
    "indexes/notes/meta.json": b'{"name": "notes", "documents": 3}',
    "models/tiny.gguf": bytes(random.Random(7).randrange(256) for _ in range(8192)),
    "keys.json": b'{"gw": "sk-test-not-a-real-key"}',
    "logs/mcp-files.log": b"started\n",
    "workspaces/t_0/notes.txt": b"a draft",
}
SQLITE_OTHER = ("web.db", "indexes/notes/index.db")  # real SQLite files beside ours

Run = subprocess.CompletedProcess[str]
Preexec = Callable[[], None] | None


# Running the CLI -------------------------------------------------------------------------------
def cli(home: Path, *args: str, preexec: Preexec = None, env: dict[str, str] | None = None) -> Run:
    """`myninja ARGS` with this home and none of the developer's MYNINJA_* variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MYNINJA_")}
    return subprocess.run(
        myninja_cmd(*args),
        capture_output=True,
        text=True,
        env={**clean, "MYNINJA_HOME": str(home), **(env or {})},
        cwd=REPO,
        timeout=240,
        preexec_fn=preexec,
    )


def one_line(done: Run) -> str:
    """The command's stderr, which must be exactly one line and no traceback."""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{done.stderr}"
    assert "Traceback" not in done.stderr
    return lines[0]


def _drop_dac_override() -> None:
    """In the child, before exec: root without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH obeys
    file modes like anyone else (what it may do after exec is bounded by this set)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def as_unprivileged(blocked: Path, access: str) -> Preexec:
    """What to run a command with so that the mode of `blocked` (a chmod'ed file or folder)
    stops it from `access` ("read" or "write"); skips where nothing can make it stop root."""
    if os.geteuid() != 0:
        return None
    if blocked.is_dir():
        code = "import sys; open(sys.argv[1] + '/probe', 'w')"
    else:
        code = f"import sys; open(sys.argv[1], {'rb' if access == 'read' else 'r+b'!r})"
    try:
        tried = subprocess.run(
            [sys.executable, "-c", code, str(blocked)],
            preexec_fn=_drop_dac_override,
            capture_output=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"running as root and cannot drop CAP_DAC_OVERRIDE here: {exc}")
    if tried.returncode == 0:
        pytest.skip("running as root, and the file mode does not stop it even without DAC caps")
    return _drop_dac_override


def limit_file_size(limit: int) -> Callable[[], None]:
    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails, EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


# Looking at the data folder without changing it ------------------------------------------------
def hashes(folder: Path, skip: Callable[[str], bool] = lambda _: False) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not skip(str(p.relative_to(folder)))
    }


def query(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read a copy of the database with its -wal: the files themselves stay as they are."""
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / db.name
        for suffix in ("", "-wal"):
            if Path(f"{db}{suffix}").exists():
                shutil.copyfile(f"{db}{suffix}", f"{copy}{suffix}")
        conn = sqlite3.connect(copy)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()


def ours(relative: str) -> bool:
    """history.db and checkpoints.db with their -wal, -shm and kept-aside copies."""
    return relative.split("-")[0].split(".corrupt")[0] in ("history.db", "checkpoints.db")


def integrity(db: Path) -> str:
    return query(db, "PRAGMA integrity_check")[0][0]


def tasks(home: Path) -> dict[str, dict[str, Any]]:
    """Every task with its status, error and events (their data, seq included), by text."""
    db = home / "data" / "history.db"
    found = {}
    for task_id, text, status, error in query(db, "SELECT id, text, status, error FROM tasks"):
        events = query(db, "SELECT data FROM events WHERE task_id = ? ORDER BY seq", (task_id,))
        found[text] = {
            "id": task_id,
            "status": status,
            "error": error,
            "events": [json.loads(row[0]) for row in events],
        }
    return found


def make_sqlite(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE pages (url TEXT, body TEXT)")
    conn.execute("INSERT INTO pages VALUES ('https://example.org', 'cached page')")
    conn.commit()
    conn.close()


# A data folder with history ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with two finished tasks, one waiting for an answer, and the person's other
    files: built once, copied by each test."""
    home = tmp_path_factory.mktemp("populated") / "home"
    home.mkdir()
    scripted_config(home, RULES)
    with (home / "config.toml").open("a") as config:
        config.write("[graph]\nbranches = 1\n")
    for text in DONE_TEXTS:
        done = cli(home, "ask", text)
        assert done.returncode == 0, done.stderr
    asked = cli(home, "ask", WAITING_TEXT)
    assert asked.returncode == 3, asked.stderr
    data = home / "data"
    for name, content in OTHER_FILES.items():
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        (data / name).write_bytes(content)
    for name in SQLITE_OTHER:
        make_sqlite(data / name)
    return home


@pytest.fixture
def home(populated: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "populated-home"
    shutil.copytree(populated, copy)
    return copy


def _status(home: Path) -> dict[str, str]:
    return {text: task["status"] for text, task in tasks(home).items()}


BEFORE = {DONE_TEXTS[0]: "done", DONE_TEXTS[1]: "done", WAITING_TEXT: "waiting"}


# 1. A read-only data folder ---------------------------------------------------------------------
@pytest.mark.heavy
def test_a_read_only_data_folder_is_one_line_exit_2_and_loses_nothing(home: Path) -> None:
    data = home / "data"
    before = hashes(home)
    waiting = tasks(home)[WAITING_TEXT]["id"]
    data.chmod(0o555)
    try:
        preexec = as_unprivileged(data, "write")
        commands = [
            ("ask", "Write a line three"),
            ("tasks", "list"),
            ("answer", waiting, "blue"),
            ("run", "--detach", "Write a line three"),
        ]
        for args in commands:
            done = cli(home, *args, preexec=preexec)
            line = one_line(done)
            assert done.returncode == 2, (args, done.stderr)
            assert line.startswith("myninja: error: cannot write"), line
            assert str(data) in line, line
            assert "read-only" in line or "Permission denied" in line, line
            assert "writable" in line and "MYNINJA_HOME" in line, line
    finally:
        data.chmod(0o755)
    assert hashes(home) == before  # not a byte written, nowhere in the home
    # Writable again: everything is there, and the question can still be answered.
    assert _status(home) == BEFORE
    answered = cli(home, "answer", waiting, "blue")
    assert answered.returncode == 0, answered.stderr
    assert _status(home)[WAITING_TEXT] == "done"


@pytest.mark.heavy
def test_a_file_where_the_data_folder_belongs_is_one_line_exit_2(myninja_home: Path) -> None:
    home = myninja_home
    scripted_config(home, RULES)
    (home / "data").write_text("not a folder\n")
    before = hashes(home)
    for args in (("ask", "hello"), ("tasks", "list"), ("run", "--detach", "hello")):
        done = cli(home, *args)
        line = one_line(done)
        assert done.returncode == 2, (args, done.stderr)
        assert str(home / "data") in line and "a file is in the way" in line, line
        assert "MYNINJA_HOME" in line, line
    assert hashes(home) == before


@pytest.mark.heavy
def test_a_read_only_history_file_is_one_line_exit_2(home: Path) -> None:
    history = home / "data" / "history.db"
    before = hashes(home)
    history.chmod(0o444)
    try:
        preexec = as_unprivileged(history, "write")
        done = cli(home, "ask", "Write a line three", preexec=preexec)
    finally:
        history.chmod(0o644)
    line = one_line(done)
    assert done.returncode == 2, done.stderr
    assert str(history) in line and "read-only" in line and "chmod u+w" in line, line
    assert hashes(home, skip=lambda p: p.startswith("data/history.db-")) == before
    assert _status(home) == BEFORE


# 2. A full disk --------------------------------------------------------------------------------
def _assert_the_rest_is_intact(home: Path, before: dict[str, dict[str, Any]]) -> None:
    after = tasks(home)
    for text in BEFORE:
        assert after[text] == before[text], text  # status, error, every event and its seq
    for db in ("history.db", "checkpoints.db", *SQLITE_OTHER):
        assert integrity(home / "data" / db) == "ok", db


@pytest.mark.heavy
def test_a_file_size_limit_fails_the_task_in_flight_and_keeps_the_rest(home: Path) -> None:
    data = home / "data"
    before, other = tasks(home), hashes(data, skip=ours)
    biggest = max(p.stat().st_size for p in data.glob("*.db"))
    limit = biggest + 512 * 1024  # room for a task's usual writes, not for a 1 MB reply
    done = cli(home, "ask", "Huge thing", preexec=limit_file_size(limit))
    line = one_line(done)
    assert done.returncode == 1, done.stderr
    assert "file size limit" in line and f"{limit} bytes" in line, line
    assert str(data / "checkpoints.db") in line or str(data / "history.db") in line, line
    _assert_the_rest_is_intact(home, before)
    huge = tasks(home)["Huge thing"]
    assert huge["status"] == "failed"
    assert "file size limit" in huge["error"]
    assert huge["events"][-1]["type"] == "task_failed"
    assert hashes(data, skip=ours) == other
    # Without the limit the next task runs as usual.
    again = cli(home, "ask", "Write a line three")
    assert again.returncode == 0, again.stderr


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs: a disk that really fills up (ENOSPC). Needs the right to mount."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small tmpfs needs root; the file size limit test covers the rest")
    tried = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if tried.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {tried.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.heavy
def test_a_full_disk_fails_the_task_in_flight_and_keeps_the_rest(
    populated: Path, small_disk: Path
) -> None:
    home = small_disk / "home"
    shutil.copytree(populated, home)
    data = home / "data"
    before, other = tasks(home), hashes(data, skip=ours)
    room = shutil.disk_usage(small_disk).free - 512 * 1024
    with (small_disk / "ballast").open("wb") as ballast:
        ballast.truncate(0)
        for _ in range(room // 2**16):
            ballast.write(bytes(2**16))
    done = cli(home, "ask", "Huge thing")
    line = one_line(done)
    assert done.returncode == 1, done.stderr
    assert "no space left on the disk" in line and "free some space" in line, line
    assert str(data) in line, line
    _assert_the_rest_is_intact(home, before)
    assert hashes(data, skip=ours) == other
    huge = tasks(home)["Huge thing"]
    print(f"full disk: task in flight {huge['status']}; {len(before)} earlier tasks intact")
    if huge["status"] == "failed":  # there was room left to record why
        assert "no space left" in huge["error"]
    else:  # not even for that: it stays unfinished, resumable from its last checkpoint
        assert huge["status"] == "running", huge["status"]
    (small_disk / "ballast").unlink()
    again = cli(home, "ask", "Write a line three")
    assert again.returncode == 0, again.stderr


# 3. Damaged databases --------------------------------------------------------------------------
def _leave_a_killed_writers_log(db: Path) -> None:
    """A writer killed mid-work leaves a -wal (with a committed change) and a -shm."""
    update = "tasks SET unread = unread" if db.name == "history.db" else "writes SET idx = idx"
    code = (
        "import os, sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "c.execute('PRAGMA wal_autocheckpoint=0')\n"
        f"c.execute('UPDATE {update}')\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(db)], check=True)
    assert Path(f"{db}-wal").stat().st_size > 0


def _damage(db: Path, how: str) -> None:
    data = bytearray(db.read_bytes())
    if how == "header":
        data[:100] = bytes(random.Random(1).randrange(256) for _ in range(100))
    elif how == "pages":
        rng = random.Random(3)
        pages = len(data) // 4096
        for page in rng.sample(range(1, pages), min(3, pages - 1)):
            data[page * 4096 : (page + 1) * 4096] = bytes(rng.randrange(256) for _ in range(4096))
    else:  # truncated
        del data[len(data) // 2 :]
    db.write_bytes(bytes(data))


@pytest.mark.heavy
@pytest.mark.parametrize("how", ["header", "pages", "truncated"])
@pytest.mark.parametrize("name", ["history.db", "checkpoints.db"])
def test_a_damaged_database_is_kept_aside_and_a_fresh_one_started(
    home: Path, name: str, how: str
) -> None:
    data = home / "data"
    db = data / name
    before_tasks = tasks(home)
    _leave_a_killed_writers_log(db)
    _damage(db, how)
    damaged = {s: hashlib.sha256(Path(f"{db}{s}").read_bytes()).hexdigest() for s in ("", "-wal")}
    with pytest.raises(sqlite3.DatabaseError):  # the damage is real, not a no-op
        found = query(db, "PRAGMA quick_check")
        if found != [("ok",)]:
            raise sqlite3.DatabaseError(found[0][0])
    # What the command may write: the damaged file's place, and for checkpoints.db history.db
    # (the task it runs). Everything else stays as it was, byte for byte.
    writes = {name} | ({"history.db"} if name == "checkpoints.db" else set())

    def written(relative: str) -> bool:
        return relative.split("-")[0].split(".corrupt")[0] in writes

    untouched = hashes(data, skip=written)

    if name == "history.db":
        done = cli(home, "tasks", "list")
    else:
        done = cli(home, "ask", "Write a line three")
    assert done.returncode == 0, done.stderr
    line = one_line(done)
    assert line.startswith(f"myninja: warning: {db} was damaged ("), line
    (kept,) = data.glob(f"{name}.corrupt-*[0-9]")
    assert f"kept it as {kept} and started a fresh one" in line, line
    for suffix, digest in damaged.items():  # moved as it was, with its -wal (and -shm)
        assert hashlib.sha256(Path(f"{kept}{suffix}").read_bytes()).hexdigest() == digest
    assert Path(f"{kept}-shm").exists()  # an index of the -wal, rebuilt by any reader
    assert hashes(data, skip=written) == untouched
    print(f"{name} {how}: detected, kept aside, fresh one; {len(untouched)} of {len(untouched)}"
          " other files untouched")  # fmt: skip
    assert integrity(db) == "ok"

    if name == "history.db":
        assert done.stdout.strip() == ""  # a fresh history: no tasks
        again = cli(home, "ask", "Write a line three")
        assert again.returncode == 0 and again.stderr == "", again.stderr
        assert list(tasks(home)) == ["Write a line three"]
        return
    assert done.stdout.strip() == "Fence painted"
    assert "; 1 unfinished task could not resume: marked failed" in line, line
    after = tasks(home)
    for text in DONE_TEXTS:
        assert after[text] == before_tasks[text]
    waiting = after[WAITING_TEXT]
    assert waiting["status"] == "failed"
    assert "its checkpoint was lost" in waiting["error"] and str(kept) in waiting["error"]
    earlier = before_tasks[WAITING_TEXT]["events"]
    assert waiting["events"][: len(earlier)] == earlier  # its history is kept
    assert [e["type"] for e in waiting["events"][len(earlier) :]] == ["task_failed"]


# 4. A broken config ----------------------------------------------------------------------------
# A config file with each kind of mistake (None: a folder in its place), or a bad variable;
# the line must name the file or variable and the key, and say how to fix it.
CONFIG_CASES = [
    pytest.param(
        b"[graph]\nbranches = \n",
        {},
        ["not valid TOML", "line 2, column", "'branches ='", "fix the TOML syntax"],
        id="toml-syntax",
    ),
    pytest.param(
        b'[agents.coder]\ntemperature = "hot"\n',
        {},
        ["agents.coder.temperature", "must be a valid number", "got 'hot'", "fix it"],
        id="wrong-type",
    ),
    pytest.param(
        b"[graph]\nbranchez = 2\n",
        {},
        ["graph.branchez", "unknown key", "did you mean 'branches'?"],
        id="unknown-key",
    ),
    pytest.param(
        b'colour = "blue"\n',
        {},
        ["colour", "unknown key", "remove it", "default_agent"],
        id="unknown-top-key",
    ),
    pytest.param(
        b'[keys]\nstore = "vault"\n',
        {},
        ["keys.store", "must be 'auto', 'keyring' or 'file'", "got 'vault'"],
        id="bad-enum",
    ),
    pytest.param(
        b"[graph]\nbranches = 99\n",
        {},
        ["graph.branches", "less than or equal to 8", "got 99"],
        id="out-of-range",
    ),
    pytest.param(
        b'[backends.gw]\ntype = "openai"\nurl = "localhost:8000/v1"\n',
        {},
        ["backends.gw.url", "http:// or https://", "'localhost:8000/v1'"],
        id="invalid-url",
    ),
    pytest.param(
        b'[agents.coder]\nbackend = "gpu-box"\n',
        {},
        [
            "agents.coder.backend",
            "unknown backend 'gpu-box'",
            "name one of embedded",
            "add [backends.gpu-box]",
        ],
        id="unknown-backend",
    ),
    pytest.param(
        b'[backends.gw]\ntype = "grpc"\n',
        {},
        ["backends.gw.type", "'grpc'", "'embedded', 'openai' or 'scripted'"],
        id="bad-backend-type",
    ),
    pytest.param(b"graph = 3\n", {}, ["graph", "must be a table", "[graph]"], id="not-a-table"),
    pytest.param(
        b'default_agent = "caf\xe9"\n',
        {},
        ["not UTF-8", "byte 0xe9 at line 1, column 21", "save the file as UTF-8"],
        id="not-utf8",
    ),
    pytest.param(None, {}, ["is a folder", "move the folder aside"], id="a-folder"),
    pytest.param(
        b"",
        {"MYNINJA_GRAPH__BRANCHES": "lots"},
        [
            "environment variable MYNINJA_GRAPH__BRANCHES",
            "graph.branches",
            "valid integer",
            "got 'lots'",
            "unset MYNINJA_GRAPH__BRANCHES",
        ],
        id="env-bad-value",
    ),
    pytest.param(
        b"",
        {"MYNINJA_GRAPH__BRANCHEZ": "2"},
        [
            "environment variable MYNINJA_GRAPH__BRANCHEZ",
            "unknown key",
            "did you mean 'branches'?",
            "unset MYNINJA_GRAPH__BRANCHEZ",
        ],
        id="env-unknown-key",
    ),
    pytest.param(
        b"",
        {"MYNINJA_AGENTS__WRITER__BACKEND": "nowhere"},
        [
            "environment variable MYNINJA_AGENTS__WRITER__BACKEND",
            "unknown backend 'nowhere'",
            "unset MYNINJA_AGENTS__WRITER__BACKEND",
        ],
        id="env-unknown-backend",
    ),
]


def _write_config(home: Path, content: bytes | None) -> Path:
    path = home / "config.toml"
    if content is None:
        path.mkdir()
        (path / "inside.toml").write_text('default_agent = "coder"\n')
    else:
        path.write_bytes(content)
    return path


@pytest.mark.parametrize(("content", "env", "expected"), CONFIG_CASES)
def test_a_broken_config_is_one_line_naming_file_key_and_fix(
    myninja_home: Path, content: bytes | None, env: dict[str, str], expected: list[str]
) -> None:
    path = _write_config(myninja_home, content)
    before = hashes(myninja_home)
    done = cli(myninja_home, "config", "show", env=env)
    line = one_line(done)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert line.startswith("myninja: error: "), line
    if not env:
        assert str(path) in line, line
    for words in expected:
        assert words in line, f"{words!r} not in {line!r}"
    assert hashes(myninja_home) == before  # nothing written
    assert sorted(p.name for p in myninja_home.iterdir()) == ["config.toml"]  # nor created


def test_an_unreadable_config_is_one_line_exit_2(myninja_home: Path) -> None:
    path = _write_config(myninja_home, b'default_agent = "coder"\n')
    path.chmod(0)
    try:
        preexec = as_unprivileged(path, "read")
        done = cli(myninja_home, "config", "show", preexec=preexec)
    finally:
        path.chmod(0o644)
    line = one_line(done)
    assert done.returncode == 2, done.stderr
    assert f"{path}: cannot read it: Permission denied" in line, line
    assert f"chmod u+r {path}" in line, line


@pytest.mark.heavy
def test_a_broken_config_stops_every_command_before_it_touches_data(myninja_home: Path) -> None:
    path = _write_config(myninja_home, b"[graph]\nbranches = 99\n")
    before = hashes(myninja_home)
    for args in (("ask", "hello"), ("run", "--detach", "hello"), ("config", "show")):
        done = cli(myninja_home, *args)
        line = one_line(done)
        assert done.returncode == 2, (args, done.stderr)
        assert f"{path}: graph.branches: must be less than or equal to 8, got 99" in line
    assert hashes(myninja_home) == before
    assert not (myninja_home / "data").exists()
