"""What the plan tree says about a researcher's searches, from the events alone."""

from __future__ import annotations

from typing import Any

from myninja.agent_graph.tasks.branch_tree import plan_rounds
from myninja.ninja_tui.widgets.task_view import branch_label, search_summary


def ev(kind: str, **data: Any) -> dict[str, Any]:
    return {"type": kind, **data}


EVENTS = [
    ev("retrieved", query="q", hop=1, branch_id=None, passages=[{}, {}, {}], notes=["x failed"]),
    ev("plan", steps=[{"title": "Answer", "instruction": "."}], round=1),
    ev("branch_started", step=0, round=1, branch_id="s1r1b1", agent="researcher", temperature=0.2),
    ev("branch_started", step=0, round=1, branch_id="s1r1b2", agent="researcher", temperature=0.6),
    ev("retrieved", query="Mira Quell", hop=2, branch_id="s1r1b2", passages=[{}], notes=[]),
]


def test_the_first_search_is_summed_up_with_its_notes() -> None:
    assert search_summary(EVENTS) == "searched: 3 passages; x failed"
    assert search_summary(EVENTS[1:]) is None  # no researcher search: nothing to say


def test_a_branch_that_searched_again_says_for_what() -> None:
    (plan,) = plan_rounds(EVENTS)
    first, second = plan["steps"][0]["branches"]
    assert "searched" not in branch_label(first, 0).plain
    assert "searched “Mira Quell” +1" in branch_label(second, 0).plain


def test_a_branch_shows_its_checks_and_revisions() -> None:
    checks = [
        {"skill": "coder", "verdict": "tests: passed 2", "passed": True},
        {"skill": "lint", "verdict": "not checked: no code", "passed": None},
    ]
    events = [
        *EVENTS[1:4],
        ev(
            "branch_done", step=0, round=1, branch_id="s1r1b1", text="x", checks=checks, revisions=2
        ),
        ev(
            "branch_done",
            step=0,
            round=1,
            branch_id="s1r1b2",
            text="y",
            checks=[{"skill": "coder", "verdict": "tests: passed 0, failed 1", "passed": False}],
            revisions=0,
        ),
    ]
    (plan,) = plan_rounds(events)
    first, second = (branch_label(b, 0).plain for b in plan["steps"][0]["branches"])
    assert first.endswith("  ✓ tests: passed 2  2 revisions")
    assert "not checked" not in first  # nothing ran: nothing to show
    assert second.endswith("  ✗ tests: passed 0, failed 1")
