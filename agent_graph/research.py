"""The researcher's sources: what is searched for a task, how passages are shown to the model,
and how the final answer's citations are checked against them.

A task's sources are one list, numbered in the order passages were first found: the first hop
(the task searched in every configured corpus, and the pages its URLs name) and then each
branch's follow-up hop. A branch cites in its own numbering (the shared passages, then its
own follow-ups), so finalize maps each kept result into the task's numbering before the
citation checker (skills/research/citations.py) sees it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Sequence
from contextlib import closing
from typing import Any

from myninja.config import Config, ResearchConfig
from myninja.errors import MyninjaError
from myninja.skills.research.citations import SourcePassage
from myninja.skills.research.passages import Passage

SourceRecord = dict[str, Any]  # key, id, title, source, text, origin
SOURCE_WORDS = 120  # words of a passage shown to the model: ten fit a 4k context with the task
FOLLOW_UP_K = 3  # new passages a follow-up query may add
PAGE_PASSAGES = 3  # passages of a fetched page kept, the best for the task first


def record(passage: Passage, origin: str, published: str | None = None) -> SourceRecord:
    """A passage as the task keeps it. `key` tells passages apart across corpora and pages
    (a passage id is unique only within its own file)."""
    # Local files' passage ids already start with their path ("notes.md#3").
    scoped = passage.id.startswith(passage.source)
    return {
        "key": passage.id if scoped else f"{passage.source}#{passage.id}",
        "id": passage.id,
        "title": passage.title,
        "source": passage.source,
        "text": passage.text,
        "origin": origin,
        "published": published,
    }


def _corpus_names(settings: ResearchConfig) -> list[str]:
    if settings.corpora is not None:
        return list(settings.corpora)
    from myninja.skills.research.corpus import list_corpora

    return [info.name for info in list_corpora()]


def search_corpora(
    query: str, settings: ResearchConfig, k: int
) -> tuple[list[SourceRecord], list[str]]:
    """The k best passages for `query` over every configured corpus (rankings of several
    corpora fused by reciprocal rank), and notes on what could not be searched. Blocking: run
    it in a thread."""
    from myninja.skills.research.corpus import Corpus
    from myninja.skills.research.retrievers import make_retriever, rrf

    notes: list[str] = []
    if settings.retriever == "colbert":
        return _search_colbert(query, settings, k, notes)
    rankings: list[list[SourceRecord]] = []
    names = _corpus_names(settings)
    if not names:
        notes.append("no local corpus to search (add one with `myninja index add NAME PATH`)")
    for name in names:
        try:
            with Corpus.open(name) as corpus:
                retriever = make_retriever(corpus, settings.retriever)
                hits = retriever.search(query, k)
        except MyninjaError as exc:
            notes.append(f"corpus {name!r} was not searched: {exc.one_line()}")
            continue
        rankings.append([record(hit.passage, f"corpus:{name}") for hit in hits])
    if len(rankings) == 1:
        return rankings[0][:k], notes
    by_key = {s["key"]: s for ranking in rankings for s in ranking}
    fused = rrf([[s["key"] for s in ranking] for ranking in rankings])
    return [by_key[key] for key, _ in fused[:k]], notes  # type: ignore[index]


def _search_colbert(
    query: str, settings: ResearchConfig, k: int, notes: list[str]
) -> tuple[list[SourceRecord], list[str]]:
    """ColBERT searches its own index (a server, or a colbert-ai index), once per query."""
    from myninja.skills.research.colbert import make_colbert_retriever

    try:
        with closing(make_colbert_retriever(settings.colbert)) as retriever:
            hits = retriever.search(query, k)
    except MyninjaError as exc:
        notes.append(f"ColBERT was not searched: {exc.one_line()}")
        return [], notes
    return [record(hit.passage, "colbert") for hit in hits], notes


async def fetch_named_pages(
    text: str, query: str, settings: ResearchConfig
) -> tuple[list[SourceRecord], list[str]]:
    """Passages of the pages the task names by URL (the best few of each for `query`), and a
    note per page that could not be read. The person typed these URLs: each page's own host
    may be on a private or loopback address (their intranet, a server on their machine);
    where it redirects to must be public or allowed in the config, like any other fetch."""
    from myninja.skills.research.fetch import (
        FetchError,
        fetch_page,
        find_urls,
        hosts_of,
        page_passages,
    )
    from myninja.skills.research.retrievers import rank_passages

    found: list[SourceRecord] = []
    notes: list[str] = []
    for url in find_urls(text):
        try:
            page = await fetch_page(
                url,
                max_bytes=settings.fetch_max_bytes,
                timeout_s=settings.fetch_timeout_s,
                respect_robots=settings.web.respect_robots,
                allow_hosts=[*settings.web.allowed_hosts, *hosts_of([url])],
            )
        except FetchError as exc:
            notes.append(exc.one_line())
            continue
        passages = page_passages(page)
        order = await asyncio.to_thread(rank_passages, query, passages, settings.retriever)
        found += [record(passages[i], "url", page.published) for i in order[:PAGE_PASSAGES]]
    return found, notes


async def search_web(query: str, config: Config, k: int) -> tuple[list[SourceRecord], list[str]]:
    """The k best passages of the web pages a search for `query` finds: the provider's results
    (cached in web.db), the top pages fetched (cached; robots.txt respected), cut into passages
    and ranked as a corpus ranks its own. Notes say what failed. Raises WebUnavailable when
    no search could be made (no provider, a missing key, no network): the researcher then
    works from local corpora and says so once."""
    from myninja.skills.research.fetch import FetchError, page_passages
    from myninja.skills.research.fetch_guard import WebClient
    from myninja.skills.research.retrievers import rank_passages
    from myninja.skills.research.web_cache import WebCache, fetch_cached
    from myninja.skills.research.web_search import SearchResult, make_provider

    web = config.research.web
    try:
        provider = make_provider(config)
    except MyninjaError as exc:
        raise WebUnavailable(exc.one_line()) from None
    if provider is None:
        raise WebUnavailable("")
    notes: list[str] = []
    try:
        with WebCache() as cache:
            found = cache.get_search(provider.name, query, web.results, web.max_age_s)
            if found is None:
                try:
                    results = await provider.search(query, web.results)
                except MyninjaError as exc:
                    raise WebUnavailable(exc.one_line()) from None
                cache.put_search(
                    provider.name, query, web.results, [dataclasses.asdict(r) for r in results]
                )
            else:
                results = [SearchResult(**r) for r in found]
            # One client for all the pages: a client each costs its own TLS setup, which on
            # a busy machine took more of each page's time than the download. Result pages
            # may be on a private address only where the config allows their host.
            async with WebClient(allow_hosts=web.allowed_hosts) as client:
                fetched = await asyncio.gather(
                    *(
                        fetch_cached(
                            result.url,
                            cache,
                            max_age_s=web.max_age_s,
                            max_bytes=config.research.fetch_max_bytes,
                            timeout_s=config.research.fetch_timeout_s,
                            respect_robots=web.respect_robots,
                            client=client,
                        )
                        for result in results[: web.pages]
                    ),
                    return_exceptions=True,
                )
    finally:
        await provider.aclose()
    passages: list[tuple[Passage, str | None]] = []
    for result, outcome in zip(results, fetched, strict=False):
        if isinstance(outcome, FetchError):
            notes.append(outcome.one_line())
        elif isinstance(outcome, BaseException):
            notes.append(f"cannot fetch {result.url}: {type(outcome).__name__}")
        else:
            page, _ = outcome
            date = page.published or result.published
            passages += [(p, date) for p in page_passages(page)]
    if not passages:
        return [], notes
    order = await asyncio.to_thread(
        rank_passages, query, [p for p, _ in passages], config.research.retriever
    )
    return [record(passages[i][0], "web", passages[i][1]) for i in order[:k]], notes


class WebUnavailable(Exception):
    """No web search could be made; the message (empty when web search is off) says why."""


async def gather(
    query: str, config: Config, k: int, web: bool = True
) -> tuple[list[SourceRecord], list[str], bool]:
    """The k best passages for `query` from the local corpora and, when `web`, the web (the two
    rankings fused by reciprocal rank), notes on what failed, and whether the web could be
    searched (a caller stops asking it after the first failure)."""
    from myninja.skills.research.retrievers import rrf

    local, notes = await asyncio.to_thread(search_corpora, query, config.research, k)
    online: list[SourceRecord] = []
    if web:
        try:
            online, web_notes = await search_web(query, config, k)
            notes += web_notes
        except WebUnavailable as exc:
            web = False
            if str(exc):
                notes.append(f"no web search ({exc}); answering from local sources")
    if not online:
        return local, notes, web
    if not local:
        notes = [n for n in notes if not n.startswith("no local corpus")]
        return online, notes, web
    by_key = {s["key"]: s for s in local + online}
    fused = rrf([[s["key"] for s in online], [s["key"] for s in local]])
    return [by_key[key] for key, _ in fused[:k]], notes, web  # type: ignore[index]


_URL = re.compile(r"<?https?://\S+")


def search_text(task: str) -> str:
    """What the first hop searches for: the task without the URLs it names."""
    return " ".join(_URL.sub(" ", task).split())


def clip(text: str, words: int = SOURCE_WORDS) -> str:
    parts = text.split()
    return " ".join(parts[:words]) + (" …" if len(parts) > words else "")


def sources_block(sources: Sequence[SourceRecord]) -> str:
    """The numbered passages as the model reads them."""
    lines = []
    for n, source in enumerate(sources, 1):
        title = source["title"] or source["source"]
        lines.append(f"[{n}] {title}: {clip(source['text'])}")
    return "\n\n".join(lines)


FOLLOW_UP_INSTRUCTION = (
    "Before answering, check the passages above. If a fact the task needs is missing from them "
    "(often the second fact of a two-part question, about something a passage names), reply "
    "with one line: SEARCH: <a short search query for that fact>. If the passages already hold "
    "what is needed, reply with one line: SEARCH: NONE"
)


_SEARCH_LINE = re.compile(r"^[*_`\s]*search[*_`\s]*:[*_`\s]*(.*)$", re.IGNORECASE)


def follow_up_query(reply: str, task: str) -> str | None:
    """The query a branch asked for, or None (NONE, nothing usable, or the task again)."""
    for line in reply.splitlines():
        found = _SEARCH_LINE.match(line.strip())
        if found is None:
            continue
        query = found.group(1).strip().strip("*_`\"'").strip()
        if not query or query.upper().startswith("NONE"):
            return None
        if " ".join(query.lower().split()) == " ".join(task.lower().split()):
            return None
        return query[:200]
    return None


# -- from a branch's numbering to the task's ---------------------------------------------------

_MARK = re.compile(r"\[(\d{1,4}(?:\s*[,;]\s*\d{1,4})*)\](?![(:])")


def to_task_numbers(text: str, keys: Sequence[str], numbers: dict[str, int]) -> str:
    """`text` with each [n] (n counting in `keys`, a branch's own order) rewritten to the task's
    number for that passage. A number the branch was never shown becomes [0], which names no
    passage, so the checker reports it rather than letting it point at someone else's."""

    def one(n: int) -> int:
        return numbers.get(keys[n - 1], 0) if 1 <= n <= len(keys) else 0

    def rewrite(match: re.Match[str]) -> str:
        return re.sub(r"\d+", lambda m: str(one(int(m.group(0)))), match.group(0))

    return _MARK.sub(rewrite, text)


def source_passages(sources: Sequence[SourceRecord]) -> dict[int, SourcePassage]:
    return {
        n: SourcePassage(n, s["id"], s["title"], s["source"], s["text"], s.get("published"))
        for n, s in enumerate(sources, 1)
    }


NOT_FOUND = "I could not find the answer in the sources I searched."
