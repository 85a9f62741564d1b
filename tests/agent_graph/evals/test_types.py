"""Figures per question type: HotpotQA's bridge and comparison read from the question, NQ-open by
the kind of gold answer, and `myninja eval`'s report and chart-types.png with them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from myninja.agent_graph.evals.datasets import EvalQuestion, load_questions
from myninja.agent_graph.evals.metrics import aggregate
from myninja.agent_graph.evals.runner import EvalSettings, run_eval
from myninja.agent_graph.evals.types import by_type, question_type
from tests.agent_graph.evals.test_chart import NQ, PNG_SIGNATURE, needs_matplotlib, scripted


def hotpot(question: str, gold: str) -> EvalQuestion:
    return EvalQuestion("q", question, [gold])


@pytest.mark.parametrize(
    ("question", "gold", "kind"),
    [
        ("Who died first, George Archainbaud or Ralph Murphy?", "George Archainbaud", "comparison"),
        ("Are Yingkou and Fuding the same level of city?", "no", "comparison"),
        ("Are both Delmer Daves and Jean-Pierre Jeunet film directors?", "Yes", "comparison"),
        (
            "Which was fought earlier, the Seven Days Battles or Gettysburg?",
            "The Seven Days Battles",
            "comparison",
        ),
        (
            "The arena where the Lewiston Maineiacs played can seat how many people?",
            "3,677 seated",
            "bridge",
        ),
        (
            "The battle in which Giuseppe Arimondi lost his life secured what for Ethiopia?",
            "sovereignty",
            "bridge",
        ),
    ],
)
def test_hotpotqa_types(question: str, gold: str, kind: str) -> None:
    assert question_type("hotpotqa", hotpot(question, gold)) == kind


@pytest.mark.parametrize(
    ("golds", "kind"),
    [
        (["May 18, 2018"], "date"),
        (["1979–80"], "date"),
        (["the 1970s"], "date"),
        (["till September"], "date"),
        (["5,534 registered hospitals"], "number"),
        (["five"], "number"),
        (["260,999"], "number"),
        (["Tulsa, Oklahoma"], "other"),
        (["Oliver Conant", "Christopher Norris"], "other"),
        (["National Industrial Recovery Act"], "other"),
    ],
)
def test_nq_answer_types(golds: list[str], kind: str) -> None:
    assert question_type("nq-open", EvalQuestion("q", "when?", golds)) == kind


def test_by_type_groups_rows_and_leaves_out_what_has_no_type() -> None:
    rows = [
        {"question_id": "a", "em": True, "f1": 1.0},
        {"question_id": "b", "em": False, "f1": 0.5},
        {"question_id": "c", "em": True, "f1": 1.0},
        {"question_id": "d", "em": True, "f1": 1.0},  # not among this file's questions
    ]
    grouped = by_type("hotpotqa", rows, {"a": "bridge", "b": "bridge", "c": "comparison"})
    assert list(grouped) == ["bridge", "comparison"]
    assert grouped["bridge"] == aggregate(rows[:2])
    assert grouped["bridge"]["count"] == 2 and grouped["bridge"]["f1"] == 75.0
    assert grouped["comparison"]["em"] == 100.0


@needs_matplotlib
def test_the_report_tables_and_charts_the_types_of_every_run(tmp_path: Path) -> None:
    questions = load_questions("nq-open", NQ)  # 2 dates and 3 others
    kinds = [question_type("nq-open", q) for q in questions]
    assert sorted(kinds) == ["date", "date", "other", "other", "other"]
    first = asyncio.run(
        run_eval(questions, EvalSettings("nq-open", "contexts"), scripted(), out=tmp_path)
    )
    second = asyncio.run(
        run_eval(questions, EvalSettings("nq-open", "closed-book"), scripted(), out=tmp_path)
    )
    assert list(second["by_type"]) == ["date", "other"]
    assert sum(t["count"] for t in second["by_type"].values()) == second["count"] == 5
    assert (tmp_path / "chart-types.png").read_bytes()[:8] == PNG_SIGNATURE
    assert second["chart_types"] == str(tmp_path / "chart-types.png")
    report = (tmp_path / "report.md").read_text()
    assert "## By question type" in report and "![runs by question type](chart-types.png)" in report
    date = second["by_type"]["date"]
    assert f"| date | 2 | {date['em']:.2f} | {date['substring_acc']:.2f} |" in report
    # Both runs side by side, by the headline metrics of each type.
    header = "| run | em · date | em · other | substring_acc · date | substring_acc · other |"
    assert header in report
    assert f"| {second['run_id']} (this run) |" in report and f"| {first['run_id']} |" in report
