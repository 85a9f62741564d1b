"""Web search providers against a real HTTP server on 127.0.0.1 (http.server in a thread): the
providers' real reply shapes, status codes, Retry-After, a hanging server and concurrent
requests are real bytes on a real socket, and httpx is the real client."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from myninja.backends.keys import KeyStore
from myninja.config import Config
from myninja.errors import (
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    AuthError,
    BackendUnreachable,
    ConfigError,
    RateLimited,
    UsageError,
)
from myninja.skills.research.fetch import USER_AGENT
from myninja.skills.research.web_search import (
    BraveProvider,
    SearchAuthError,
    SearchBadResponse,
    SearchError,
    SearchRateLimited,
    SearchResult,
    SearchUnreachable,
    SearxngProvider,
    TavilyProvider,
    make_provider,
)
from tests.local_http import serving

pytestmark = pytest.mark.timeout(60)

FAST = {"requests_per_s": 1000.0, "retry_base_delay": 0.01, "timeout_s": 5.0}

# -- a scripted server ------------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when the request arrived


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list → JSON; str/bytes as is
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Script:
    """Replies in order (the last one repeats); every request is recorded in `seen`."""

    replies: list[Reply]
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next(self, request: Seen) -> Reply:
        with self.lock:
            self.seen.append(request)
            return self.replies[min(len(self.seen), len(self.replies)) - 1]


def handler_for(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            parts = urlsplit(self.path)
            seen = Seen(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=self.rfile.read(length) if length else b"",
                at=time.monotonic(),
            )
            reply = script.next(seen)
            if reply.delay_s:
                time.sleep(reply.delay_s)
            body = reply.body
            if isinstance(body, dict | list):
                data, ctype = json.dumps(body).encode(), "application/json"
            elif isinstance(body, str):
                data, ctype = body.encode(), "text/plain; charset=utf-8"
            else:
                data, ctype = body or b"", "application/octet-stream"
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the client gave up (the timeout test)

        do_GET = _answer
        do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def scripted(*replies: Reply) -> Iterator[tuple[str, Script]]:
    script = Script(list(replies))
    with serving(handler_for(script)) as url:
        yield url, script


# -- the providers' real reply shapes ---------------------------------------------------------

SEARXNG_REPLY = {
    "query": "otters",
    "number_of_results": 0,
    "results": [
        {
            "url": "https://example.org/otters",
            "title": "River <b>otters</b> return",
            "content": "Twelve holts &amp; counting: <strong>otters</strong>  are\n back.",
            "engine": "duckduckgo",
            "parsed_url": ["https", "example.org", "/otters", "", "", ""],
            "template": "default.html",
            "engines": ["duckduckgo", "bing"],
            "positions": [1, 2],
            "publishedDate": "2024-03-01T00:00:00",
            "score": 4.0,
            "category": "general",
        },
        {
            "url": "https://news.example.com/a?id=7",
            "title": "Otter survey",
            "content": "A survey of the upper valley.",
            "engine": "bing",
            "publishedDate": None,
            "score": 1.0,
            "category": "general",
        },
    ],
    "answers": [],
    "corrections": [],
    "infoboxes": [],
    "suggestions": [],
    "unresponsive_engines": [],
}

BRAVE_REPLY = {
    "type": "search",
    "query": {"original": "otters", "more_results_available": True},
    "mixed": {"type": "mixed", "main": [{"type": "web", "index": 0, "all": False}]},
    "web": {
        "type": "search",
        "results": [
            {
                "title": "Otters &amp; rivers",
                "url": "https://brave.example/otters",
                "is_source_local": False,
                "description": "Where <strong>otters</strong> live.",
                "page_age": "2024-05-02T10:00:00",
                "age": "May 2, 2024",
                "profile": {"name": "Example"},
                "meta_url": {"scheme": "https", "hostname": "brave.example"},
            },
            {
                "title": "Otter facts",
                "url": "https://facts.example/otter",
                "description": "Facts.",
                "age": "3 days ago",
            },
        ],
        "family_friendly": True,
    },
}

TAVILY_REPLY = {
    "query": "otters",
    "follow_up_questions": None,
    "answer": None,
    "images": [],
    "results": [
        {
            "title": "Otters in rivers",
            "url": "https://tavily.example/otters",
            "content": "Otters use List<int> of holts.",  # plain text: nothing stripped
            "score": 0.92,
            "raw_content": None,
            "published_date": "Tue, 02 Apr 2024 10:00:00 GMT",
        },
        {
            "title": "More otters",
            "url": "https://tavily.example/more",
            "content": "More.",
            "score": 0.5,
            "raw_content": None,
        },
    ],
    "response_time": 1.07,
}


# -- SearXNG ----------------------------------------------------------------------------------


async def test_searxng_results_are_parsed_in_rank_order_as_plain_text() -> None:
    with scripted(Reply(body=SEARXNG_REPLY)) as (url, script):
        async with SearxngProvider(url, **FAST) as provider:
            results = await provider.search("otters", 5)
    assert results == [
        SearchResult(
            title="River otters return",
            url="https://example.org/otters",
            snippet="Twelve holts & counting: otters are back.",
            rank=1,
            published="2024-03-01T00:00:00",
        ),
        SearchResult(
            title="Otter survey",
            url="https://news.example.com/a?id=7",
            snippet="A survey of the upper valley.",
            rank=2,
            published=None,
        ),
    ]
    (request,) = script.seen
    assert request.method == "GET"
    assert request.path == "/search"
    assert request.query["format"] == ["json"]
    assert request.headers["user-agent"] == USER_AGENT


async def test_searxng_query_with_hostile_characters_arrives_intact() -> None:
    query = 'a&b=c #frag ?x=1 "quoted" 100% +plus /slash\\ ünï 漢字 site:github.com'
    with scripted(Reply(body=SEARXNG_REPLY)) as (url, script):
        async with SearxngProvider(url, **FAST) as provider:
            await provider.search(query, 3)
    assert script.seen[0].query["q"] == [query]
    assert script.seen[0].query["format"] == ["json"]


@pytest.mark.parametrize("suffix", ["", "/", "/search", "/search/"])
async def test_searxng_base_url_with_or_without_search(suffix: str) -> None:
    with scripted(Reply(body=SEARXNG_REPLY)) as (url, script):
        async with SearxngProvider(url + suffix, **FAST) as provider:
            await provider.search("otters", 1)
        async with SearxngProvider(url + "/searx" + suffix, **FAST) as provider:
            await provider.search("otters", 1)
    assert [seen.path for seen in script.seen] == ["/search", "/searx/search"]


async def test_searxng_403_says_to_enable_the_json_format() -> None:
    with scripted(Reply(403, "Forbidden")) as (url, script):
        async with SearxngProvider(url, **FAST) as provider:
            with pytest.raises(SearchAuthError) as caught:
                await provider.search("otters", 3)
    line = caught.value.one_line()
    assert "HTTP 403" in line
    assert "settings.yml" in line and "json" in line
    assert "\n" not in line
    assert len(script.seen) == 1  # a 403 is not retried


async def test_results_are_deduplicated_by_url_and_cut_at_n() -> None:
    reply = {
        "results": [
            {"url": "https://a.example/page", "title": "A", "content": "first"},
            {"url": "https://a.example/page#section-2", "title": "A again", "content": "dup"},
            {"url": "HTTPS://A.EXAMPLE/page", "title": "A shouted", "content": "dup"},
            {"url": "magnet:?xt=urn:btih:abc", "title": "Not a page", "content": ""},
            {"url": "https://b.example/", "title": "B", "content": "second"},
            {"url": "https://c.example/", "title": "C", "content": "third"},
            {"url": "https://d.example/", "title": "D", "content": "fourth"},
        ]
    }
    with scripted(Reply(body=reply)) as (url, _):
        async with SearxngProvider(url, **FAST) as provider:
            results = await provider.search("q", 3)
    assert [(r.rank, r.url, r.title) for r in results] == [
        (1, "https://a.example/page", "A"),
        (2, "https://b.example/", "B"),
        (3, "https://c.example/", "C"),
    ]


# -- Brave and Tavily -------------------------------------------------------------------------


async def test_brave_parses_its_reply_and_sends_the_key_header() -> None:
    with scripted(Reply(body=BRAVE_REPLY)) as (url, script):
        async with BraveProvider("brave-key-123", base_url=url + "/res/v1/web/search", **FAST) as p:
            results = await p.search("otters & rivers", 5)
    assert results == [
        SearchResult(
            title="Otters & rivers",
            url="https://brave.example/otters",
            snippet="Where otters live.",
            rank=1,
            published="2024-05-02T10:00:00",  # page_age (a date) over age
        ),
        SearchResult(
            title="Otter facts",
            url="https://facts.example/otter",
            snippet="Facts.",
            rank=2,
            published="3 days ago",
        ),
    ]
    (request,) = script.seen
    assert request.method == "GET"
    assert request.path == "/res/v1/web/search"
    assert request.headers["x-subscription-token"] == "brave-key-123"
    assert "authorization" not in request.headers
    assert request.query["q"] == ["otters & rivers"]
    assert 5 <= int(request.query["count"][0]) <= 20


async def test_brave_without_web_results_is_an_empty_list() -> None:
    reply = {"type": "search", "query": {"original": "zzxq"}, "mixed": {}}
    with scripted(Reply(body=reply)) as (url, _):
        async with BraveProvider("k", base_url=url, **FAST) as provider:
            assert await provider.search("zzxq", 5) == []


async def test_tavily_parses_its_reply_and_sends_a_bearer_token() -> None:
    with scripted(Reply(body=TAVILY_REPLY)) as (url, script):
        async with TavilyProvider("tvly-secret", base_url=url + "/search", **FAST) as provider:
            results = await provider.search("otters", 4)
    assert results == [
        SearchResult(
            title="Otters in rivers",
            url="https://tavily.example/otters",
            snippet="Otters use List<int> of holts.",
            rank=1,
            published="Tue, 02 Apr 2024 10:00:00 GMT",
        ),
        SearchResult(
            title="More otters",
            url="https://tavily.example/more",
            snippet="More.",
            rank=2,
            published=None,
        ),
    ]
    (request,) = script.seen
    assert request.method == "POST"
    assert request.path == "/search"
    assert request.headers["authorization"] == "Bearer tvly-secret"
    body = json.loads(request.body)
    assert body["query"] == "otters"
    assert 4 <= body["max_results"] <= 20
    assert "api_key" not in body  # the key never travels in the body


async def test_brave_401_points_at_myninja_keys_set() -> None:
    error = {
        "type": "ErrorResponse",
        "error": {
            "id": "x",
            "status": 401,
            "code": "SUBSCRIPTION_TOKEN_INVALID",
            "detail": "The provided subscription token is invalid.",
        },
    }
    with scripted(Reply(401, error)) as (url, script):
        async with BraveProvider("bad", base_url=url, key_name="brave-work", **FAST) as p:
            with pytest.raises(SearchAuthError) as caught:
                await p.search("otters", 3)
    err = caught.value
    assert isinstance(err, AuthError) and err.exit_code == EXIT_USAGE and err.status == 401
    line = err.one_line()
    assert "subscription token is invalid" in line
    assert "myninja keys set brave-work" in line
    assert "\n" not in line
    assert len(script.seen) == 1


# -- retries, timeouts, bad replies -----------------------------------------------------------


async def test_429_with_retry_after_is_retried_after_that_wait() -> None:
    replies = (
        Reply(429, {"detail": {"error": "slow down"}}, {"Retry-After": "0.3"}),
        Reply(body=TAVILY_REPLY),
    )
    with scripted(*replies) as (url, script):
        async with TavilyProvider("k", base_url=url, **FAST) as provider:
            results = await provider.search("otters", 2)
    assert len(results) == 2
    assert len(script.seen) == 2
    # The wait came from Retry-After, not from the (10 ms) backoff.
    assert script.seen[1].at - script.seen[0].at >= 0.25


async def test_retry_after_past_the_cap_fails_at_once() -> None:
    with scripted(Reply(429, "quota", {"Retry-After": "3600"})) as (url, script):
        async with BraveProvider("k", base_url=url, **FAST) as provider:
            with pytest.raises(SearchRateLimited) as caught:
                await provider.search("otters", 2)
    assert isinstance(caught.value, RateLimited)
    assert "3600" in str(caught.value)
    assert len(script.seen) == 1


async def test_503_twice_then_success() -> None:
    replies = (Reply(503, "busy"), Reply(503, "busy"), Reply(body=SEARXNG_REPLY))
    with scripted(*replies) as (url, script):
        async with SearxngProvider(url, max_retries=2, **FAST) as provider:
            results = await provider.search("otters", 5)
    assert [r.rank for r in results] == [1, 2]
    assert len(script.seen) == 3


async def test_retries_exhausted_is_one_line_unreachable() -> None:
    with scripted(Reply(502, "<html><body><h1>502 Bad Gateway</h1>\n</body></html>")) as (
        url,
        script,
    ):
        async with SearxngProvider(url, max_retries=2, **FAST) as provider:
            with pytest.raises(SearchUnreachable) as caught:
                await provider.search("otters", 5)
    err = caught.value
    assert isinstance(err, BackendUnreachable) and err.exit_code == EXIT_UNREACHABLE
    assert err.status == 502
    line = err.one_line()
    assert line.startswith("searxng: HTTP 502")
    assert "after 3 tries" in line
    assert "\n" not in line and "<html" not in line
    assert len(script.seen) == 3


async def test_429_until_retries_run_out_is_rate_limited() -> None:
    with scripted(Reply(429, "too many")) as (url, script):
        async with BraveProvider("k", base_url=url, max_retries=1, **FAST) as provider:
            with pytest.raises(SearchRateLimited, match="HTTP 429"):
                await provider.search("otters", 2)
    assert len(script.seen) == 2


async def test_connection_refused_is_retried_then_unreachable() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    async with SearxngProvider(f"http://127.0.0.1:{port}", max_retries=2, **FAST) as provider:
        with pytest.raises(SearchUnreachable) as caught:
            await provider.search("otters", 3)
    assert time.monotonic() - started < 5
    line = caught.value.one_line()
    assert f"cannot connect to http://127.0.0.1:{port}" in line
    assert "after 3 tries" in line
    assert "[research.web] url" in line


async def test_a_hanging_server_times_out_quickly() -> None:
    with scripted(Reply(body=SEARXNG_REPLY, delay_s=5)) as (url, script):
        fast = {**FAST, "timeout_s": 0.3}
        async with SearxngProvider(url, max_retries=2, **fast) as provider:
            started = time.monotonic()
            with pytest.raises(SearchUnreachable, match=r"no reply within 0.3 s"):
                await provider.search("otters", 3)
            assert time.monotonic() - started < 4  # the reply would take 5 s
    assert len(script.seen) == 1  # a timed-out search is not sent again


@pytest.mark.parametrize(
    ("reply", "match"),
    [
        (Reply(body="{not json at all"), "not JSON"),
        (Reply(body=b"\xff\xfe\x00garbage"), "not JSON"),
        (Reply(body={"unexpected": True}), "not a search result list"),
        (Reply(body=[1, 2, 3]), "not a search result list"),
    ],
)
async def test_a_malformed_reply_is_a_bad_response(reply: Reply, match: str) -> None:
    with scripted(reply) as (url, script):
        async with SearxngProvider(url, **FAST) as provider:
            with pytest.raises(SearchBadResponse, match=match) as caught:
                await provider.search("otters", 3)
    assert "\n" not in caught.value.one_line()
    assert len(script.seen) == 1


async def test_other_client_errors_are_bad_responses_not_retried() -> None:
    with scripted(Reply(400, {"detail": {"error": "Query is too long."}})) as (url, script):
        async with TavilyProvider("k", base_url=url, **FAST) as provider:
            with pytest.raises(SearchBadResponse, match=r"HTTP 400: Query is too long\."):
                await provider.search("x" * 500, 3)
    assert len(script.seen) == 1


# -- rate limiting ----------------------------------------------------------------------------


async def test_concurrent_searches_are_spaced_by_the_rate_limit() -> None:
    # 10 a second: requests 0.1 s apart, asserted loosely (0.04 s) so that a busy machine
    # delaying one request's arrival does not fail the test, while no limit (gaps ~1 ms) does.
    with scripted(Reply(body=SEARXNG_REPLY)) as (url, script):
        limits = {**FAST, "requests_per_s": 10.0}
        async with SearxngProvider(url, **limits) as provider:
            await asyncio.gather(*(provider.search(f"q{i}", 2) for i in range(3)))
    times = sorted(seen.at for seen in script.seen)
    assert len(times) == 3
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.04, gaps


async def test_two_providers_for_the_same_service_share_one_limit() -> None:
    # A caller building a provider per tool call must not get a fresh allowance each time.
    with scripted(Reply(body=SEARXNG_REPLY)) as (url, script):
        limits = {**FAST, "requests_per_s": 10.0}
        async with (
            SearxngProvider(url, **limits) as first,
            SearxngProvider(url + "/", **limits) as second,
        ):
            await asyncio.gather(first.search("a", 2), second.search("b", 2))
    times = sorted(seen.at for seen in script.seen)
    assert times[1] - times[0] >= 0.04


# -- make_provider ----------------------------------------------------------------------------


def config_for(**web: Any) -> Config:
    return Config.model_validate({"research": {"web": web}, "keys": {"store": "file"}})


def test_make_provider_none_is_none() -> None:
    assert make_provider(config_for()) is None
    assert make_provider(config_for(provider="none")) is None


async def test_make_provider_searxng_needs_its_url() -> None:
    with pytest.raises(ConfigError) as caught:
        make_provider(config_for(provider="searxng"))
    assert "[research.web] url" in caught.value.one_line()
    provider = make_provider(
        config_for(provider="searxng", url="http://localhost:8888", timeout_s=3, max_retries=1)
    )
    assert isinstance(provider, SearxngProvider)
    assert provider.endpoint == "http://localhost:8888/search"
    assert (provider.timeout_s, provider.max_retries) == (3, 1)
    await provider.aclose()


def test_make_provider_brave_without_a_key_says_how_to_store_one() -> None:
    with pytest.raises(UsageError) as caught:
        make_provider(config_for(provider="brave"))
    assert "myninja keys set brave`" in caught.value.one_line()
    with pytest.raises(UsageError, match="'tavily-work'") as caught:
        make_provider(config_for(provider="tavily", key_name="tavily-work"))
    assert "myninja keys set tavily-work" in caught.value.one_line()


async def test_make_provider_reads_the_key_from_the_key_store() -> None:
    store = KeyStore("file")  # where `myninja keys set` writes with [keys] store = "file"
    store.set("brave", "brave-stored-key")
    store.set("tavily-work", "tvly-stored")
    brave = make_provider(config_for(provider="brave", url="http://left-over-searxng:8888"))
    tavily = make_provider(config_for(provider="tavily", key_name="tavily-work"))
    try:
        assert isinstance(brave, BraveProvider)
        assert brave.endpoint == "https://api.search.brave.com/res/v1/web/search"  # url ignored
        assert isinstance(tavily, TavilyProvider)
        assert tavily.endpoint == "https://api.tavily.com/search"
        assert tavily.key_name == "tavily-work"
    finally:
        for provider in (brave, tavily):
            if provider is not None:
                await provider.aclose()


async def test_the_key_from_make_provider_is_what_the_server_sees() -> None:
    KeyStore("file").set("brave", "brave-stored-key")
    with scripted(Reply(body=BRAVE_REPLY)) as (url, script):
        provider = make_provider(config_for(provider="brave", requests_per_s=1000))
        assert isinstance(provider, BraveProvider)
        provider.endpoint = url  # the real API is out of reach here
        try:
            await provider.search("otters", 1)
        finally:
            await provider.aclose()
    assert script.seen[0].headers["x-subscription-token"] == "brave-stored-key"


async def test_nothing_to_search_sends_no_request() -> None:
    # Port 9 (discard): were a request sent, it would fail, not return [].
    async with SearxngProvider("http://127.0.0.1:9", **FAST) as provider:
        assert await provider.search("otters", 0) == []
        assert await provider.search("   ", 5) == []


def test_every_search_error_is_one_family() -> None:
    for cls in (SearchUnreachable, SearchAuthError, SearchRateLimited, SearchBadResponse):
        assert issubclass(cls, SearchError)
