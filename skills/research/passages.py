"""Passages: what a corpus is made of, how files become them, and the `Hit` a search returns.

Documents (text, Markdown, HTML) are cut into ~100-200-word passages on paragraph and sentence
boundaries: short enough that a retrieved passage is about one thing and fits a small model's
context ten at a time, long enough to carry its own context. Every passage keeps its document's
title and path, so an answer can cite where it came from.

Passage files are already cut (DPR's psgs_w100 and the JSONL that FlashRAG and Pyserini use);
their passages are kept as they are, ids included, so citations match the published ids.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from myninja.errors import UsageError

MIN_WORDS = 100
MAX_WORDS = 200

TEXT_SUFFIXES = frozenset({".txt", ".md", ".markdown"})
HTML_SUFFIXES = frozenset({".html", ".htm"})
PASSAGE_SUFFIXES = frozenset({".jsonl", ".tsv"})
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | PASSAGE_SUFFIXES


@dataclass(frozen=True, slots=True)
class Passage:
    """One retrievable unit. `id` is unique within its source file; `extra` keeps any other
    fields a passage file carried (its JSON object's other keys)."""

    id: str
    title: str
    text: str
    source: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Hit:
    """A retrieved passage. `score` is higher for better hits and comparable only between hits
    of one query from one retriever."""

    passage: Passage
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self.passage), "score": self.score}


class UnsupportedFile(UsageError):
    """A file was named whose type we cannot read."""


class BadPassageFile(UsageError):
    """A passage file (JSONL, TSV) with a line we cannot read."""


def read_passages(path: Path, data: bytes | None = None) -> list[Passage]:
    """The passages of the file at `path`; `data` is its content when the caller already read
    it (the corpus hashes and parses the same bytes, so a file changing in between cannot make
    the stored hash disagree with the stored passages)."""
    suffix = check_supported(path)
    raw = path.read_bytes() if data is None else data
    # Undecodable bytes become U+FFFD rather than failing a whole folder over one odd file.
    text = raw.decode("utf-8-sig", errors="replace")
    source = str(path)
    if suffix in TEXT_SUFFIXES:
        return document_passages(markdown_title(text) or path.stem, text, source)
    if suffix in HTML_SUFFIXES:
        title, body = html_to_text(text)
        return document_passages(title or path.stem, body, source)
    if suffix == ".jsonl":
        return list(jsonl_passages(text, source))
    return list(tsv_passages(text, source))


def check_supported(path: Path) -> str:
    """The file's suffix, lower-cased, if we can read files of its type; else the one error."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise UnsupportedFile(
            f"cannot index {path}: unsupported file type {suffix or '(none)'!r}",
            hint="supported: " + ", ".join(sorted(SUPPORTED_SUFFIXES)),
        )
    return suffix


def document_passages(title: str, text: str, source: str) -> list[Passage]:
    """A document's chunks as passages with ids `<source>#<n>` (n from 1)."""
    return [
        Passage(id=f"{source}#{n}", title=title, text=chunk, source=source)
        for n, chunk in enumerate(chunk_text(text), 1)
    ]


# -- Markdown and plain text ------------------------------------------------------------------

_ATX = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_SETEXT = re.compile(r"^ {0,3}(\S.*?)[ \t]*\n {0,3}=+[ \t]*$", re.MULTILINE)


def markdown_title(text: str) -> str | None:
    """The first heading (`# Title`, or a line underlined with `===`), whichever comes first."""
    found = [m for m in (_ATX.search(text), _SETEXT.search(text)) if m]
    if not found:
        return None
    return min(found, key=lambda m: m.start()).group(1).strip() or None


# -- HTML -------------------------------------------------------------------------------------

# Their contents are never prose a reader sees.
_INVISIBLE = frozenset({"script", "style", "noscript", "template", "svg"})
# Tags that end a paragraph, so the chunker can cut between them.
_BLOCKS = frozenset(
    """address article aside blockquote br dd div dl dt figcaption figure footer form h1 h2 h3
    h4 h5 h6 header hr li main nav ol p pre section table td th tr ul""".split()
)


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title_parts: list[str] = []
        self.h1_parts: list[str] = []
        self._hidden = 0  # depth inside invisible elements
        self._in_title = False
        self._in_h1 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _INVISIBLE:
            self._hidden += 1
        elif tag == "title" and not self._hidden:  # an <svg> has <title>s of its own
            self._in_title = True
        elif tag == "h1":
            self._in_h1 = True
        if tag in _BLOCKS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _INVISIBLE:
            self._hidden = max(0, self._hidden - 1)
        elif tag == "title":
            self._in_title = False
        elif tag == "h1":
            self._in_h1 = False
        if tag in _BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title_parts.append(data)
        elif not self._hidden:
            self.parts.append(data)
            if self._in_h1:
                self.h1_parts.append(data)


def html_to_text(html: str) -> tuple[str | None, str]:
    """(title, visible text with paragraph breaks). The title is <title>, else the first <h1>."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    title = " ".join("".join(parser.title_parts).split()) or " ".join(
        "".join(parser.h1_parts).split()
    )
    return title or None, "".join(parser.parts)


# -- passage files ----------------------------------------------------------------------------


def json_objects(
    text: str, source: str, error: type[UsageError] = UsageError
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of JSON Lines text; a line that is not a
    JSON object raises `error` naming `source:line`."""
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise error(f"{source}:{lineno}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise error(f"{source}:{lineno}: expected a JSON object")
        yield lineno, row


def jsonl_passages(text: str, source: str) -> Iterator[Passage]:
    """One JSON object a line: `{"id", "contents": "\\"Title\\"\\ntext"}` (Pyserini/FlashRAG)
    or `{"id", "title", "text"}`. A line without an id gets its line number."""
    for lineno, row in json_objects(text, source, BadPassageFile):
        pid = row.pop("id", row.pop("_id", lineno))
        if isinstance(row.get("contents"), str):
            title, _, body = row.pop("contents").partition("\n")
            title = title.strip()
            # DPR-derived files quote the title: "\"Evan Morris\"".
            if len(title) >= 2 and title[0] == title[-1] == '"':
                title = title[1:-1]
        elif isinstance(row.get("text"), str):
            body = row.pop("text")
            title = str(row.pop("title", "") or "")
        else:
            raise BadPassageFile(
                f"{source}:{lineno}: a passage needs 'contents' or 'text'",
                hint='e.g. {"id": "1", "title": "…", "text": "…"}',
            )
        yield Passage(id=str(pid), title=title, text=body.strip(), source=source, extra=row)


def tsv_passages(text: str, source: str) -> Iterator[Passage]:
    """DPR's psgs_w100.tsv layout: `id<TAB>text<TAB>title`, an optional header row, fields
    quoted as csv writes them (DPR reads it with csv.reader, so we do too)."""
    reader = csv.reader(io.StringIO(text), delimiter="\t")
    for row in reader:
        lineno = reader.line_num
        if not row or row == [""]:
            continue
        if lineno == 1 and [cell.strip().lower() for cell in row] == ["id", "text", "title"]:
            continue
        if len(row) != 3:
            raise BadPassageFile(
                f"{source}:{lineno}: expected 3 tab-separated fields (id, text, title), "
                f"found {len(row)}"
            )
        pid, body, title = row
        yield Passage(id=pid, title=title.strip(), text=body.strip(), source=source)


# -- chunking ---------------------------------------------------------------------------------

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
# A sentence ends at . ! or ? (maybe closing quotes/brackets) before a space and a capital or
# digit: crude, but it never cuts inside "e.g. the" and costs nothing.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")


def _sentences(paragraph: str) -> list[list[str]]:
    """A paragraph's sentences as word lists; a sentence longer than MAX_WORDS is cut into
    MAX_WORDS pieces (tables and run-on text have no sentence ends)."""
    out: list[list[str]] = []
    start = 0
    for match in _SENTENCE_END.finditer(paragraph):
        out.append(paragraph[start : match.start() + len(match.group(0).rstrip())].split())
        start = match.end()
    out.append(paragraph[start:].split())
    pieces: list[list[str]] = []
    for words in out:
        pieces.extend(words[i : i + MAX_WORDS] for i in range(0, len(words), MAX_WORDS))
    return [p for p in pieces if p]


def chunk_text(text: str) -> list[str]:
    """`text` cut into chunks of at most MAX_WORDS words, each ending at a paragraph end once it
    has MIN_WORDS, else at a sentence end when the next sentence would not fit. Paragraphs stay
    separated by a blank line; whitespace inside a paragraph becomes single spaces."""
    chunks: list[list[str]] = []  # each chunk: its paragraphs' texts
    current: list[str] = []  # finished paragraphs (or parts) of the chunk being filled
    pending: list[str] = []  # words of the paragraph being added
    size = 0

    def flush() -> None:
        nonlocal current, pending, size
        if pending:
            current.append(" ".join(pending))
        if current:
            chunks.append(current)
        current, pending, size = [], [], 0

    for paragraph in _PARAGRAPH_BREAK.split(text):
        for sentence in _sentences(paragraph):
            if size and size + len(sentence) > MAX_WORDS:
                flush()
            pending.extend(sentence)
            size += len(sentence)
        if pending:
            current.append(" ".join(pending))
            pending = []
        if size >= MIN_WORDS:
            flush()
    flush()
    # A short tail reads better with the chunk before it, when both fit.
    if len(chunks) > 1:
        tail = sum(len(p.split()) for p in chunks[-1])
        before = sum(len(p.split()) for p in chunks[-2])
        if tail < MIN_WORDS // 2 and tail + before <= MAX_WORDS:
            chunks[-2].extend(chunks.pop())
    return ["\n\n".join(chunk) for chunk in chunks]
