"""Dense retrieval and hybrid fusion: RRF by hand, MiniLM paraphrases, the vector cache, and
`index search --retriever hybrid`. The model tests skip where the `dense` extra is absent."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from myninja.skills.research.corpus import Corpus
from myninja.skills.research.dense import (
    DIM,
    DenseRetriever,
    MiniLMEncoder,
    dense_available,
    embed_missing,
    shared_encoder,
)
from myninja.skills.research.passages import Hit, Passage
from myninja.skills.research.retrievers import (
    BM25Retriever,
    HybridRetriever,
    make_retriever,
    rrf,
)
from tests.conftest import run_myninja

needs_model = pytest.mark.skipif(not dense_available(), reason="the dense extra is not installed")

# Paraphrase pairs: the query shares no word (after stop words and stemming) with its passage.
PASSAGES = [
    ("Felines", "Cats sleep for most of the day and hunt at dusk."),
    ("Automobile repair", "Replace the brake pads when the car squeals while stopping."),
    ("Baking", "Sourdough bread rises because wild yeast makes gas."),
    ("Astronomy", "The Moon's gravity raises two tidal bulges on Earth's oceans."),
    ("Finance", "Interest rates set by central banks shape mortgage payments."),
]
PARAPHRASE = "kitty naps all afternoon"  # -> Felines


# -- fusion, no model ---------------------------------------------------------------------------


def test_rrf_matches_hand_computed_scores() -> None:
    bm25 = ["a", "b", "c", "d"]
    dense = ["c", "a", "e"]
    fused = rrf([bm25, dense], k0=60)
    expected = {
        "a": 1 / 61 + 1 / 62,
        "b": 1 / 62,
        "c": 1 / 63 + 1 / 61,
        "d": 1 / 64,
        "e": 1 / 63,
    }
    # a (61,62) beats c (61,63); b ties with nothing; e (63) beats d (64).
    assert [item for item, _ in fused] == ["a", "c", "b", "e", "d"]
    for item, score in fused:
        assert score == pytest.approx(expected[item])


def test_rrf_ties_go_to_the_first_seen() -> None:
    assert [i for i, _ in rrf([["x", "y"], ["y", "x"]])] == ["x", "y"]
    assert [i for i, _ in rrf([["p"], ["q"]])] == ["p", "q"]
    assert rrf([[], []]) == []


class Fixed:
    """A retriever answering every query with one fixed ranking."""

    def __init__(self, name: str, ids: Sequence[str]) -> None:
        self.name = name
        self.ids = list(ids)
        self.asked: list[int] = []

    def search(self, query: str, k: int = 10) -> list[Hit]:
        self.asked.append(k)
        return [
            Hit(Passage(id=i, title=i, text=f"text {i}", source="s"), float(-r))
            for r, i in enumerate(self.ids[:k])
        ]


def test_hybrid_fuses_two_rankings_by_rrf() -> None:
    bm25, dense = Fixed("bm25", "abcd"), Fixed("dense", "cae")
    hybrid = HybridRetriever(bm25, dense, k0=60)
    hits = hybrid.search("anything", k=3)
    assert [h.passage.id for h in hits] == ["a", "c", "b"]
    assert hits[0].score == pytest.approx(1 / 61 + 1 / 62)
    assert hits[0].passage.text == "text a"
    assert bm25.asked == [20] and dense.asked == [20]  # each list's top 20 fused
    assert hybrid.search("anything", k=0) == []


def test_make_retriever_bm25_and_unknown(tmp_path: Path) -> None:
    with Corpus.open("t", create=True) as corpus:
        assert isinstance(make_retriever(corpus, "bm25"), BM25Retriever)
        with pytest.raises(ValueError, match="unknown retriever"):
            make_retriever(corpus, "magic")


def test_auto_is_bm25_when_dense_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MYNINJA_DENSE", "off")
    assert not dense_available()
    with Corpus.open("t", create=True) as corpus:
        assert make_retriever(corpus, "auto").name == "bm25"


# -- the real model -----------------------------------------------------------------------------


class Counting:
    """Wraps an encoder and counts the texts it is asked to embed."""

    def __init__(self, inner: MiniLMEncoder) -> None:
        self.inner = inner
        self.name = inner.name
        self.texts = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.texts += len(texts)
        return self.inner.encode(texts)


def write_passages(path: Path, rows: Sequence[tuple[str, str]]) -> Path:
    path.write_text(
        "".join(
            json.dumps({"id": f"p{i}", "title": t, "text": x}) + "\n"
            for i, (t, x) in enumerate(rows)
        )
    )
    return path


@pytest.fixture
def small(tmp_path: Path) -> Iterator[tuple[Corpus, Path]]:
    source = write_passages(tmp_path / "psgs.jsonl", PASSAGES)
    with Corpus.open("small", create=True) as corpus:
        corpus.add([source])
        yield corpus, source


@needs_model
def test_encoder_gives_unit_vectors() -> None:
    vectors = shared_encoder().encode(["a cat", "a kitten", "tax law", ""])
    assert vectors.shape == (4, DIM) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    assert shared_encoder().encode([]).shape == (0, DIM)


@needs_model
def test_paraphrase_found_by_dense_not_bm25(small: tuple[Corpus, Path]) -> None:
    corpus, _ = small
    assert BM25Retriever(corpus).search(PARAPHRASE, 5) == []
    [top] = DenseRetriever(corpus).search(PARAPHRASE, 1)
    assert top.passage.title == "Felines" and top.passage.id == "p0"
    assert top.passage.source.endswith("psgs.jsonl")
    hybrid = make_retriever(corpus, "hybrid")
    assert hybrid.search(PARAPHRASE, 3)[0].passage.id == "p0"
    # A query both find: the passage with the shared words leads the fused list too.
    assert hybrid.search("why does sourdough bread rise", 3)[0].passage.title == "Baking"


@needs_model
def test_vectors_are_cached_by_passage_content(small: tuple[Corpus, Path], tmp_path: Path) -> None:
    corpus, source = small
    encoder = Counting(shared_encoder())
    assert embed_missing(corpus, encoder) == len(PASSAGES)
    assert encoder.texts == len(PASSAGES)
    assert embed_missing(corpus, encoder) == 0 and encoder.texts == len(PASSAGES)

    # Re-opening the corpus, and a fresh retriever, embed nothing but the query.
    with Corpus.open("small") as again:
        retriever = DenseRetriever(again, encoder)
        retriever.search(PARAPHRASE, 2)
        assert encoder.texts == len(PASSAGES) + 1
        retriever.search(PARAPHRASE, 2)  # matrix loaded once: only the query again
        assert encoder.texts == len(PASSAGES) + 2

    # Re-indexing a changed file: only the changed passage is new; the gone one's vector goes.
    changed = [*PASSAGES[:-1], ("Finance", "Bond yields rise when inflation expectations do.")]
    write_passages(source, changed)
    corpus.add([source])
    before = encoder.texts
    assert embed_missing(corpus, encoder) == 1 and encoder.texts == before + 1
    count = corpus.db.execute("SELECT count(*) FROM vectors").fetchone()[0]
    assert count == len(PASSAGES)


@needs_model
def test_dense_retriever_sees_passages_added_later(small: tuple[Corpus, Path], tmp_path: Path):
    corpus, _ = small
    retriever = DenseRetriever(corpus)
    assert retriever.search("volcano eruption", 1)[0].passage.title != "Volcanoes"
    extra = write_passages(tmp_path / "more.jsonl", [("Volcanoes", "Hekla erupts in Iceland.")])
    corpus.add([extra])
    assert retriever.search("volcano eruption", 1)[0].passage.title == "Volcanoes"
    assert retriever.search("   ", 3) == [] and retriever.search("x", 0) == []


@needs_model
@pytest.mark.slow
def test_index_search_hybrid_cli(tmp_path: Path) -> None:
    source = write_passages(tmp_path / "psgs.jsonl", PASSAGES)
    added = run_myninja("index", "add", "notes", str(source), "--json")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["embedded"] == len(PASSAGES)

    found = run_myninja(
        "index", "search", "notes", PARAPHRASE, "--retriever", "hybrid", "--k", "2", "--json"
    )
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert len(hits) == 2 and hits[0]["title"] == "Felines"
    assert hits[0]["score"] == pytest.approx(1 / 61)  # dense rank 1, no BM25 match

    bm25 = run_myninja("index", "search", "notes", PARAPHRASE, "--retriever", "bm25", "--json")
    assert bm25.returncode == 0 and json.loads(bm25.stdout) == []

    bad = run_myninja("index", "search", "notes", "x", "--retriever", "magic")
    assert bad.returncode == 2 and "magic" in bad.stderr
