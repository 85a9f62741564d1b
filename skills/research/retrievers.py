"""Retrievers: one small interface over the ways a corpus can be searched.

The researcher asks a `Retriever` for the top k passages and never learns how they were found,
so BM25, MiniLM vectors (skills/research/dense.py, the `dense` extra), the two fused by
reciprocal-rank fusion, and ColBERTv2 (skills/research/colbert.py: a remote endpoint or a local
colbert-ai index, searched instead of the corpus) are interchangeable. `make_retriever` picks one
by name; "auto" is hybrid where the dense extra is installed and BM25 elsewhere, never ColBERT,
which is used only when asked for by name and configured in `[research.colbert]`.

Query text becomes FTS5 MATCH syntax, and texts are ranked in memory, in fts.py.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Protocol

from .fts import rank_texts
from .passages import Hit, Passage

if TYPE_CHECKING:
    from myninja.config import ColbertConfig

    from .corpus import Corpus


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
