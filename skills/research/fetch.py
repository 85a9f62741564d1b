"""Web pages, fetched so the researcher can read and cite them: pages a person names in a task,
and the results a web search finds.

`find_urls` picks the http(s) URLs out of a task's text; `fetch_page` downloads one (bounded in
size, time and redirects, and only where the site's robots.txt lets us) and keeps its readable
text: the main text of an HTML page (via trafilatura, so menus, cookie banners and footers stay
out of the citations), the text of a PDF (via pypdf), or a plain-text or Markdown page as it
is. Beside the text it keeps what a citation wants to show: the title, the date the page says
it was published, and the canonical URL it names for itself. `page_passages` cuts that text
with the same chunker local files use, so a page's passages look like any other document's and
cite as `<final URL>#<n>`.

Every connection goes through a `WebClient` (fetch_guard.py), which resolves the host, checks
each address and connects to a checked one: loopback, private, link-local, CGNAT, multicast,
reserved and cloud metadata addresses are refused, at the first request and at every redirect,
unless the host is in `allow_hosts` (what the person allowed in the config, or the host of a
URL they typed in the task). A refusal is a FetchError like any other, naming the address and
how to allow it.

robots.txt is read once per origin (scheme, host and port) with protego, which follows RFC 9309:
`*` and `$` in paths, the longest matching rule wins, and an Allow wins a tie with a Disallow.
The rules are kept in a `RobotsCache`: the caller's, for as long as it keeps it, or else a
module-wide one for a few minutes. Our token in it is `myninja`. Each redirect target is
checked before it is requested.

Every failure is one `FetchError` whose message says what failed, the URL and why; a bad URL
never becomes a traceback.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from urllib.parse import unquote, urlsplit

import httpx
from protego import Protego

import myninja
from myninja.errors import UsageError
from myninja.skills.research.fetch_guard import AddressRefused, WebClient, host_key
from myninja.skills.research.passages import (
    Passage,
    document_passages,
    html_to_text,
    markdown_title,
)

MAX_URLS = 5
MAX_REDIRECTS = 5
USER_AGENT = f"myninja/{getattr(myninja, '__version__', '0')} (+https://github.com/myninja)"
ROBOTS_AGENT = "myninja"  # the token a robots.txt names us by ("User-agent: myninja")
ROBOTS_TIMEOUT_S = 3.0
ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309: parse at least the first 500 KiB, and no need for more
DEFAULT_ROBOTS_TTL_S = 300.0
# What a robots.txt said: its rules, or everything allowed (True) or forbidden (False).
RobotsRules = Protego | bool

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
TEXT_TYPES = frozenset({"text/plain", "text/markdown", "text/x-markdown"})
PDF_TYPES = frozenset({"application/pdf", "application/x-pdf"})
# Sent for any file by many servers (object stores above all): read, and kept only if it is a PDF.
OCTET_STREAM = "application/octet-stream"
READABLE_TYPES = HTML_TYPES | TEXT_TYPES | PDF_TYPES
_ACCEPT = (
    "text/html,application/xhtml+xml,application/pdf;q=0.9,text/markdown;q=0.9,"
    "text/plain;q=0.9,*/*;q=0.1"
)


class FetchError(UsageError):
    """A page could not be fetched or read. Like `UnsupportedFile`, it is about something the
    person named; `url` is the page asked for, `status` the HTTP status where a server gave
    one."""

    def __init__(
        self, message: str, *, url: str, status: int | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.url = url
        self.status = status


@dataclass(frozen=True, slots=True)
class FetchedPage:
    url: str  # as asked
    final_url: str  # after redirects
    title: str | None  # None when the page has none
    text: str  # paragraphs separated by a blank line
    content_type: str  # the media type, lower case, without parameters
    fetched_at: datetime  # UTC
    # Defaults, so code that built a page before these existed still does.
    published: str | None = None  # ISO date the page says it was published (a PDF: created)
    canonical_url: str | None = None  # absolute; the URL an HTML page names as its own


# -- finding URLs -----------------------------------------------------------------------------

# Whitespace, quotes, angle and square brackets, backticks and braces never occur unescaped in
# a URL, so they end one: "<https://x.org>", "[https://x.org](…)", "`https://x.org`".
_URL = re.compile(r"https?://[^\s<>\"'`{}|\\^\[\]]+", re.IGNORECASE)
# What a sentence puts after a URL rather than what the URL ends with.
_TRAILING = ".,;:!?'\"*>"


def find_urls(text: str) -> list[str]:
    """The http(s) URLs named in `text`, in order of first mention, each once, at most
    MAX_URLS. Punctuation that ends the sentence around a URL is not part of it; a closing
    parenthesis is only when the URL has no opening one to match ("(see https://x.org/a)" vs
    "https://en.wikipedia.org/wiki/Python_(programming_language)")."""
    found: list[str] = []
    for match in _URL.finditer(text):
        url = match.group(0)
        while url:
            if url[-1] in _TRAILING:
                url = url[:-1]
            elif url[-1] == ")" and url.count(")") > url.count("("):
                url = url[:-1]
            else:
                break
        if url.partition("://")[2] and url not in found:
            found.append(url)
            if len(found) == MAX_URLS:
                break
    return found


def hosts_of(urls: Iterable[str]) -> list[str]:
    """The hosts of those of `urls` httpx can parse: a URL the person typed in a task allows
    its own host (`fetch_page`'s `allow_hosts`); one it cannot parse is refused later anyway."""
    hosts = []
    for url in urls:
        try:
            host = httpx.URL(url).host
        except (httpx.InvalidURL, TypeError, ValueError):
            continue
        if host:
            hosts.append(host)
    return hosts


# -- robots.txt -------------------------------------------------------------------------------


class RobotsCache:
    """What each origin's robots.txt allows us, read once per origin. Entries older than
    `ttl_s` are read again (None: kept for the life of the object); at most `max_origins` are
    kept, the oldest dropped first. A robots.txt that takes longer than `timeout_s` to read
    allows everything: it must not cost a page most of its own time. Used from one event
    loop; two fetches racing to the same new origin may both read its robots.txt, which is
    harmless."""

    def __init__(
        self,
        *,
        ttl_s: float | None = None,
        max_origins: int = 1024,
        timeout_s: float = ROBOTS_TIMEOUT_S,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_origins = max_origins
        self.timeout_s = timeout_s
        self._rules: dict[str, tuple[RobotsRules, float]] = {}  # robots.txt URL -> rules

    def __len__(self) -> int:
        return len(self._rules)

    async def allows(self, client: httpx.AsyncClient, url: httpx.URL, timeout_s: float) -> bool:
        """Whether robots.txt lets `ROBOTS_AGENT` fetch `url` (read through `client` if not
        known yet, in at most `timeout_s` or the cache's own limit, whichever is less)."""
        robots_url = str(
            httpx.URL(scheme=url.scheme, host=url.host, port=url.port, path="/robots.txt")
        )
        now = time.monotonic()
        entry = self._rules.get(robots_url)
        if entry is None or (self.ttl_s is not None and now - entry[1] > self.ttl_s):
            entry = (await _read_robots(client, robots_url, min(timeout_s, self.timeout_s)), now)
            self._rules.pop(robots_url, None)  # re-inserted last: the dict is oldest first
            self._rules[robots_url] = entry
            while len(self._rules) > self.max_origins:
                del self._rules[next(iter(self._rules))]
        rules = entry[0]
        return rules if isinstance(rules, bool) else rules.can_fetch(str(url), ROBOTS_AGENT)


# Used when the caller passes no cache: short-lived, so a site that changes its robots.txt is
# heard within minutes by a long-running process.
_ROBOTS = RobotsCache(ttl_s=DEFAULT_ROBOTS_TTL_S, max_origins=256)


async def _read_robots(client: httpx.AsyncClient, robots_url: str, timeout_s: float) -> RobotsRules:
    """The rules at `robots_url`. Missing (any 4xx but 401/403, or 5xx), unreachable, slow or
    garbled: everything allowed, as most crawlers read it (a site that cannot serve robots.txt
    has said nothing). 401/403: everything forbidden, the reading the original robots.txt
    convention gives it (RFC 9309 would allow; we err towards the site). A robots.txt that
    redirects to an address we may not connect to is unreachable; one on such an address
    itself raises AddressRefused, as the page's own request would."""
    try:
        async with asyncio.timeout(timeout_s):
            # httpx follows the redirects here (RFC 9309 asks for five): only http(s) ones.
            async with client.stream(
                "GET",
                robots_url,
                headers={"User-Agent": USER_AGENT, "Accept": "text/plain,*/*;q=0.1"},
                follow_redirects=True,
                timeout=timeout_s,
            ) as response:
                if response.status_code in (401, 403):
                    return False
                if response.status_code >= 400:
                    return True
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) >= ROBOTS_MAX_BYTES:
                        break  # the rules that fit are the rules (RFC 9309, 2.5)
    except (TimeoutError, httpx.HTTPError, httpx.InvalidURL):
        return True
    except AddressRefused as exc:
        if host_key(exc.host) == host_key(httpx.URL(robots_url).host):
            raise
        return True
    return _parse_robots(bytes(body[:ROBOTS_MAX_BYTES]))


def _parse_robots(body: bytes) -> RobotsRules:
    """protego's reading of a robots.txt; garbled beyond its reading (it skips lines it does
    not understand, so this is rare): everything allowed, as for a missing one."""
    try:
        return Protego.parse(body.decode("utf-8", errors="replace"))
    except Exception:  # a parser's failure on hostile bytes must not cost the page
        return True


# -- fetching ---------------------------------------------------------------------------------


async def fetch_page(
    url: str,
    *,
    max_bytes: int = 2_000_000,
    timeout_s: float = 15.0,
    client: WebClient | None = None,
    respect_robots: bool = True,
    robots: RobotsCache | None = None,
    allow_hosts: Iterable[str] = (),
) -> FetchedPage:
    """The page at `url`, or a FetchError. At most MAX_REDIRECTS redirects, at most
    `max_bytes` of body (a bigger page is refused, not cut: half an article would be cited as
    if it were all of it), and at most `timeout_s` for the whole download, robots.txt reads
    included. `client` lets a caller share connections; it is used as is, not closed, and its
    `allow_hosts` are the ones that hold. Without one, a client of our own allows
    `allow_hosts`: hosts that may be on a loopback, private or other refused address (see
    fetch_guard.py). `respect_robots`: refuse a URL (or redirect target) the site's robots.txt
    forbids us, with the rules kept in `robots` (default: a module-wide cache of a few
    minutes)."""
    if client is not None and not isinstance(client, WebClient):
        # A plain httpx client connects wherever DNS points: the guard would be gone.
        raise TypeError("fetch_page needs a WebClient (myninja.skills.research.fetch_guard)")
    allow_hosts = list(allow_hosts)
    if client is not None and allow_hosts:
        raise TypeError("with a client, allowed hosts are the client's: WebClient(allow_hosts=…)")
    _check_url(url, url)
    rules = None
    if respect_robots:
        rules = robots if robots is not None else _ROBOTS  # not `or`: an empty cache is falsy
    try:
        # One deadline around everything: httpx's timeouts are per phase (connect, each read),
        # so a server dripping a byte a second would never trip them.
        async with asyncio.timeout(timeout_s):
            if client is not None:
                final_url, (media_type, charset), body = await _download(
                    client, url, max_bytes, timeout_s, rules
                )
            else:
                async with WebClient(allow_hosts=allow_hosts) as own:
                    final_url, (media_type, charset), body = await _download(
                        own, url, max_bytes, timeout_s, rules
                    )
    except TimeoutError:
        raise FetchError(f"cannot fetch {url}: timed out after {timeout_s:g} s", url=url) from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:  # InvalidURL: a bad redirect target
        raise FetchError(f"cannot fetch {url}: {_why(exc)}", url=url) from None

    published = canonical = None
    # Extraction is CPU work on up to max_bytes: off the event loop, so a TUI or other tasks
    # sharing the loop keep running meanwhile.
    if media_type in PDF_TYPES:
        title, text, published = await asyncio.to_thread(_pdf_text, body, url, final_url)
    elif media_type in HTML_TYPES:
        html = _decode(body, charset, html=True)
        title, text, published, canonical = await asyncio.to_thread(
            _html_main_text, html, final_url
        )
    else:
        text = _decode(body, charset, html=False)
        title = markdown_title(text)
        text = text.strip()
    if not text.strip():
        raise FetchError(f"cannot use {url}: the page has no readable text", url=url)
    return FetchedPage(
        url=url,
        final_url=final_url,
        title=title,
        text=text,
        content_type=media_type,
        fetched_at=datetime.now(UTC),
        published=published,
        canonical_url=canonical,
    )


async def _download(
    client: httpx.AsyncClient,
    url: str,
    max_bytes: int,
    timeout_s: float,
    robots: RobotsCache | None,
) -> tuple[str, tuple[str, str | None], bytes]:
    """(final URL, (media type, charset), body). Redirects are followed here, not by httpx, so
    the limit, the scheme check and robots.txt hold for every hop whatever client the caller
    passed (and the client checks each hop's address as it connects)."""
    current = httpx.URL(url)
    headers = {"User-Agent": USER_AGENT, "Accept": _ACCEPT}
    for hop in range(MAX_REDIRECTS + 1):
        where = f" (redirected to {current})" if hop else ""
        try:
            if robots is not None and not await robots.allows(client, current, timeout_s):
                raise FetchError(f"cannot fetch {url}{where}: robots.txt forbids it", url=url)
            async with client.stream(
                "GET", current, headers=headers, follow_redirects=False, timeout=timeout_s
            ) as response:
                if response.is_redirect:
                    current = response.url.join(response.headers["location"])
                    _check_url(str(current), url)
                    continue
                return await _read_body(response, url, max_bytes)
        except AddressRefused as exc:
            raise FetchError(
                f"cannot fetch {url}{where}: {exc}",
                url=url,
                hint=f'add "{exc.host}" to allowed_hosts under [research.web] in the config, '
                "or name the page's URL in the task",
            ) from None
    raise FetchError(f"cannot fetch {url}: more than {MAX_REDIRECTS} redirects", url=url)


async def _read_body(
    response: httpx.Response, url: str, max_bytes: int
) -> tuple[str, tuple[str, str | None], bytes]:
    """(final URL, (media type, charset), body) of a response that is not a redirect; an
    error status, a type we cannot read or a body over `max_bytes` is a FetchError."""
    if response.status_code >= 400:
        reason = f" {response.reason_phrase}" if response.reason_phrase else ""
        raise FetchError(
            f"cannot fetch {url}: HTTP {response.status_code}{reason}",
            url=url,
            status=response.status_code,
        )
    media = _media_type(response.headers.get("content-type", ""))
    if media[0] and media[0] not in READABLE_TYPES and media[0] != OCTET_STREAM:
        # Refused before reading a byte of the body.
        raise _unsupported(url, media[0])
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_big(url, max_bytes)
    body = bytearray()
    async for chunk in response.aiter_bytes():  # decompressed: bombs are bounded too
        body += chunk
        if len(body) > max_bytes:
            raise _too_big(url, max_bytes)
    if not media[0] or media[0] == OCTET_STREAM:
        media = (_sniff(bytes(body), url, media[0]), None)
    return str(response.url), media, bytes(body)


def _check_url(target: str, asked: str) -> None:
    """Refuse anything but an http(s) URL with a host, before any request: a task must not
    make us read file:///etc/passwd, and a redirect must not either."""
    try:
        parsed = httpx.URL(target)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise FetchError(f"cannot fetch {asked}: not a valid URL ({exc})", url=asked) from None
    if parsed.scheme not in ("http", "https"):
        scheme = parsed.scheme or "(none)"
        where = "" if target == asked else f" (redirected to {target})"
        raise FetchError(
            f"cannot fetch {asked}{where}: scheme {scheme!r} is not http or https", url=asked
        )
    if not parsed.host:
        raise FetchError(f"cannot fetch {asked}: the URL has no host", url=asked)
    if parsed.port is not None and not 0 < parsed.port < 65536:  # httpx leaves it to the socket
        raise FetchError(f"cannot fetch {asked}: port {parsed.port} is out of range", url=asked)


def _media_type(header: str) -> tuple[str, str | None]:
    """(media type, charset) of a Content-Type header; ("", None) when there is none."""
    media, *params = header.split(";")
    charset = None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip("\"'") or None
    return media.strip().lower(), charset


def _sniff(body: bytes, url: str, declared: str) -> str:
    """A page sent without a Content-Type, or as bare bytes: a PDF or HTML if it plainly says
    so, else refused (it could be anything, and binary read as text would be cited as
    gibberish)."""
    head = body[:1024].lstrip()
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if not declared and head.lower().startswith((b"<!doctype html", b"<html")):
        return "text/html"
    if declared:
        raise _unsupported(url, declared)
    raise FetchError(f"cannot use {url}: the server sent no content type", url=url)


def _unsupported(url: str, media_type: str) -> FetchError:
    return FetchError(
        f"cannot use {url}: unsupported content type {media_type!r}",
        url=url,
        hint="only HTML, PDF, plain-text and Markdown pages can be read",
    )


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


def _decode(body: bytes, charset: str | None, *, html: bool) -> str:
    """The declared charset wins; an HTML page may declare one in a <meta>; else UTF-8.
    Undecodable bytes become U+FFFD rather than losing the page over one odd byte."""
    candidates = [charset] if charset else []
    if html and (meta := _META_CHARSET.search(body[:4096])):
        candidates.append(meta.group(1).decode("ascii"))
    for name in candidates:
        try:
            return body.decode(name, errors="replace")
        except LookupError:  # a charset Python does not know: try the next guess
            continue
    return body.decode("utf-8-sig", errors="replace")


def _html_main_text(html: str, url: str) -> tuple[str | None, str, str | None, str | None]:
    """(title, main text with paragraphs separated by a blank line, published date, canonical
    URL). trafilatura keeps the article and drops navigation, banners and footers; where it
    finds nothing (a page that is all links, a short note) the page's whole visible text is
    better than none."""
    import trafilatura  # imported here: it takes a while, and only page fetches need it

    try:
        # favor_precision: a citation that quotes a menu or a footer is worse than one that
        # misses a marginal paragraph.
        doc = trafilatura.bare_extraction(
            html,
            url=url,
            with_metadata=True,
            include_comments=False,
            include_tables=True,
            favor_precision=True,
        )
    except Exception:  # a parser failing on odd HTML: the fallback below still reads it
        doc = None
    try:
        # With no main text trafilatura returns no metadata either: ask for it alone.
        meta = doc if doc is not None else trafilatura.extract_metadata(html, default_url=url)
        published = _iso_date(getattr(meta, "date", None))
    except Exception:  # the date is a nicety; the text does not depend on it
        published = None
    fallback_title, fallback_text = html_to_text(html)
    title = (getattr(doc, "title", None) or "").strip() or fallback_title
    canonical = _canonical_url(html, url)
    text = getattr(doc, "text", None) or ""
    if not text.strip():
        return title, fallback_text.strip(), published, canonical
    # trafilatura's text puts one block a line; the chunker cuts paragraphs at blank lines.
    text = "\n\n".join(line.strip() for line in text.splitlines() if line.strip())
    return title, text, published, canonical


def _iso_date(value: object) -> str | None:
    """`value` as an ISO date (YYYY-MM-DD) if it starts with one, else None."""
    if isinstance(value, date):  # a datetime too
        return value.strftime("%Y-%m-%d")
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value.strip()[:10]).isoformat()
    except ValueError:
        return None


class _CanonicalLink(HTMLParser):
    """Finds the first <link rel="canonical" href=…>; stops at the body, where none belongs."""

    class Done(Exception):
        pass

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            raise self.Done
        if tag != "link":
            return
        values = {name: value or "" for name, value in attrs}
        # rel is a list of tokens: rel="canonical", rel="Canonical alternate".
        if "canonical" in values.get("rel", "").lower().split() and values.get("href", "").strip():
            self.href = values["href"].strip()
            raise self.Done

    def handle_endtag(self, tag: str) -> None:
        if tag == "head":
            raise self.Done


def _canonical_url(html: str, base: str) -> str | None:
    """The page's canonical URL made absolute against `base` (the URL it was fetched from);
    None when it names none or names something that is not http(s). trafilatura's metadata
    reports the URL it was given instead, so this reads the <link> itself."""
    finder = _CanonicalLink()
    try:
        finder.feed(html)
        finder.close()
    except _CanonicalLink.Done:
        pass
    except Exception:  # HTMLParser is lenient, but a page is not worth failing for this
        return None
    if finder.href is None:
        return None
    try:
        absolute = httpx.URL(base).join(finder.href)
    except (httpx.InvalidURL, TypeError, ValueError):
        return None
    if absolute.scheme not in ("http", "https") or not absolute.host:
        return None
    return str(absolute.copy_with(fragment=None))


def _pdf_text(data: bytes, url: str, final_url: str) -> tuple[str | None, str, str | None]:
    """(title, text, creation date) of a PDF: each page's text, pages separated by a blank
    line. The title is the document's own, else the file name in the URL. No text at all (a
    scanned PDF, images of pages) is refused: there is nothing to cite without OCR."""
    from pypdf import PdfReader  # imported here: only PDF fetches need it

    # pypdf logs what it repairs ("EOF marker not found"); with no logging set up, Python
    # prints that on stderr, through the TUI. What matters reaches the caller as a FetchError.
    pdf_log = logging.getLogger("pypdf")
    if pdf_log.level == logging.NOTSET:  # someone who set a level meant it
        pdf_log.setLevel(logging.CRITICAL)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            reader.decrypt("")  # most "encrypted" PDFs only restrict printing and copying
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except Exception as exc:  # pypdf raises many kinds on broken or locked files
        why = " ".join(str(exc).split()) or type(exc).__name__
        raise FetchError(f"cannot use {url}: not a readable PDF ({why})", url=url) from None
    text = "\n\n".join(page for page in pages if page)
    if not text:
        raise FetchError(
            f"cannot use {url}: the PDF has no text (a scanned PDF needs OCR, which we do not do)",
            url=url,
        )
    title = published = None
    try:  # metadata is optional and often malformed: the text is what matters
        meta = reader.metadata
        if meta is not None:
            title = (meta.title or "").strip() or None
            published = _iso_date(meta.creation_date)
    except Exception:
        pass
    if title is None:
        name = unquote(urlsplit(final_url).path.rstrip("/").rpartition("/")[2]).strip()
        title = name or None
    return title, text, published


def _too_big(url: str, max_bytes: int) -> FetchError:
    return FetchError(f"cannot fetch {url}: page larger than {max_bytes} bytes", url=url)


def _why(exc: httpx.HTTPError | httpx.InvalidURL) -> str:
    """httpx's error as a short phrase on one line."""
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        kind = "connection failed"
    elif isinstance(exc, httpx.RemoteProtocolError):
        kind = "the server broke the connection"
    elif isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        kind = "not a valid URL"
    else:
        kind = type(exc).__name__
    detail = " ".join(str(exc).split())
    return f"{kind} ({detail})" if detail else kind


# -- passages ---------------------------------------------------------------------------------


def page_passages(page: FetchedPage) -> list[Passage]:
    """The page's text as ~100-200-word passages (the chunker local files use), titled with
    the page's title or else its host and path, with source = the final URL and ids
    `<final URL>#<n>`, as `document_passages` makes them for a file."""
    title = page.title
    if not title:
        parts = urlsplit(page.final_url)
        title = parts.netloc + parts.path.rstrip("/")
    return document_passages(title, page.text, page.final_url)
