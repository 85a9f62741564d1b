"""Ranking a handful of passages that are in no corpus (a question's own paragraphs, a task's
fetched pages) the way a corpus ranks its own."""

from __future__ import annotations

import pytest

from myninja.skills.research.dense import dense_available
from myninja.skills.research.fts import rank_texts
from myninja.skills.research.passages import Passage
from myninja.skills.research.retrievers import rank_passages

DOCS = [
    ("Tartu", "Tartu hosts the oldest university of Estonia."),
    ("Zorblat", "Zorblat Inc. was founded in 1987 by Mira Quell."),
    ("Kessa", "The Kessa is a slow river; its delta is a bird reserve."),
]
PASSAGES = [Passage(id=str(i), title=t, text=x, source="page") for i, (t, x) in enumerate(DOCS)]


def test_bm25_puts_the_matching_document_first_and_keeps_the_rest_in_order() -> None:
    assert rank_texts("who founded Zorblat?", DOCS) == [1, 0, 2]
    assert rank_texts('"NEAR( * ) OR', DOCS) == [0, 1, 2]  # syntax is searched for, not run
    assert rank_passages("who founded Zorblat?", PASSAGES, "bm25") == [1, 0, 2]


@pytest.mark.skipif(not dense_available(), reason="the dense extra is not installed")
def test_dense_and_hybrid_find_a_paraphrase_bm25_cannot() -> None:
    query = "wildlife sanctuary where waterfowl breed"  # no word of any passage
    lexical = rank_texts(query, DOCS)
    assert lexical == [0, 1, 2]  # nothing matched: file order
    assert rank_passages(query, PASSAGES, "dense")[0] == 2  # the bird reserve
    hybrid = rank_passages(query, PASSAGES, "hybrid")
    assert sorted(hybrid) == [0, 1, 2] and hybrid.index(2) < lexical.index(2)
