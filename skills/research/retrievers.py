"""Retrievers: one small interface over the ways a corpus can be searched.

The researcher asks a `Retriever` for the top k passages and never learns how they were found,
so BM25, MiniLM vectors (skills/research/dense.py, the `dense` extra), the two fused by
reciprocal-rank fusion, and ColBERTv2 (skills/research/colbert.py: a remote endpoint or a local
colbert-ai index, searched instead of the corpus) are interchangeable. `make_retriever` picks one
by name; "auto" is hybrid where the dense extra is installed and BM25 elsewhere, never ColBERT,
which is used only when asked for by name and configured in `[research.colbert]`.

Queries are text from people and from models, so they never reach FTS5's MATCH as written:
each word is quoted as an FTS5 string and the words are ORed, so quotes, `NEAR(`, `*`, `^`,
`AND`/`OR`/`NOT`, `col:` and brackets are searched for as words (or dropped), never parsed as
query syntax. Stop words are dropped from the query (not from the index): ORing "the" in would
match every passage and score nothing.
"""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from collections.abc import Hashable, Sequence
from contextlib import closing
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .passages import Passage

if TYPE_CHECKING:
    from myninja.config import ColbertConfig

    from .corpus import Corpus

# What FTS5's unicode61 tokenizer keeps as a token: letters and digits. Everything else is a
# separator there, so splitting on it here loses nothing the index could have matched.
_WORD = re.compile(r"[^\W_]+")
MAX_TERMS = 64  # a pasted page still makes a query FTS5 answers in milliseconds

STOP_WORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each few
    for from further had has have having he her here hers herself him himself his how i if in
    into is it its itself just me more most my myself no nor not now of off on once only or
    other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up very
    was we were what when where which while who whom whose why will with would you your yours
    yourself yourselves""".split()
)


def query_terms(text: str) -> list[str]:
    """The distinct words of `text`, lower-cased, stop words dropped, in order of appearance."""
    words = _WORD.findall(unicodedata.normalize("NFKC", text).lower())
    return [w for w in dict.fromkeys(words) if w not in STOP_WORDS][:MAX_TERMS]


def fts_query(text: str) -> str:
    """An FTS5 MATCH expression for `text`: its terms as quoted strings, ORed. Empty when no
    term is left (FTS5 rejects an empty MATCH, so callers return no hits instead)."""
    # Terms hold only letters and digits, so the doubling never fires today; it is what keeps
    # the string closed if the word pattern ever changes.
    return " OR ".join('"' + term.replace('"', '""') + '"' for term in query_terms(text))


def rank_texts(query: str, documents: Sequence[tuple[str, str]]) -> list[int]:
    """The indices of `documents` ((title, text) pairs) best first by BM25 for `query`, scored
    as a corpus scores them (FTS5, same tokenizer and weights) but within these documents alone:
    a question's own paragraphs, a fetched page's chunks. Documents no query word matches keep
    their order after the rest."""
    from .corpus import TEXT_WEIGHT, TITLE_WEIGHT, TOKENIZE

    match = fts_query(query)
    order: list[int] = []
    if match and documents:
        with closing(sqlite3.connect(":memory:")) as db:
            db.execute(f"CREATE VIRTUAL TABLE d USING fts5(title, text, tokenize='{TOKENIZE}')")
            db.executemany(
                "INSERT INTO d(rowid, title, text) VALUES (?, ?, ?)",
                [(i, title, text) for i, (title, text) in enumerate(documents)],
            )
            rows = db.execute(
                "SELECT rowid FROM d WHERE d MATCH ? ORDER BY bm25(d, ?, ?), rowid",
                (match, TITLE_WEIGHT, TEXT_WEIGHT),
            )
            order = [row[0] for row in rows]
    seen = set(order)
    return order + [i for i in range(len(documents)) if i not in seen]


def rank_passages(query: str, passages: Sequence[Passage], name: str = "auto") -> list[int]:
    """The indices of `passages` best first for `query`, by the retriever called `name` as a
    corpus would rank them, but over these passages alone (a task's fetched pages): BM25 as
    `rank_texts` scores it, MiniLM cosine for "dense", the two fused by reciprocal rank for
    "hybrid" ("auto": hybrid where the dense extra is installed). ColBERT ranks its own index
    only, so here it is BM25."""
    documents = [(p.title, p.text) for p in passages]
    lexical = rank_texts(query, documents)
    if name in ("bm25", "colbert") or not passages:
        return lexical
    from . import dense

    if not dense.dense_available():
        if name == "auto":
            return lexical
        from myninja.errors import UsageError

        raise UsageError(f"the {name} retriever needs the dense extra", hint="use bm25")
    vectors = dense.shared_encoder().encode([dense.embed_input(t, x) for t, x in documents])
    scores = vectors @ dense.shared_encoder().encode([query])[0]
    by_vector = sorted(range(len(passages)), key=lambda i: (-float(scores[i]), i))
    if name == "dense":
        return by_vector
    return [int(i) for i, _ in rrf([lexical, by_vector])]  # type: ignore[call-overload]


@dataclass(frozen=True, slots=True)
class Hit:
    """A retrieved passage. `score` is higher for better hits and comparable only between hits
    of one query from one retriever."""

    passage: Passage
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self.passage), "score": self.score}


class Retriever(Protocol):
    """Anything that finds the k best passages for a query."""

    name: str

    def search(self, query: str, k: int = 10) -> list[Hit]:
        """The best `k` hits, best first; [] when nothing matches. Never raises on odd text."""
        ...


class BM25Retriever:
    """BM25 over the corpus's FTS5 index (title weighted a little above the text)."""

    name = "bm25"

    def __init__(self, corpus: Corpus) -> None:
        self.corpus = corpus

    def search(self, query: str, k: int = 10) -> list[Hit]:
        return self.corpus.search(query, k)


RRF_K0 = 60  # the constant of Cormack et al. (2009): damps the weight of the very top ranks
FUSION_DEPTH = 20  # hits taken from each retriever before fusing: deeper lists let a
# passage ranked low by both outscore one ranked high by one (HotpotQA recall@10 fell from 0.90
# at 20 to 0.86 at 50 on the dev files, benchmarks/retrieval.py)
RETRIEVER_NAMES = ("auto", "bm25", "dense", "hybrid", "colbert")


def rrf(rankings: Sequence[Sequence[Hashable]], k0: int = RRF_K0) -> list[tuple[Hashable, float]]:
    """Reciprocal-rank fusion: each item scores sum(1 / (k0 + rank)) over the rankings it is in
    (ranks from 1). Best first; ties go to the item seen first (earlier ranking, better rank)."""
    scores: dict[Hashable, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, 1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k0 + rank)
    order = {item: i for i, item in enumerate(scores)}
    return sorted(scores.items(), key=lambda kv: (-kv[1], order[kv[0]]))


class HybridRetriever:
    """BM25 and dense hits fused by reciprocal rank: a passage either finds well comes first,
    one both find comes before either alone. Scores are the fused RRF scores."""

    name = "hybrid"

    def __init__(
        self, bm25: Retriever, dense: Retriever, k0: int = RRF_K0, depth: int = FUSION_DEPTH
    ) -> None:
        self.retrievers = (bm25, dense)
        self.k0 = k0
        self.depth = depth

    def search(self, query: str, k: int = 10) -> list[Hit]:
        if k < 1:
            return []
        n = max(k, self.depth)
        lists = [r.search(query, n) for r in self.retrievers]
        by_id: dict[str, Hit] = {}
        for hits in lists:
            for hit in hits:
                by_id.setdefault(hit.passage.id, hit)
        fused = rrf([[hit.passage.id for hit in hits] for hits in lists], self.k0)[:k]
        return [Hit(by_id[pid].passage, score) for pid, score in fused]  # type: ignore[index]


def make_retriever(
    corpus: Corpus, name: str = "auto", colbert: ColbertConfig | None = None
) -> Retriever:
    """The retriever called `name` over `corpus`: "bm25", "dense", "hybrid", or "auto" (hybrid
    when the dense extra is installed, else bm25). Dense and hybrid without the extra raise.
    "colbert" searches the ColBERT index `colbert` describes (default: the config file's
    `[research.colbert]`), not `corpus`; unconfigured, it raises with how to configure it."""
    if name not in RETRIEVER_NAMES:
        raise ValueError(f"unknown retriever {name!r}; choose from {', '.join(RETRIEVER_NAMES)}")
    if name == "colbert":
        from .colbert import make_colbert_retriever

        if colbert is None:
            from myninja.config_file import load_config

            colbert = load_config().research.colbert
        return make_colbert_retriever(colbert)
    if name == "bm25":
        return BM25Retriever(corpus)
    from . import dense

    if name == "auto":
        if not dense.dense_available():
            return BM25Retriever(corpus)
        name = "hybrid"
    if not dense.dense_available():
        from myninja.errors import UsageError

        raise UsageError(
            f"the {name} retriever needs the dense extra",
            hint="pip install 'myninja[dense]', or use --retriever bm25",
        )
    vectors = dense.DenseRetriever(corpus)
    return vectors if name == "dense" else HybridRetriever(BM25Retriever(corpus), vectors)
