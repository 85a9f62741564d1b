"""Web search for the researcher: several providers behind one `SearchProvider` interface.

`make_provider(config)` builds the one `[research.web]` chooses: SearXNG's JSON API
(self-hosted, no key), the Brave Search API or Tavily (keys from the key store, under
`key_name` or the provider's name). Each answers `await provider.search(query, n)` with at most
`n` `SearchResult`s: plain-text title and snippet, ranked from 1, one per URL.

Every request goes through the provider's rate limiter (shared by all providers with the same
name and endpoint, so a task's concurrent branches cannot burst) and the gateway backend's
retry rule: connect errors, 429 (honouring Retry-After up to a cap) and 502/503/504 are retried
with exponential backoff and full jitter. Every failure is one line: a `SearchError` that is
also the matching `myninja.errors` class (unreachable, auth, rate-limited, bad response), so it
carries the right CLI exit code.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self
from urllib.parse import urlsplit, urlunsplit

import httpx

from myninja.backends.gateway import retry_after_seconds
from myninja.backends.keys import key_store
from myninja.errors import (
    AuthError,
    BackendError,
    BackendUnreachable,
    BadResponse,
    ConfigError,
    RateLimited,
    UsageError,
)
from myninja.skills.research.fetch import USER_AGENT
from myninja.skills.research.passages import html_to_text

if TYPE_CHECKING:
    from myninja.config import Config

RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_RETRY_AFTER_S = 30.0  # a provider asking for a longer wait is out of quota: say so now
BRAVE_URL = "https://api.search.brave.com/res/v1/web/search"
TAVILY_URL = "https://api.tavily.com/search"
BRAVE_MAX_COUNT = 20  # the API refuses count > 20
TAVILY_MAX_RESULTS = 20


# -- results and errors -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SearchResult:
    title: str
    url: str
    snippet: str  # plain text, one line
    rank: int  # from 1, in the provider's order after duplicates are dropped
    published: str | None = None  # as the provider gives it (ISO date, or Brave's "2 days ago")


class SearchError(BackendError):
    """Any failed search. The concrete classes below are also the `myninja.errors` class of
    the failure, so `except SearchError` and `except AuthError` both work."""


class SearchUnreachable(SearchError, BackendUnreachable):
    """Cannot connect, no reply in time, or 502/503/504 until the retries ran out."""


class SearchAuthError(SearchError, AuthError):
    """401/403: a missing, wrong or unauthorised key (or SearXNG's json format being off)."""


class SearchRateLimited(SearchError, RateLimited):
    """429 until the retries ran out, a Retry-After past the cap, or a plan's quota spent."""


class SearchBadResponse(SearchError, BadResponse):
    """Any other HTTP error, or a reply that is not the provider's JSON."""


class SearchProvider(Protocol):
    name: str

    async def search(self, query: str, n: int) -> list[SearchResult]: ...

    async def aclose(self) -> None: ...


# -- rate limiting ----------------------------------------------------------------------------


class _RateLimiter:
    """At most `per_s` request starts a second, spaced evenly (no bursts)."""

    def __init__(self, per_s: float) -> None:
        self.interval = 1.0 / per_s
        self._next = 0.0  # monotonic time the next request may start
        # A thread lock, never held across an await: limiters are shared process-wide, and an
        # asyncio.Lock would be bound to the first event loop that waited on it.
        self._lock = threading.Lock()

    async def wait(self) -> None:
        # Reserve a slot under the lock, sleep outside it: concurrent callers queue up one
        # interval apart.
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


# One limiter per (provider, endpoint) in the process: a caller building a provider per tool
# call still shares the limit with every other branch searching the same service.
_LIMITERS: dict[tuple[str, str], _RateLimiter] = {}


def _limiter(name: str, endpoint: str, per_s: float) -> _RateLimiter:
    limiter = _LIMITERS.get((name, endpoint))
    if limiter is None or limiter.interval != 1.0 / per_s:
        limiter = _LIMITERS[(name, endpoint)] = _RateLimiter(per_s)
    return limiter


# -- the shared HTTP part ---------------------------------------------------------------------


class _HttpProvider:
    """What every provider shares: client, limiter, retries, errors, result clean-up.

    Subclasses set `name`, build the request (`_request`) and pick the result list out of the
    reply (`_parse`)."""

    name: str
    strip_html: ClassVar[bool] = True  # SearXNG and Brave mark matches with <strong>

    def __init__(
        self,
        endpoint: str,
        *,
        timeout_s: float = 10.0,
        max_retries: int = 2,
        requests_per_s: float = 1.0,
        key_name: str | None = None,
        client: httpx.AsyncClient | None = None,
        retry_base_delay: float = 0.5,
        retry_max_delay: float = 8.0,
        max_retry_after_s: float = MAX_RETRY_AFTER_S,
    ) -> None:
        if requests_per_s <= 0:
            raise ValueError("requests_per_s must be > 0")
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.key_name = key_name or self.name
        self.retry_base_delay = retry_base_delay
        self.retry_max_delay = retry_max_delay
        self.max_retry_after_s = max_retry_after_s
        self._limiter = _limiter(self.name, endpoint, requests_per_s)
        # A client passed in is the caller's to close; our own is closed by aclose().
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(timeout_s))

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def search(self, query: str, n: int) -> list[SearchResult]:
        if n < 1 or not query.strip():
            return []
        response = await self._send(self._request(query, n))
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise SearchBadResponse(
                f"{self.name}: the reply is not JSON: {_one_line(response.text)[:120]!r}",
                hint=self._bad_reply_hint(),
                status=response.status_code,
            ) from None
        raw = self._parse(body) if isinstance(body, dict) else None
        if raw is None:
            raise SearchBadResponse(
                f"{self.name}: the reply is not a search result list: "
                f"{_one_line(response.text)[:120]!r}",
                hint=self._bad_reply_hint(),
                status=response.status_code,
            )
        return self._results(raw, n)

    # For subclasses -----------------------------------------------------------------------
    def _request(self, query: str, n: int) -> httpx.Request:
        raise NotImplementedError

    def _parse(self, body: dict[str, Any]) -> list[tuple[Any, Any, Any, Any]] | None:
        """(title, url, snippet, published) per result, in rank order; None: not our JSON."""
        raise NotImplementedError

    def _bad_reply_hint(self) -> str | None:
        return None

    def _unreachable_hint(self) -> str:
        return "check the network connection"

    def _forbidden_hint(self, status: int) -> str:
        return f"store a valid key with `myninja keys set {self.key_name}`"

    # Sending ------------------------------------------------------------------------------
    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"User-Agent": USER_AGENT, "Accept": "application/json", **(extra or {})}

    async def _send(self, request: httpx.Request) -> httpx.Response:
        """The request under the retry rule; returns a 2xx response, body read."""
        attempt = 0
        while True:
            await self._limiter.wait()
            try:
                # One deadline over the whole exchange: httpx's timeouts are per phase, so a
                # server dripping bytes would never trip them.
                async with asyncio.timeout(self.timeout_s):
                    response = await self._client.send(request)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt >= self.max_retries:
                    raise SearchUnreachable(
                        f"{self.name}: cannot connect to {_origin(self.endpoint)}{_tries(attempt)}",
                        hint=self._unreachable_hint(),
                    ) from exc
                delay = self._backoff(attempt)
            except (TimeoutError, httpx.TimeoutException):
                # Not retried (as in the gateway): a server that sat on one request for the
                # whole timeout would likely make every retry wait as long again.
                raise SearchUnreachable(
                    f"{self.name}: no reply within {self.timeout_s:g} s",
                    hint=f"[research.web] timeout_s sets the wait; {self._unreachable_hint()}",
                ) from None
            except httpx.TransportError as exc:
                raise SearchUnreachable(
                    f"{self.name}: {type(exc).__name__}: {_one_line(str(exc))}",
                    hint=self._unreachable_hint(),
                ) from None
            else:
                if response.is_success:
                    return response
                status = response.status_code
                retry_after = retry_after_seconds(response)
                if status not in RETRY_STATUSES or attempt >= self.max_retries:
                    raise self._status_error(response, attempt)
                if retry_after is not None and retry_after > self.max_retry_after_s:
                    raise SearchRateLimited(
                        f"{self.name}: HTTP {status}: asked to wait {retry_after:.0f} s",
                        hint="the provider's quota is spent for now; try later",
                        status=status,
                    )
                delay = retry_after if retry_after is not None else self._backoff(attempt)
            attempt += 1
            await asyncio.sleep(delay)

    def _backoff(self, attempt: int) -> float:
        # Full jitter: concurrent branches that failed together do not retry together.
        return random.uniform(0, min(self.retry_max_delay, self.retry_base_delay * 2**attempt))

    def _status_error(self, response: httpx.Response, attempt: int) -> SearchError:
        status = response.status_code
        message = _error_message(response) or response.reason_phrase or "error"
        where = f"{self.name}: HTTP {status}: {message}{_tries(attempt)}"
        if status in (401, 403):
            return SearchAuthError(where, hint=self._forbidden_hint(status), status=status)
        if status in (429, 432, 433):  # 432/433: Tavily's plan and spending limits
            hint = "lower [research.web] requests_per_s, or try later"
            return SearchRateLimited(where, hint=hint, status=status)
        if status in (502, 503, 504):
            return SearchUnreachable(where, hint=self._unreachable_hint(), status=status)
        return SearchBadResponse(where, hint=self._bad_reply_hint(), status=status)

    # Results ------------------------------------------------------------------------------
    def _results(self, raw: list[tuple[Any, Any, Any, Any]], n: int) -> list[SearchResult]:
        results: list[SearchResult] = []
        seen: set[str] = set()
        for title, url, snippet, published in raw:
            if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
                continue  # nothing the researcher could fetch or cite
            key = _dedup_key(url)
            if key in seen:
                continue
            seen.add(key)
            results.append(
                SearchResult(
                    title=self._text(title) or url,
                    url=url,
                    snippet=self._text(snippet),
                    rank=len(results) + 1,
                    published=published if isinstance(published, str) and published else None,
                )
            )
            if len(results) == n:
                break
        return results

    def _text(self, value: Any) -> str:
        if not isinstance(value, str):
            return ""
        return _one_line(html_to_text(value)[1] if self.strip_html else value)


# -- the providers ----------------------------------------------------------------------------


class SearxngProvider(_HttpProvider):
    """A SearXNG instance's JSON API: `GET {url}/search?q=…&format=json`, no key."""

    name = "searxng"

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 10.0,
        max_retries: int = 2,
        requests_per_s: float = 1.0,
        client: httpx.AsyncClient | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            _searxng_endpoint(url),
            timeout_s=timeout_s,
            max_retries=max_retries,
            requests_per_s=requests_per_s,
            client=client,
            **kwargs,
        )

    def _request(self, query: str, n: int) -> httpx.Request:
        # SearXNG has no result count parameter; one page (10-30 results) covers n <= 50 well
        # enough, and the surplus is cut in _results.
        return self._client.build_request(
            "GET",
            self.endpoint,
            params={"q": query, "format": "json"},
            headers=self._headers(),
        )

    def _parse(self, body: dict[str, Any]) -> list[tuple[Any, Any, Any, Any]] | None:
        items = body.get("results")
        if not isinstance(items, list):
            return None
        return [
            (r.get("title"), r.get("url"), r.get("content"), r.get("publishedDate"))
            for r in items
            if isinstance(r, dict)
        ]

    def _unreachable_hint(self) -> str:
        return "is SearXNG running there? check [research.web] url"

    def _bad_reply_hint(self) -> str:
        return "check [research.web] url: it should be a SearXNG instance's base URL"

    def _forbidden_hint(self, status: int) -> str:
        # SearXNG answers 403 to a format not listed in its settings.
        return "enable the JSON API: add json to search.formats in SearXNG's settings.yml"


class _KeyedProvider(_HttpProvider):
    """A commercial API: an API key, and its public endpoint unless `base_url` says else."""

    default_url: ClassVar[str]

    def __init__(self, key: str, *, base_url: str | None = None, **kwargs: Any) -> None:
        super().__init__(base_url or self.default_url, **kwargs)
        self._key = key


class BraveProvider(_KeyedProvider):
    """The Brave Search API: `GET …/res/v1/web/search?q=…&count=…`, key in
    X-Subscription-Token."""

    name = "brave"
    default_url = BRAVE_URL

    def _request(self, query: str, n: int) -> httpx.Request:
        # Ask for a few more than n: duplicates are dropped after the reply.
        return self._client.build_request(
            "GET",
            self.endpoint,
            params={"q": query, "count": min(BRAVE_MAX_COUNT, n + 2)},
            headers=self._headers({"X-Subscription-Token": self._key}),
        )

    def _parse(self, body: dict[str, Any]) -> list[tuple[Any, Any, Any, Any]] | None:
        web = body.get("web")
        if web is None:
            # Brave leaves "web" out when nothing matched; an error body has "error" instead.
            return None if "error" in body else []
        items = web.get("results") if isinstance(web, dict) else None
        if not isinstance(items, list):
            return None
        return [
            (r.get("title"), r.get("url"), r.get("description"), r.get("page_age") or r.get("age"))
            for r in items
            if isinstance(r, dict)
        ]


class TavilyProvider(_KeyedProvider):
    """Tavily's search API: `POST …/search` with JSON `{query, max_results}`, key as a Bearer
    token (the current API; the old one took `api_key` in the body)."""

    name = "tavily"
    default_url = TAVILY_URL
    strip_html = False  # Tavily's content is extracted plain text: "List<int>" stays

    def _request(self, query: str, n: int) -> httpx.Request:
        return self._client.build_request(
            "POST",
            self.endpoint,
            json={"query": query, "max_results": min(TAVILY_MAX_RESULTS, n + 2)},
            headers=self._headers({"Authorization": f"Bearer {self._key}"}),
        )

    def _parse(self, body: dict[str, Any]) -> list[tuple[Any, Any, Any, Any]] | None:
        items = body.get("results")
        if not isinstance(items, list):
            return None
        return [
            (r.get("title"), r.get("url"), r.get("content"), r.get("published_date"))
            for r in items
            if isinstance(r, dict)
        ]


# -- from config ------------------------------------------------------------------------------


def make_provider(config: Config) -> SearchProvider | None:
    """The provider `[research.web]` chooses, or None when web search is off."""
    web = config.research.web
    limits: dict[str, Any] = {
        "timeout_s": web.timeout_s,
        "max_retries": web.max_retries,
        "requests_per_s": web.requests_per_s,
    }
    if web.provider == "none":
        return None
    if web.provider == "searxng":
        if not web.url:
            raise ConfigError(
                "web search provider searxng needs its URL",
                hint='set [research.web] url, e.g. url = "http://localhost:8888"',
            )
        return SearxngProvider(web.url, **limits)
    name = web.key_name or web.provider
    store = key_store(config)
    key = store.get(name)
    if not key:
        hint = f"store one with `myninja keys set {name}`"
        if not store.uses_file:
            hint += ' (no keyring service? set [keys] store = "file")'
        raise UsageError(f"web search provider {web.provider} has no API key {name!r}", hint=hint)
    # [research.web] url is SearXNG's alone: sending a key to whatever URL was left there
    # from an earlier SearXNG setup would leak it.
    if web.provider == "brave":
        return BraveProvider(key, key_name=name, **limits)
    return TavilyProvider(key, key_name=name, **limits)


# -- helpers ----------------------------------------------------------------------------------


def _searxng_endpoint(url: str) -> str:
    """`http://host:8888`, `http://host:8888/` and `http://host/searx/search?…` all give the
    instance's /search endpoint."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"invalid SearXNG URL {url!r}", hint='e.g. url = "http://localhost:8888"')
    path = parts.path.rstrip("/")
    if not path.endswith("/search"):
        path += "/search"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _dedup_key(url: str) -> str:
    """The URL without its fragment, scheme and host lower-cased: the same page."""
    parts = urlsplit(url)
    return urlunsplit(
        (parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", parts.query, "")
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _tries(attempt: int) -> str:
    return f" (after {attempt + 1} tries)" if attempt else ""


def _error_message(response: httpx.Response) -> str:
    """The provider's own words, where its error body has some: Brave's `error.detail`,
    Tavily's `detail.error`, or a short plain-text body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for outer, inner in (("error", "detail"), ("error", "message"), ("detail", "error")):
            value = body.get(outer)
            if isinstance(value, dict) and value.get(inner):
                return _one_line(str(value[inner]))[:200]
        for key in ("error", "detail", "message"):
            if isinstance(body.get(key), str):
                return _one_line(body[key])[:200]
        return ""
    text = response.text
    if "<html" in text[:500].lower():
        return ""  # an error page's markup says nothing the status does not
    return _one_line(text)[:200]


def _one_line(text: str) -> str:
    return " ".join(text.split())
