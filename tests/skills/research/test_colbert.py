"""ColBERTv2 retrieval. The remote client runs against a real HTTP server on 127.0.0.1 that
answers as ColBERT's `server.py` does (the API DSPy's `ColBERTv2` client calls); the local
colbert-ai tests run only where colbert-ai imports and a checkpoint and index are named by
MYNINJA_COLBERT_CHECKPOINT, MYNINJA_COLBERT_INDEX_ROOT and MYNINJA_COLBERT_INDEX (read when this
module is imported: the autouse fixture clears MYNINJA_* variables before each test)."""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from myninja.agent_graph.evals.datasets import load_questions
from myninja.agent_graph.evals.runner import EvalSettings, run_eval
from myninja.backends.scripted import ScriptedBackend
from myninja.config import ColbertConfig
from myninja.errors import (
    EXIT_UNREACHABLE,
    BackendUnreachable,
    BadResponse,
    ConfigError,
    UsageError,
)
from myninja.skills.research.colbert import (
    MAX_QUERY_CHARS,
    LocalColbertRetriever,
    RemoteColbertRetriever,
    colbert_available,
    make_colbert_retriever,
    split_title,
)
from myninja.skills.research.corpus import Corpus
from myninja.skills.research.retrievers import make_retriever
from tests.conftest import run_myninja, scripted_config

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
NQ = FIXTURES / "nq-open-oracle-dev5.jsonl"

CHECKPOINT = os.environ.get("MYNINJA_COLBERT_CHECKPOINT")
INDEX_ROOT = os.environ.get("MYNINJA_COLBERT_INDEX_ROOT")
INDEX = os.environ.get("MYNINJA_COLBERT_INDEX")

PASSAGES = [
    ("Aurora", "Auroras glow near the poles when the solar wind meets the air."),
    ("Tides", "The Moon's gravity raises two tidal bulges on Earth's oceans."),
    ("Pipes", "In the shell | joins two commands: one's output is the other's input."),
    ("", "A passage from a collection without titles."),
]

Ranker = Callable[[str, Sequence[tuple[str, str]]], list[int]]


def overlap(query: str, passages: Sequence[tuple[str, str]]) -> list[int]:
    """A stand-in for ColBERT's ranking: passages by the query words they hold, best first."""
    words = set(re.findall(r"\w+", query.lower()))

    def shared(i: int) -> int:
        title, text = passages[i]
        return len(words & set(re.findall(r"\w+", f"{title} {text}".lower())))

    return sorted(range(len(passages)), key=lambda i: -shared(i))


class ColbertServer(ThreadingHTTPServer):
    """A ColBERT search endpoint: `GET /api/search?query=&k=` answers as ColBERT's server.py
    (text "Title | body", pid, rank, score, prob; best first). Other paths misbehave on purpose:
    /error is an HTTP 500 page, /html a 200 that is not JSON, /no-topk JSON without the list,
    /all ignores k, /slow answers only when released."""

    daemon_threads = True

    def __init__(self, passages: Sequence[tuple[str, str]], ranker: Ranker = overlap) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.passages = list(passages)
        self.ranker = ranker
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        self.release = threading.Event()

    def url(self, path: str = "/api/search") -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def topk(self, query: str, k: int) -> list[dict[str, object]]:
        order = self.ranker(query, self.passages)[:k]
        scores = [30.0 - rank for rank in range(len(order))]
        total = sum(math.exp(s) for s in scores)
        return [
            {
                "text": f"{title} | {text}" if title else text,
                "pid": pid,
                "rank": rank,
                "score": score,
                "prob": math.exp(score) / total,
            }
            for rank, (pid, score) in enumerate(zip(order, scores, strict=True), 1)
            for title, text in [self.passages[pid]]
        ]


class _Handler(BaseHTTPRequestHandler):
    server: ColbertServer

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        params = parse_qs(url.query, keep_blank_values=True)
        self.server.requests.append((url.path, params))
        query = params.get("query", [""])[0]
        k = int(params.get("k", ["10"])[0])
        if url.path == "/error":
            self._send(500, "text/html", "<html>\n<h1>Internal Server Error</h1>\n</html>\n")
        elif url.path == "/html":
            self._send(200, "text/html", "<html>\n<body>a login page</body>\n</html>\n")
        elif url.path == "/no-topk":
            self._send(200, "application/json", json.dumps({"error": "no index loaded"}))
        else:
            if url.path == "/slow":
                self.server.release.wait(10)
            n = len(self.server.passages) if url.path == "/all" else k
            body = {"query": query, "topk": self.server.topk(query, n)}
            self._send(200, "application/json", json.dumps(body, ensure_ascii=False))

    def _send(self, status: int, kind: str, text: str) -> None:
        data = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", f"{kind}; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass  # the test output stays readable


def serve(passages: Sequence[tuple[str, str]], ranker: Ranker = overlap) -> ColbertServer:
    server = ColbertServer(passages, ranker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def server() -> Iterator[ColbertServer]:
    running = serve(PASSAGES)
    yield running
    running.release.set()
    running.shutdown()
    running.server_close()


@pytest.fixture
def colbert(server: ColbertServer) -> Iterator[RemoteColbertRetriever]:
    with RemoteColbertRetriever(server.url(), timeout_s=5) as retriever:
        yield retriever


def query_of(request: tuple[str, dict[str, list[str]]]) -> tuple[str, str]:
    _, params = request
    return params["query"][0], params["k"][0]


# -- the remote endpoint ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("Aurora | Auroras glow.", ("Aurora", "Auroras glow.")),
        ("Pipes | a | b", ("Pipes", "a | b")),  # split on the first " | " only
        ("no title here", ("", "no title here")),
        ("a|b", ("", "a|b")),  # the separator has its spaces
    ],
)
def test_split_title(text: str, parts: tuple[str, str]) -> None:
    assert split_title(text) == parts


def test_hits_come_ranked_with_titles_split(
    server: ColbertServer, colbert: RemoteColbertRetriever
) -> None:
    hits = colbert.search("why do auroras glow at the poles?", 2)
    assert len(hits) == 2
    top = hits[0].passage
    assert (top.id, top.title, top.text) == ("colbert:0", *PASSAGES[0])
    assert top.source == server.url()
    assert hits[0].score > hits[1].score  # the server's scores, best first

    [pipe] = colbert.search("shell commands output input", 1)
    # The body keeps its own " | "; only the title's separator is cut.
    assert (pipe.passage.id, pipe.passage.title, pipe.passage.text) == ("colbert:2", *PASSAGES[2])
    untitled = [
        h for h in colbert.search("collection without titles", 4) if h.passage.id == "colbert:3"
    ]
    assert untitled and (untitled[0].passage.title, untitled[0].passage.text) == PASSAGES[3]


def test_k_reaches_the_server_and_caps_what_comes_back(server: ColbertServer) -> None:
    with RemoteColbertRetriever(server.url(), 5) as colbert:
        assert len(colbert.search("tides moon", 3)) == 3
    assert query_of(server.requests[-1]) == ("tides moon", "3")
    # An endpoint that sends more than k: only the k best are kept, in its order.
    with RemoteColbertRetriever(server.url("/all"), 5) as colbert:
        hits = colbert.search("tides moon", 2)
    assert [h.passage.id for h in hits] == ["colbert:1", "colbert:0"]


@pytest.mark.parametrize(
    "query",
    [
        'say "hi" & k=99 #fragment 100% + ?query=x',
        "naïve café 東京 — ünïcödé 🚀",
        "a;b/c\\d 'single' <tag> %20 %zz",
    ],
)
def test_hostile_queries_reach_the_server_intact(
    server: ColbertServer, colbert: RemoteColbertRetriever, query: str
) -> None:
    colbert.search(query, 3)
    path, params = server.requests[-1]
    assert path == "/api/search"
    assert params == {"query": [query], "k": ["3"]}


def test_blank_queries_and_k_0_ask_nothing(
    server: ColbertServer, colbert: RemoteColbertRetriever
) -> None:
    assert colbert.search("   \n", 5) == []
    assert colbert.search("tides", 0) == []
    assert server.requests == []


def test_a_pasted_page_is_cut_to_what_colbert_reads(
    server: ColbertServer, colbert: RemoteColbertRetriever
) -> None:
    page = "tides " * 5000  # 30,000 characters: past most servers' request-line limit
    assert colbert.search(page, 1)
    sent, _ = query_of(server.requests[-1])
    assert sent == page.strip()[:MAX_QUERY_CHARS]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/error", "answered HTTP 500: <html> <h1>Internal Server Error</h1> </html>"),
        ("/html", "did not answer JSON: '<html> <body>a login page</body> </html>'"),
        ("/no-topk", "answered JSON without a 'topk' list"),
    ],
)
def test_a_bad_answer_is_one_clear_line(server: ColbertServer, path: str, message: str) -> None:
    with RemoteColbertRetriever(server.url(path), 5) as colbert:
        with pytest.raises(BadResponse) as caught:
            colbert.search("tides", 3)
    line = caught.value.one_line()
    assert f"the ColBERT endpoint {server.url(path)} {message}" in line
    assert "[research.colbert] url" in line and "\n" not in line


def test_connection_refused_is_unreachable() -> None:
    # A port bound but not listening refuses connections, and no other test can take it.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{taken.getsockname()[1]}/api/search"
        with RemoteColbertRetriever(url, 5) as colbert:
            with pytest.raises(BackendUnreachable) as caught:
                colbert.search("tides", 3)
    line = caught.value.one_line()
    assert line.startswith(f"cannot reach the ColBERT endpoint {url}: ")
    assert "\n" not in line and caught.value.exit_code == EXIT_UNREACHABLE


def test_a_server_that_does_not_answer_times_out(server: ColbertServer) -> None:
    with RemoteColbertRetriever(server.url("/slow"), timeout_s=0.3) as colbert:
        with pytest.raises(BackendUnreachable) as caught:
            colbert.search("tides", 3)
    line = caught.value.one_line()
    assert f"the ColBERT endpoint {server.url('/slow')} did not answer within 0.3s" in line
    assert "timeout_s" in line and caught.value.exit_code == EXIT_UNREACHABLE


def test_a_url_without_a_scheme_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="must start with http:// or https://"):
        RemoteColbertRetriever("localhost:8893/api/search", 5)


# -- choosing it --------------------------------------------------------------------------------


@pytest.fixture
def corpus(tmp_path: Path) -> Iterator[Corpus]:
    with Corpus.open("empty", create=True, directory=tmp_path) as opened:
        yield opened


def test_make_retriever_gives_the_remote_endpoint_and_auto_never_does(
    server: ColbertServer, corpus: Corpus
) -> None:
    config = ColbertConfig(url=server.url(), timeout_s=3)
    retriever = make_retriever(corpus, "colbert", config)
    assert isinstance(retriever, RemoteColbertRetriever) and retriever.timeout_s == 3
    # It searches the endpoint, not the (empty) corpus.
    assert retriever.search("tides moon", 1)[0].passage.title == "Tides"
    retriever.close()
    assert make_retriever(corpus, "auto", config).name in {"bm25", "hybrid"}


def test_make_retriever_reads_the_config_when_given_none(
    server: ColbertServer, corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MYNINJA_RESEARCH__COLBERT__URL", server.url())
    retriever = make_retriever(corpus, "colbert")
    assert isinstance(retriever, RemoteColbertRetriever) and retriever.url == server.url()
    retriever.close()


def test_unconfigured_colbert_says_how_to_configure_it(corpus: Corpus) -> None:
    with pytest.raises(UsageError) as caught:
        make_retriever(corpus, "colbert")
    line = caught.value.one_line()
    assert line.startswith("the colbert retriever is not configured (")
    assert '[research.colbert] url = "http://HOST:PORT/api/search"' in line
    assert "pip install 'myninja[colbert]'" in line and "\n" not in line


@pytest.mark.skipif(colbert_available(), reason="colbert-ai is installed here")
def test_a_local_index_without_colbert_ai_says_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="needs colbert-ai") as caught:
        make_colbert_retriever(ColbertConfig(index_root=str(tmp_path), index="wiki"))
    assert "pip install 'myninja[colbert]'" in caught.value.one_line()


@pytest.mark.skipif(not colbert_available(), reason="colbert-ai is not installed")
def test_a_local_index_that_is_not_there_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no colbert-ai index at"):
        make_colbert_retriever(ColbertConfig(index_root=str(tmp_path), index="missing"))


# -- a local colbert-ai index, where one exists ----------------------------------------------------

needs_local = pytest.mark.skipif(
    not (colbert_available() and CHECKPOINT and INDEX and Path(CHECKPOINT).expanduser().exists()),
    reason="needs colbert-ai, MYNINJA_COLBERT_CHECKPOINT and MYNINJA_COLBERT_INDEX(_ROOT)",
)


@pytest.fixture(scope="module")
def local() -> Iterator[LocalColbertRetriever]:
    assert INDEX is not None
    retriever = make_colbert_retriever(
        ColbertConfig(checkpoint=CHECKPOINT, index_root=INDEX_ROOT, index=INDEX)
    )
    assert isinstance(retriever, LocalColbertRetriever)
    yield retriever
    retriever.close()


@needs_local
def test_local_hits_are_best_first_with_titles_split(local: LocalColbertRetriever) -> None:
    hits = local.search("who wrote the theory of relativity?", 5)
    assert 1 <= len(hits) <= 5
    scores = [hit.score for hit in hits]
    assert scores == sorted(scores, reverse=True)
    for hit in hits:
        assert re.fullmatch(r"colbert:\d+", hit.passage.id) and hit.passage.text
        assert " | " not in hit.passage.title
    assert local.search("  ", 5) == []


@needs_local
def test_a_local_passage_finds_itself(local: LocalColbertRetriever) -> None:
    some = local.search("history of science", 3)[-1].passage
    # A passage's own opening words (ColBERT reads 32 query tokens) rank it first.
    query = " ".join(f"{some.title} {some.text}".split()[:24])
    assert local.search(query, 3)[0].passage.id == some.id


# -- as users run it ----------------------------------------------------------------------------


@pytest.mark.slow
def test_index_search_with_colbert(server: ColbertServer) -> None:
    env = {"MYNINJA_RESEARCH__COLBERT__URL": server.url()}
    # NAME is no local corpus: ColBERT searches its own index.
    found = run_myninja(
        "index",
        "search",
        "wiki",
        "moon gravity tides",
        "--retriever",
        "colbert",
        "--k",
        "2",
        "--json",
        env=env,
    )
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    top = hits[0]
    assert (top["id"], top["title"], top["source"]) == ("colbert:1", "Tides", server.url())
    assert len(hits) == 2 and query_of(server.requests[-1]) == ("moon gravity tides", "2")

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        env = {"MYNINJA_RESEARCH__COLBERT__URL": f"http://127.0.0.1:{taken.getsockname()[1]}/"}
        down = run_myninja("index", "search", "wiki", "tides", "--retriever", "colbert", env=env)
    assert down.returncode == EXIT_UNREACHABLE, down.stderr
    assert down.stderr.startswith("myninja: error: cannot reach the ColBERT endpoint")
    assert len(down.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_eval_with_colbert_unconfigured_is_a_usage_error(myninja_home: Path) -> None:
    scripted_config(myninja_home, [])
    done = run_myninja(
        "eval", "nq-open", "--data", str(NQ), "--corpus", "x", "--retriever", "colbert"
    )
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("myninja: error: the colbert retriever is not configured (")
    assert "Traceback" not in done.stderr


def test_eval_recall_comes_from_the_remote_passages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    questions = load_questions("nq-open", NQ)
    # The endpoint holds the file's passages (each question's one gold passage, in file order)
    # and ranks them in that order whatever the query, so recall@2 is worked out by hand:
    # only the first two questions find their gold passage. BM25 finds all five.
    pool = [(q.passages[0].title, q.passages[0].text) for q in questions]
    remote = serve(pool, ranker=lambda query, passages: list(range(len(passages))))
    try:
        monkeypatch.setenv("MYNINJA_RESEARCH__COLBERT__URL", remote.url())
        Corpus.open("nq5", create=True).close()  # eval names a corpus; ColBERT never reads it
        scripted = ScriptedBackend("scripted", [], default="I don't know")
        settings = EvalSettings(
            "nq-open", "corpus", corpus="nq5", retriever="colbert", k=2, reader_k=2
        )
        summary = asyncio.run(run_eval(questions, settings, scripted, out=tmp_path))
    finally:
        remote.shutdown()
        remote.server_close()
    assert summary["retriever"] == "colbert" and summary["count"] == 5
    assert summary["recall_at_k"] == 40.0
    assert [query_of(r) for r in remote.requests] == [(q.question, "2") for q in questions]
    prompts = [call.messages[-1]["content"] for call in scripted.calls]
    assert all(p.startswith("Passages:\n[1] Deadpool 2: Deadpool 2 is scheduled") for p in prompts)
