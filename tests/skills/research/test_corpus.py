"""Corpora: indexing each format, incremental re-indexing, BM25 search, hostile queries."""

from __future__ import annotations

import json
import os
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest

from myninja.errors import UsageError
from myninja.skills.research.corpus import (
    BadCorpusName,
    Corpus,
    UnknownCorpus,
    corpus_file,
    list_corpora,
    remove_corpus,
)
from myninja.skills.research.fts import fts_query, query_terms
from myninja.skills.research.retrievers import BM25Retriever, Retriever


def write_docs(root: Path) -> dict[str, Path]:
    """One small file of each supported type, each about something different."""
    root.mkdir(parents=True, exist_ok=True)
    files = {
        "md": root / "moon.md",
        "txt": root / "bees.txt",
        "html": root / "web" / "volcano.html",
        "jsonl": root / "passages.jsonl",
        "tsv": root / "dpr.tsv",
    }
    files["html"].parent.mkdir(exist_ok=True)
    files["md"].write_text("# Tidal locking\n\nThe Moon always shows Earth the same face.\n")
    files["txt"].write_text("Honeybees dance to tell the hive where nectar is.\n")
    files["html"].write_text(
        "<title>Hekla</title><script>glacier()</script><p>Hekla is a volcano in Iceland.</p>"
    )
    files["jsonl"].write_text(
        json.dumps({"id": "p1", "contents": '"Saturn"\nSaturn has prominent rings of ice.'})
        + "\n"
        + json.dumps({"id": "p2", "title": "Coral", "text": "Coral reefs bleach in warm water."})
        + "\n"
    )
    files["tsv"].write_text(
        "id\ttext\ttitle\n17\tThe Danube flows through ten countries.\tDanube\n"
    )
    return files


@pytest.fixture
def corpus(tmp_path: Path) -> Iterator[Corpus]:
    with Corpus.open("test", create=True) as c:
        yield c


def top_id(corpus: Corpus, query: str) -> str:
    hits = corpus.search(query)
    assert hits, f"no hit for {query!r}"
    return hits[0].passage.id


def test_each_format_is_indexed_and_found(corpus: Corpus, tmp_path: Path) -> None:
    files = write_docs(tmp_path / "docs")
    report = corpus.add([tmp_path / "docs"])
    assert (report.indexed, report.unchanged, report.removed) == (5, 0, 0)
    assert report.passages_added == report.passages == 6
    assert report.files == 5
    assert top_id(corpus, "which face of the moon") == f"{files['md']}#1"
    assert top_id(corpus, "honeybee dancing") == f"{files['txt']}#1"  # porter: dance ~ dancing
    assert top_id(corpus, "volcano Iceland") == f"{files['html']}#1"
    assert top_id(corpus, "rings") == "p1"
    assert top_id(corpus, "reefs") == "p2"
    assert top_id(corpus, "Danube") == "17"
    assert corpus.search("glacier") == []  # script text is not indexed
    hit = corpus.search("Saturn rings")[0]
    assert (hit.passage.title, hit.passage.source) == ("Saturn", str(files["jsonl"]))


def test_scores_are_best_first_and_k_limits(corpus: Corpus, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(1, 6):
        # Doc n mentions "comet" n times, in otherwise equal-length text.
        (docs / f"d{n}.txt").write_text(" ".join(["comet"] * n + ["filler"] * (10 - n)))
    corpus.add([docs])
    hits = corpus.search("comet", k=3)
    assert [h.passage.source for h in hits] == [str(docs / f"d{n}.txt") for n in (5, 4, 3)]
    assert hits[0].score > hits[1].score > hits[2].score
    assert corpus.search("comet", k=0) == []


def test_a_title_word_outranks_the_same_word_in_the_text(corpus: Corpus, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    # HTML, so the title is not also part of the text.
    (docs / "a.html").write_text("<title>Aurora</title><p>Lights in the polar sky at night.</p>")
    (docs / "b.html").write_text("<title>Night sky</title><p>An aurora in the polar sky.</p>")
    corpus.add([docs])
    assert [h.passage.title for h in corpus.search("aurora")] == ["Aurora", "Night sky"]


# -- incremental ------------------------------------------------------------------------------


def test_touch_change_and_delete_reindex_only_that_file(corpus: Corpus, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    files = write_docs(docs)
    corpus.add([docs])

    again = corpus.add([docs])
    assert (again.indexed, again.unchanged, again.removed, again.passages_added) == (0, 5, 0, 0)

    # Touched: newer mtime, same bytes. Its hash is read again and nothing is re-indexed.
    stat = files["txt"].stat()
    os.utime(files["txt"], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10_000_000_000))
    touched = corpus.add([docs])
    assert (touched.indexed, touched.unchanged, touched.passages_added) == (0, 5, 0)

    files["md"].write_text("# Tidal locking\n\nMercury is in a 3:2 spin-orbit resonance.\n")
    changed = corpus.add([docs])
    assert (changed.indexed, changed.unchanged, changed.removed) == (1, 4, 0)
    assert (changed.passages_added, changed.passages_removed, changed.passages) == (1, 1, 6)
    assert corpus.search("Moon face") == []  # the old passage is gone from the index
    assert top_id(corpus, "Mercury resonance") == f"{files['md']}#1"

    files["jsonl"].unlink()
    deleted = corpus.add([docs])
    assert (deleted.indexed, deleted.unchanged, deleted.removed) == (0, 4, 1)
    assert (deleted.passages_removed, deleted.files, deleted.passages) == (2, 4, 4)
    assert corpus.search("Saturn rings") == []


def test_size_and_mtime_as_recorded_mean_the_file_is_not_read(
    corpus: Corpus, tmp_path: Path
) -> None:
    """As git: an old file whose size and mtime match is trusted without reading it; a file
    modified within seconds of being indexed is always read again (its mtime may not show a
    second change in the same tick)."""
    note = tmp_path / "note.txt"
    note.write_text("alpha bravo")
    an_hour_ago = note.stat().st_mtime_ns - 3600 * 10**9
    os.utime(note, ns=(an_hour_ago, an_hour_ago))
    corpus.add([note])
    note.write_text("delta bravo")  # same size
    os.utime(note, ns=(an_hour_ago, an_hour_ago))
    assert corpus.add([note]).unchanged == 1
    assert corpus.search("alpha")  # not read, so still the old text
    now = time.time_ns()
    os.utime(note, ns=(now, now))
    assert corpus.add([note]).indexed == 1
    assert corpus.search("alpha") == [] and corpus.search("delta")

    fresh = tmp_path / "fresh.txt"
    fresh.write_text("echo golf")
    corpus.add([fresh])
    stat = fresh.stat()
    fresh.write_text("ecko golf")  # same size, and the same mtime forced back
    os.utime(fresh, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert corpus.add([fresh]).indexed == 1
    assert corpus.search("ecko")


def test_adding_another_folder_keeps_the_first(corpus: Corpus, tmp_path: Path) -> None:
    write_docs(tmp_path / "one")
    (tmp_path / "two").mkdir()
    (tmp_path / "two" / "kiwi.txt").write_text("Kiwi birds cannot fly.")
    corpus.add([tmp_path / "one"])
    report = corpus.add([tmp_path / "two"])
    assert (report.indexed, report.removed, report.files) == (1, 0, 6)
    assert corpus.search("Danube")


def test_a_file_named_twice_or_by_another_path_is_one_file(corpus: Corpus, tmp_path: Path) -> None:
    files = write_docs(tmp_path / "docs")
    relative = os.path.relpath(files["txt"])
    report = corpus.add([files["txt"], relative, tmp_path / "docs"])
    assert report.files == 5


def test_folders_skip_unsupported_and_hidden_files(corpus: Corpus, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    write_docs(docs)
    (docs / "photo.png").write_bytes(b"\x89PNG")
    (docs / ".hidden.md").write_text("secret hidden words")
    (docs / ".git").mkdir()
    (docs / ".git" / "notes.md").write_text("git internals words")
    report = corpus.add([docs])
    assert report.skipped == [str(docs / "photo.png")]
    assert report.files == 5
    assert corpus.search("hidden") == [] and corpus.search("internals") == []


def test_named_unsupported_or_missing_paths_are_usage_errors(
    corpus: Corpus, tmp_path: Path
) -> None:
    pdf = tmp_path / "paper.pdf"
    pdf.write_bytes(b"%PDF")
    with pytest.raises(UsageError, match=r"paper\.pdf"):
        corpus.add([pdf])
    with pytest.raises(UsageError, match="no such file or folder"):
        corpus.add([tmp_path / "missing"])
    assert corpus.info().files == 0


# -- hostile queries --------------------------------------------------------------------------

HOSTILE = [
    "",
    "   \t\n",
    "the of and to",  # only stop words
    '"',
    '"""unbalanced',
    'say "hello',
    "NEAR(",
    "NEAR(moon face, 2)",
    "*",
    "moon*",
    "^moon",
    "AND OR NOT",
    "moon AND",
    "NOT moon",
    "((moon",
    "moon))",
    ")(",
    "title:moon",
    "{title text}:moon",
    "text : moon -face +earth",
    "moon\x00face",
    "\x00",
    "'; DROP TABLE passages; --",
    "mo\u0301on ｍｏｏｎ 𝔪𝔬𝔬𝔫 ½ ・",
    "word " * 5000,
]


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_queries_give_hits_or_nothing_never_an_error(
    corpus: Corpus, tmp_path: Path, query: str
) -> None:
    write_docs(tmp_path / "docs")
    corpus.add([tmp_path / "docs"])
    hits = corpus.search(query)
    assert isinstance(hits, list)
    if "moon" in unicodedata.normalize("NFKC", query).lower():
        assert hits and hits[0].passage.title == "Tidal locking"
    assert corpus.info().passages == 6  # nothing was dropped


def test_the_match_expression_is_quoted_terms_ored() -> None:
    assert fts_query('What is "NEAR(" the moon*') == '"near" OR "moon"'
    assert fts_query("the and of") == ""
    assert query_terms("Moon moon MOON face") == ["moon", "face"]


# -- the corpora themselves -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "../evil", "a/b", ".hidden", "x" * 65, "na me", "a\x00b"])
def test_bad_names_are_one_clear_error(name: str) -> None:
    with pytest.raises(BadCorpusName, match="bad corpus name"):
        Corpus.open(name, create=True)
    with pytest.raises(BadCorpusName):
        remove_corpus(name)


def test_the_corpus_file_lives_under_data_dir_indexes(myninja_home: Path) -> None:
    with Corpus.open("wiki-2018.v1", create=True) as c:
        assert c.path == myninja_home / "data" / "indexes" / "wiki-2018.v1.db"
    assert corpus_file("wiki-2018.v1").exists()


def test_list_open_and_remove(tmp_path: Path) -> None:
    with pytest.raises(UnknownCorpus):
        Corpus.open("notes")
    write_docs(tmp_path / "docs")
    with Corpus.open("notes", create=True) as c:
        c.add([tmp_path / "docs"])
    with Corpus.open("empty", create=True):
        pass
    infos = list_corpora()
    assert [(i.name, i.files, i.passages) for i in infos] == [("empty", 0, 0), ("notes", 5, 6)]
    assert infos[1].updated_at is not None and infos[0].updated_at is None
    remove_corpus("notes")
    assert [i.name for i in list_corpora()] == ["empty"]
    assert not list(corpus_file("notes").parent.glob("notes.db*"))
    with pytest.raises(UnknownCorpus):
        remove_corpus("notes")


def test_a_file_that_is_not_a_corpus_is_a_usage_error() -> None:
    path = corpus_file("broken")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(UsageError, match="not a corpus index"):
        Corpus.open("broken")


def test_bm25_retriever_is_a_retriever(corpus: Corpus, tmp_path: Path) -> None:
    write_docs(tmp_path / "docs")
    corpus.add([tmp_path / "docs"])
    retriever: Retriever = BM25Retriever(corpus)
    assert retriever.name == "bm25"
    assert [h.passage.id for h in retriever.search("Danube rivers", 1)] == ["17"]
