"""Question-set loaders on the dev fixtures, and the one-line errors a bad file gets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from myninja.agent_graph.evals.datasets import (
    BadDatasetFile,
    load_questions,
    passage_key,
    pooled_passages,
    write_passages,
)
from myninja.errors import UsageError
from myninja.skills.research.passages import read_passages

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
HOTPOT = FIXTURES / "hotpotqa-dev5.jsonl"
NQ = FIXTURES / "nq-open-oracle-dev5.jsonl"


def test_hotpotqa_rows_keep_their_paragraphs_in_order_and_the_two_supporting() -> None:
    questions = load_questions("hotpotqa", HOTPOT)
    assert len(questions) == 5
    first = questions[0]
    raw = json.loads(HOTPOT.read_text().splitlines()[0])
    assert first.id == raw["question_id"] and first.golds == ["Animorphs"]
    assert [p.title for p in first.passages] == [c["title"] for c in raw["contexts"]]
    supporting = [c["title"] for c in raw["contexts"] if c["is_supporting"]]
    assert [p.title for p in first.passages if p.id in first.supporting_ids] == supporting
    assert len(first.supporting_ids) == 2
    # Ids come from the content, so they are the same on every load and unique across rows.
    assert first.passages[0].id == passage_key(first.passages[0].title, first.passages[0].text)
    assert load_questions("hotpotqa", HOTPOT)[0] == first


def test_nq_oracle_rows_have_one_gold_passage_and_stable_ids() -> None:
    questions = load_questions("nq-open", NQ, limit=3)
    assert len(questions) == 3
    deadpool = questions[0]
    assert deadpool.golds == ["May 18, 2018"]
    assert [p.title for p in deadpool.passages] == ["Deadpool 2"]
    assert deadpool.supporting_ids == [deadpool.passages[0].id]
    assert deadpool.id == load_questions("nq-open", NQ)[0].id
    assert len({q.id for q in questions}) == 3


def test_plain_nq_open_has_no_passages(tmp_path: Path) -> None:
    plain = tmp_path / "nq.jsonl"
    plain.write_text(
        '{"question": "who sings ain\'t nothing but a good time", "answer": ["Poison"]}\n\n'
        '{"id": "q2", "question": "flashrag style", "golden_answers": ["x", "y"]}\n'
    )
    first, second = load_questions("nq-open", plain)
    assert first.golds == ["Poison"] and first.passages == [] and first.supporting_ids == []
    assert second.id == "q2" and second.golds == ["x", "y"]


@pytest.mark.parametrize(
    ("dataset", "text", "where"),
    [
        ("hotpotqa", '{"question_id": "a"}\n', ":1: not a HotpotQA row"),
        ("nq-open", '{"question": "q", "answers": ["a"]}\n{oops\n', ":2: not JSON"),
        ("nq-open", '{"question": "q"}\n', ":1: not an NQ-open row"),
        ("nq-open", "[1, 2]\n", ":1: expected a JSON object"),
        ("nq-open", '{"question": "q", "answers": ["a"], "ctxs": [{"title": "t"}]}\n', ":1: ctxs"),
        ("nq-open", '{"question": "q", "answer": ["a"]}\n' * 2, ":2: question id"),
        ("nq-open", "\n", ": no questions"),
    ],
)
def test_a_bad_file_is_one_line_naming_file_and_line(
    tmp_path: Path, dataset: str, text: str, where: str
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(text)
    with pytest.raises(BadDatasetFile) as caught:
        load_questions(dataset, bad)
    line = caught.value.one_line()
    assert f"{bad}{where}" in line and "\n" not in line
    assert caught.value.exit_code == 2


def test_missing_file_and_unknown_dataset_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read"):
        load_questions("nq-open", tmp_path / "nope.jsonl")
    with pytest.raises(UsageError, match="unknown dataset"):
        load_questions("squad", NQ)


def test_pooled_passages_round_trip_through_a_passage_file(tmp_path: Path) -> None:
    questions = load_questions("hotpotqa", HOTPOT)
    pool = pooled_passages(questions + questions)  # repeats are kept once
    assert len(pool) == len({p.id for q in questions for p in q.passages})
    out = tmp_path / "pool.jsonl"
    assert write_passages(questions, out) == len(pool)
    read = read_passages(out)
    assert [(p.id, p.title, p.text) for p in read] == [(p.id, p.title, p.text) for p in pool]
