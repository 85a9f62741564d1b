"""benchmarks/judge.py's reading of recorded branches: which branch each way of choosing keeps,
and the rates it reports, on records built by hand (the model's part is recorded, not run)."""

from __future__ import annotations

from typing import Any

from benchmarks import judge

PASS = {"skill": "coder", "verdict": "2 of 2 examples passed", "passed": True}
FAIL = {"skill": "coder", "verdict": "1 of 2 examples passed", "passed": False}


def coder_problem() -> dict[str, Any]:
    return {"id": "p", "agent": "coder", "text": "Write f.", "sources": []}


def qa_problem(gold: str) -> dict[str, Any]:
    return {"id": "q", "agent": "researcher", "text": "Who?", "sources": [], "gold": [gold]}


def record(branches: list[tuple[str, list[dict], bool]], **verdicts: Any) -> dict[str, Any]:
    rows = [{"text": t, "checks": c, "right": r} for t, c, r in branches]
    base = {"id": "x", "branches": rows, "judge_each": [5.0] * len(rows), "judge_compare": 0,
            "compare_groups": {}}  # fmt: skip
    return base | verdicts


def test_a_qa_branch_is_right_when_a_gold_answer_is_in_its_first_sentence() -> None:
    problem = qa_problem("Jane Austen")
    assert judge.right(problem, "It was written by jane austen. Published 1813.")
    assert not judge.right(problem, "It was Charlotte Bronte. Some say Jane Austen.")
    assert not judge.right(problem, "")


def test_shipped_keeps_the_first_branch_when_its_checks_pass() -> None:
    rec = record(
        [("a", [PASS], False), ("b", [PASS], True), ("c", [FAIL], False)],
        judge_each=[2.0, 9.0, 1.0], judge_compare=1,
    )  # fmt: skip
    kept = judge.choices(coder_problem(), rec)
    assert kept["first"] == 0 and kept["shipped"] == 0
    assert kept["judge_each"] == 1 and kept["judge_compare"] == 1
    assert kept["oracle"] == 1
    assert abs(float(kept["random"]) - 1 / 3) < 1e-9


def test_shipped_turns_to_the_checks_when_the_first_branch_fails_them() -> None:
    rec = record([("a", [FAIL], False), ("b", [FAIL], False), ("c", [PASS], True)])
    kept = judge.choices(coder_problem(), rec)
    assert kept["checks"] == 2 and kept["shipped"] == 2
    assert kept["first"] == 0


def test_shipped_asks_the_judge_about_the_passing_group_alone() -> None:
    # b2 and b3 pass; the comparing judge, shown just those two, preferred the second (b3).
    rec = record(
        [("a", [FAIL], False), ("b", [PASS], False), ("c", [PASS], True)],
        compare_groups={"b2,b3": 1},
    )  # fmt: skip
    assert judge.choices(coder_problem(), rec)["shipped"] == 2


def test_agreement_keeps_the_largest_group_of_agreeing_answers() -> None:
    rec = record(
        [("Charlotte Bronte.", [], False), ("Jane Austen.", [], True), ("Jane Austen.", [], True)]
    )
    assert judge.choices(qa_problem("Jane Austen"), rec)["agreement"] == 1


def test_report_rates_and_targets() -> None:
    problem = coder_problem()
    saved = record([("a", [FAIL], False), ("b", [PASS], True), ("c", [FAIL], False)])
    lost = record([("a", [PASS], True), ("b", [FAIL], False), ("c", [FAIL], False)])
    hopeless = record([("a", [FAIL], False), ("b", [FAIL], False), ("c", [FAIL], False)])
    out = judge.report("humaneval", [(problem, saved), (problem, lost), (problem, hopeless)])
    assert out["problems"] == 3 and out["with_a_right_branch"] == 2
    assert out["keeps_a_right_branch"]["first"] == round(1 / 3, 4)
    assert out["keeps_a_right_branch"]["shipped"] == round(2 / 3, 4)
    assert out["when_one_is_right"]["shipped"] == 1.0
    assert out["when_one_is_right"]["oracle"] == 1.0
    assert out["targets"] == {
        "shipped_at_least_first": True,
        "shipped_keeps_a_right_one_90pc": True,
    }
