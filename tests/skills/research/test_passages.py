"""Reading each file format into passages, and cutting documents into ~100-200-word chunks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from myninja.errors import UsageError
from myninja.skills.research.passages import (
    MAX_WORDS,
    MIN_WORDS,
    BadPassageFile,
    UnsupportedFile,
    chunk_text,
    read_passages,
)


def sentence(i: int, words: int = 10) -> str:
    """A sentence of `words` words that names itself, so a test can find where it went."""
    return " ".join([f"S{i}", *["word"] * (words - 2), "end."])


def paragraph(first: int, sentences: int, words: int = 10) -> str:
    return " ".join(sentence(i, words) for i in range(first, first + sentences))


def word_count(text: str) -> int:
    return len(text.split())


# -- chunking ---------------------------------------------------------------------------------


def test_a_short_text_is_one_chunk_with_whitespace_tidied() -> None:
    assert chunk_text("One  line\nwrapped.\n\n\nSecond   paragraph.") == [
        "One line wrapped.\n\nSecond paragraph."
    ]


def test_empty_text_has_no_chunks() -> None:
    assert chunk_text("") == []
    assert chunk_text(" \n\n \t\n") == []


def test_chunks_stay_within_bounds_and_lose_no_word() -> None:
    # 30 paragraphs of 3..7 ten-word sentences: 1,500 words in all.
    paragraphs = []
    first = 0
    for n in range(30):
        count = 3 + n % 5
        paragraphs.append(paragraph(first, count))
        first += count
    text = "\n\n".join(paragraphs)
    chunks = chunk_text(text)
    assert " ".join(" ".join(chunks).split()) == " ".join(text.split())
    assert all(word_count(c) <= MAX_WORDS for c in chunks)
    assert all(word_count(c) >= MIN_WORDS for c in chunks[:-1])
    assert len(chunks) >= 1500 // MAX_WORDS


def test_chunks_end_at_paragraph_ends_once_long_enough() -> None:
    # Paragraphs of 60 words: two make 120 >= MIN_WORDS, so every chunk is two paragraphs.
    text = "\n\n".join(paragraph(i * 6, 6) for i in range(6))
    chunks = chunk_text(text)
    assert len(chunks) == 3
    for n, chunk in enumerate(chunks):
        parts = chunk.split("\n\n")
        assert len(parts) == 2
        assert parts[0].startswith(f"S{n * 12} ") and parts[1].endswith("end.")


def test_a_long_paragraph_is_cut_between_sentences() -> None:
    text = paragraph(0, 45)  # 450 words, no paragraph break
    chunks = chunk_text(text)
    assert all(word_count(c) <= MAX_WORDS for c in chunks)
    for chunk in chunks:
        assert chunk.split()[0].startswith("S") and chunk.endswith("end.")


def test_a_sentence_longer_than_a_chunk_is_cut_by_words() -> None:
    text = " ".join(f"w{i}" for i in range(450))  # no sentence end at all
    chunks = chunk_text(text)
    assert [word_count(c) for c in chunks] == [200, 200, 50]


def test_a_short_tail_joins_the_chunk_before_it() -> None:
    text = paragraph(0, 12) + "\n\n" + "Tail words here."  # 120 words, then 3
    assert len(chunk_text(text)) == 1


# -- documents --------------------------------------------------------------------------------


def test_markdown_title_is_the_first_heading_and_ids_count_chunks(tmp_path: Path) -> None:
    doc = tmp_path / "notes.md"
    body = "\n\n".join(paragraph(i * 12, 12) for i in range(3))
    doc.write_text(f"Intro line.\n\n## Orbital resonance ##\n\n{body}\n\n# Later heading\n")
    passages = read_passages(doc)
    assert len(passages) == 3
    assert {p.title for p in passages} == {"Orbital resonance"}
    assert [p.id for p in passages] == [f"{doc}#1", f"{doc}#2", f"{doc}#3"]
    assert {p.source for p in passages} == {str(doc)}
    assert "S0 word" in passages[0].text


def test_setext_heading_and_file_stem_titles(tmp_path: Path) -> None:
    setext = tmp_path / "a.markdown"
    setext.write_text("Kepler laws\n===========\n\nPlanets move in ellipses.\n")
    plain = tmp_path / "field-notes.txt"
    plain.write_text("No heading in here at all.\n")
    assert read_passages(setext)[0].title == "Kepler laws"
    assert read_passages(plain)[0].title == "field-notes"


def test_html_drops_script_and_style_and_takes_the_title(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text(
        "<!doctype html><html><head><title> Basalt &amp; granite </title>"
        "<style>p { color: SECRETSTYLE }</style><script>var SECRETSCRIPT = 1;</script></head>"
        "<body><svg><title>icon</title></svg><h1>Rocks</h1><p>Basalt is volcanic.</p>"
        "<p>Granite is <b>plutonic</b>.</p><noscript>SECRETNOSCRIPT</noscript></body></html>"
    )
    [passage] = read_passages(page)
    assert passage.title == "Basalt & granite"
    assert "SECRET" not in passage.text and "icon" not in passage.text
    assert passage.text == "Rocks\n\nBasalt is volcanic.\n\nGranite is plutonic."


def test_html_without_title_uses_h1(tmp_path: Path) -> None:
    page = tmp_path / "x.htm"
    page.write_text("<body><h1>Sedimentary  rock</h1><p>Layers.</p></body>")
    assert read_passages(page)[0].title == "Sedimentary rock"


# -- passage files ----------------------------------------------------------------------------


def test_jsonl_both_shapes_keep_ids_and_extra_fields(tmp_path: Path) -> None:
    rows = [
        {"id": "0", "contents": '"Evan Morris"\nEvan Morris was a lobbyist.'},
        {"id": 7, "title": "Horatio Hale", "text": "Hale was an ethnologist.", "url": "u"},
        {"title": "No id", "text": "Gets its line number."},
    ]
    f = tmp_path / "psgs.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows[:2]) + "\n\n" + json.dumps(rows[2]) + "\n")
    a, b, c = read_passages(f)
    assert (a.id, a.title, a.text, a.extra) == (
        "0",
        "Evan Morris",
        "Evan Morris was a lobbyist.",
        {},
    )
    assert (b.id, b.title, b.text, b.extra) == (
        "7",
        "Horatio Hale",
        "Hale was an ethnologist.",
        {"url": "u"},
    )
    assert (c.id, c.title) == ("4", "No id")
    assert a.source == str(f)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "psgs.jsonl:2: not JSON"),
        ('["a list"]', "psgs.jsonl:2: expected a JSON object"),
        ('{"id": "1", "body": "x"}', "psgs.jsonl:2: a passage needs 'contents' or 'text'"),
    ],
)
def test_jsonl_errors_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    f = tmp_path / "psgs.jsonl"
    f.write_text('{"id": "1", "text": "fine"}\n' + line + "\n")
    with pytest.raises(BadPassageFile) as err:
        read_passages(f)
    assert message in str(err.value)
    assert isinstance(err.value, UsageError)


def test_dpr_tsv_with_header_and_quoted_fields(tmp_path: Path) -> None:
    f = tmp_path / "psgs_w100.tsv"
    f.write_text(
        "id\ttext\ttitle\n"
        '1\t"Aaron Aaron ( or ; ""Ahärôn"") is a prophet"\tAaron\n'
        "2\tPlain text with no quotes\tSecond title\n"
    )
    a, b = read_passages(f)
    assert (a.id, a.title, a.text) == ("1", "Aaron", 'Aaron Aaron ( or ; "Ahärôn") is a prophet')
    assert (b.id, b.title, b.text) == ("2", "Second title", "Plain text with no quotes")


def test_tsv_without_header_and_a_bad_row(tmp_path: Path) -> None:
    f = tmp_path / "p.tsv"
    f.write_text("9\tsome text\tA title\n")
    assert [p.id for p in read_passages(f)] == ["9"]
    f.write_text("9\tsome text\tA title\n10\tonly two fields\n")
    with pytest.raises(BadPassageFile, match=r"p\.tsv:2: expected 3 tab-separated fields"):
        read_passages(f)


def test_an_unsupported_type_is_a_usage_error_naming_the_file(tmp_path: Path) -> None:
    f = tmp_path / "slides.pdf"
    f.write_bytes(b"%PDF-1.7")
    with pytest.raises(UnsupportedFile) as err:
        read_passages(f)
    assert str(f) in str(err.value) and ".pdf" in str(err.value)
    assert err.value.exit_code == 2


def test_undecodable_bytes_do_not_fail_a_text_file(tmp_path: Path) -> None:
    f = tmp_path / "latin1.txt"
    f.write_bytes("Café au lait.".encode("latin-1"))
    [passage] = read_passages(f)
    assert passage.text.startswith("Caf") and passage.text.endswith("au lait.")
