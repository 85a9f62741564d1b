"""Full-text search that corpora and rankers share: FTS5's tokenizer and the bm25() weights a
corpus ranks with, query text made into a MATCH expression (`query_terms`, `fts_query`), a few
texts ranked in memory as a corpus would rank them (`rank_texts`), and the write transaction a
corpus file is changed in (`transaction`, which the corpus and its cached vectors use).

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
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager

# bm25() column weights (title, text). A title names what a passage is about, so a query word
# in it counts for more than one in the body; tuned on the dev files by benchmarks/retrieval.py.
TITLE_WEIGHT = 2.0
TEXT_WEIGHT = 1.0
TOKENIZE = "porter unicode61"  # English stems: "locked" finds "locking"

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


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """A write transaction on a corpus file (`isolation_level=None`): committed when the block
    ends, rolled back when it raises."""
    # IMMEDIATE: take the write lock up front, so a second writer waits instead of failing
    # half-way with "database is locked".
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
