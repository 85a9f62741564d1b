"""The fast path on the scripted backend: one call answers an everyday task, with no plan, no
branches and no judge; an answer that fails a check goes on to a specialist agent."""

from __future__ import annotations

from typing import Any

from myninja.agent_graph.prompts import FAST_AGENT
from tests.agent_graph.scripts import PLAN_ONE_STEP, judge
from tests.agent_graph.test_graph import Open, of_type, open_manager, run_to_rest, types

__all__ = ["open_manager"]  # the fixture, shared with test_graph

QUICK = {"match": r"Route this task", "json": "quick"}
# The fast path's prompt is the assistant's persona and the task, nothing else.
FAST = r"You are myninja.*Answer directly: the answer first"


def calls_matching(scripted: Any, pattern: str) -> int:
    import re

    return sum(1 for c in scripted.calls if re.search(pattern, str(c.messages), re.DOTALL))


async def test_an_everyday_task_is_answered_in_one_call(open_manager: Open) -> None:
    rules = [QUICK, {"match": FAST, "reply": "Water boils at 100 °C at sea level. [1]"}]
    async with open_manager(rules) as (manager, scripted):
        task_id = await manager.submit("Tell me the boiling point of water at sea level")
        task = await run_to_rest(manager, task_id)
        assert task["status"] == "done"
        # No source was searched, so the mark that names nothing is gone.
        assert task["answer"] == "Water boils at 100 °C at sea level."
        assert types(manager, task_id) == [
            "task_started",
            "routed",
            "plan",
            "branch_started",
            "branch_done",
            "answer",
            "task_done",
        ]
        (routed,) = of_type(manager, task_id, "routed")
        assert routed["agent"] == FAST_AGENT and routed["path"] == "fast"
        assert routed["reason"] == "the router model read it as quick"
        assert len(scripted.calls) == 2  # the router and the answer: no plan, no judge
        (done,) = of_type(manager, task_id, "task_done")
        assert done["kept"] == ["fast"] and done["agent"] == FAST_AGENT


async def test_a_short_question_needs_no_router_call(open_manager: Open) -> None:
    rules = [QUICK, {"match": FAST, "reply": "Canberra."}]
    async with open_manager(rules) as (manager, scripted):
        task_id = await manager.submit("What is the capital of Australia?")
        task = await run_to_rest(manager, task_id)
        assert task["answer"] == "Canberra."
        (routed,) = of_type(manager, task_id, "routed")
        assert (routed["path"], routed["reason"]) == ("fast", "a short question")
        assert calls_matching(scripted, "Route this task") == 0
        assert len(scripted.calls) == 1


async def test_a_fast_answer_whose_code_does_not_parse_goes_to_the_coder(
    open_manager: Open,
) -> None:
    broken = "```python\ndef add(a, b)\n    return a + b\n```"
    rules = [
        QUICK,
        {"match": FAST, "reply": broken},
        judge("def add", 9),
        {"match": r"You are the coder.*Attempt 1\.", "reply": "```python\ndef add(a, b):\n"
         "    return a + b\n```"},
        {"match": r"You are the coder", "reply": "no"},
    ]  # fmt: skip
    async with open_manager(rules, branches=1) as (manager, _):
        task_id = await manager.submit("Give me an add function")
        task = await run_to_rest(manager, task_id)
        assert task["status"] == "done"
        assert "def add(a, b):" in task["answer"]
        first, second = of_type(manager, task_id, "routed")
        assert (first["path"], second["path"]) == ("fast", "agent")
        assert second["agent"] == "coder"
        assert second["reason"].startswith("escalated: its Python does not parse")
        plans = of_type(manager, task_id, "plan")
        assert [p["round"] for p in plans] == [0, 1]  # the fast call, then the coder's plan
        (done,) = of_type(manager, task_id, "task_done")
        assert done["agent"] == "coder" and done["kept"] == ["s1r1b1"]


async def test_with_escalation_off_the_fast_answer_stands(open_manager: Open) -> None:
    broken = "```python\ndef add(a, b)\n```"
    rules = [QUICK, {"match": FAST, "reply": broken}]
    async with open_manager(rules, escalate=False) as (manager, _):
        task_id = await manager.submit("Give me an add function")
        task = await run_to_rest(manager, task_id)
        assert task["answer"] == broken
        assert [r["path"] for r in of_type(manager, task_id, "routed")] == ["fast"]


async def test_with_the_fast_path_off_everyday_tasks_go_to_the_advisor(
    open_manager: Open,
) -> None:
    rules = [QUICK, PLAN_ONE_STEP, judge("Paris", 9), {"match": r"Attempt 1\.", "reply": "Paris"}]
    async with open_manager(rules, fast_path=False, branches=1) as (manager, _):
        task_id = await manager.submit("Name the French capital")
        task = await run_to_rest(manager, task_id)
        assert task["answer"] == "Paris"
        (routed,) = of_type(manager, task_id, "routed")
        assert routed["agent"] == "advisor" and routed["path"] == "agent"
        assert "the fast path is off" in routed["reason"]


async def test_the_person_can_ask_for_the_fast_path_by_name(open_manager: Open) -> None:
    rules = [{"match": FAST, "reply": "Done."}]
    async with open_manager(rules, fast_path=False) as (manager, scripted):
        task_id = await manager.submit("@assistant Write a haiku about tmux")
        task = await run_to_rest(manager, task_id)
        assert task["answer"] == "Done."
        (routed,) = of_type(manager, task_id, "routed")
        assert (routed["agent"], routed["path"]) == (FAST_AGENT, "fast")
        assert len(scripted.calls) == 1


async def test_a_researcher_without_sources_is_not_told_to_cite(open_manager: Open) -> None:
    rules = [
        PLAN_ONE_STEP,
        judge("Canberra", 9),
        {"match": r"Attempt 1\.", "reply": "The capital of Australia is Canberra. [1]"},
    ]
    async with open_manager(rules, branches=1) as (manager, scripted):
        task_id = await manager.submit("@researcher capital of Australia")
        task = await run_to_rest(manager, task_id)
        assert task["answer"] == "The capital of Australia is Canberra."
        (retrieved,) = of_type(manager, task_id, "retrieved")
        assert retrieved["passages"] == []
        branch_call = next(c for c in scripted.calls if "Attempt 1." in str(c.messages))
        assert "[1]" not in str(branch_call.messages) and "Cite" not in str(branch_call.messages)
