"""Metrics on hand-checked cases (the arithmetic is in the comments) and on real HotpotQA rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from myninja.agent_graph.evals.metrics import (
    ABSTAIN_PHRASES,
    abstained,
    aggregate,
    citation_precision,
    exact_match,
    hotpot_f1,
    max_f1,
    normalize_answer,
    recall_at_k,
    score,
    substring_match,
)

HOTPOT_DEV = (
    Path(__file__).resolve().parents[3].parent
    / "shared"
    / "eval-data"
    / "dev"
    / "hotpotqa-distractor-dev100.jsonl"
)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("The Eiffel Tower!", "eiffel tower"),
        ("  A  cat,\tan apple ", "cat apple"),
        # Punctuation goes before articles are matched: "the-end" -> "theend", no article left.
        ("the-end", "theend"),
        # Articles only as whole words: "theatre" and "Anna" keep their letters.
        ("Theatre Anna", "theatre anna"),
        ("3,677 seated", "3677 seated"),
        # Only ASCII punctuation is removed, as in the SQuAD script: the en dash stays.
        ("1912–2005", "1912–2005"),
    ],
)
def test_normalize_answer_as_squad(raw: str, normalised: str) -> None:
    assert normalize_answer(raw) == normalised


def test_exact_match_any_gold() -> None:
    assert exact_match("The Eiffel Tower!", ["eiffel tower"])  # both -> "eiffel tower"
    assert exact_match("Paris", ["London", "paris."])
    assert not exact_match("Paris, France", ["Paris"])
    assert exact_match("Paris", "Paris")  # a lone string is one gold answer
    assert not exact_match("P", "Paris")  # ... not the letters of one


def test_substring_match() -> None:
    assert substring_match("It is the Eiffel Tower, in Paris.", ["eiffel tower"])
    assert not substring_match("It is in Paris.", ["eiffel tower"])
    assert not substring_match("anything", ["the", ""])  # golds that normalise to nothing


def test_f1_partial_overlap() -> None:
    # "the Eiffel Tower in Paris" -> [eiffel, tower, in, paris]; gold "Eiffel Tower" -> 2 tokens.
    # common 2: precision 2/4 = 0.5, recall 2/2 = 1, F1 = 2*0.5*1/1.5 = 2/3.
    f1, precision, recall = hotpot_f1("the Eiffel Tower in Paris", "Eiffel Tower")
    assert (precision, recall) == (0.5, 1.0)
    assert f1 == pytest.approx(2 / 3)
    # "a new york city" -> [new, york, city]; "New York" -> [new, york]; common 2:
    # precision 2/3, recall 2/2 = 1, F1 = 2*(2/3)*1/(5/3) = 4/5.
    assert hotpot_f1("a new york city", "New York") == pytest.approx((0.8, 2 / 3, 1.0))
    # Repeated tokens count once each side: [paris, paris] vs [paris]: common min(2,1) = 1,
    # precision 1/2, recall 1/1, F1 = 2/3.
    assert hotpot_f1("Paris Paris", "Paris")[0] == pytest.approx(2 / 3)
    assert hotpot_f1("London", "Paris") == (0.0, 0.0, 0.0)
    assert hotpot_f1("", "Paris") == (0.0, 0.0, 0.0)


def test_f1_yes_no_rule_as_the_hotpotqa_script() -> None:
    assert hotpot_f1("yes", "no") == (0.0, 0.0, 0.0)
    assert hotpot_f1("Yes.", "yes") == (1.0, 1.0, 1.0)  # both normalise to "yes"
    # Gold "yes", prediction "yes it is" (not "yes" once normalised): 0, not the 2/4 overlap.
    assert hotpot_f1("yes it is", "yes") == (0.0, 0.0, 0.0)
    # Prediction "no" against a span gold that contains "no": 0 by the same rule.
    assert hotpot_f1("no", "no doubt") == (0.0, 0.0, 0.0)
    # "noanswer" is special too; "no answer" normalises to "no answer", which is not.
    assert hotpot_f1("noanswer", "Paris") == (0.0, 0.0, 0.0)
    # A yes/no word inside two ordinary answers is an ordinary token: [yes, man] vs
    # [yes, minister]: common 1, precision 1/2, recall 1/2, F1 1/2.
    assert hotpot_f1("Yes Man", "Yes Minister")[0] == pytest.approx(0.5)


def test_max_f1_over_golds() -> None:
    # Against "Paris": [paris, france] common 1, P 1/2, R 1 -> 2/3; against "Paris, France": 1.
    assert max_f1("Paris, France", ["Paris", "Paris, France"]) == 1.0
    assert max_f1("Paris, France", ["Paris"]) == pytest.approx(2 / 3)
    assert max_f1("Paris", []) == 0.0


def test_recall_at_k() -> None:
    retrieved = ["p7", "p2", "p9", "p8", "p1"]
    # HotpotQA: both supporting paragraphs ("p2", "p8") must be in the top k.
    assert recall_at_k(retrieved, ["p2", "p8"], k=4) == 1.0
    assert recall_at_k(retrieved, ["p2", "p8"], k=3) == 0.0  # p8 is 4th
    assert recall_at_k(retrieved, ["p2", "p8"], k=3, need_all=False) == 1.0
    # NQ: the one gold passage.
    assert recall_at_k(retrieved, ["p1"], k=5) == 1.0
    assert recall_at_k(retrieved, ["p1"], k=2) == 0.0
    assert recall_at_k([], ["p1"], k=5) == 0.0
    with pytest.raises(ValueError):
        recall_at_k(retrieved, [], k=5)


def test_citation_precision() -> None:
    texts = [
        "The Eiffel Tower is a wrought-iron lattice tower in Paris.",  # holds "eiffel tower"
        "Gustave Eiffel was a French civil engineer.",  # no gold; supporting by id
        "The Louvre is an art museum.",  # neither
    ]
    # By answer only: 1 of 3.
    assert citation_precision(texts, ["Eiffel Tower"]) == pytest.approx(1 / 3)
    # With ids, the second is a supporting passage too: 2 of 3.
    precision = citation_precision(
        texts, ["Eiffel Tower"], supporting_ids=["d2", "d9"], cited_ids=["d1", "d2", "d3"]
    )
    assert precision == pytest.approx(2 / 3)
    assert citation_precision([], ["Eiffel Tower"]) is None
    with pytest.raises(ValueError):
        citation_precision(texts, ["x"], cited_ids=["d1"])


@pytest.mark.parametrize(
    "answer",
    [
        "I don't know.",
        "I don’t know the answer to that.",
        "I could not find this in the sources.",
        "The passages do not contain information about his birthplace.",
        "There is not enough information to answer.",
        "",
    ],
)
def test_abstained(answer: str) -> None:
    assert abstained(answer)


@pytest.mark.parametrize(
    "answer", ["Paris", "The Unknown Soldier", "None of the founders; it was Eiffel's company."]
)
def test_not_abstained(answer: str) -> None:
    assert not abstained(answer)


def test_abstain_phrases_are_lower_case_and_distinct() -> None:
    assert all(phrase == phrase.lower().strip() for phrase in ABSTAIN_PHRASES)
    assert len(set(ABSTAIN_PHRASES)) == len(ABSTAIN_PHRASES)


def test_aggregate() -> None:
    rows = [
        score("Eiffel Tower", ["Eiffel Tower"], retrieved_ids=["a", "b"], gold_ids=["a", "b"], k=2),
        # EM 0, substring 1, F1: [eiffel, tower, in, paris] vs 2 tokens -> 2/3 (see above);
        # recall 0 (b is not in the top 1).
        score(
            "the Eiffel Tower in Paris",
            "Eiffel Tower",
            retrieved_ids=["a", "b"],
            gold_ids=["a", "b"],
            k=1,
        ),
        # Abstains: EM 0, substring 0, F1 0; no retrieval, so no recall.
        score("I don't know", ["Eiffel Tower"], cited_passage_texts=["The Eiffel Tower is tall."]),
    ]
    report = aggregate(rows)
    assert report == {
        "count": 3,
        "em": 33.33,  # 1/3
        "substring_acc": 66.67,  # 2/3
        "f1": 55.56,  # (1 + 2/3 + 0) / 3 = 5/9 = 0.5556
        "recall_at_k": 50.0,  # (1 + 0) / 2 rows that had retrieval
        "citation_precision": 100.0,  # one row cited, its one passage holds the answer
        "abstention_rate": 33.33,
    }
    assert aggregate([])["count"] == 0 and aggregate([])["em"] is None


def hotpot_rows() -> list[dict]:
    with HOTPOT_DEV.open(encoding="utf-8") as lines:
        return [json.loads(line) for _, line in zip(range(3), lines, strict=False)]


def gold(row: dict) -> str:
    return row["answers_objects"][0]["spans"][0]


@pytest.mark.skipif(not HOTPOT_DEV.exists(), reason="shared eval data not present")
def test_real_hotpotqa_rows() -> None:
    rows = hotpot_rows()
    # The first three dev answers: "Animorphs", "3,677 seated", "Kansas Song".
    assert [gold(row) for row in rows] == ["Animorphs", "3,677 seated", "Kansas Song"]
    for row in rows:
        assert exact_match(gold(row), [gold(row)])
        assert hotpot_f1(gold(row), gold(row)) == (1.0, 1.0, 1.0)
        supporting = [c["id"] for c in row["contexts"] if c["is_supporting"]]
        all_ids = [c["id"] for c in row["contexts"]]
        assert recall_at_k(all_ids, supporting, k=len(all_ids)) == 1.0
    # Another row's gold: no shared token ("animorphs" vs "3677 seated"), so EM 0 and F1 0.
    assert not exact_match(gold(rows[0]), [gold(rows[1])])
    assert hotpot_f1(gold(rows[0]), gold(rows[1])) == (0.0, 0.0, 0.0)
    # "Kansas Song" vs "Animorphs": also nothing shared.
    assert max_f1(gold(rows[2]), [gold(rows[0])]) == 0.0
