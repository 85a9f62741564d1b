"""The citation checker on crafted answers: what it must flag, what it must let through
untouched, and how dropping and renumbering keep the rest of the answer as written."""

from __future__ import annotations

import pytest

from myninja.skills.research.citations import (
    QUOTE_IN_OTHER_SOURCE,
    QUOTE_NOT_FOUND,
    UNKNOWN_SOURCE,
    SourcePassage,
    attribute_uncited,
    check_citations,
    cited_numbers,
    drop_unsupported,
    render_sources,
    renumber,
    repair_prompt,
    strip_marks,
)

EIFFEL = (
    "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. "
    "It is named after the engineer Gustave Eiffel, whose company designed and built it."
)
PARIS = "Paris is the capital and most populous city of France, with 2.1 million residents."
LOUVRE = "The Louvre is the world's most-visited art museum, on the Right Bank of the Seine."


@pytest.fixture
def sources() -> dict[int, SourcePassage]:
    return {
        1: SourcePassage(1, "wiki-eiffel-0", "Eiffel Tower", "https://example.org/eiffel", EIFFEL),
        2: SourcePassage(2, "wiki-paris-0", "Paris", "notes/paris.md", PARIS),
        3: SourcePassage(3, "wiki-louvre-0", "Louvre", "notes/louvre.md", LOUVRE),
    }


CORRECT = """**Short answer:** the Eiffel Tower is in Paris [1].

The tower is “a wrought-iron lattice tower on the Champ de Mars” [1]. It was named after
Gustave Eiffel, e.g. the engineer whose company built it.[1] Paris is "the capital and most
populous city of France" [2].

- The Louvre is 'the world's most-visited art museum' [3].
- Both sit in Paris [1, 3].
"""


def kinds(answer: str, sources: dict[int, SourcePassage]) -> list[tuple[int, str]]:
    return [(p.sentence, p.kind) for p in check_citations(answer, sources).problems]


def test_correct_answer_passes_every_step_byte_identical(sources) -> None:
    report = check_citations(CORRECT, sources)
    assert report.ok, report.problems
    assert repair_prompt(report) == ""
    assert drop_unsupported(CORRECT, report) == (CORRECT, [])
    # Already numbered 1..3 in order of first use: renumbering changes nothing.
    text, renumbered = renumber(CORRECT, sources)
    assert text == CORRECT
    assert renumbered == sources


def test_sentences_follow_markdown(sources) -> None:
    report = check_citations(CORRECT, sources)
    assert report.sentences == (
        "**Short answer:** the Eiffel Tower is in Paris [1].",
        "The tower is “a wrought-iron lattice tower on the Champ de Mars” [1].",
        # A soft line break does not end a sentence, "e.g." does not, and the mark after the
        # full stop belongs to the sentence before it.
        "It was named after\nGustave Eiffel, e.g. the engineer whose company built it.[1]",
        'Paris is "the capital and most\npopulous city of France" [2].',
        "The Louvre is 'the world's most-visited art museum' [3].",
        "Both sit in Paris [1, 3].",
    )


def test_wrong_number_is_flagged(sources) -> None:
    # [2] exists, but the quote is in [1]: the repair hint names the passage that holds it.
    answer = "The tower is “a wrought-iron lattice tower” [2]."
    report = check_citations(answer, sources)
    assert [(p.sentence, p.kind) for p in report.problems] == [(0, QUOTE_IN_OTHER_SOURCE)]
    assert "[1]" in report.problems[0].detail


def test_number_of_a_passage_not_retrieved(sources) -> None:
    answer = "Paris is big [2]. The tower is tall [7]. It is old [1][9]."
    assert kinds(answer, sources) == [(1, UNKNOWN_SOURCE), (2, UNKNOWN_SOURCE)]
    problems = check_citations(answer, sources).problems
    assert "[7]" in problems[0].detail and "[9]" in problems[1].detail


def test_quote_in_no_passage(sources) -> None:
    answer = 'Paris is "the largest city in Europe" [2].'
    assert kinds(answer, sources) == [(0, QUOTE_NOT_FOUND)]


def test_quote_in_another_cited_sentence_source_is_not_enough(sources) -> None:
    # The paragraph cites [1] and [2], but the sentence with the quote cites only [1].
    answer = "The tower stands “on the Champ de Mars” [1]. Paris has “2.1 million residents” [1]."
    assert kinds(answer, sources) == [(1, QUOTE_IN_OTHER_SOURCE)]


def test_uncited_quote_is_checked_against_every_passage(sources) -> None:
    assert kinds("It is “the world's most-visited art museum”.", sources) == []
    assert kinds("It is “the world's oldest museum”.", sources) == [(0, QUOTE_NOT_FOUND)]


def test_quotes_differ_in_case_whitespace_and_quote_marks(sources) -> None:
    # Curly apostrophe for the passage's straight one, a reflowed line, other case, and the
    # answer's own full stop inside the quote: all the same words.
    answer = (
        "It is “The World’s   most-visited\nART museum.” [3]. The tower bears the name of "
        "“the engineer Gustave Eiffel … designed and built it” [1]."
    )
    assert kinds(answer, sources) == []


def test_multi_citation_finds_the_quote_in_any_cited_passage(sources) -> None:
    assert kinds("The city is “the capital and most populous city” [1, 2].", sources) == []
    assert kinds("The city is “the capital and most populous city” [1][2].", sources) == []
    assert kinds("The city is “the capital and most populous city” [1, 3].", sources) == [
        (0, QUOTE_IN_OTHER_SOURCE)
    ]


def test_apostrophes_are_not_quotes(sources) -> None:
    answer = "It's the tower's shape, the engineers' design and the '90s lights [1]."
    report = check_citations(answer, sources)
    assert report.ok


def test_fenced_code_is_not_checked(sources) -> None:
    answer = 'See:\n\n```\nprint("not a quote") # [8]\n```\n\nParis [2].\n'
    assert check_citations(answer, sources).ok
    assert cited_numbers(answer) == [2]


def test_links_are_not_marks(sources) -> None:
    answer = "See [1](https://example.org) and [2] and [3, 1] and [1][4]."
    assert cited_numbers(answer) == [2, 3, 1, 4]


def test_repair_prompt_names_each_fault(sources) -> None:
    answer = "Paris is “the largest city in Europe” [2]. It is old [5]. Fine [1]."
    prompt = repair_prompt(check_citations(answer, sources))
    assert "Paris is “the largest city in Europe” [2]." in prompt
    assert "It is old [5]." in prompt
    assert "Fine [1]." not in prompt
    assert "[1], [2], [3]" in prompt  # the numbers it may cite


def test_drop_keeps_the_rest_as_written(sources) -> None:
    answer = """**Short answer:** Paris [2].

The tower is “made of gold” [1]. It is named after
Gustave Eiffel [1]. It opened in 1889 [4].

- Louvre [3].
- Bad [6].
- Good [2].

Unsupported paragraph [9].

Last words [1].
"""
    report = check_citations(answer, sources)
    text, trace = drop_unsupported(answer, report)
    expected = """**Short answer:** Paris [2].

It is named after
Gustave Eiffel [1].

- Louvre [3].
- Good [2].

Last words [1].
"""
    assert text == expected
    assert [entry["sentence"] for entry in trace] == [
        "The tower is “made of gold” [1].",
        "It opened in 1889 [4].",
        "Bad [6].",
        "Unsupported paragraph [9].",
    ]
    assert trace[0]["problems"][0]["kind"] == QUOTE_NOT_FOUND
    assert all(entry["action"] == "dropped_sentence" for entry in trace)
    assert check_citations(text, sources).ok


def test_dropping_the_last_paragraph_leaves_no_gap(sources) -> None:
    answer = "Paris [2].\n\nGone [9].\n"
    text, _ = drop_unsupported(answer, check_citations(answer, sources))
    assert text == "Paris [2].\n"


def test_drop_refuses_a_report_of_another_answer(sources) -> None:
    report = check_citations("Gone [9].", sources)
    with pytest.raises(ValueError):
        drop_unsupported("Something else [9].", report)


def test_renumber_by_first_use(sources) -> None:
    answer = "Louvre [3]. Tower [1][3]. Both [3, 1]. Nothing [8]. Partly [8, 1].\n"
    text, renumbered = renumber(answer, sources)
    # 3 -> 1, 1 -> 2; [2] was never cited; [8] names no source and is removed.
    assert text == "Louvre [1]. Tower [2][1]. Both [1, 2]. Nothing. Partly [2].\n"
    assert sorted(renumbered) == [1, 2]
    assert renumbered[1].passage_id == "wiki-louvre-0" and renumbered[1].n == 1
    assert renumbered[2].passage_id == "wiki-eiffel-0" and renumbered[2].n == 2


def test_render_sources(sources) -> None:
    assert render_sources(sources, [2, 3]) == (
        "[2] Paris — notes/paris.md (wiki-paris-0)\n[3] Louvre — notes/louvre.md (wiki-louvre-0)"
    )
    _, renumbered = renumber("Louvre [3].", sources)
    assert render_sources(renumbered) == "[1] Louvre — notes/louvre.md (wiki-louvre-0)"


def test_a_quote_holding_full_stops_is_one_sentence(sources) -> None:
    answer = (
        "It says “Paris is the capital and most populous city of France. Not Lyon.” [2] Ok [2]."
    )
    report = check_citations(answer, sources)
    assert report.sentences[0].endswith("[2]") and len(report.sentences) == 2
    assert [p.kind for p in report.problems] == [QUOTE_NOT_FOUND]  # "Not Lyon." is not in [2]


def test_tables_and_numbered_lists(sources) -> None:
    answer = "| city | fact |\n|---|:--:|\n| Paris | capital [2] |\n| Rome | capital [5] |\n"
    report = check_citations(answer, sources)
    assert report.sentences == ("city | fact |", "Paris | capital [2] |", "Rome | capital [5] |")
    assert drop_unsupported(answer, report)[0] == (
        "| city | fact |\n|---|:--:|\n| Paris | capital [2] |\n"
    )
    answer = "1. Tower [1].\n2. Bad [5].\n   Wrapped on. Good [2].\n"
    text, _ = drop_unsupported(answer, check_citations(answer, sources))
    # The continuation line is the item's next sentence, so only "Bad [5]." goes.
    assert text == "1. Tower [1].\n2. Wrapped on. Good [2].\n"


# -- attribute_uncited ------------------------------------------------------------------------


def test_an_uncited_sentence_written_from_a_passage_gets_its_mark(sources) -> None:
    answer = (
        "Paris is the most populous city of France, with 2.1 million residents. "
        "The Louvre is the world's most-visited art museum [3]."
    )
    marked, trace = attribute_uncited(answer, sources)
    assert marked == (
        "Paris is the most populous city of France, with 2.1 million residents [2]. "
        "The Louvre is the world's most-visited art museum [3]."
    )
    assert trace == [
        {
            "action": "attributed",
            "sentence": "Paris is the most populous city of France, with 2.1 million residents.",
            "n": 2,
            "share": 1.0,
        }
    ]
    assert check_citations(marked, sources).ok


@pytest.mark.parametrize(
    "answer",
    [
        "Paris has many bakeries and a busy metro.",  # a little of a passage is not enough
        "It is in Paris.",  # too few words to go on
        'The tower is "a wrought-iron lattice tower" on the Champ de Mars in Paris.',  # a quote
        "The Eiffel Tower is in Paris, France [2].",  # cited already, even if wrongly
        "```\nParis is the capital and most populous city of France\n```",  # code
    ],
)
def test_what_the_words_do_not_show_gets_no_mark(sources, answer: str) -> None:
    assert attribute_uncited(answer, sources) == (answer, [])


def test_a_mark_after_the_last_full_stop_belongs_to_the_last_sentence(sources) -> None:
    """Small models write "…France. [2]" at the end of an answer: the mark cites that
    sentence, which is then neither uncited nor followed by a stray mark."""
    answer = "Paris is the most populous city of France, with 2.1 million residents. [2]"
    assert attribute_uncited(answer, sources) == (answer, [])
    report = check_citations(answer, sources)
    assert report.ok and report.sentences == (answer,)


def test_a_sentence_goes_to_the_passage_holding_most_of_its_words(sources) -> None:
    answer = "Gustave Eiffel's company designed and built the lattice tower in Paris, France!"
    marked, trace = attribute_uncited(answer, sources)
    assert marked.endswith("in Paris, France [1]!") and trace[0]["n"] == 1


def test_a_web_source_shows_its_domain_and_date() -> None:
    page = SourcePassage(
        1, "https://news.example.org/a#2", "Otters", "https://news.example.org/a", "x", "2024-05-01"
    )
    local = SourcePassage(2, "/notes/o.md#0", "Otter notes", "/notes/o.md", "y")
    assert render_sources({1: page, 2: local}) == (
        "[1] Otters — news.example.org, 2024-05-01 — https://news.example.org/a (#2)\n"
        "[2] Otter notes — /notes/o.md (#0)"
    )


@pytest.mark.parametrize(
    ("answer", "clean"),
    [
        ("The capital of France is Paris. [1]", "The capital of France is Paris."),
        ("Paris [1][2] is large [3, 4].", "Paris is large."),
        ("Canberra[1].", "Canberra."),
        ("- one [2]\n- two", "- one\n- two"),
        # Code is not prose: an index stays an index.
        (
            "Use `xs[1]` here.\n\n```python\nx = xs[1]\n```",
            "Use `xs[1]` here.\n\n```python\nx = xs[1]\n```",
        ),
        ("See [the docs](https://example.org) [1]", "See [the docs](https://example.org)"),
    ],
)
def test_strip_marks_leaves_no_mark_in_prose(answer: str, clean: str) -> None:
    assert strip_marks(answer) == clean
