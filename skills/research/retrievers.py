"""Retrievers: one small interface over the ways a corpus can be searched.

The researcher asks a `Retriever` for the top k passages and never learns how they were found,
so BM25 today and BM25 fused with dense vectors (RRF) later are interchangeable.

Queries are text from people and from models, so they never reach FTS5's MATCH as written:
each word is quoted as an FTS5 string and the words are ORed, so quotes, `NEAR(`, `*`, `^`,
`AND`/`OR`/`NOT`, `col:` and brackets are searched for as words (or dropped), never parsed as
query syntax. Stop words are dropped from the query (not from the index): ORing "the" in would
match every passage and score nothing.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .passages import Passage

if TYPE_CHECKING:
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
