"""The researcher in the graph: passages from a real corpus (SQLite in the temp home), a
follow-up hop, and the citation checker in finalize, on a scripted backend."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

import pytest

from myninja.agent_graph.research import (
    NOT_FOUND,
    fetch_named_pages,
    follow_up_query,
    to_task_numbers,
)
from myninja.agent_graph.tasks.manager import TaskManager
from myninja.backends.scripted import Rule, ScriptedBackend
from myninja.config import Config, ResearchConfig
from myninja.skills.research.corpus import Corpus
from tests.agent_graph.scripts import ALTERNATIVE, CAREFUL, DIRECT, branch, judge
from tests.agent_graph.test_graph import CLASSIC, Open, of_type, run_to_rest
from tests.local_http import serving
from tests.skills.research.test_fetch import Handler as FetchHandler

FOUNDER = "Zorblat Inc. was founded in 1987 by the engineer Mira Quell in a garage."
CHILDHOOD = "Mira Quell spent her childhood in Tallinn, where her parents ran a bakery."
OTHER = "Tartu hosts the oldest university of Estonia."
TASK = "@researcher In which town did the founder of Zorblat grow up?"
FOLLOW_UP = {"match": r"SEARCH: <a short", "reply": "SEARCH: Mira Quell childhood"}


@pytest.fixture
def open_manager(tmp_path: Path) -> Open:
    """A manager whose researcher searches with BM25 alone, so which passages a query finds
    can be worked out from its words (dense vectors would rank every passage)."""

    @asynccontextmanager
    async def opener(
        rules: list[dict[str, Any]], **graph: Any
    ) -> AsyncIterator[tuple[TaskManager, ScriptedBackend]]:
        scripted = ScriptedBackend("embedded", [Rule(**r) for r in rules])
        config = Config.model_validate(
            {"graph": {**CLASSIC, **graph}, "research": {"retriever": "bm25"}}
        )
        async with TaskManager.open(
            config, tmp_path / "data", backends={"embedded": scripted}
        ) as manager:
            yield manager, scripted

    return opener


@pytest.fixture
def notes(myninja_home: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    for name, text in (("zorblat", FOUNDER), ("quell", CHILDHOOD), ("tartu", OTHER)):
        (folder / f"{name.title()}.txt").write_text(f"{text}\n")
    with Corpus.open("notes", create=True) as corpus:
        corpus.add([folder])
    return folder


def prompts(scripted: Any, words: str) -> list[str]:
    return [c.messages[-1]["content"] for c in scripted.calls if words in c.messages[-1]["content"]]


async def test_branches_read_the_passages_search_again_and_the_answer_lists_its_sources(
    open_manager: Open, notes: Path
) -> None:
    direct = "Tallinn, I think [1]."
    careful = (
        'Tallinn. Zorblat was founded by Mira Quell [1], who spent her "childhood in Tallinn" [2].'
    )
    rules = [
        FOLLOW_UP,
        judge("Tallinn, I think", 4),
        judge("Tallinn. Zorblat", 9),
        branch(DIRECT, direct),
        branch(CAREFUL, careful),
    ]
    async with open_manager(rules, branches=2) as (manager, scripted):
        task_id = await manager.submit(TASK)
        task = await run_to_rest(manager, task_id)
        assert task["status"] == "done", task
        first, second = of_type(manager, task_id, "retrieved")
        # Hop 1 finds the founder (the question names Zorblat); only the follow-up, written by
        # the second branch from what hop 1 found, finds where she grew up.
        assert (first["hop"], first["branch_id"]) == (1, None)
        assert [p["text"] for p in first["passages"]] == [FOUNDER]
        assert (second["hop"], second["branch_id"]) == (2, "s1r1b2")
        assert second["query"] == "Mira Quell childhood"
        assert [p["text"] for p in second["passages"]] == [CHILDHOOD]
        (direct_prompt,) = prompts(scripted, DIRECT)
        (careful_prompt,) = prompts(scripted, CAREFUL)
        assert f"[1] Zorblat: {FOUNDER}" in direct_prompt and CHILDHOOD not in direct_prompt
        assert f"[2] Quell: {CHILDHOOD}" in careful_prompt
        answer = task["answer"]
        assert answer.startswith(careful + "\n\n**Sources**\n\n")
        assert f"[1] Zorblat — {notes / 'Zorblat.txt'}" in answer
        assert f"[2] Quell — {notes / 'Quell.txt'}" in answer
        (checked,) = of_type(manager, task_id, "citations")
        assert checked["dropped"] == [] and checked["repaired"] is False
        stored = manager.store.citations(task_id)
        assert [(c["n"], c["title"], c["text"]) for c in stored] == [
            (1, "Zorblat", FOUNDER),
            (2, "Quell", CHILDHOOD),
        ]
        assert manager.store.search("bakery")[0]["id"] == task_id  # found by its cited passage
        # A question is one step, planned without a model call.
        (plan,) = of_type(manager, task_id, "plan")
        assert plan["steps"] == [{"title": "Answer", "instruction": TASK[len("@researcher ") :]}]
        assert not prompts(scripted, "Task to plan")


async def test_a_wrong_citation_gets_one_repair_round(open_manager: Open, notes: Path) -> None:
    wrong = 'Tallinn [3]. She grew up "near the sea" [1].'
    fixed = 'Tallinn [1]. She spent her "childhood in Tallinn" [1].'
    rules = [
        {"match": r"Some citations in your answer are not supported", "reply": fixed},
        branch(DIRECT, wrong),
    ]
    async with open_manager(rules, branches=1) as (manager, scripted):
        task = await run_to_rest(manager, await manager.submit("@researcher Quell childhood?"))
        (repair,) = prompts(scripted, "Some citations")
        assert "[0] names no passage retrieved for this task" in repair  # [3] of 2
        assert "the quote “near the sea” occurs in no retrieved passage" in repair
        assert task["answer"].startswith(fixed + "\n\n**Sources**\n\n[1] Quell")
        (checked,) = of_type(manager, task["id"], "citations")
        assert checked["repaired"] is True and checked["dropped"] == []


async def test_what_the_repair_leaves_unsupported_is_dropped_and_said(
    open_manager: Open, notes: Path
) -> None:
    wrong = "Tallinn [1]. Her parents were sailors [4]."
    rules = [
        {"match": r"Some citations in your answer are not supported", "reply": wrong},
        branch(DIRECT, wrong),
    ]
    async with open_manager(rules, branches=1) as (manager, _):
        task = await run_to_rest(manager, await manager.submit("@researcher Quell childhood?"))
        assert task["answer"].split("\n\n")[0] == "Tallinn [1]."
        (checked,) = of_type(manager, task["id"], "citations")
        assert checked["repaired"] is False
        assert [d["sentence"] for d in checked["dropped"]] == ["Her parents were sailors [0]."]
        assert checked["dropped"][0]["problems"][0]["kind"] == "unknown_source"


async def test_an_answer_with_nothing_supported_says_it_found_nothing(
    open_manager: Open, notes: Path
) -> None:
    rules = [
        # A repair that gives up every citation is no repair: the answer is checked as it was.
        {"match": r"Some citations in your answer are not supported", "reply": "It was Paris."},
        branch(DIRECT, "It was Paris [5]."),
    ]
    async with open_manager(rules, branches=1) as (manager, _):
        task = await run_to_rest(manager, await manager.submit("@researcher Quell childhood?"))
        assert task["answer"] == NOT_FOUND
        assert manager.store.citations(task["id"]) == []


async def test_only_cited_sources_are_listed_numbered_by_first_use(
    open_manager: Open, notes: Path
) -> None:
    # Hop 1 for "Estonia bakery town" finds two passages; the answer cites only the second.
    rules = [branch(DIRECT, "It is in Estonia [2].")]
    async with open_manager(rules, branches=1) as (manager, _):
        task = await run_to_rest(manager, await manager.submit("@researcher Estonia bakery town"))
        (found,) = of_type(manager, task["id"], "retrieved")
        assert sorted(p["text"] for p in found["passages"]) == sorted([CHILDHOOD, OTHER])
        second = found["passages"][1]
        assert task["answer"].startswith(
            f"It is in Estonia [1].\n\n**Sources**\n\n[1] {second['title']} — {second['source']}"
        )
        assert [c["text"] for c in manager.store.citations(task["id"])] == [second["text"]]


async def test_without_a_corpus_the_researcher_answers_and_the_trace_says_why(
    open_manager: Open,
) -> None:
    rules = [branch(DIRECT, "Tallinn.")]
    async with open_manager(rules, branches=1) as (manager, scripted):
        task = await run_to_rest(manager, await manager.submit("@researcher Quell childhood?"))
        assert task["answer"] == "Tallinn."
        (found,) = of_type(manager, task["id"], "retrieved")
        assert found["passages"] == [] and "no local corpus" in found["notes"][0]
        assert of_type(manager, task["id"], "citations") == []
        assert "Sources:" not in prompts(scripted, DIRECT)[0]


@pytest.mark.parametrize(
    ("reply", "query"),
    [
        ("SEARCH: Mira Quell childhood", "Mira Quell childhood"),
        ('**SEARCH:** "Quell"', "Quell"),
        ("Let me think.\nsearch: NONE", None),
        ("SEARCH:", None),
        ("The answer is Tallinn.", None),
        ("SEARCH: in which town did the founder grow up?", None),  # the task again
    ],
)
def test_follow_up_query(reply: str, query: str | None) -> None:
    assert follow_up_query(reply, "In which town did the founder grow up?") == query


def test_branch_numbers_become_task_numbers() -> None:
    keys = ["a", "b", "c"]
    numbers = {"a": 1, "c": 2, "b": 5}
    text = "X [1]. Y [2, 3] and [3][1]. Z [4]. Link [1](http://x)."
    assert (
        to_task_numbers(text, keys, numbers)
        == "X [1]. Y [5, 2] and [2][1]. Z [0]. Link [1](http://x)."
    )


PAGE = (
    "<html><head><title>Zorblat history</title></head><body><nav>Home | Shop | Login</nav>"
    "<article><h1>Zorblat history</h1><p>Zorblat Inc. moved its workshop to Narva in 1994, "
    "seven years after Mira Quell founded it in a garage.</p></article>"
    "<footer>Cookie settings</footer></body></html>"
)


class _Pages(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        found = self.path == "/history.html"
        body = PAGE.encode() if found else b"gone"
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def site() -> Iterator[str]:
    with serving(_Pages) as url:
        yield url


async def test_a_page_the_task_names_is_fetched_read_first_and_cited_by_url(
    open_manager: Open, notes: Path, site: str
) -> None:
    rules = [branch(DIRECT, "Narva, since 1994 [1].")]
    text = f"@researcher Where did Zorblat move its workshop? See {site}/history.html and {site}/x."
    async with open_manager(rules, branches=1) as (manager, scripted):
        task = await run_to_rest(manager, await manager.submit(text))
        (found,) = of_type(manager, task["id"], "retrieved")
        page = found["passages"][0]
        assert page["source"] == f"{site}/history.html" and page["title"] == "Zorblat history"
        assert "moved its workshop to Narva" in page["text"] and "Cookie" not in page["text"]
        assert found["query"] == "Where did Zorblat move its workshop? See and"
        assert [p["text"] for p in found["passages"][1:]] == [FOUNDER]  # the corpus, after
        assert any(f"cannot fetch {site}/x" in note and "404" in note for note in found["notes"])
        shown = prompts(scripted, DIRECT)[0]
        assert shown.index("[1] Zorblat history: ") < shown.index("Inc. moved") < shown.index("[2]")
        assert task["answer"].startswith(
            "Narva, since 1994 [1].\n\n**Sources**\n\n"
            f"[1] Zorblat history — 127.0.0.1 — {site}/history.html"
        )


async def test_a_url_the_person_typed_may_be_on_loopback_but_not_what_it_redirects_to() -> None:
    # Typing http://localhost:…/ allows localhost; its redirect to 127.0.0.1 is another host.
    handler = type("TypedSite", (FetchHandler,), {"seen": []})
    with serving(handler) as base:
        port = base.rsplit(":", 1)[1]
        typed = f"See {base}/article and http://localhost:{port}/to-loopback please."
        found, notes = await fetch_named_pages(typed, "otters", ResearchConfig(retriever="bm25"))
    assert {p["source"] for p in found} == {f"{base}/article"}
    (note,) = notes
    assert note.startswith(
        f"cannot fetch http://localhost:{port}/to-loopback (redirected to {base}/article): "
        "127.0.0.1 is a loopback address"
    )
    # /article was asked for once: by the typed URL, never by the redirect.
    assert [path for path, _ in handler.seen].count("/article") == 1


class _Colbert(BaseHTTPRequestHandler):
    """A ColBERT endpoint in DSPy's format: every query gets the same two passages."""

    queries: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        from urllib.parse import parse_qs, urlparse

        params = parse_qs(urlparse(self.path).query)
        self.queries.append(params["query"][0])
        topk = [
            {"pid": 7, "rank": 1, "score": 20.5, "text": f"Mira Quell | {CHILDHOOD}"},
            {"pid": 9, "rank": 2, "score": 11.0, "text": f"Tartu | {OTHER}"},
        ][: int(params["k"][0])]
        body = json.dumps({"topk": topk}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


async def test_with_colbert_the_researcher_searches_the_endpoint_once_per_query(
    tmp_path: Path, notes: Path
) -> None:
    scripted = ScriptedBackend(
        "embedded",
        [Rule(**r) for r in (FOLLOW_UP, branch(DIRECT, "Tallinn [1]."))],
    )
    with serving(_Colbert) as base:
        url = f"{base}/api/search"
        research = {"retriever": "colbert", "colbert": {"url": url}}
        config = Config.model_validate({"graph": {"branches": 1}, "research": research})
        async with TaskManager.open(
            config, tmp_path / "data", backends={"embedded": scripted}
        ) as manager:
            task = await run_to_rest(manager, await manager.submit("@researcher Quell town?"))
            first, again = of_type(manager, task["id"], "retrieved")
    # The lone branch searched again: two queries, each sent once (not once per corpus).
    assert _Colbert.queries == ["Quell town?", "Mira Quell childhood"]
    assert [p["title"] for p in first["passages"]] == ["Mira Quell", "Tartu"]
    assert again["passages"] == []  # nothing it had not seen
    assert task["answer"].startswith(
        f"Tallinn [1].\n\n**Sources**\n\n[1] Mira Quell — 127.0.0.1 — {url}"
    )


async def test_the_citation_checker_outranks_the_judge(open_manager: Open, notes: Path) -> None:
    invented = 'Tallinn [1]. She loved "the sea breeze" [1]. Her father was a pilot [6].'
    honest = "Tallinn [1]."
    rules = [
        {"match": r"SEARCH: <a short", "reply": "SEARCH: NONE"},
        judge("Tallinn \\[1\\]\\. She loved", 9),
        judge("Tallinn \\[1\\]\\.\n", 8),
        branch(DIRECT, invented),
        branch(CAREFUL, honest),
    ]
    async with open_manager(rules, branches=2) as (manager, _):
        task = await run_to_rest(manager, await manager.submit("@researcher Quell childhood?"))
        # The judge would prefer the invented answer (9 against 8); it is never asked: the
        # checker finds two sentences of it unsupported and none of the honest one.
        assert of_type(manager, task["id"], "evaluation") == []
        (selected,) = of_type(manager, task["id"], "selected")
        assert (selected["branch_id"], selected["by"]) == ("s1r1b2", "checks")
        assert task["answer"].startswith("Tallinn [1].\n\n**Sources**")


async def test_a_sentence_written_from_a_passage_without_a_mark_is_cited_by_its_words(
    open_manager: Open, notes: Path
) -> None:
    uncited = "Mira Quell spent her childhood in Tallinn, where her parents ran a bakery. Nice!"
    rules = [branch(DIRECT, uncited)]
    async with open_manager(rules, branches=1) as (manager, _):
        task = await run_to_rest(manager, await manager.submit("@researcher Quell childhood?"))
        (found,) = of_type(manager, task["id"], "retrieved")
        n = 1 + [p["text"] for p in found["passages"]].index(CHILDHOOD)
        (checked,) = of_type(manager, task["id"], "citations")
        assert [(a["n"], a["share"]) for a in checked["attributed"]] == [(n, 1.0)]
        assert task["answer"].startswith(
            "Mira Quell spent her childhood in Tallinn, where her parents ran a bakery [1]. Nice!"
            "\n\n**Sources**\n\n[1] Quell"
        )


@pytest.mark.parametrize("compare_sourced", [True, False])
async def test_a_step_with_sources_runs_every_branch_and_the_judge_compares_them(
    open_manager: Open, notes: Path, compare_sourced: bool
) -> None:
    # Two branches say the same thing from the same passage; on the dev sets that is no
    # evidence: the judge compares all three (here it picks the third).
    rules = [
        {"match": r"SEARCH: <a short", "reply": "SEARCH: NONE"},
        {"match": r"Which candidate", "json": {"best": 3, "reasons": "the third"}},
        branch(DIRECT, "Tallinn [1]."),
        branch(CAREFUL, "Tallinn [1].\nShe grew up there."),
        branch(ALTERNATIVE, 'Tallinn, "where her parents ran a bakery" [1].'),
    ]
    graph = {"adaptive": True, "judge": "compare", "compare_sourced": compare_sourced}
    async with open_manager(rules, **graph) as (manager, scripted):
        task = await run_to_rest(manager, await manager.submit("@researcher Quell childhood?"))
        started = [e["branch_id"] for e in of_type(manager, task["id"], "branch_started")]
        (selected,) = of_type(manager, task["id"], "selected")
        compared = [c for c in scripted.calls if "Which candidate" in str(c.messages)]
        if compare_sourced:
            assert started == ["s1r1b1", "s1r1b2", "s1r1b3"]  # one wave, nothing widened
            assert of_type(manager, task["id"], "widened") == []
            assert (selected["branch_id"], selected["by"]) == ("s1r1b3", "judge")
            assert len(compared) == 1
            assert task["answer"].startswith('Tallinn, "where her parents ran a bakery" [1].')
        else:  # the first branch's citations hold: it is kept alone, as for any other step
            assert started == ["s1r1b1"]
            assert (selected["branch_id"], selected["by"]) == ("s1r1b1", "only")
            assert not compared
