"""Fetching pages a task names: against a real HTTP server on 127.0.0.1 (http.server in a
thread), so redirects, status codes, charsets, sizes and a slow-drip body are real bytes on a
real socket, and httpx is the real client."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler

import httpx
import pytest

from myninja.errors import MyninjaError
from skills.research.fetch import (
    MAX_URLS,
    FetchedPage,
    FetchError,
    fetch_page,
    find_urls,
    page_passages,
)
from skills.research.passages import MAX_WORDS
from tests.local_http import serving

pytestmark = pytest.mark.timeout(60)

MAIN_PARAGRAPHS = [
    "River otters have returned to the upper valley after forty years of absence, according "
    "to a survey published this spring by the regional wildlife office.",
    "Surveyors counted twelve holts along a nine-kilometre stretch, most of them near the old "
    "mill where the water now runs clean again after the tannery closed.",
]
BOILERPLATE = ["NAVLINKS", "COOKIEBANNER", "FOOTERTEXT", "SECRETSCRIPT"]

ARTICLE = f"""<!doctype html>
<html><head><title>River otters return</title>
<script>var tracking = "SECRETSCRIPT";</script></head>
<body>
<nav><a href="/">Home</a> <a href="/about">About us</a> <a href="/x">NAVLINKS</a></nav>
<div class="cookie-banner" id="cookie-consent">We use cookies COOKIEBANNER.
<button>Accept</button></div>
<main><article><h1>River otters return</h1>
<p>{MAIN_PARAGRAPHS[0]}</p>
<p>{MAIN_PARAGRAPHS[1]}</p>
</article></main>
<footer>Copyright 2024 FOOTERTEXT. All rights reserved.</footer>
</body></html>"""


def long_paragraph(i: int) -> str:
    """About 60 words that name their paragraph (P<i>), so order can be checked."""
    return f"P{i} opens this paragraph. " + " ".join(
        f"The otter survey of stretch {i} noted holt number {j} near the bank." for j in range(4)
    )


LONG_PARAGRAPHS = [long_paragraph(i) for i in range(30)]
LONG_ARTICLE = (
    "<!doctype html><html><head><title>A long survey</title></head><body><main><article>"
    "<h1>A long survey</h1>"
    + "".join(f"<p>{p}</p>" for p in LONG_PARAGRAPHS)
    + "</article></main></body></html>"
)
LINKS_PAGE = (
    "<html><head><title>Timetables</title></head><body><ul>"
    '<li><a href="/north">Northern line timetable</a></li>'
    '<li><a href="/south">Southern line timetable</a></li>'
    "</ul></body></html>"
)
LATIN1_TEXT = "Café crème à la façon de Zoë, ½ prix."


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # a body without Content-Length ends when the socket closes
    seen: list[tuple[str, str]]  # (path, user agent) of every request, set on the class

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    def send(self, status: int, body: bytes, ctype: str, *, length: bool = True) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("User-Agent", "")))
        path = self.path
        html = "text/html; charset=utf-8"
        if path == "/article":
            self.send(200, ARTICLE.encode(), html)
        elif path == "/long":
            self.send(200, LONG_ARTICLE.encode(), html)
        elif path == "/links":  # all links, no prose: trafilatura keeps nothing of it
            self.send(200, LINKS_PAGE.encode(), html)
        elif path.startswith("/hop/"):
            left = int(path.rsplit("/", 1)[1])
            # One relative Location, the rest absolute: both must resolve.
            target = "/article" if left <= 1 else f"/hop/{left - 1}"
            self.redirect(
                target if left % 2 else f"http://127.0.0.1:{self.server.server_port}{target}"
            )
        elif path == "/to-file":
            self.redirect("file:///etc/passwd")
        elif path == "/404":
            self.send(404, b"<h1>nope</h1>", html)
        elif path == "/500":
            self.send(500, b"<h1>broken</h1>", html)
        elif path == "/slow":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            try:
                for _ in range(100):  # a byte every 0.1 s: each read is quick, the whole is not
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:  # the client gave up, as it should
                pass
        elif path == "/big":
            self.send(200, b"a " * 600_000, "text/plain")
        elif path == "/big-unannounced":  # no Content-Length: only counting can stop it
            self.send(200, b"a " * 600_000, "text/plain", length=False)
        elif path == "/pdf":
            self.send(200, b"%PDF-1.4 fake", "application/pdf")
        elif path == "/latin1":
            self.send(200, LATIN1_TEXT.encode("latin-1"), "text/plain; charset=ISO-8859-1")
        elif path == "/notes.md":
            self.send(200, b"# Field notes\n\nOtters seen: 3.\n", "text/markdown")
        else:
            self.send(404, b"", "text/plain")


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """(base URL, requests seen) of a server on a free port for this module's tests."""
    seen: list[tuple[str, str]] = []
    with serving(type("RecordingHandler", (Handler,), {"seen": seen})) as url:
        yield url, seen


# -- find_urls --------------------------------------------------------------------------------


def test_find_urls_strips_sentence_punctuation_and_keeps_order() -> None:
    text = (
        "Compare https://a.org/x. with (see https://b.org/y) and <https://c.org/z>, "
        'also "https://d.org/q?x=1&y=2"; and https://a.org/x again!'
    )
    assert find_urls(text) == [
        "https://a.org/x",
        "https://b.org/y",
        "https://c.org/z",
        "https://d.org/q?x=1&y=2",
    ]


def test_find_urls_keeps_balanced_parentheses_and_markdown_links() -> None:
    wiki = "https://en.wikipedia.org/wiki/Python_(programming_language)"
    text = f"Read {wiki}. Then [the docs](https://docs.python.org/3/) (or {wiki})."
    assert find_urls(text) == [wiki, "https://docs.python.org/3/"]


def test_find_urls_ignores_other_schemes_and_bare_prefixes_and_caps_the_count() -> None:
    assert find_urls("ftp://x.org/f file:///etc/passwd https:// and http://") == []
    many = " ".join(f"http://site{i}.org/page" for i in range(8))
    assert find_urls(many) == [f"http://site{i}.org/page" for i in range(MAX_URLS)]
    assert find_urls("HTTPS://Example.org/A?b=1!") == ["HTTPS://Example.org/A?b=1"]


# -- fetch_page: content ----------------------------------------------------------------------


async def test_html_article_keeps_main_text_and_drops_boilerplate(server) -> None:
    base, seen = server
    page = await fetch_page(f"{base}/article")
    assert isinstance(page, FetchedPage)
    assert page.title == "River otters return"
    assert page.content_type == "text/html"
    assert page.final_url == f"{base}/article"
    for paragraph in MAIN_PARAGRAPHS:
        assert paragraph in page.text
    # Paragraphs stay apart, in order, so the chunker can cut between them.
    assert page.text.index(MAIN_PARAGRAPHS[0]) < page.text.index(MAIN_PARAGRAPHS[1])
    assert f"{MAIN_PARAGRAPHS[0]}\n\n" in page.text
    for junk in BOILERPLATE:
        assert junk not in page.text
    assert page.fetched_at.tzinfo is not None
    agents = [agent for path, agent in seen if path == "/article"]
    assert agents and agents[-1].startswith("myninja/")


async def test_html_that_extraction_finds_nothing_in_falls_back_to_visible_text(server) -> None:
    base, _ = server
    page = await fetch_page(f"{base}/links")
    assert page.title == "Timetables"
    assert "Northern line timetable" in page.text
    assert "Southern line timetable" in page.text


async def test_plain_text_uses_the_declared_charset(server) -> None:
    base, _ = server
    page = await fetch_page(f"{base}/latin1")
    assert page.text == LATIN1_TEXT
    assert page.content_type == "text/plain"


async def test_markdown_is_kept_as_is_with_its_heading_as_title(server) -> None:
    base, _ = server
    page = await fetch_page(f"{base}/notes.md")
    assert page.title == "Field notes"
    assert page.text == "# Field notes\n\nOtters seen: 3."


# -- fetch_page: redirects and statuses -------------------------------------------------------


async def test_redirects_are_followed_to_the_final_url(server) -> None:
    base, _ = server
    page = await fetch_page(f"{base}/hop/2")
    assert page.url == f"{base}/hop/2"
    assert page.final_url == f"{base}/article"
    assert MAIN_PARAGRAPHS[0] in page.text


async def test_too_many_redirects_are_refused(server) -> None:
    base, seen = server
    before = len(seen)
    with pytest.raises(FetchError, match="more than 5 redirects") as info:
        await fetch_page(f"{base}/hop/7")
    assert f"{base}/hop/7" in str(info.value)
    # The first request and five redirects followed; the sixth is not.
    assert len(seen) - before == 6


async def test_a_redirect_to_a_file_url_is_refused(server) -> None:
    base, _ = server
    with pytest.raises(FetchError, match="'file' is not http or https"):
        await fetch_page(f"{base}/to-file")


@pytest.mark.parametrize(("path", "status"), [("/404", 404), ("/500", 500)])
async def test_http_errors_name_their_status(server, path: str, status: int) -> None:
    base, _ = server
    with pytest.raises(FetchError) as info:
        await fetch_page(f"{base}{path}")
    err = info.value
    assert f"HTTP {status}" in err.one_line()
    assert f"{base}{path}" in err.one_line()
    assert err.status == status
    assert "\n" not in err.one_line()


# -- fetch_page: limits -----------------------------------------------------------------------


async def test_a_slow_drip_page_is_cut_off_by_the_total_timeout(server) -> None:
    base, _ = server
    started = time.monotonic()
    with pytest.raises(FetchError, match="timed out"):
        await fetch_page(f"{base}/slow", timeout_s=1.0)
    # Loose: the server would take 10 s; the point is we did not wait for it.
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("path", ["/big", "/big-unannounced"])
async def test_a_page_bigger_than_max_bytes_is_refused(server, path: str) -> None:
    base, _ = server
    with pytest.raises(FetchError, match="larger than 1000000 bytes"):
        await fetch_page(f"{base}{path}", max_bytes=1_000_000)
    # The same page within a bigger limit is read whole.
    page = await fetch_page(f"{base}{path}", max_bytes=2_000_000)
    assert len(page.text.split()) == 600_000


async def test_a_pdf_is_refused_naming_its_type(server) -> None:
    base, _ = server
    with pytest.raises(FetchError, match="application/pdf"):
        await fetch_page(f"{base}/pdf")


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://127.0.0.1/x", "javascript:alert(1)", "http:///nohost"]
)
async def test_other_schemes_are_refused_without_a_request(url: str) -> None:
    requests: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        requests.append(request)

    async with httpx.AsyncClient(event_hooks={"request": [record]}) as client:
        with pytest.raises(FetchError) as info:
            await fetch_page(url, client=client)
    assert requests == []
    assert url in str(info.value)
    assert isinstance(info.value, MyninjaError)


async def test_a_refused_connection_is_one_line(server) -> None:
    # A port nothing listens on: bind one, note it, close it.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(FetchError, match="connection failed") as info:
        await fetch_page(f"http://127.0.0.1:{port}/")
    assert "\n" not in info.value.one_line()


# -- page_passages ----------------------------------------------------------------------------


async def test_a_long_page_becomes_ordered_passages_citing_the_final_url(server) -> None:
    base, _ = server
    page = await fetch_page(f"{base}/long")
    passages = page_passages(page)
    assert len(passages) >= 5
    for passage in passages:
        assert len(passage.text.split()) <= MAX_WORDS
        assert passage.source == page.final_url
        assert passage.title == "A long survey"
    assert len({p.id for p in passages}) == len(passages)
    joined = "\n\n".join(p.text for p in passages)
    positions = [joined.index(paragraph) for paragraph in LONG_PARAGRAPHS]
    assert positions == sorted(positions)


def test_a_page_without_a_title_is_titled_by_its_host_and_path() -> None:
    page = FetchedPage(
        url="https://example.org/a/b/",
        final_url="https://example.org/a/b/",
        title=None,
        text="Some words here.",
        content_type="text/plain",
        fetched_at=datetime(2025, 1, 1, tzinfo=UTC),
    )
    [passage] = page_passages(page)
    assert passage.title == "example.org/a/b"
    assert passage.id == "https://example.org/a/b/#1"
