"""Corpora: named, incrementally updated BM25 indexes of local files.

Each corpus is one SQLite file, `<data_dir>/indexes/<NAME>.db`, holding the files it was built
from (path, size, mtime, SHA-256), their passages, and an FTS5 index over title and text. Adding
a folder again re-reads only files whose content changed (as git does: a file whose size and
mtime are as recorded is not read at all) and drops the passages of files that are gone.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from myninja import paths
from myninja.errors import UsageError, shortened

from .fts import TEXT_WEIGHT, TITLE_WEIGHT, TOKENIZE, fts_query, transaction
from .passages import SUPPORTED_SUFFIXES, Hit, Passage, check_supported, read_passages

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
SCHEMA_VERSION = 1
# A file modified this close to when we last looked may have changed again within the
# filesystem's timestamp granularity, so its size and mtime alone cannot be trusted ("racy git").
RACY_NS = 2_000_000_000

Progress = Callable[[int, int, Path | None], None]  # (files done, files in all, file just done)

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    checked_ns INTEGER NOT NULL,
    passages INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS passages (
    rowid INTEGER PRIMARY KEY,
    file_id INTEGER NOT NULL REFERENCES files(id),
    pid TEXT NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    extra TEXT
);
CREATE INDEX IF NOT EXISTS passages_file ON passages(file_id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE VIRTUAL TABLE IF NOT EXISTS passages_fts USING fts5(
    title, text, content='passages', content_rowid='rowid', tokenize='{TOKENIZE}'
);
CREATE TRIGGER IF NOT EXISTS passages_ai AFTER INSERT ON passages BEGIN
    INSERT INTO passages_fts(rowid, title, text) VALUES (new.rowid, new.title, new.text);
END;
CREATE TRIGGER IF NOT EXISTS passages_ad AFTER DELETE ON passages BEGIN
    INSERT INTO passages_fts(passages_fts, rowid, title, text)
    VALUES ('delete', old.rowid, old.title, old.text);
END;
PRAGMA user_version = {SCHEMA_VERSION};
"""


class BadCorpusName(UsageError):
    pass


class UnknownCorpus(UsageError):
    pass


def indexes_dir() -> Path:
    return paths.data_dir() / "indexes"


def check_name(name: str) -> str:
    """`name` if it is a safe corpus name; a name is a file name, so nothing that could climb
    out of the indexes folder (no `/`, no leading `.`) gets through."""
    if not NAME.fullmatch(name):
        raise BadCorpusName(
            f"bad corpus name {name!r}",
            hint="use up to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    return name


def corpus_file(name: str, directory: Path | None = None) -> Path:
    return (directory or indexes_dir()) / f"{check_name(name)}.db"


@dataclass
class AddReport:
    """What one `Corpus.add` did, counted in files and passages."""

    indexed: int = 0  # files read and (re)indexed: new or changed
    unchanged: int = 0  # files already indexed with the same content
    removed: int = 0  # files gone from disk whose passages were dropped
    skipped: list[str] = field(default_factory=list)  # unsupported or unreadable, in folders
    passages_added: int = 0
    passages_removed: int = 0
    files: int = 0  # in the corpus afterwards
    passages: int = 0  # in the corpus afterwards

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CorpusInfo:
    name: str
    path: str
    files: int
    passages: int
    bytes: int
    updated_at: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _walk(roots: list[Path]) -> tuple[list[Path], list[Path]]:
    """(files to index, files skipped) under `roots`. A file named on the command line must be
    readable (an error says which is not); inside a folder, files of other types are skipped
    and reported, as `rg` and `git add` walk a tree: a notes folder holds images and PDFs, and
    failing on the first one would make folders unindexable. Hidden files and folders (.git,
    .venv) are skipped for the same reason; symlinked folders are not followed (no loops)."""
    files: list[Path] = []
    skipped: list[Path] = []
    for root in roots:
        if not root.is_dir():
            check_supported(root)
            files.append(root)
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for filename in sorted(filenames):
                if filename.startswith("."):
                    continue
                path = Path(dirpath) / filename
                supported = path.suffix.lower() in SUPPORTED_SUFFIXES and path.is_file()
                (files if supported else skipped).append(path)
    return list(dict.fromkeys(files)), skipped


class Corpus:
    """One corpus file, open. Use `Corpus.open(name)`; close it (or use `with`)."""

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        try:
            version = self._prepare()
        except sqlite3.DatabaseError as exc:
            self.db.close()
            raise UsageError(f"{path} is not a corpus index ({exc})") from None
        if version > SCHEMA_VERSION:
            self.db.close()
            raise UsageError(
                f"corpus {name!r} was made by a newer myninja (schema {version})",
                hint="upgrade myninja, or remove the corpus and index it again",
            )

    def _prepare(self) -> int:
        """Set the connection up, create the schema in a new file; the schema version."""
        # WAL: a search can run while an `index add` writes.
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            # Idempotent (IF NOT EXISTS): two `index add` may create one corpus at once.
            self.db.executescript(f"BEGIN IMMEDIATE; {SCHEMA} COMMIT;")
            version = SCHEMA_VERSION
        return version

    @classmethod
    def open(cls, name: str, *, create: bool = False, directory: Path | None = None) -> Corpus:
        path = corpus_file(name, directory)
        if not path.exists():
            if not create:
                raise UnknownCorpus(f"no corpus named {name!r}", hint="see `myninja index list`")
            path.parent.mkdir(parents=True, exist_ok=True)
        return cls(name, path)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Corpus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- indexing -----------------------------------------------------------------------------

    def add(self, paths: Iterable[Path | str], progress: Progress | None = None) -> AddReport:
        """Index the files and folders at `paths`: new and changed files are (re)read, files
        gone from under these paths are dropped. Each file is committed on its own, so an
        interrupted run keeps what it did."""
        roots = [Path(p).expanduser() for p in paths]
        for root in roots:
            try:
                found = root.exists()
            except OSError as exc:  # a name too long for the file system, say
                raise UsageError(
                    f"cannot use {shortened(str(root))}: {exc.strerror or exc}"
                ) from None
            if not found:
                raise UsageError(f"no such file or folder: {root}")
        roots = [root.resolve() for root in roots]
        files, skipped = _walk(roots)
        report = AddReport(skipped=[str(p) for p in skipped])
        known = {
            row["path"]: row
            for row in self.db.execute(
                "SELECT id, path, size, mtime_ns, sha256, checked_ns FROM files"
            )
        }
        if progress:
            progress(0, len(files), None)
        for done, path in enumerate(files, 1):
            self._add_file(path, known.get(str(path)), report, named=path in roots)
            if progress:
                progress(done, len(files), path)
        root_names = [str(root) for root in roots]
        with transaction(self.db):
            for path_text, row in known.items():
                if any(_under(path_text, r) for r in root_names) and not Path(path_text).is_file():
                    report.passages_removed += self._drop_file(row["id"])
                    report.removed += 1
        if report.indexed or report.removed:
            self.db.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('updated_at', ?)",
                (str(time.time()),),
            )
        report.files, report.passages = self._counts()
        return report

    def _add_file(
        self, path: Path, known: sqlite3.Row | None, report: AddReport, *, named: bool
    ) -> None:
        try:
            stat = path.stat()
            if known and (known["size"], known["mtime_ns"]) == (stat.st_size, stat.st_mtime_ns):
                if known["checked_ns"] - stat.st_mtime_ns > RACY_NS:
                    report.unchanged += 1
                    return
            data = path.read_bytes()
        except OSError as exc:
            if named:
                raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
            report.skipped.append(str(path))
            return
        digest = hashlib.sha256(data).hexdigest()
        now = time.time_ns()
        if known and known["sha256"] == digest:
            self.db.execute(
                "UPDATE files SET size = ?, mtime_ns = ?, checked_ns = ? WHERE id = ?",
                (stat.st_size, stat.st_mtime_ns, now, known["id"]),
            )
            report.unchanged += 1
            return
        passages = read_passages(path, data)
        with transaction(self.db):
            if known:
                report.passages_removed += self._drop_file(known["id"])
            file_id = self.db.execute(
                "INSERT INTO files(path, size, mtime_ns, sha256, checked_ns, passages)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (str(path), stat.st_size, stat.st_mtime_ns, digest, now, len(passages)),
            ).lastrowid
            self.db.executemany(
                "INSERT INTO passages(file_id, pid, title, text, extra) VALUES (?, ?, ?, ?, ?)",
                (_row(file_id, p) for p in passages),
            )
        report.indexed += 1
        report.passages_added += len(passages)

    def _drop_file(self, file_id: int) -> int:
        """Delete a file and its passages (the FTS rows go with them, by trigger)."""
        gone = self.db.execute("DELETE FROM passages WHERE file_id = ?", (file_id,)).rowcount
        self.db.execute("DELETE FROM files WHERE id = ?", (file_id,))
        return gone

    def _counts(self) -> tuple[int, int]:
        files = self.db.execute("SELECT count(*) FROM files").fetchone()[0]
        passages = self.db.execute("SELECT count(*) FROM passages").fetchone()[0]
        return files, passages

    # -- searching ----------------------------------------------------------------------------

    def search(self, query: str, k: int = 10) -> list[Hit]:
        """The `k` passages that best match `query` by BM25, best first; [] when no word of it
        is in the corpus, or it has no words (see fts.fts_query)."""
        match = fts_query(query)
        if not match or k < 1:
            return []
        # Rank inside the FTS table first, then join only the k rows kept.
        rows = self.db.execute(
            """
            WITH top AS (
                SELECT rowid, bm25(passages_fts, ?, ?) AS rank FROM passages_fts
                WHERE passages_fts MATCH ? ORDER BY rank, rowid LIMIT ?
            )
            SELECT p.pid, p.title, p.text, f.path, p.extra, top.rank
            FROM top JOIN passages p ON p.rowid = top.rowid JOIN files f ON f.id = p.file_id
            ORDER BY top.rank, top.rowid
            """,
            (TITLE_WEIGHT, TEXT_WEIGHT, match, k),
        ).fetchall()
        return [
            Hit(
                Passage(
                    id=pid, title=title, text=text, source=source, extra=json.loads(extra or "{}")
                ),
                # FTS5's bm25() is negative, lower is better; Hit scores are higher-is-better.
                score=-rank,
            )
            for pid, title, text, source, extra, rank in rows
        ]

    def info(self) -> CorpusInfo:
        files, passages = self._counts()
        row = self.db.execute("SELECT value FROM meta WHERE key = 'updated_at'").fetchone()
        size = sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists())
        return CorpusInfo(
            name=self.name,
            path=str(self.path),
            files=files,
            passages=passages,
            bytes=size,
            updated_at=float(row[0]) if row else None,
        )


def _row(file_id: int | None, p: Passage) -> tuple[Any, ...]:
    return (
        file_id,
        p.id,
        p.title,
        p.text,
        json.dumps(p.extra, ensure_ascii=False) if p.extra else None,
    )


def list_corpora(directory: Path | None = None) -> list[CorpusInfo]:
    """Every corpus in the indexes folder, by name."""
    folder = directory or indexes_dir()
    if not folder.is_dir():
        return []
    infos = []
    for path in sorted(folder.glob("*.db")):
        if NAME.fullmatch(path.stem):
            with Corpus(path.stem, path) as corpus:
                infos.append(corpus.info())
    return infos


def remove_corpus(name: str, directory: Path | None = None) -> None:
    path = corpus_file(name, directory)
    if not path.exists():
        raise UnknownCorpus(f"no corpus named {name!r}", hint="see `myninja index list`")
    for part in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        part.unlink(missing_ok=True)
