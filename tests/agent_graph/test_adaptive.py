"""Adaptive branching and the ways of choosing between branches, on the scripted backend: one
branch first, the others only when it falls short; checks by code, then agreement, then the
judge (one call comparing them, or one per branch); a replan only when every branch fails."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from myninja.agent_graph.tasks.manager import TaskManager
from myninja.backends.scripted import Rule, ScriptedBackend
from myninja.config import Config
from myninja.skills.api import Draft, Review, Skill
from tests.agent_graph.scripts import ALTERNATIVE, CAREFUL, DIRECT, PLAN_ONE_STEP, branch
from tests.agent_graph.test_graph import Open, of_type, run_to_rest, types


async def _passes_if_good(draft: Draft) -> Review:
    """A check by code: an answer passes when it says GOOD (no revision is asked for)."""
    return Review(verdict="good" if "GOOD" in draft.text else "bad", passed="GOOD" in draft.text)


CHECKED = Skill(
    name="checked",
    description="Checks the advisor's answers",
    agents=("advisor",),
    review=_passes_if_good,
)


@pytest.fixture
def open_graph(tmp_path: Path) -> Open:
    @asynccontextmanager
    async def opener(
        rules: list[dict[str, Any]], skill: Skill | None = None, **graph: Any
    ) -> AsyncIterator[tuple[TaskManager, ScriptedBackend]]:
        scripted = ScriptedBackend("embedded", [Rule(**r) for r in rules])
        settings = Config.model_validate({"graph": {"max_revisions": 0, **graph}})
        async with TaskManager.open(
            settings, tmp_path / "data", backends={"embedded": scripted}
        ) as manager:
            if skill is not None:
                assert manager.skills.add(skill, "test") is None
            yield manager, scripted

    return opener


def compare_calls(scripted: ScriptedBackend) -> list[Any]:
    return [c for c in scripted.calls if "Which candidate" in str(c.messages)]


def started(manager: TaskManager, task_id: str) -> list[str]:
    return [e["branch_id"] for e in of_type(manager, task_id, "branch_started")]


async def test_a_first_branch_that_passes_its_checks_is_kept_alone(open_graph: Open) -> None:
    rules = [PLAN_ONE_STEP, {"match": r"Attempt 1\.", "reply": "GOOD plan"}]
    async with open_graph(rules, CHECKED) as (manager, scripted):
        task_id = await manager.submit("@advisor Plan the move")
        task = await run_to_rest(manager, task_id)
        assert task["answer"] == "GOOD plan"
        assert started(manager, task_id) == ["s1r1b1"]
        (selected,) = of_type(manager, task_id, "selected")
        assert (selected["by"], selected["best_effort"]) == ("only", False)
        assert len(scripted.calls) == 1  # the branch: no judge
        assert "widened" not in types(manager, task_id)


async def test_a_first_branch_that_falls_short_brings_the_others(open_graph: Open) -> None:
    rules = [
        PLAN_ONE_STEP,
        branch(DIRECT, "bad plan"),
        branch(CAREFUL, "GOOD plan"),
        branch(ALTERNATIVE, "another bad plan"),
    ]
    async with open_graph(rules, CHECKED) as (manager, scripted):
        task_id = await manager.submit("@advisor Plan the move")
        task = await run_to_rest(manager, task_id)
        assert task["answer"] == "GOOD plan"
        assert started(manager, task_id) == ["s1r1b1", "s1r1b2", "s1r1b3"]
        (widened,) = of_type(manager, task_id, "widened")
        assert widened["branch_id"] == "s1r1b1" and widened["reason"] == "its checks failed: bad"
        (selected,) = of_type(manager, task_id, "selected")
        assert (selected["branch_id"], selected["by"]) == ("s1r1b2", "checks")
        scores = {e["branch_id"]: e["score"] for e in of_type(manager, task_id, "evaluation")}
        assert scores == {"s1r1b1": 3.0, "s1r1b2": 9.0, "s1r1b3": 3.0}
        assert not compare_calls(scripted)
        # The first branch is the model's most likely answer; the others sample.
        temperatures = [c.temperature for c in scripted.calls if "Attempt 1." in str(c.messages)]
        assert temperatures[0] == 0.0 and all(t > 0 for t in temperatures[1:])
        # The widening announced only the new branches, after the first was done.
        kinds = [e["type"] for e in manager.store.events(task_id)]
        assert kinds.index("widened") < kinds.index("branch_started", kinds.index("widened"))


async def _asks_for_good(draft: Draft) -> Review:
    """A check by code that says what to fix, so a failing branch may revise."""
    if "GOOD" in draft.text:
        return Review(verdict="good", passed=True)
    return Review(verdict="bad", passed=False, feedback="Say GOOD.")


FIXABLE = Skill(
    name="fixable", description="Checks answers", agents=("advisor",), review=_asks_for_good
)


@pytest.mark.parametrize("first_revisions", [0, 1])
async def test_a_first_branch_revises_as_often_as_first_revisions_before_the_others_run(
    open_graph: Open, first_revisions: int
) -> None:
    rules = [PLAN_ONE_STEP, {"match": r"Attempt 1\.", "reply": "bad plan"}]
    graph = {"max_revisions": 2, "first_revisions": first_revisions}
    async with open_graph(rules, FIXABLE, **graph) as (manager, scripted):
        task_id = await manager.submit("@advisor Plan the move")
        task = await run_to_rest(manager, task_id)
        assert task["answer"] == "bad plan"
        done = of_type(manager, task_id, "branch_done")
        # The others, run together after it, keep the full budget.
        revisions = {e["branch_id"]: e["revisions"] for e in done}
        assert revisions == {"s1r1b1": first_revisions, "s1r1b2": 2, "s1r1b3": 2}
        first_calls = [c for c in scripted.calls if f"Attempt 1. {DIRECT}" in str(c.messages)]
        assert len(first_calls) == 1 + first_revisions


@pytest.mark.parametrize("revise", ["fresh", "feedback"])
async def test_a_sampling_branch_tries_again_as_revise_says(open_graph: Open, revise: str) -> None:
    rules = [PLAN_ONE_STEP, {"match": r"Attempt 1\.", "reply": "bad plan"}]
    graph = {"max_revisions": 2, "revise": revise}
    async with open_graph(rules, FIXABLE, **graph) as (manager, scripted):
        task_id = await manager.submit("@advisor Plan the move")
        await run_to_rest(manager, task_id)
        careful = [c for c in scripted.calls if CAREFUL in str(c.messages)]
        assert len(careful) == 3
        if revise == "fresh":  # the same prompt again, sampled with another seed
            assert all(c.messages == careful[0].messages for c in careful)
            assert "Say GOOD." not in str(careful[2].messages)
            assert [c.seed for c in careful] == [None, 1, 2]
        else:  # the answer and the report, twice
            assert [c.seed for c in careful] == [None, None, None]
            last = [m["content"] for m in careful[2].messages[-4:]]
            assert last == ["bad plan", "Say GOOD.", "bad plan", "Say GOOD."]


async def test_a_branch_stops_revising_once_a_sibling_passed_its_checks(
    open_graph: Open,
) -> None:
    rules = [
        PLAN_ONE_STEP,
        branch(DIRECT, "bad plan"),
        branch(CAREFUL, "GOOD plan"),
        # Its first answer comes after the sibling's passed.
        branch(ALTERNATIVE, "another bad plan", delay=0.2),
    ]
    async with open_graph(rules, FIXABLE, max_revisions=2) as (manager, scripted):
        task_id = await manager.submit("@advisor Plan the move")
        task = await run_to_rest(manager, task_id)
        assert task["answer"] == "GOOD plan"
        done = of_type(manager, task_id, "branch_done")
        assert {e["branch_id"]: e["revisions"] for e in done}["s1r1b3"] == 0
        assert len([c for c in scripted.calls if ALTERNATIVE in str(c.messages)]) == 1


async def test_every_branch_failing_its_checks_is_a_replan(open_graph: Open) -> None:
    rules = [
        PLAN_ONE_STEP,
        {"match": r"Attempt 2\.", "reply": "GOOD at last"},
        {"match": r"Attempt 1\.", "reply": "bad"},
    ]
    # The plan is the task itself (one step, no planner): a replan asks the same again, so
    # only the switch makes one.
    async with open_graph(rules, CHECKED, replan_one_step=True) as (manager, _):
        task_id = await manager.submit("@advisor Plan the move")
        task = await run_to_rest(manager, task_id)
        assert task["answer"] == "GOOD at last"
        (replan,) = of_type(manager, task_id, "replan")
        assert replan["round"] == 2 and "s1r1b3: its checks failed: bad" in replan["reason"]
        assert started(manager, task_id) == ["s1r1b1", "s1r1b2", "s1r1b3", "s1r2b1"]


async def _counts_ticks(draft: Draft) -> Review:
    """A check that counts: each tick in the answer is an example passed, of three."""
    ticks = min(draft.text.count("+"), 3)
    verdict = f"examples: passed {ticks}, failed {3 - ticks}"
    return Review(verdict=verdict, passed=ticks == 3)


COUNTED = Skill(
    name="counted", description="Counts the examples", agents=("advisor",), review=_counts_ticks
)


async def test_a_one_step_task_whose_branches_all_fail_keeps_the_one_passing_most(
    open_graph: Open,
) -> None:
    rules = [
        PLAN_ONE_STEP,
        branch(DIRECT, "one +"),
        branch(CAREFUL, "two ++"),
        branch(ALTERNATIVE, "none"),
        {"match": r"Attempt 2\.", "reply": "all +++"},
    ]
    async with open_graph(rules, COUNTED) as (manager, _):
        task_id = await manager.submit("@advisor Plan the move")
        task = await run_to_rest(manager, task_id)
        assert "replan" not in types(manager, task_id)
        assert task["answer"] == "two ++"
        (selected,) = of_type(manager, task_id, "selected")
        assert (selected["branch_id"], selected["best_effort"]) == ("s1r1b2", True)


async def test_out_of_rounds_the_best_failing_branch_is_a_best_effort(open_graph: Open) -> None:
    rules = [PLAN_ONE_STEP, {"match": r"Attempt 1\.", "reply": "bad"}]
    async with open_graph(rules, CHECKED, max_rounds=1) as (manager, _):
        task_id = await manager.submit("@advisor Plan the move")
        task = await run_to_rest(manager, task_id)
        assert task["status"] == "done" and task["answer"] == "bad"
        (selected,) = of_type(manager, task_id, "selected")
        assert selected["best_effort"] is True
        (done,) = of_type(manager, task_id, "task_done")
        assert done["best_effort"] is True


@pytest.mark.parametrize(("judge", "kept", "by"), [
    ("compare", "s1r1b3", "judge"),
    ("none", "s1r1b1", "first"),
])  # fmt: skip
async def test_between_unchecked_branches_the_configured_judge_decides(
    open_graph: Open, judge: str, kept: str, by: str
) -> None:
    rules = [
        PLAN_ONE_STEP,
        {"match": r"Which candidate", "json": {"best": 3, "reasons": "the third is right"}},
        {"match": rf"Attempt 1\. {DIRECT}", "reply": "Lisbon."},
        {"match": rf"Attempt 1\. {CAREFUL}", "reply": "Porto."},
        {"match": rf"Attempt 1\. {ALTERNATIVE}", "reply": "Coimbra."},
    ]
    async with open_graph(rules, adaptive=False, judge=judge) as (manager, scripted):
        task_id = await manager.submit("@advisor Pick a city for the offsite")
        await run_to_rest(manager, task_id)
        (selected,) = of_type(manager, task_id, "selected")
        assert (selected["branch_id"], selected["by"]) == (kept, by)
        calls = compare_calls(scripted)
        assert len(calls) == (1 if judge == "compare" else 0)
        if calls:  # the judge saw all three, side by side, in one call
            prompt = calls[0].messages[-1]["content"]
            assert re.search(r"Candidate 1:\nLisbon.*Candidate 2:\nPorto.*Candidate 3:\nCoimbra",
                             prompt, re.DOTALL)  # fmt: skip


async def test_branches_that_agree_are_kept_without_a_judge(open_graph: Open) -> None:
    rules = [
        PLAN_ONE_STEP,
        {"match": r"Which candidate", "json": {"best": 1, "reasons": "first"}},
        {"match": rf"Attempt 1\. {DIRECT}", "reply": "Lisbon, surely."},
        {"match": rf"Attempt 1\. {CAREFUL}", "reply": "Porto is best.\nIt is cheaper."},
        {"match": rf"Attempt 1\. {ALTERNATIVE}", "reply": "porto is best\nIt has trains."},
    ]
    async with open_graph(rules, adaptive=False) as (manager, scripted):
        task_id = await manager.submit("@advisor Pick a city for the offsite")
        task = await run_to_rest(manager, task_id)
        assert task["answer"].startswith("Porto is best.")
        (selected,) = of_type(manager, task_id, "selected")
        assert (selected["branch_id"], selected["by"]) == ("s1r1b2", "agreement")
        assert not compare_calls(scripted)
