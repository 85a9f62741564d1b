"""The web cache: a real SQLite file in the test's home, and `fetch_cached` against a real HTTP
server on 127.0.0.1 that counts what it is asked, so "from the cache" means no request."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from myninja.errors import UsageError
from myninja.paths import data_dir
from myninja.skills.research.fetch import FetchedPage, FetchError
from myninja.skills.research.web_cache import WebCache, fetch_cached
from tests.local_http import serving

pytestmark = pytest.mark.timeout(60)

LOCAL = ["127.0.0.1"]  # the test server's address, which fetches refuse unless it is allowed

ARTICLE = (
    "<!doctype html><html><head><title>Otters at dusk</title>"
    '<link rel="canonical" href="/otters"></head><body><main><article><h1>Otters at dusk</h1>'
    "<p>Otters leave their holts at dusk and feed along the bank until well after dark, the "
    "survey found, returning before the first light of the morning.</p></article></main>"
    "</body></html>"
)


def a_page(url: str = "https://example.org/a", **changes: object) -> FetchedPage:
    fields: dict[str, object] = {
        "url": url,
        "final_url": "https://example.org/final",
        "title": "Otters",
        "text": "Otters hold hands.\n\nThey sleep on the water.",
        "content_type": "text/html",
        "fetched_at": datetime.now(UTC),
        "published": "2024-03-05",
        "canonical_url": "https://example.org/canonical",
    }
    fields.update(changes)
    return FetchedPage(**fields)  # type: ignore[arg-type]


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[WebCache]:
    with WebCache(tmp_path / "web.db") as opened:
        yield opened


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    seen: list[str]  # paths asked, set on the class

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.seen.append(self.path)
        if self.path == "/article":
            status, body = 200, ARTICLE.encode()
        elif self.path == "/flaky":
            # Fails the first time it is asked, works after: a failure must not be kept.
            status = 503 if self.seen.count("/flaky") == 1 else 200
            body = ARTICLE.encode()
        else:
            status, body = 404, b"<p>no</p>"
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    with serving(type("CountingHandler", (Handler,), {"seen": seen})) as url:
        yield url, seen


# -- pages ------------------------------------------------------------------------------------


def test_a_page_is_found_by_the_url_asked_and_by_its_final_url(cache: WebCache) -> None:
    page = a_page()
    cache.put_page(page)
    assert cache.get_page("https://example.org/a", 60) == page
    by_final = cache.get_page("https://example.org/final", 60)
    assert by_final is not None
    # Everything as stored, but carrying the URL this caller asked for.
    assert by_final.url == "https://example.org/final"
    assert by_final.final_url == page.final_url
    assert (by_final.title, by_final.text, by_final.published, by_final.canonical_url) == (
        page.title,
        page.text,
        page.published,
        page.canonical_url,
    )
    assert by_final.fetched_at == page.fetched_at
    assert cache.get_page("https://example.org/other", 60) is None


def test_a_page_without_optional_fields_round_trips(cache: WebCache) -> None:
    page = a_page(title=None, published=None, canonical_url=None, content_type="application/pdf")
    cache.put_page(page)
    assert cache.get_page(page.url, 60) == page


def test_putting_a_page_again_replaces_it(cache: WebCache) -> None:
    cache.put_page(a_page(text="old text"))
    cache.put_page(a_page(text="new text"))
    found = cache.get_page("https://example.org/a", 60)
    assert found is not None and found.text == "new text"


def test_a_page_older_than_max_age_is_not_reused(cache: WebCache) -> None:
    old = datetime.now(UTC) - timedelta(seconds=100)
    cache.put_page(a_page(fetched_at=old))
    assert cache.get_page("https://example.org/a", 50) is None
    assert cache.get_page("https://example.org/final", 50) is None
    assert cache.get_page("https://example.org/a", 1000) is not None


def test_max_age_zero_never_reuses(cache: WebCache) -> None:
    cache.put_page(a_page())
    cache.put_search("brave", "otters", 8, [{"url": "https://example.org/a"}])
    assert cache.get_page("https://example.org/a", 0) is None
    assert cache.get_search("brave", "otters", 8, 0) is None


# -- searches ---------------------------------------------------------------------------------


def test_search_results_round_trip_by_provider_query_and_count(cache: WebCache) -> None:
    results = [
        {"url": "https://example.org/a", "title": "Otters — a survey", "snippet": "…holts…"},
        {"url": "https://example.org/b", "title": "Loutres", "score": 0.5, "tags": ["river"]},
    ]
    cache.put_search("searxng", "river otters", 8, results)
    assert cache.get_search("searxng", "river otters", 8, 60) == results
    assert cache.get_search("searxng", "river otters", 5, 60) is None
    assert cache.get_search("brave", "river otters", 8, 60) is None
    assert cache.get_search("searxng", "sea otters", 8, 60) is None
    cache.put_search("searxng", "river otters", 8, results[:1])
    assert cache.get_search("searxng", "river otters", 8, 60) == results[:1]


def test_search_results_older_than_max_age_are_not_reused(cache: WebCache) -> None:
    cache.put_search("brave", "otters", 8, [{"url": "u"}], searched_at=time.time() - 100)
    assert cache.get_search("brave", "otters", 8, 50) is None
    assert cache.get_search("brave", "otters", 8, 1000) == [{"url": "u"}]


def test_prune_forgets_only_what_is_older(cache: WebCache) -> None:
    cache.put_page(
        a_page("https://example.org/old", fetched_at=datetime.now(UTC) - timedelta(days=2))
    )
    cache.put_page(a_page("https://example.org/new"))
    cache.put_search("brave", "old", 8, [], searched_at=time.time() - 2 * 86_400)
    cache.put_search("brave", "new", 8, [])
    assert cache.prune(86_400) == 2
    assert cache.get_page("https://example.org/old", 10 * 86_400) is None
    assert cache.get_page("https://example.org/new", 60) is not None
    assert cache.get_search("brave", "old", 8, 10 * 86_400) is None
    assert cache.get_search("brave", "new", 8, 60) == []


# -- the file ---------------------------------------------------------------------------------


def test_the_cache_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "web.db"
    page = a_page()
    with WebCache(path) as cache:
        cache.put_page(page)
        cache.put_search("tavily", "otters", 3, [{"url": page.url}])
    with WebCache(path) as cache:
        assert cache.get_page(page.url, 60) == page
        assert cache.get_search("tavily", "otters", 3, 60) == [{"url": page.url}]


def test_the_default_file_is_web_db_in_the_data_dir(myninja_home: Path) -> None:
    with WebCache() as cache:
        cache.put_page(a_page())
    assert (data_dir() / "web.db").is_file()
    assert data_dir().is_relative_to(myninja_home)
    with sqlite3.connect(data_dir() / "web.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT count(*) FROM pages").fetchone()[0] == 1


def test_a_file_that_is_not_a_database_is_one_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "web.db"
    path.write_bytes(b"not sqlite at all, " * 100)
    with pytest.raises(UsageError, match="is not a web cache"):
        WebCache(path)


# -- fetch_cached -----------------------------------------------------------------------------


async def test_fetch_cached_asks_the_server_once_then_again_after_expiry(
    cache: WebCache, server: tuple[str, list[str]]
) -> None:
    base, seen = server
    url = f"{base}/article"
    first, from_cache = await fetch_cached(
        url, cache, max_age_s=60, respect_robots=False, allow_hosts=LOCAL
    )
    assert not from_cache
    assert first.canonical_url == f"{base}/otters"
    second, from_cache = await fetch_cached(
        url, cache, max_age_s=60, respect_robots=False, allow_hosts=LOCAL
    )
    assert from_cache
    assert second == first
    assert seen == ["/article"]
    # Older than a microsecond by now: stale, so asked again, and stored again.
    third, from_cache = await fetch_cached(
        url, cache, max_age_s=1e-6, respect_robots=False, allow_hosts=LOCAL
    )
    assert not from_cache
    assert third.fetched_at > first.fetched_at
    assert seen == ["/article", "/article"]
    stored = cache.get_page(url, 60)
    assert stored is not None and stored.fetched_at == third.fetched_at


async def test_fetch_cached_passes_fetch_options_on(
    cache: WebCache, server: tuple[str, list[str]]
) -> None:
    base, _ = server
    with pytest.raises(FetchError, match="larger than 100 bytes"):
        await fetch_cached(f"{base}/article", cache, max_age_s=60, max_bytes=100, allow_hosts=LOCAL)
    assert cache.get_page(f"{base}/article", 60) is None


async def test_a_failed_fetch_is_not_cached(cache: WebCache, server: tuple[str, list[str]]) -> None:
    base, seen = server
    url = f"{base}/flaky"
    with pytest.raises(FetchError, match="HTTP 503"):
        await fetch_cached(url, cache, max_age_s=60, respect_robots=False, allow_hosts=LOCAL)
    assert cache.get_page(url, 60) is None
    page, from_cache = await fetch_cached(
        url, cache, max_age_s=60, respect_robots=False, allow_hosts=LOCAL
    )
    assert not from_cache
    assert "Otters leave their holts" in page.text
    assert seen == ["/flaky", "/flaky"]


async def test_fetch_cached_without_a_cache_always_fetches(server: tuple[str, list[str]]) -> None:
    base, seen = server
    for _ in range(2):
        _, from_cache = await fetch_cached(
            f"{base}/article", None, max_age_s=60, respect_robots=False, allow_hosts=LOCAL
        )
        assert not from_cache
    assert seen == ["/article", "/article"]
