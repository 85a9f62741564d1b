"""benchmarks/retries.py reads every try of a branch back from a real task history: a coder
agent on a scripted backend writes wrong code, its checks fail, and its revision is right."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import retries
from myninja.agent_graph.evals.humaneval import load_problems
from tests.agent_graph.scripts import PLAN_ONE_STEP
from tests.conftest import scripted_config

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "humaneval-dev3.jsonl"


@pytest.mark.slow
def test_a_revision_that_comes_right_is_counted(tmp_path: Path, myninja_home: Path) -> None:
    (problem,) = load_problems(FIXTURE, 1)
    right = problem.prompt.lstrip() + problem.canonical_solution
    wrong = right.replace("distance < threshold", "distance > threshold")
    assert wrong != right
    rules = [
        PLAN_ONE_STEP,
        # The revision's prompt holds the checks' report ("I ran the examples ...").
        {"match": r"I ran the", "reply": f"```python\n{right}```"},
        {"match": rf"def {problem.entry_point}\(", "reply": f"```python\n{wrong}```"},
    ]
    scripted_config(myninja_home, rules, graph="[graph]\nbranches = 1\n")
    out = tmp_path / "runs"

    summary = retries.run_mode("feedback", FIXTURE, out, 1)
    counts = retries.analyse(FIXTURE, out, 1, summary["run_id"])

    assert summary["passed"] == 1
    assert counts == {
        "widened": 0,
        "tried_again": 1,
        "made_right": 1,
        "made_to_pass_checks": 1,
        "tasks_not_in_history": 0,
    }
