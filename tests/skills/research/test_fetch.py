"""Fetching pages a task names: against a real HTTP server on 127.0.0.1 (http.server in a
thread), so redirects, status codes, charsets, sizes and a slow-drip body are real bytes on a
real socket, and httpx is the real client. robots.txt variants each get a server of their own
(an origin of their own), and the PDFs are written byte by byte here.

127.0.0.1 is an address the fetch guard refuses, so these tests allow it (`fetch`), as a
person allows a host in the config; the guard's own tests fetch without it, and watch the
socket connections the process makes (an audit hook) to show what was never connected to."""

from __future__ import annotations

import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import trustme

from myninja.errors import MyninjaError
from myninja.skills.research.fetch import (
    MAX_URLS,
    FetchedPage,
    FetchError,
    RobotsCache,
    fetch_page,
    find_urls,
    hosts_of,
    page_passages,
)
from myninja.skills.research.fetch_guard import Resolver, WebClient
from myninja.skills.research.passages import MAX_WORDS
from tests.local_http import serving

pytestmark = pytest.mark.timeout(60)

LOCAL = ("127.0.0.1",)  # where the test servers are: allowed, as a person would in the config


async def fetch(url: str, **options: Any) -> FetchedPage:
    """`fetch_page` with the test servers' address allowed (unless a client is passed, which
    carries its own allowances)."""
    if "client" not in options:
        options.setdefault("allow_hosts", LOCAL)
    return await fetch_page(url, **options)


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
DATED_ARTICLE = ARTICLE.replace(
    "<title>River otters return</title>",
    '<title>River otters return</title><link rel="canonical" href="/a?ref=1#top">'
    '<meta property="article:published_time" content="2024-03-05T09:30:00Z">',
)
TIMED_ARTICLE = ARTICLE.replace(
    "<h1>River otters return</h1>",
    '<h1>River otters return</h1><p>Published <time datetime="2023-11-20">20 November 2023'
    "</time></p>",
)


def pdf(pages: list[bytes], info: bytes | None = None) -> bytes:
    """A minimal valid PDF, written by hand: one page per content stream in `pages`, text in
    Helvetica (a standard font, so nothing is embedded), an /Info dictionary if given. The
    xref table holds each object's real byte offset, as a strict reader wants."""
    n = len(pages)
    font = 3 + 2 * n
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids ["
        + b" ".join(b"%d 0 R" % (3 + 2 * i) for i in range(n))
        + b"] /Count %d >>" % n,
    ]
    for i, content in enumerate(pages):
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792]"
            b" /Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>" % (font, 4 + 2 * i)
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    if info is not None:
        objects.append(info)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    trailer = b"<< /Size %d /Root 1 0 R" % (len(objects) + 1)
    if info is not None:
        trailer += b" /Info %d 0 R" % len(objects)
    out += b"trailer\n" + trailer + b" >>\nstartxref\n%d\n" % xref + b"%%EOF\n"
    return bytes(out)


PDF_PAGE_1 = b"BT /F1 12 Tf 72 712 Td (Otters hold hands) Tj ET"
PDF_PAGE_2 = b"BT /F1 12 Tf 72 712 Td (while they sleep on the water.) Tj ET"
TEXT_PDF = pdf(
    [PDF_PAGE_1, PDF_PAGE_2],
    info=b"<< /Title (Otter behaviour) /CreationDate (D:20240305120000Z) >>",
)
UNTITLED_PDF = pdf([PDF_PAGE_1])
# A filled rectangle and nothing else: what a scanned page is to a text extractor.
IMAGE_ONLY_PDF = pdf([b"0 0 1 rg 72 72 200 200 re f"])


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # a body without Content-Length ends when the socket closes
    seen: list[tuple[str, str]]  # (path, user agent) of every request, set on the class
    # robots.txt's (status, body); None: 404. A status of 0 drops the connection, -1 answers
    # after 2 s.
    robots: tuple[int, bytes] | None = None

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
        path = urlsplit(self.path).path
        html = "text/html; charset=utf-8"
        if path == "/robots.txt" and self.robots is not None:
            status, body = self.robots
            if status == 0:
                self.close_connection = True  # no response at all: the client sees a disconnect
                return
            if status == -1:
                time.sleep(2)
                status = 200
            try:
                self.send(status, body, "text/plain")
            except OSError:  # the client gave up waiting, as it should
                pass
        elif path.endswith("/article"):
            self.send(200, ARTICLE.encode(), html)
        elif path == "/to-private":
            self.redirect("/private/article")
        elif path == "/dated":
            self.send(200, DATED_ARTICLE.encode(), html)
        elif path == "/timed":
            self.send(200, TIMED_ARTICLE.encode(), html)
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
        elif path == "/host":  # what the request said it was for
            self.send(200, f"Host: {self.headers['Host']}".encode(), "text/plain")
        elif path == "/to-loopback":  # reached by another name, this leads to 127.0.0.1
            self.redirect(f"http://127.0.0.1:{self.server.server_port}/article")
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
        elif path == "/broken.pdf":
            self.send(200, b"%PDF-1.4 fake", "application/pdf")
        elif path == "/papers/otters.pdf":
            self.send(200, TEXT_PDF, "application/pdf")
        elif path == "/papers/field%20notes.pdf":
            self.send(200, UNTITLED_PDF, "application/pdf")
        elif path == "/scan.pdf":
            self.send(200, IMAGE_ONLY_PDF, "application/pdf")
        elif path == "/bucket/otters":  # object stores send PDFs as bare bytes
            self.send(200, TEXT_PDF, "application/octet-stream")
        elif path == "/bucket/blob":
            self.send(200, b"\x00\x01 not a document", "application/octet-stream")
        elif path == "/image.png":
            self.send(200, b"\x89PNG\r\n\x1a\n", "image/png")
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


Site = Callable[[tuple[int, bytes] | None], tuple[str, list[tuple[str, str]]]]


@pytest.fixture
def site() -> Iterator[Site]:
    """Starts a server (its own origin, so its own robots.txt) with the given robots.txt
    answer; returns (base URL, requests seen)."""
    with ExitStack() as stack:

        def start(robots: tuple[int, bytes] | None) -> tuple[str, list[tuple[str, str]]]:
            seen: list[tuple[str, str]] = []
            handler = type("RobotsHandler", (Handler,), {"seen": seen, "robots": robots})
            return stack.enter_context(serving(handler)), seen

        yield start


def paths(seen: list[tuple[str, str]]) -> list[str]:
    return [path for path, _ in seen]


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
    page = await fetch(f"{base}/article")
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
    page = await fetch(f"{base}/links")
    assert page.title == "Timetables"
    assert "Northern line timetable" in page.text
    assert "Southern line timetable" in page.text


async def test_plain_text_uses_the_declared_charset(server) -> None:
    base, _ = server
    page = await fetch(f"{base}/latin1")
    assert page.text == LATIN1_TEXT
    assert page.content_type == "text/plain"


async def test_markdown_is_kept_as_is_with_its_heading_as_title(server) -> None:
    base, _ = server
    page = await fetch(f"{base}/notes.md")
    assert page.title == "Field notes"
    assert page.text == "# Field notes\n\nOtters seen: 3."


# -- fetch_page: redirects and statuses -------------------------------------------------------


async def test_redirects_are_followed_to_the_final_url(server) -> None:
    base, _ = server
    page = await fetch(f"{base}/hop/2")
    assert page.url == f"{base}/hop/2"
    assert page.final_url == f"{base}/article"
    assert MAIN_PARAGRAPHS[0] in page.text


async def test_too_many_redirects_are_refused(server) -> None:
    base, seen = server
    before = len(seen)
    with pytest.raises(FetchError, match="more than 5 redirects") as info:
        await fetch(f"{base}/hop/7")
    assert f"{base}/hop/7" in str(info.value)
    # The first request and five redirects followed; the sixth is not. (robots.txt is read
    # or not depending on which test ran first: not counted.)
    assert len([p for p in paths(seen[before:]) if p != "/robots.txt"]) == 6


async def test_a_redirect_to_a_file_url_is_refused(server) -> None:
    base, _ = server
    with pytest.raises(FetchError, match="'file' is not http or https"):
        await fetch(f"{base}/to-file")


@pytest.mark.parametrize(("path", "status"), [("/404", 404), ("/500", 500)])
async def test_http_errors_name_their_status(server, path: str, status: int) -> None:
    base, _ = server
    with pytest.raises(FetchError) as info:
        await fetch(f"{base}{path}")
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
        await fetch(f"{base}/slow", timeout_s=1.0)
    # Loose: the server would take 10 s; the point is we did not wait for it.
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("path", ["/big", "/big-unannounced"])
async def test_a_page_bigger_than_max_bytes_is_refused(server, path: str) -> None:
    base, _ = server
    with pytest.raises(FetchError, match="larger than 1000000 bytes"):
        await fetch(f"{base}{path}", max_bytes=1_000_000)
    # The same page within a bigger limit is read whole.
    page = await fetch(f"{base}{path}", max_bytes=2_000_000)
    assert len(page.text.split()) == 600_000


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://127.0.0.1/x",
        "javascript:alert(1)",
        "http:///nohost",
        "http://127.0.0.1:99999/port",
    ],
)
async def test_urls_we_cannot_fetch_are_refused_without_a_request(url: str) -> None:
    requests: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        requests.append(request)

    async with WebClient(event_hooks={"request": [record]}) as client:
        with pytest.raises(FetchError) as info:
            await fetch(url, client=client)
    assert requests == []
    assert url in str(info.value)
    assert isinstance(info.value, MyninjaError)


async def test_a_refused_connection_is_one_line(server) -> None:
    # A port nothing listens on: bind one, note it, close it.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(FetchError, match="connection failed") as info:
        await fetch(f"http://127.0.0.1:{port}/")
    assert "\n" not in info.value.one_line()


# -- fetch_page: other types ------------------------------------------------------------------


async def test_a_pdf_is_read_page_by_page_with_its_title_and_date(server) -> None:
    base, _ = server
    page = await fetch(f"{base}/papers/otters.pdf")
    assert page.content_type == "application/pdf"
    # Each page's text, pages a paragraph apart so the chunker can cut between them.
    assert page.text == "Otters hold hands\n\nwhile they sleep on the water."
    assert page.title == "Otter behaviour"
    assert page.published == "2024-03-05"
    assert page.canonical_url is None
    [passage] = page_passages(page)
    assert passage.source == f"{base}/papers/otters.pdf"
    assert "Otters hold hands" in passage.text


async def test_a_pdf_without_metadata_is_titled_by_its_file_name(server) -> None:
    base, _ = server
    page = await fetch(f"{base}/papers/field%20notes.pdf")
    assert page.text == "Otters hold hands"
    assert page.title == "field notes.pdf"
    assert page.published is None


async def test_a_pdf_with_no_text_is_refused_as_needing_ocr(server) -> None:
    base, _ = server
    with pytest.raises(FetchError, match="the PDF has no text") as info:
        await fetch(f"{base}/scan.pdf")
    assert f"{base}/scan.pdf" in info.value.one_line()


async def test_a_broken_pdf_is_one_error_naming_the_url(server) -> None:
    base, _ = server
    with pytest.raises(FetchError, match="not a readable PDF") as info:
        await fetch(f"{base}/broken.pdf")
    assert f"{base}/broken.pdf" in info.value.one_line()
    assert "\n" not in info.value.one_line()


async def test_bare_bytes_are_read_only_when_they_are_a_pdf(server) -> None:
    base, _ = server
    page = await fetch(f"{base}/bucket/otters")
    assert page.content_type == "application/pdf"
    assert page.title == "Otter behaviour"
    with pytest.raises(FetchError, match="unsupported content type 'application/octet-stream'"):
        await fetch(f"{base}/bucket/blob")


async def test_other_types_are_still_refused_naming_their_type(server) -> None:
    base, _ = server
    with pytest.raises(FetchError, match="unsupported content type 'image/png'") as info:
        await fetch(f"{base}/image.png")
    assert "PDF" in (info.value.hint or "")


# -- fetch_page: metadata ---------------------------------------------------------------------


async def test_an_html_page_keeps_its_published_date_and_canonical_url(server) -> None:
    base, _ = server
    page = await fetch(f"{base}/dated")
    assert page.published == "2024-03-05"
    # Relative in the page, absolute here; the fragment names a place in it, not the page.
    assert page.canonical_url == f"{base}/a?ref=1"
    assert MAIN_PARAGRAPHS[0] in page.text


async def test_a_time_element_dates_a_page_that_names_no_canonical_url(server) -> None:
    base, _ = server
    page = await fetch(f"{base}/timed")
    assert page.published == "2023-11-20"
    assert page.canonical_url is None


async def test_plain_text_has_no_date_or_canonical_url(server) -> None:
    base, _ = server
    page = await fetch(f"{base}/notes.md")
    assert page.published is None
    assert page.canonical_url is None


# -- fetch_page: robots.txt -------------------------------------------------------------------

ROBOTS = (200, b"User-agent: *\nDisallow: /private/\n")


async def test_robots_txt_forbids_a_path_and_allows_the_rest(site: Site) -> None:
    base, seen = site(ROBOTS)
    robots = RobotsCache()
    with pytest.raises(FetchError) as info:
        await fetch(f"{base}/private/article", robots=robots)
    assert info.value.one_line().startswith(f"cannot fetch {base}/private/article: ")
    assert "robots.txt forbids it" in info.value.one_line()
    page = await fetch(f"{base}/article", robots=robots)
    assert MAIN_PARAGRAPHS[0] in page.text
    # The forbidden page was never asked for; robots.txt was read once for the origin.
    assert paths(seen) == ["/robots.txt", "/article"]
    assert all(agent.startswith("myninja/") for _, agent in seen)


async def test_rules_for_our_own_token_apply(site: Site) -> None:
    base, seen = site(
        (200, b"User-agent: myninja\nDisallow: /article\n\nUser-agent: *\nAllow: /\n")
    )
    with pytest.raises(FetchError, match=r"robots\.txt forbids it"):
        await fetch(f"{base}/article", robots=RobotsCache())
    assert "/article" not in paths(seen)


async def test_a_redirect_into_a_forbidden_path_is_refused_before_following_it(
    site: Site,
) -> None:
    base, seen = site(ROBOTS)
    with pytest.raises(FetchError) as info:
        await fetch(f"{base}/to-private", robots=RobotsCache())
    message = info.value.one_line()
    assert f"(redirected to {base}/private/article)" in message
    assert "robots.txt forbids it" in message
    assert paths(seen) == ["/robots.txt", "/to-private"]


async def test_respect_robots_false_fetches_a_forbidden_page_without_reading_robots(
    site: Site,
) -> None:
    base, seen = site(ROBOTS)
    page = await fetch(f"{base}/private/article", respect_robots=False)
    assert MAIN_PARAGRAPHS[0] in page.text
    assert paths(seen) == ["/private/article"]


# Each rule here is one urllib.robotparser reads wrongly: it takes `*` and `$` literally and
# obeys the first rule that matches, where RFC 9309 wants the longest, and Allow on a tie.
RFC_ROBOTS = (
    200,
    b"User-agent: *\n"
    b"Allow: /shop\n"
    b"Disallow: /shop/cart\n"
    b"Disallow: /tie\n"
    b"Allow: /tie\n"
    b"Disallow: /*.pdf$\n"
    b"Disallow: /*session=\n",
)


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/papers/otters.pdf", False),  # `$`: ends in .pdf
        ("/papers/otters.pdf?download=1", True),  # does not end in .pdf
        ("/article?session=42", False),  # `*` in the middle
        ("/article?page=2", True),
        ("/shop/cart/article", False),  # the longer Disallow beats the earlier, shorter Allow
        ("/shop/article", True),
        ("/tie/article", True),  # Allow and Disallow of one length: Allow wins
    ],
)
async def test_robots_txt_is_read_as_rfc_9309_says(site: Site, path: str, allowed: bool) -> None:
    base, seen = site(RFC_ROBOTS)
    if allowed:
        page = await fetch(f"{base}{path}", robots=RobotsCache())
        assert page.final_url == f"{base}{path}"
        assert paths(seen) == ["/robots.txt", path]
    else:
        with pytest.raises(FetchError, match=r"robots\.txt forbids it"):
            await fetch(f"{base}{path}", robots=RobotsCache())
        assert paths(seen) == ["/robots.txt"]  # the page itself was never asked for


@pytest.mark.parametrize(
    "robots",
    [
        None,
        (404, b"Disallow: /"),
        (410, b""),
        (500, b"Disallow: /"),
        (0, b""),
        (200, b"\x00\xff\xfe<html><body>Disallow /private/</body></html>\n\x1b[2J"),
    ],
    ids=["missing", "404-with-body", "gone", "server-error", "dropped", "garbled"],
)
async def test_a_missing_unreachable_or_garbled_robots_txt_allows_everything(
    site: Site, robots: tuple[int, bytes] | None
) -> None:
    base, seen = site(robots)
    page = await fetch(f"{base}/private/article", robots=RobotsCache())
    assert MAIN_PARAGRAPHS[0] in page.text
    assert paths(seen)[-1] == "/private/article"


@pytest.mark.parametrize("status", [401, 403])
async def test_a_robots_txt_we_may_not_read_forbids_everything(site: Site, status: int) -> None:
    base, seen = site((status, b""))
    with pytest.raises(FetchError, match=r"robots\.txt forbids it"):
        await fetch(f"{base}/article", robots=RobotsCache())
    assert paths(seen) == ["/robots.txt"]


async def test_a_slow_robots_txt_is_given_up_on_and_allows(site: Site) -> None:
    # It would answer "Disallow: /" after 2 s; we wait 0.3 s for it. Had we waited, the page
    # would have been refused: getting it shows we gave up and took the silence as "allowed".
    base, _ = site((-1, b"User-agent: *\nDisallow: /\n"))
    page = await fetch(f"{base}/article", robots=RobotsCache(timeout_s=0.3))
    assert MAIN_PARAGRAPHS[0] in page.text


async def test_robots_txt_is_read_again_once_its_entry_is_stale(site: Site) -> None:
    base, seen = site(ROBOTS)
    for robots in (RobotsCache(), RobotsCache(ttl_s=0)):
        before = len(seen)
        await fetch(f"{base}/article", robots=robots)
        await fetch(f"{base}/article", robots=robots)
        reads = paths(seen[before:]).count("/robots.txt")
        assert reads == (1 if robots.ttl_s is None else 2)


async def test_a_robots_cache_keeps_at_most_max_origins(site: Site) -> None:
    robots = RobotsCache(max_origins=2)
    bases = [site(None)[0] for _ in range(3)]
    for base in bases:
        await fetch(f"{base}/article", robots=robots)
    assert len(robots) == 2


# -- fetch_page: the address guard -----------------------------------------------------------

# (thread, addresses) of each test watching connections: only its own thread's count, so a
# stray thread another test left behind cannot write in its record.
_recordings: list[tuple[int, list[str]]] = []
_hook_installed = False


def _on_audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.connect" and _recordings and isinstance(args[1], tuple):
        for thread, recording in _recordings:
            if thread == threading.get_ident():
                recording.append(str(args[1][0]))


@pytest.fixture
def connects() -> Iterator[list[str]]:
    """The addresses this process opens sockets to during the test, from the interpreter's
    socket.connect audit event: beneath asyncio, anyio, httpcore and httpx, so no layer can
    connect without it showing."""
    global _hook_installed
    if not _hook_installed:
        sys.addaudithook(_on_audit)  # a hook cannot be removed: one, idle between tests
        _hook_installed = True
    entry: tuple[int, list[str]] = (threading.get_ident(), [])  # the loop runs on this thread
    _recordings.append(entry)
    try:
        yield entry[1]
    finally:
        _recordings.remove(entry)


def answers(names: dict[str, list[list[str]]]) -> Resolver:
    """A resolver that gives each name its answers in turn, the last one again once they run
    out: what a DNS server an attacker runs may do. Other names do not exist."""

    async def resolve(host: str, port: int) -> list[str]:
        if host not in names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        queue = names[host]
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return resolve


def port_of(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


async def test_a_page_on_loopback_is_refused_without_a_connection_unless_allowed(
    server, connects: list[str]
) -> None:
    base, seen = server
    before = len(seen)
    with pytest.raises(FetchError) as info:
        await fetch_page(f"{base}/article")
    line = info.value.one_line()
    assert line.startswith(f"cannot fetch {base}/article: 127.0.0.1 is a loopback address (")
    assert 'add "127.0.0.1" to allowed_hosts under [research.web] in the config' in line
    assert "name the page's URL in the task" in line
    assert "\n" not in line
    assert connects == [] and len(seen) == before
    page = await fetch_page(f"{base}/article", allow_hosts=["127.0.0.1"])
    assert MAIN_PARAGRAPHS[0] in page.text
    assert "127.0.0.1" in connects  # the recording does see connections: its silence was real


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata"),
        ("http://[::ffff:169.254.169.254]/latest/", "::ffff:169.254.169.254 is a cloud metadata"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "fd00:ec2::254 is a cloud metadata"),
        ("http://100.100.100.200/latest/meta-data/", "100.100.100.200 is a cloud metadata"),
        ("http://169.254.10.1/", "169.254.10.1 is a link-local address"),
        ("http://10.0.0.1/admin", "10.0.0.1 is a private address"),
        ("http://192.168.1.1/", "192.168.1.1 is a private address"),
        ("http://100.64.0.1/", "100.64.0.1 is a shared (CGNAT) address"),
        ("http://[::1]/", "::1 is a loopback address"),
        ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1 is a loopback address"),
        ("http://[fe80::1]/", "fe80::1 is a link-local address"),
        ("http://[fd12:3456::1]/", "fd12:3456::1 is a private address"),
        ("http://224.0.0.251/", "224.0.0.251 is a multicast address"),
        ("http://0.0.0.0/", "0.0.0.0 is an unspecified address"),
        ("http://255.255.255.255/", "255.255.255.255 is a reserved address"),
    ],
)
async def test_internal_addresses_are_refused_before_any_connection(
    url: str, said: str, connects: list[str]
) -> None:
    # robots.txt is read first, so its request would be the first to connect: it does not.
    with pytest.raises(FetchError) as info:
        await fetch_page(url, robots=RobotsCache())
    assert info.value.one_line().startswith(f"cannot fetch {url}: {said}")
    assert connects == []


async def test_a_redirect_to_loopback_is_refused_where_it_leads(
    server, connects: list[str]
) -> None:
    # The person allowed the name the server was reached by, not wherever it redirects.
    base, seen = server
    start = f"http://localhost:{port_of(base)}/to-loopback"
    before = len(seen)
    with pytest.raises(FetchError) as info:
        await fetch_page(start, allow_hosts=["localhost"], robots=RobotsCache())
    line = info.value.one_line()
    assert line.startswith(
        f"cannot fetch {start} (redirected to {base}/article): 127.0.0.1 is a loopback address"
    )
    assert paths(seen[before:]) == ["/robots.txt", "/to-loopback"]  # never /article


async def test_names_the_system_resolves_to_loopback_are_refused(
    server, connects: list[str]
) -> None:
    # The real resolver: localhost from the hosts file, and 127.0.0.1 written as one number,
    # which getaddrinfo reads as an address though no URL parser calls it one.
    base, _ = server
    for host in ("localhost", "2130706433"):
        url = f"http://{host}:{port_of(base)}/article"
        with pytest.raises(FetchError) as info:
            await fetch_page(url, robots=RobotsCache())
        assert f"{host} resolves to 127.0.0.1, a loopback address" in info.value.one_line()
    assert connects == []


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (["10.1.2.3"], "resolves to 10.1.2.3, a private address"),
        # One bad answer among good ones refuses the name: which one we would use is not ours.
        (["93.184.215.14", "192.168.1.20"], "resolves to 192.168.1.20, a private address"),
        (["::ffff:172.16.0.9"], "resolves to ::ffff:172.16.0.9, a private address"),
        (["2002:a9fe:a9fe::1"], "resolves to 2002:a9fe:a9fe::1, a cloud metadata address"),
    ],
)
async def test_a_name_that_resolves_to_a_private_address_is_refused(
    answer: list[str], said: str, connects: list[str]
) -> None:
    async with WebClient(resolve=answers({"intranet.test": [answer]})) as client:
        with pytest.raises(FetchError) as info:
            await fetch_page("http://intranet.test/report", client=client, robots=RobotsCache())
    assert f"cannot fetch http://intranet.test/report: intranet.test {said}" in (
        info.value.one_line()
    )
    assert connects == []


async def test_the_connection_goes_to_the_address_that_was_checked(
    server, connects: list[str]
) -> None:
    # otters.test exists only in this resolver's answer: reaching the server by it shows the
    # connection used that checked answer, with no second lookup; the Host header keeps the name.
    base, _ = server
    url = f"http://otters.test:{port_of(base)}/host"
    resolve = answers({"otters.test": [["127.0.0.1"]]})
    async with WebClient(allow_hosts=["Otters.TEST."], resolve=resolve) as client:
        page = await fetch_page(url, client=client, respect_robots=False)
    assert page.text == f"Host: otters.test:{port_of(base)}"
    assert page.final_url == url
    assert connects == ["127.0.0.1"]


async def test_each_connection_checks_the_answer_it_uses(site: Site, connects: list[str]) -> None:
    # DNS rebinding: the name answers an allowed address for robots.txt's connection, then a
    # private one for the page's. The page's connection is refused before it is made.
    base, seen = site(None)
    resolve = answers({"flip.test": [["127.0.0.1"], ["10.0.0.7"]]})
    async with WebClient(allow_hosts=["127.0.0.1"], resolve=resolve) as client:
        with pytest.raises(FetchError, match=r"flip\.test resolves to 10\.0\.0\.7, a private"):
            await fetch_page(
                f"http://flip.test:{port_of(base)}/article", client=client, robots=RobotsCache()
            )
    assert paths(seen) == ["/robots.txt"]
    assert connects == ["127.0.0.1"]


@contextmanager
def serving_tls(handler: type[BaseHTTPRequestHandler], context: ssl.SSLContext) -> Iterator[int]:
    """`handler` over TLS on 127.0.0.1, in a thread; yields the port."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield httpd.server_port
    finally:
        httpd.shutdown()
        httpd.server_close()


async def test_tls_is_verified_against_the_name_not_the_address(connects: list[str]) -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("otters.test").configure_cert(server_context)
    names: list[str | None] = []
    server_context.sni_callback = lambda _sock, name, _context: names.append(name)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    handler = type("TlsHandler", (Handler,), {"seen": []})
    resolve = answers({"otters.test": [["127.0.0.1"]]})
    with serving_tls(handler, server_context) as port:
        async with WebClient(
            allow_hosts=["otters.test", "127.0.0.1"], resolve=resolve, verify=client_context
        ) as client:
            page = await fetch_page(
                f"https://otters.test:{port}/host", client=client, respect_robots=False
            )
            assert page.text == f"Host: otters.test:{port}"
            assert names == ["otters.test"]  # SNI named the host, not the address
            # The same server by its address: the certificate does not name it.
            with pytest.raises(FetchError, match="CERTIFICATE_VERIFY_FAILED"):
                await fetch_page(
                    f"https://127.0.0.1:{port}/host", client=client, respect_robots=False
                )
    assert connects == ["127.0.0.1", "127.0.0.1"]


async def test_fetch_page_takes_only_a_guarded_client() -> None:
    async with httpx.AsyncClient() as plain:
        with pytest.raises(TypeError, match="WebClient"):
            await fetch_page("https://example.org/", client=plain)  # type: ignore[arg-type]
    async with WebClient() as client:
        with pytest.raises(TypeError, match="allowed hosts are the client's"):
            await fetch_page("https://example.org/", client=client, allow_hosts=["example.org"])
    with pytest.raises(TypeError, match="makes its own transport"):
        WebClient(transport=httpx.AsyncHTTPTransport())


def test_hosts_of_typed_urls() -> None:
    typed = ["http://LocalHost:8000/a", "https://[::1]/b", "http://[::1", "https://bücher.example/"]
    assert hosts_of(typed) == ["localhost", "::1", "bücher.example"]


# -- page_passages ----------------------------------------------------------------------------


async def test_a_long_page_becomes_ordered_passages_citing_the_final_url(server) -> None:
    base, _ = server
    page = await fetch(f"{base}/long")
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
