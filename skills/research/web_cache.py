"""What the researcher fetched from the web, kept for reuse: pages and search results.

One SQLite file (`<data dir>/web.db`) with two tables: `pages`, keyed by the URL asked, found
by that URL or by the URL it ended at after redirects; and `searches`, keyed by (provider,
query, number of results asked). Each row carries when it was fetched, and a reader says how
old is still good (`max_age_s`; 0 never reuses anything). Failures are never stored: a page
that failed is tried again next time.

`fetch_cached` is the way to fetch through it. The cache is used from one event loop; its
calls are short, local writes, so they run on the loop rather than in a thread.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from myninja.errors import UsageError
from myninja.paths import data_dir
from myninja.skills.research.fetch import FetchedPage, fetch_page

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS pages (
    url TEXT PRIMARY KEY,
    final_url TEXT NOT NULL,
    canonical_url TEXT,
    title TEXT,
    text TEXT NOT NULL,
    content_type TEXT NOT NULL,
    published TEXT,
    fetched_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS pages_final_url ON pages(final_url);
CREATE TABLE IF NOT EXISTS searches (
    provider TEXT NOT NULL,
    query TEXT NOT NULL,
    n INTEGER NOT NULL,
    results TEXT NOT NULL,
    searched_at REAL NOT NULL,
    PRIMARY KEY (provider, query, n)
);
"""


def web_cache_file() -> Path:
    return data_dir() / "web.db"


class WebCache:
    """The web cache at `path` (default `<data dir>/web.db`), open; close it or use `with`."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else web_cache_file()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection; check_same_thread off and a lock around each call, so a caller
        # that hands the cache to a worker thread cannot interleave two statements.
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.path, timeout=30, isolation_level=None, check_same_thread=False
        )
        self._db.row_factory = sqlite3.Row
        try:
            version = self._prepare()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise UsageError(f"{self.path} is not a web cache ({exc})") from None
        if version > SCHEMA_VERSION:
            self._db.close()
            raise UsageError(
                f"the web cache {self.path} was made by a newer myninja (schema {version})",
                hint="upgrade myninja, or remove the file (it is only a cache)",
            )

    def _prepare(self) -> int:
        # WAL: another myninja process (a background task) can read while this one writes.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            # IF NOT EXISTS: two processes may create the file at once.
            self._db.executescript(
                f"BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            )
            version = SCHEMA_VERSION
        return version

    # -- pages ----------------------------------------------------------------------------------

    def get_page(self, url: str, max_age_s: float) -> FetchedPage | None:
        """The newest page stored for `url` (asked as that URL, or ended at it after redirects)
        that is at most `max_age_s` old; else None. The page found carries `url` as asked, so
        it reads as if this fetch had made it."""
        if max_age_s <= 0:
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM pages WHERE (url = ? OR final_url = ?) AND fetched_at >= ?"
                " ORDER BY url = ? DESC, fetched_at DESC LIMIT 1",
                (url, url, time.time() - max_age_s, url),
            ).fetchone()
        if row is None:
            return None
        page = FetchedPage(
            url=row["url"],
            final_url=row["final_url"],
            title=row["title"],
            text=row["text"],
            content_type=row["content_type"],
            fetched_at=datetime.fromtimestamp(row["fetched_at"], UTC),
            published=row["published"],
            canonical_url=row["canonical_url"],
        )
        return page if page.url == url else replace(page, url=url)

    def put_page(self, page: FetchedPage) -> None:
        """Store `page` under the URL it was asked as, replacing what was there."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO pages (url, final_url, canonical_url, title, text,"
                " content_type, published, fetched_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    page.url,
                    page.final_url,
                    page.canonical_url,
                    page.title,
                    page.text,
                    page.content_type,
                    page.published,
                    page.fetched_at.timestamp(),
                ),
            )

    # -- searches -------------------------------------------------------------------------------

    def get_search(
        self, provider: str, query: str, n: int, max_age_s: float
    ) -> list[dict[str, Any]] | None:
        """The results stored for (provider, query, n) at most `max_age_s` old; else None."""
        if max_age_s <= 0:
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT results FROM searches WHERE provider = ? AND query = ? AND n = ?"
                " AND searched_at >= ?",
                (provider, query, n, time.time() - max_age_s),
            ).fetchone()
        return None if row is None else json.loads(row["results"])

    def put_search(
        self,
        provider: str,
        query: str,
        n: int,
        results: list[dict[str, Any]],
        *,
        searched_at: float | None = None,
    ) -> None:
        """Store `results` (JSON-able dicts) for (provider, query, n); `searched_at` is now
        (time.time()) unless given."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO searches (provider, query, n, results, searched_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    provider,
                    query,
                    n,
                    json.dumps(results, ensure_ascii=False),
                    time.time() if searched_at is None else searched_at,
                ),
            )

    # -- upkeep ---------------------------------------------------------------------------------

    def prune(self, max_age_s: float) -> int:
        """Forget pages and searches older than `max_age_s`; how many rows went."""
        cutoff = time.time() - max_age_s
        with self._lock:
            pages = self._db.execute("DELETE FROM pages WHERE fetched_at < ?", (cutoff,))
            searches = self._db.execute("DELETE FROM searches WHERE searched_at < ?", (cutoff,))
            return pages.rowcount + searches.rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> WebCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


async def fetch_cached(
    url: str, cache: WebCache | None, *, max_age_s: float, **fetch_kwargs: Any
) -> tuple[FetchedPage, bool]:
    """(page, whether it came from the cache): the page stored for `url` if at most
    `max_age_s` old, else `fetch_page(url, **fetch_kwargs)`, stored for next time. A failed
    fetch raises its FetchError and stores nothing. `cache` None fetches every time."""
    if cache is not None and (page := cache.get_page(url, max_age_s)) is not None:
        return page, True
    page = await fetch_page(url, **fetch_kwargs)
    if cache is not None:
        cache.put_page(page)
    return page, False
