"""Web pages a person names in a task, fetched so the researcher can cite them.

`find_urls` picks the http(s) URLs out of a task's text; `fetch_page` downloads one (bounded in
size, time and redirects) and keeps its readable text: the main text of an HTML page (via
trafilatura, so menus, cookie banners and footers stay out of the citations), or a plain-text
or Markdown page as it is. `page_passages` cuts that text with the same chunker local files
use, so a page's passages look like any other document's and cite as `<final URL>#<n>`.

Every failure is one `FetchError` whose message says what failed, the URL and why; a bad URL
never becomes a traceback.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx

import myninja
from myninja.errors import UsageError
from skills.research.passages import Passage, document_passages, html_to_text, markdown_title

MAX_URLS = 5
MAX_REDIRECTS = 5
USER_AGENT = f"myninja/{getattr(myninja, '__version__', '0')} (+https://github.com/myninja)"

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
TEXT_TYPES = frozenset({"text/plain", "text/markdown", "text/x-markdown"})
_ACCEPT = "text/html,application/xhtml+xml,text/markdown;q=0.9,text/plain;q=0.9,*/*;q=0.1"


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


# -- fetching ---------------------------------------------------------------------------------


async def fetch_page(
    url: str,
    *,
    max_bytes: int = 2_000_000,
    timeout_s: float = 15.0,
    client: httpx.AsyncClient | None = None,
) -> FetchedPage:
    """The page at `url`, or a FetchError. At most MAX_REDIRECTS redirects, at most
    `max_bytes` of body (a bigger page is refused, not cut: half an article would be cited as
    if it were all of it), and at most `timeout_s` for the whole download. `client` lets a
    caller share connections; it is used as is, not closed."""
    _check_url(url, url)
    try:
        # One deadline around everything: httpx's timeouts are per phase (connect, each read),
        # so a server dripping a byte a second would never trip them.
        async with asyncio.timeout(timeout_s):
            if client is not None:
                final_url, (media_type, charset), body = await _download(
                    client, url, max_bytes, timeout_s
                )
            else:
                async with httpx.AsyncClient() as own:
                    final_url, (media_type, charset), body = await _download(
                        own, url, max_bytes, timeout_s
                    )
    except TimeoutError:
        raise FetchError(f"cannot fetch {url}: timed out after {timeout_s:g} s", url=url) from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:  # InvalidURL: a bad redirect target
        raise FetchError(f"cannot fetch {url}: {_why(exc)}", url=url) from None

    text = _decode(body, charset, html=media_type in HTML_TYPES)
    if media_type in HTML_TYPES:
        # Extraction is CPU work on up to max_bytes of HTML: off the event loop, so a TUI or
        # other tasks sharing the loop keep running meanwhile.
        title, text = await asyncio.to_thread(_html_main_text, text, final_url)
    else:
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
    )


async def _download(
    client: httpx.AsyncClient, url: str, max_bytes: int, timeout_s: float
) -> tuple[str, tuple[str, str | None], bytes]:
    """(final URL, (media type, charset), body). Redirects are followed here, not by httpx, so
    the limit and the scheme check hold whatever client the caller passed."""
    current = httpx.URL(url)
    headers = {"User-Agent": USER_AGENT, "Accept": _ACCEPT}
    for _ in range(MAX_REDIRECTS + 1):
        async with client.stream(
            "GET", current, headers=headers, follow_redirects=False, timeout=timeout_s
        ) as response:
            if response.is_redirect:
                location = response.headers["location"]
                current = response.url.join(location)
                _check_url(str(current), url)
                continue
            if response.status_code >= 400:
                reason = f" {response.reason_phrase}" if response.reason_phrase else ""
                raise FetchError(
                    f"cannot fetch {url}: HTTP {response.status_code}{reason}",
                    url=url,
                    status=response.status_code,
                )
            media = _media_type(response.headers.get("content-type", ""))
            if media[0] not in HTML_TYPES | TEXT_TYPES and media[0]:
                # Refused before reading a byte of the body.
                raise FetchError(
                    f"cannot use {url}: unsupported content type {media[0]!r}",
                    url=url,
                    hint="only HTML, plain-text and Markdown pages can be read",
                )
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise _too_big(url, max_bytes)
            body = bytearray()
            async for chunk in response.aiter_bytes():  # decompressed: bombs are bounded too
                body += chunk
                if len(body) > max_bytes:
                    raise _too_big(url, max_bytes)
            if not media[0]:
                media = (_sniff(bytes(body), url), None)
            return str(response.url), media, bytes(body)
    raise FetchError(f"cannot fetch {url}: more than {MAX_REDIRECTS} redirects", url=url)


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


def _media_type(header: str) -> tuple[str, str | None]:
    """(media type, charset) of a Content-Type header; ("", None) when there is none."""
    media, *params = header.split(";")
    charset = None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip("\"'") or None
    return media.strip().lower(), charset


def _sniff(body: bytes, url: str) -> str:
    """A page sent without a Content-Type: HTML if it plainly says so, else refused (it could
    be anything, and binary read as text would be cited as gibberish)."""
    head = body[:1024].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):
        return "text/html"
    raise FetchError(f"cannot use {url}: the server sent no content type", url=url)


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


def _html_main_text(html: str, url: str) -> tuple[str | None, str]:
    """(title, main text with paragraphs separated by a blank line). trafilatura keeps the
    article and drops navigation, banners and footers; where it finds nothing (a page that is
    all links, a short note) the page's whole visible text is better than none."""
    doc = None
    try:
        import trafilatura  # imported here: it takes a while, and only page fetches need it

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
    fallback_title, fallback_text = html_to_text(html)
    title = (getattr(doc, "title", None) or "").strip() or fallback_title
    text = getattr(doc, "text", None) or ""
    if not text.strip():
        return title, fallback_text.strip()
    # trafilatura's text puts one block a line; the chunker cuts paragraphs at blank lines.
    return title, "\n\n".join(line.strip() for line in text.splitlines() if line.strip())


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
