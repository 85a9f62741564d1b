"""Opening history.db (and checking checkpoints.db) so that several processes can share it.

A background worker writes while CLI commands read and write the same file. Two things keep
"database is locked" away: WAL (readers never block the writer) and taking the write lock at the
start of every write transaction (`write_transaction`), where the busy timeout applies. A
transaction that reads first and writes later cannot wait for the lock: SQLite fails it at once.

The files live on the person's disk, which can be read-only, full, or damaged. A folder or disk
that cannot take a write is one `StorageError` naming the file and the fix (`storage_error`); a
damaged file (not a database, malformed, failing `PRAGMA quick_check`) is moved aside with its
-wal and -shm as `NAME.corrupt-<time>` and a fresh one started (`Recovery` says which).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import resource
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlite_utils import Database

from myninja.errors import EXIT_FAILED, EXIT_USAGE, MyninjaError, shortened

BUSY_TIMEOUT_S = 10.0
# PRAGMA quick_check reads the whole file (about 0.1 s per 100 MB from the page cache). Bigger
# files are checked only as far as opening them reads (header, schema); damage deeper in is
# reported when a command meets it.
QUICK_CHECK_MAX_BYTES = 256 * 2**20

# SQLite's primary result codes (the low byte of `sqlite_errorcode`).
_READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 8, 10, 11, 13, 14, 26
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


class StorageError(MyninjaError):
    """A file in the data folder cannot be written: a read-only folder or file (exit 2: the
    person's setup), a full disk or a file size limit (exit 1: the task failed)."""

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int = EXIT_FAILED):
        super().__init__(message, hint=hint)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Recovery:
    """A damaged database file moved aside, and a fresh one started in its place."""

    path: Path
    kept_as: Path
    reason: str

    def one_line(self) -> str:
        return (
            f"{self.path} was damaged ({self.reason}): kept it as {self.kept_as}"
            " and started a fresh one"
        )


def announce(recovery: Recovery, more: str = "") -> None:
    """Tell the person, on stderr (stdout may carry JSON)."""
    print(f"myninja: warning: {recovery.one_line()}{more}", file=sys.stderr, flush=True)


def open_database(path: Path) -> Database:
    """history.db, checked and set up; a damaged file is moved aside (and said so on stderr)."""
    conn, recovery = connect_checked(path)
    if recovery:
        announce(recovery)
    return Database(conn, execute_plugins=False)


def check_database(path: Path) -> Recovery | None:
    """Check a database another driver opens (checkpoints.db): the same pragmas and checks as
    `open_database`; a damaged file is moved aside and a fresh one created."""
    conn, recovery = connect_checked(path)
    conn.close()
    return recovery


def connect_checked(path: Path) -> tuple[sqlite3.Connection, Recovery | None]:
    make_folder(path.parent)
    try:
        return _connect(path), None
    except _Damaged as damaged:
        recovery = _set_aside(path, damaged)
        return _connect(path), recovery


def make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise describe_os_error(err) or err from err


class _Damaged(Exception):
    def __init__(self, reason: str, inode: int | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.inode = inode


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except OSError:
        return None


def _connect(path: Path) -> sqlite3.Connection:
    inode = _inode(path)
    if inode is not None:
        _check(path, inode)
    conn: sqlite3.Connection | None = None
    try:
        # isolation_level=None: the driver never opens a transaction on its own, so every
        # transaction is one we began, with the lock we chose. Threads take turns (see store.py).
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
    except (sqlite3.Error, OSError) as err:
        if conn is not None:
            conn.close()
        if damaged(err):
            raise _Damaged(str(err), inode) from err
        raise storage_error(path, err) or MyninjaError(
            f"cannot open database {path}: {err}",
            hint="move the file aside to start a new one",
        ) from err
    return conn


def _check(path: Path, inode: int) -> None:
    """Raise _Damaged if the file is not a sound database. Read-only, so that a damaged file
    (and its -wal) stays as it is: a writable connection would checkpoint the -wal into it
    when it closes. Any other trouble is left for the writable connection to report."""
    # The header is read by SQLite, never by an open() of ours: closing any descriptor of the
    # file drops every POSIX lock this process holds on it, and another process could then
    # delete the -wal and -shm that this process's open connections still use.
    try:
        size = path.stat().st_size
    except OSError:
        return
    if size == 0:
        return  # an empty file: SQLite makes it a new database
    try:
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
    except sqlite3.Error:
        return
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # reads the schema
        if size <= QUICK_CHECK_MAX_BYTES:
            problems = [row[0] for row in conn.execute("PRAGMA quick_check(3)")]
            if problems != ["ok"]:
                lines = [x for x in problems[0].splitlines() if x.strip() and x[:3] != "***"]
                raise _Damaged(f"quick_check: {(lines or problems)[0].strip()}", inode)
    except sqlite3.Error as err:
        if damaged(err):
            raise _Damaged(str(err), inode) from err
    finally:
        conn.close()


def damaged(err: BaseException) -> bool:
    """Whether SQLite says the file is not a database, or a damaged one."""
    return _sqlite_code(err) in (_CORRUPT, _NOTADB)


def _sqlite_code(err: BaseException) -> int | None:
    code = getattr(err, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def _set_aside(path: Path, why: _Damaged) -> Recovery | None:
    """Move the damaged file and its -wal and -shm to NAME.corrupt-<time>[-wal|-shm]. Another
    process may have done it first (the file at `path` is another one then): nothing to do."""
    folder_fd = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(folder_fd, fcntl.LOCK_EX)  # one process recovers at a time
        if _inode(path) != why.inode:
            return None
        stamp = time.strftime("%Y%m%d-%H%M%S")
        kept = path.with_name(f"{path.name}.corrupt-{stamp}")
        n = 1
        while any(Path(f"{kept}{s}").exists() for s in ("", "-wal", "-shm")):
            n += 1
            kept = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        try:
            # The -wal and -shm first: a fresh file must never meet the damaged one's log.
            for suffix in ("-wal", "-shm", ""):
                with contextlib.suppress(FileNotFoundError):
                    os.rename(f"{path}{suffix}", f"{kept}{suffix}")
        except OSError as err:
            raise storage_error(path, err) or err from err
        return Recovery(path, kept, why.reason)
    finally:
        os.close(folder_fd)  # releases the lock


def storage_error(path: Path, err: BaseException) -> StorageError | None:
    """The one line for an error writing the database `path`, or None when `err` is not about
    the disk or the folder."""
    code = _sqlite_code(err)
    folder = path.parent
    if code in (_READONLY, _CANTOPEN):
        why = _unwritable(folder)
        if why is not None:
            return StorageError(
                f"cannot write {path}: the folder {folder} is read-only ({why})",
                hint=f"make it writable (chmod u+w {folder}) or set MYNINJA_HOME to a folder "
                "you can write",
                exit_code=EXIT_USAGE,
            )
        if code == _READONLY:  # the file itself, or its -wal or -shm
            return StorageError(
                f"cannot write {path}: the file is read-only ({err})",
                hint=f"make it and its -wal and -shm writable (chmod u+w {path}*)",
                exit_code=EXIT_USAGE,
            )
        return StorageError(
            f"cannot open {path}: {err}" + (" (it is a folder)" if path.is_dir() else ""),
            hint="move it aside, or set MYNINJA_HOME to another folder",
            exit_code=EXIT_USAGE,
        )
    if isinstance(err, OSError):
        return describe_os_error(err)
    if code == _FULL:
        return _full(path, err)
    if code == _IOERR:
        return _io_error(path, err)
    return None


def describe_os_error(err: OSError) -> StorageError | None:
    """One line for an OSError about a file or folder the person can fix (read-only, in the
    way, full), or None for any other."""
    if not err.filename:
        return None
    path = Path(os.fsdecode(err.filename))
    what = err.strerror or str(err)
    if err.errno in _NOT_WRITABLE:
        return StorageError(
            f"cannot write {path}: {what}",
            hint="make it (or the folder that holds it) writable, or set MYNINJA_HOME to a "
            "folder you can write",
            exit_code=EXIT_USAGE,
        )
    if err.errno in (errno.EEXIST, errno.ENOTDIR):
        return StorageError(
            f"cannot create the folder {path}: a file is in the way ({what})",
            hint="move that file aside, or set MYNINJA_HOME to another folder",
            exit_code=EXIT_USAGE,
        )
    if err.errno == errno.EISDIR:
        return StorageError(
            f"{path} is a folder where a file belongs",
            hint="move the folder aside",
            exit_code=EXIT_USAGE,
        )
    if err.errno == errno.ENAMETOOLONG:
        return StorageError(
            f"cannot use {shortened(str(path))}: {what}",
            hint="give a shorter path",
            exit_code=EXIT_USAGE,
        )
    if err.errno in _NO_SPACE:
        return _full(path, err)
    if err.errno == errno.EFBIG:
        return _io_error(path, err)
    return None


def _io_error(path: Path, err: BaseException) -> StorageError:
    """SQLite reports a write the OS refused for any reason but ENOSPC as an I/O error."""
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    if soft != resource.RLIM_INFINITY:
        return StorageError(
            f"cannot write {path}: it reached the file size limit of this process"
            f" (ulimit -f: {soft} bytes; {err})",
            hint="raise the limit (ulimit -f unlimited); earlier tasks are kept",
        )
    with contextlib.suppress(OSError):
        if shutil.disk_usage(path.parent).free < 2**20:
            return _full(path, err)
    return StorageError(
        f"cannot write {path}: {err}",
        hint="the disk may be failing (see dmesg); earlier tasks are kept",
    )


def _full(path: Path, err: BaseException) -> StorageError:
    return StorageError(
        f"cannot write {path}: no space left on the disk ({err})",
        hint=f"free some space on the disk that holds {path.parent}, or set MYNINJA_HOME to a "
        "folder on another disk; earlier tasks are kept",
    )


def _unwritable(folder: Path) -> str | None:
    """Why no file can be created in `folder`, or None when one can."""
    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix=".myninja-probe-")
    except OSError as err:
        if err.errno in _NO_SPACE:
            return None  # full, not read-only
        return err.strerror or str(err)
    os.close(fd)
    os.unlink(name)
    return None


def database_path(db: Database) -> Path:
    """The file behind `db`'s main schema."""
    with contextlib.suppress(sqlite3.Error):
        for _, name, file in db.conn.execute("PRAGMA database_list"):
            if name == "main" and file:
                return Path(file)
    return Path("history.db")


@contextmanager
def write_transaction(db: Database) -> Iterator[Database]:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on error. Inside an open transaction it joins it.
    A write the disk or folder refuses (full, read-only) becomes one StorageError, with the
    transaction rolled back: nothing of it is kept, everything before it is."""
    if db.conn.in_transaction:
        yield db
        return
    try:
        db.conn.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            _rollback(db)
            raise
        db.conn.execute("COMMIT")  # a COMMIT that fails leaves the transaction open
    except sqlite3.OperationalError as err:
        _rollback(db)
        translated = storage_error(database_path(db), err)
        if translated is None:
            raise
        raise translated from err


def _rollback(db: Database) -> None:
    if db.conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            db.conn.execute("ROLLBACK")


def fetch(db: Database, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict]:
    """Rows as dicts, without sqlite-utils' savepoint around `query` (reads need none)."""
    cursor = db.conn.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
