"""Citations checked by code, not by a model's word.

An answer cites retrieved passages as `[1]`, `[1, 3]` or `[1][3]`. A sentence written from a
passage without a mark gets one from `attribute_uncited` when most of its words are that
passage's. `check_citations` splits it
into sentences (a Markdown bullet or heading line is its own sentence; fenced code is skipped)
and reports every mark that names no passage retrieved for this task, and every quoted span
that occurs in none of the passages its sentence cites (in none of all passages when the
sentence cites none). The researcher then runs, in this order:

0. `attribute_uncited`, for what a small model wrote from the passages and did not cite;
1. `check_citations`; if not `ok`, one repair round with `repair_prompt(report)`;
2. `check_citations` again, and `drop_unsupported` for what is still wrong (its trace entries go
   into the task's trace, so a reader sees what was dropped and why);
3. `renumber`, so the sources shown are the cited ones numbered 1..k in order of first use,
   and `render_sources` for the list under the answer.

A correct answer passes through every step byte for byte: nothing here reformats text it has
no reason to touch.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .fts import STOP_WORDS


@dataclass(frozen=True)
class SourcePassage:
    """A passage retrieved for this task, as the answer cites it (`[n]`)."""

    n: int
    passage_id: str
    title: str
    source: str  # a path or URL
    text: str
    published: str | None = None  # a web page's date, where it gives one


# Problem kinds.
UNKNOWN_SOURCE = "unknown_source"  # a mark names no retrieved passage
QUOTE_IN_OTHER_SOURCE = "quote_in_other_source"  # the quote is in a passage it does not cite
QUOTE_NOT_FOUND = "quote_not_found"  # the quote is in no retrieved passage


@dataclass(frozen=True)
class Problem:
    sentence: int  # index into CitationReport.sentences
    kind: str
    detail: str


@dataclass(frozen=True)
class CitationReport:
    sentences: tuple[str, ...]  # the answer's sentences, as written
    problems: tuple[Problem, ...]
    retrieved: tuple[int, ...]  # the numbers an answer may cite

    @property
    def ok(self) -> bool:
        return not self.problems

    def by_sentence(self) -> dict[int, list[Problem]]:
        grouped: dict[int, list[Problem]] = {}
        for problem in self.problems:
            grouped.setdefault(problem.sentence, []).append(problem)
        return grouped


# -- reading an answer -----------------------------------------------------------------------

# `[1]`, `[1, 3]`, `[1;3]`; not a Markdown link text (`[1](…)`) or a reference definition.
_MARK = re.compile(r"\[(\d{1,4}(?:\s*[,;]\s*\d{1,4})*)\](?![(:])")
# A double quote, straight or curly (a model mixes them); it opens and closes off a word, so
# inch marks and the like rarely pair up.
_DOUBLE_QUOTE = re.compile(r'(?<!\w)[“"]([^\s"“”](?:[^"“”]*[^\s"“”])?)[”"](?!\w)')
# A single quote only where it is clearly one: it opens at the start of a word (not "it's",
# "the dogs'", "'90s"), it closes before a non-word character, and inside it a quote mark may
# only stand between two letters (an apostrophe, as in ‘don’t’).
_SINGLE_QUOTE = re.compile(
    r"(?<![\w'‘’])['‘](?!\d)([^\s'‘’](?:(?:[^'‘’\n]|(?<=\w)['’](?=\w))*?[^\s'‘’])?)['’](?!\w)"
)
# Where a sentence ends: terminal punctuation, any closing quotes or brackets, then any marks
# (a mark after the full stop still belongs to the sentence before it, at the end of the
# text too), then whitespace.
_SENTENCE_END = re.compile(
    r"[.!?…]+[\"'”’)\]]*(?:\s*\[\d{1,4}(?:\s*[,;]\s*\d{1,4})*\](?![(:]))*(?=\s+\S|\s*$)"
)
# A full stop after these is not a sentence end ("Dr. Smith", "e.g. Paris").
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st jr sr vs etc e.g i.e cf al fig no nos vol pp approx ca inc ltd co "
    "jan feb mar apr jun jul aug sep sept oct nov dec".split()
)

_NEXT_CHARACTER = re.compile(r"\s*(\S)")

_FENCE = re.compile(r"\s{0,3}(`{3,}|~{3,})")
_RULE = re.compile(r"\s{0,3}(?:[-*_][ \t]*){3,}$")
_HEADING = re.compile(r"\s{0,3}#{1,6}[ \t]+")
_TABLE_ROW = re.compile(r"\s*\|")
_TABLE_RULE = re.compile(r"\s*\|?(?:\s*:?-+:?\s*\|)+\s*:?-*:?\s*$")  # |---|:--:|
_ITEM = re.compile(r"\s*(?:[-*+]|\d{1,9}[.)])[ \t]+")
_BLOCKQUOTE = re.compile(r"\s{0,3}>[ \t]?")


@dataclass(frozen=True)
class _Mark:
    start: int
    end: int
    numbers: tuple[int, ...]


@dataclass(frozen=True)
class _Sentence:
    start: int
    end: int
    block: int
    marks: tuple[_Mark, ...]
    quotes: tuple[str, ...]


@dataclass
class _Block:
    start: int  # first character of its first line
    body: int  # first character after its Markdown marker
    end: int  # end of its last line, line break excluded
    one_sentence: bool  # a heading or table row is never split


def _blocks(text: str) -> list[_Block]:
    """Markdown blocks that hold prose: paragraphs (soft-wrapped lines joined), list items
    (with their lazy continuation lines), headings, blockquote lines and table rows."""
    blocks: list[_Block] = []
    current: _Block | None = None
    fence: str | None = None
    pos = 0
    for line in text.splitlines(keepends=True):
        start, pos = pos, pos + len(line)
        content = line.rstrip("\r\n")
        end = start + len(content)
        if fence is not None:
            if content.strip().startswith(fence):
                fence = None
            continue
        if opened := _FENCE.match(content):
            current, fence = None, opened.group(1)
            continue
        if not content.strip() or _RULE.match(content) or _TABLE_RULE.match(content):
            current = None
            continue
        if marker := _HEADING.match(content) or _TABLE_ROW.match(content):
            blocks.append(_Block(start, start + marker.end(), end, one_sentence=True))
            current = None
        elif marker := _ITEM.match(content) or _BLOCKQUOTE.match(content):
            current = _Block(start, start + marker.end(), end, one_sentence=False)
            blocks.append(current)
        elif current is not None:
            current.end = end
        else:
            indent = len(content) - len(content.lstrip())
            current = _Block(start, start + indent, end, one_sentence=False)
            blocks.append(current)
    return blocks


def _is_abbreviation(text: str, stop: int) -> bool:
    """Whether the full stop at `stop` ends an abbreviation or an initial ("J. K. Rowling")."""
    word = re.search(r"[\w.]*$", text[max(0, stop - 20) : stop])  # abbreviations are short
    token = word.group(0).lower() if word else ""
    initials = re.fullmatch(r"(?:[^\W\d_]\.)*[^\W\d_]", token)  # "J", "U.S", "e.g"
    return bool(initials) or token in _ABBREVIATIONS


def _sentence_spans(text: str, block: _Block) -> list[tuple[int, int]]:
    quoted = [(m.start(), m.end()) for m in _DOUBLE_QUOTE.finditer(text, block.body, block.end)]
    cuts = [block.body]
    if not block.one_sentence:
        for end in _SENTENCE_END.finditer(text, block.body, block.end):
            cut = end.end()
            inside_quote = any(open_ < cut < close for open_, close in quoted)
            stop = end.start()
            if inside_quote or (text[stop] == "." and _is_abbreviation(text, stop)):
                continue
            # A lower-case word after the stop continues the sentence ("approx. five").
            following = _NEXT_CHARACTER.match(text, cut, block.end)
            if following and following.group(1).islower():
                continue
            cuts.append(cut)
    cuts.append(block.end)
    spans = []
    for left, right in itertools.pairwise(cuts):
        segment = text[left:right]
        lead = len(segment) - len(segment.lstrip())
        trail = len(segment) - len(segment.rstrip())
        if segment.strip():
            spans.append((left + lead, right - trail))
    return spans


def _quotes(sentence: str) -> tuple[str, ...]:
    found: list[tuple[int, int, str]] = []
    for m in _DOUBLE_QUOTE.finditer(sentence):
        found.append((m.start(), m.end(), m.group(1)))
    for m in _SINGLE_QUOTE.finditer(sentence):
        # A single-quoted span inside a double-quoted one is part of that quote.
        if not any(start <= m.start() < end for start, end, _ in found):
            found.append((m.start(), m.end(), m.group(1)))
    return tuple(quote for _, _, quote in sorted(found))


def _parse(text: str) -> tuple[list[_Block], list[_Sentence]]:
    blocks = _blocks(text)
    sentences: list[_Sentence] = []
    for index, block in enumerate(blocks):
        for start, end in _sentence_spans(text, block):
            marks = tuple(
                _Mark(m.start(), m.end(), tuple(int(n) for n in re.findall(r"\d+", m.group(1))))
                for m in _MARK.finditer(text, start, end)
            )
            sentences.append(_Sentence(start, end, index, marks, _quotes(text[start:end])))
    return blocks, sentences


def cited_numbers(answer: str) -> list[int]:
    """Every number the answer cites, once, in order of first use (fenced code excluded)."""
    numbers = (n for s in _parse(answer)[1] for mark in s.marks for n in mark.numbers)
    return list(dict.fromkeys(numbers))


# A mark with the spaces before it.
_LOOSE_MARK = re.compile(r"[ \t]*\[\d{1,4}(?:\s*[,;]\s*\d{1,4})*\](?![(:])")
_INLINE_CODE = re.compile(r"`[^`\n]*`")


def strip_marks(answer: str) -> str:
    """The answer without citation marks, for an answer that had no sources to cite: a mark
    that names nothing is worse than none. Fenced and inline code (`xs[1]`) are left alone."""
    out = answer
    for block in reversed(_blocks(answer)):
        prose = answer[block.body : block.end]
        pieces, last = [], 0
        for code in _INLINE_CODE.finditer(prose):
            pieces.append(_LOOSE_MARK.sub("", prose[last : code.start()]))
            pieces.append(code.group(0))
            last = code.end()
        pieces.append(_LOOSE_MARK.sub("", prose[last:]))
        out = out[: block.body] + "".join(pieces) + out[block.end :]
    return out


# -- checking ---------------------------------------------------------------------------------

_CURLY = str.maketrans({"‘": "'", "’": "'", "‚": "'", "‛": "'", "“": '"', "”": '"', "„": '"'})
_ELLIPSIS = re.compile(r"\s*(?:\.\.\.|…|\[\.\.\.\]|\[…\])\s*")


def _normalise(text: str) -> str:
    """Case, curly quotes, Unicode compatibility forms and whitespace do not make a quote
    different from its passage; a model reflows and re-quotes what it copies."""
    text = unicodedata.normalize("NFKC", text).translate(_CURLY).casefold()
    return " ".join(text.split())


def _occurs(quote: str, passage: str) -> bool:
    """Whether `quote` occurs in the normalised `passage`: an ellipsis in the quote stands for
    left-out words, so its pieces must occur in order; a full stop or comma the quote ends
    with may be the answer's punctuation rather than the passage's."""
    pieces = [_normalise(p).strip(" .,;:") for p in _ELLIPSIS.split(quote)]
    at = 0
    for piece in filter(None, pieces):
        found = passage.find(piece, at)
        if found < 0:
            return False
        at = found + len(piece)
    return True


def _cite(numbers: Iterable[int]) -> str:
    return ", ".join(f"[{n}]" for n in numbers) or "none"


def check_citations(answer: str, sources: dict[int, SourcePassage]) -> CitationReport:
    """Every problem with the answer's citations, by sentence; `sources` maps the numbers the
    answer may cite to the passages retrieved for this task."""
    texts = {n: _normalise(p.text) for n, p in sources.items()}
    _, sentences = _parse(answer)
    problems: list[Problem] = []
    for index, sentence in enumerate(sentences):
        cited = list(dict.fromkeys(n for mark in sentence.marks for n in mark.numbers))
        for n in cited:
            if n not in sources:
                problems.append(
                    Problem(
                        index, UNKNOWN_SOURCE, f"[{n}] names no passage retrieved for this task"
                    )
                )
        known = [n for n in cited if n in sources]
        for quote in sentence.quotes:
            if not any(_normalise(piece) for piece in _ELLIPSIS.split(quote)):
                continue  # a bare "…" quotes nothing
            holders = [n for n in (known if cited else sources) if _occurs(quote, texts[n])]
            if holders:
                continue
            elsewhere = [n for n in sources if n not in known and _occurs(quote, texts[n])]
            if elsewhere:
                detail = f"the quote “{quote}” is in {_cite(elsewhere)}, which it does not cite"
                problems.append(Problem(index, QUOTE_IN_OTHER_SOURCE, detail))
            else:
                detail = f"the quote “{quote}” occurs in no retrieved passage"
                problems.append(Problem(index, QUOTE_NOT_FOUND, detail))
    return CitationReport(
        sentences=tuple(answer[s.start : s.end] for s in sentences),
        problems=tuple(problems),
        retrieved=tuple(sorted(sources)),
    )


_FIXES = {
    UNKNOWN_SOURCE: "cite only the numbered passages you were given, or remove the claim",
    QUOTE_IN_OTHER_SOURCE: "cite the passage that holds the quote",
    QUOTE_NOT_FOUND: "quote the passage word for word, or paraphrase without quotation marks",
}


def repair_prompt(report: CitationReport) -> str:
    """The one repair message: each faulty sentence, what is wrong and how to fix it. Empty
    when the report is clean."""
    if report.ok:
        return ""
    lines = [
        "Some citations in your answer are not supported by the retrieved passages. "
        f"The passages you may cite are {_cite(report.retrieved)}. Fix exactly these sentences:",
    ]
    for number, (index, problems) in enumerate(sorted(report.by_sentence().items()), 1):
        lines.append(f"{number}. “{report.sentences[index]}”")
        lines.extend(f"   - {p.detail}: {_FIXES.get(p.kind, 'fix it')}." for p in problems)
    lines.append(
        "Return the whole corrected answer in the same form (the short answer first, then the "
        "explanation with [n] marks), with every other sentence unchanged and no source list."
    )
    return "\n".join(lines)


# -- attributing what was left uncited ------------------------------------------------------

ATTRIBUTE_SHARE = 0.6  # of a sentence's content words that one passage must hold
ATTRIBUTE_MIN_WORDS = 3  # fewer content words than this say too little to match on
_STEM = 5  # words match on their first five letters: "checks", "checked", "checking"


def _content_words(text: str) -> set[str]:
    words = re.findall(r"[^\W_]+", unicodedata.normalize("NFKC", text).casefold())
    return {w[:_STEM] for w in words if w not in STOP_WORDS and (len(w) > 2 or w.isdigit())}


def attribute_uncited(
    answer: str,
    sources: dict[int, SourcePassage],
    share: float = ATTRIBUTE_SHARE,
    min_words: int = ATTRIBUTE_MIN_WORDS,
) -> tuple[str, list[dict[str, Any]]]:
    """The answer with a mark added to each sentence that has none but whose content words
    one passage mostly holds (the passage holding the most; `share` of them at least), and a
    trace entry per mark added. Small models often write from the passages without citing
    them; this cites what the words show, and nothing the words do not."""
    passages = {n: _content_words(p.text + " " + p.title) for n, p in sources.items()}
    edits: list[tuple[int, str]] = []
    trace: list[dict[str, Any]] = []
    for sentence in _parse(answer)[1]:
        if sentence.marks or sentence.quotes:  # a quote is the checker's to place
            continue
        text = answer[sentence.start : sentence.end]
        words = _content_words(text)
        if len(words) < min_words or not passages:
            continue
        best = max(passages, key=lambda n: (len(words & passages[n]), -n))
        held = len(words & passages[best]) / len(words)
        if held < share:
            continue
        stop = len(text.rstrip(".!?…\"'”’)"))
        at = sentence.start + (stop if stop and text[stop:].strip() else len(text))
        edits.append((at, f" [{best}]"))
        trace.append({"action": "attributed", "sentence": text, "n": best, "share": round(held, 2)})
    for at, mark in sorted(edits, reverse=True):
        answer = answer[:at] + mark + answer[at:]
    return answer, trace


# -- dropping and renumbering -----------------------------------------------------------------

_BLANK_LINE_BEFORE = re.compile(r"\n[ \t]*\r?\n$")


def _line_end(text: str, at: int) -> int:
    newline = text.find("\n", at)
    return len(text) if newline < 0 else newline + 1


def _block_removal(text: str, block: _Block) -> tuple[int, int]:
    """The span that removes a whole block without leaving a doubled blank line behind."""
    start, end = block.start, _line_end(text, block.end)
    if start == 0 or _BLANK_LINE_BEFORE.search(text, 0, start):
        while end < len(text) and not text[end : _line_end(text, end)].strip():
            end = _line_end(text, end)
    if not text[end:].strip():
        # It was the last block: drop the gap before it, keep how the text ended.
        start, end = len(text[:start].rstrip()), len(text.rstrip())
    return start, end


def drop_unsupported(answer: str, report: CitationReport) -> tuple[str, list[dict[str, Any]]]:
    """The answer without the sentences that have problems, everything else as written (a list
    item or paragraph that loses all its sentences goes with them), and one trace entry per
    dropped sentence saying why."""
    if report.ok:
        return answer, []
    blocks, sentences = _parse(answer)
    if tuple(answer[s.start : s.end] for s in sentences) != report.sentences:
        raise ValueError("the report was made for a different answer")
    faulty = report.by_sentence()
    removals: list[tuple[int, int]] = []
    by_block: dict[int, list[int]] = {}
    for i, sentence in enumerate(sentences):
        by_block.setdefault(sentence.block, []).append(i)
    for index, own in by_block.items():
        block = blocks[index]
        if not any(i in faulty for i in own):
            continue
        if all(i in faulty for i in own):
            removals.append(_block_removal(answer, block))
            continue
        # A run of faulty sentences goes with the space after it, or before it at the block end.
        position = 0
        while position < len(own):
            if own[position] not in faulty:
                position += 1
                continue
            last = position
            while last + 1 < len(own) and own[last + 1] in faulty:
                last += 1
            first_s, last_s = sentences[own[position]], sentences[own[last]]
            if last + 1 < len(own):
                removals.append((first_s.start, sentences[own[last + 1]].start))
            else:
                removals.append((sentences[own[position - 1]].end, last_s.end))
            position = last + 1
    text = answer
    for start, end in _merged(removals)[::-1]:
        text = text[:start] + text[end:]
    trace = [
        {
            "action": "dropped_sentence",
            "sentence": report.sentences[i],
            "problems": [{"kind": p.kind, "detail": p.detail} for p in problems],
        }
        for i, problems in sorted(faulty.items())
    ]
    return text, trace


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def renumber(
    answer: str, sources: dict[int, SourcePassage]
) -> tuple[str, dict[int, SourcePassage]]:
    """The answer with its marks renumbered 1..k in order of first use, and the cited sources
    under their new numbers. A mark's own spelling (`[1,3]`, `[1][3]`) is kept; a number naming
    no source is removed from its mark, and a mark left empty goes with the space before it."""
    order = [n for n in cited_numbers(answer) if n in sources]
    new = {old: position for position, old in enumerate(order, 1)}
    edits: list[tuple[int, int, str]] = []
    for sentence in _parse(answer)[1]:
        for mark in sentence.marks:
            written = answer[mark.start : mark.end]
            if all(n in new for n in mark.numbers):
                rewritten = re.sub(r"\d+", lambda m: str(new[int(m.group(0))]), written)
                if rewritten != written:
                    edits.append((mark.start, mark.end, rewritten))
                continue
            kept = list(dict.fromkeys(new[n] for n in mark.numbers if n in new))
            if kept:
                edits.append((mark.start, mark.end, "[" + ", ".join(map(str, kept)) + "]"))
            else:
                start = len(answer[: mark.start].rstrip(" \t"))
                edits.append((start, mark.end, ""))
    text = answer
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    renumbered = {new[n]: dataclasses.replace(sources[n], n=new[n]) for n in order}
    return text, renumbered


def render_sources(sources: dict[int, SourcePassage], used: Iterable[int] | None = None) -> str:
    """The numbered source list shown under an answer, one line per source in `used` (default:
    all, by number): `[n] title — path (passage id)`, and for a web page `[n] title — domain,
    date — URL (#k)`, so a reader sees whose page and how recent before opening it."""
    numbers = sorted(sources) if used is None else [n for n in used if n in sources]
    lines = []
    for n in numbers:
        passage = sources[n]
        host = urlsplit(passage.source).hostname if "://" in passage.source else None
        origin = ", ".join(part for part in (host, passage.published) if part)
        where = " — ".join(part for part in (passage.title, origin, passage.source) if part)
        # A passage id that starts with its file or URL says only which passage of it.
        ident = passage.passage_id
        if ident and passage.source and ident.startswith(passage.source):
            ident = ident[len(passage.source) :]
        lines.append(f"[{n}] {where} ({ident})" if ident else f"[{n}] {where}")
    return "\n".join(lines)
