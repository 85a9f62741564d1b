"""The graph's logic on a deterministic scripted backend, run by a real TaskManager with real
checkpoints and history in a temp dir."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from myninja.agent_graph.tasks.manager import TaskManager
from myninja.backends.scripted import Rule, ScriptedBackend
from myninja.config import Config
from tests.agent_graph.scripts import (
    ALTERNATIVE,
    CAREFUL,
    DIRECT,
    PLAN_ONE_STEP,
    PLAN_TWO_STEPS,
    ROUTE,
    branch,
    judge,
    three_branches,
)

Open = Callable[..., Any]


# The whole machinery at once: every branch runs, the judge scores each (adaptive branching
# and the comparing judge are tested in test_adaptive.py).
CLASSIC = {"adaptive": False, "judge": "each"}


def config(**graph: Any) -> Config:
    # The scripted backend stands in for a model that plans (the embedded default plans
    # one step without asking the model): max_steps set, as a gateway user would have it.
    # The writer may ask, as `[agents.writer] may_ask = true` allows (its default is no).
    return Config.model_validate(
        {"graph": {"max_steps": 4, **CLASSIC, **graph}, "agents": {"writer": {"may_ask": True}}}
    )


@pytest.fixture
def open_manager(tmp_path: Path) -> Open:
    @asynccontextmanager
    async def opener(
        rules: list[dict[str, Any]], **graph: Any
    ) -> AsyncIterator[tuple[TaskManager, ScriptedBackend]]:
        scripted = ScriptedBackend("embedded", [Rule(**r) for r in rules])
        async with TaskManager.open(
            config(**graph), tmp_path / "data", backends={"embedded": scripted}
        ) as manager:
            yield manager, scripted

    return opener


async def run_to_rest(manager: TaskManager, task_id: str) -> dict[str, Any]:
    await asyncio.wait_for(manager.wait(task_id), 30)
    task = manager.store.get_task(task_id)
    assert task is not None
    return task


def types(manager: TaskManager, task_id: str) -> list[str]:
    return [e["type"] for e in manager.store.events(task_id)]


def of_type(manager: TaskManager, task_id: str, kind: str) -> list[dict[str, Any]]:
    return [e for e in manager.store.events(task_id) if e["type"] == kind]


async def test_branches_fan_out_and_the_judge_picks_the_best(open_manager: Open) -> None:
    async with open_manager([ROUTE, PLAN_ONE_STEP, *three_branches((4, 9, 6))]) as (manager, _):
        task_id = await manager.submit("Write a limerick about tmux")
        task = await run_to_rest(manager, task_id)
        assert task["status"] == "done"
        assert task["answer"] == "Answer 1B"
        assert types(manager, task_id) == [
            "task_started",
            "routed",
            "plan",
            *["branch_started"] * 3,
            *["branch_done"] * 3,
            *["evaluation"] * 3,
            "selected",
            "answer",
            "task_done",
        ]
        scores = {e["branch_id"]: e["score"] for e in of_type(manager, task_id, "evaluation")}
        assert scores == {"s1r1b1": 4, "s1r1b2": 9, "s1r1b3": 6}
        (selected,) = of_type(manager, task_id, "selected")
        assert selected["branch_id"] == "s1r1b2" and selected["best_effort"] is False
        (done,) = of_type(manager, task_id, "task_done")
        assert done["kept"] == ["s1r1b2"] and done["agent"] == "writer"
        assert [e["seq"] for e in manager.store.events(task_id)] == list(range(1, 16))


async def test_a_label_the_model_echoes_from_its_prompt_is_not_in_the_answer(
    open_manager: Open,
) -> None:
    rules = [
        ROUTE,
        PLAN_ONE_STEP,
        judge("Roses are red", 9),
        branch(DIRECT, "**Attempt 1:**\nRoses are red"),
        branch(CAREFUL, "Step 1 of 1.\n\nRoses are red"),
        branch(ALTERNATIVE, "Attempt 1 went well, roses are red"),  # a sentence, kept
        judge("Attempt 1 went well", 2),
    ]
    async with open_manager(rules) as (manager, _):
        task_id = await manager.submit("A poem about roses")
        task = await run_to_rest(manager, task_id)
        texts = sorted(e["text"] for e in of_type(manager, task_id, "branch_done"))
        assert texts == ["Attempt 1 went well, roses are red", "Roses are red", "Roses are red"]
        assert task["answer"] == "Roses are red"


async def test_each_step_of_a_plan_gets_its_own_branches(open_manager: Open) -> None:
    rules = [
        ROUTE,
        PLAN_TWO_STEPS,
        {"match": "Compose the final answer", "reply": "Composed"},
        judge("Outline .", 8),
        judge("Text .", 7),
        {"match": r"Step 1 of 2.*Attempt 1", "reply": "Outline ."},
        {"match": r"Step 2 of 2.*Result of step 1: Outline .*Attempt 1", "reply": "Text ."},
    ]
    async with open_manager(rules, branches=2) as (manager, _):
        task_id = await manager.submit("Write a memo")
        task = await run_to_rest(manager, task_id)
        assert task["status"] == "done" and task["answer"] == "Composed"
        selected = of_type(manager, task_id, "selected")
        assert [(e["step"], e["branch_id"]) for e in selected] == [(0, "s1r1b1"), (1, "s2r1b1")]


async def test_all_branches_low_replans_then_keeps_the_better_plan(open_manager: Open) -> None:
    rules = [ROUTE, PLAN_ONE_STEP, *three_branches((2, 3, 2)), *three_branches((8, 5, 5), 2)]
    async with open_manager(rules) as (manager, scripted):
        task_id = await manager.submit("Write a haiku")
        task = await run_to_rest(manager, task_id)
        assert task["answer"] == "Answer 2A"
        (replan,) = of_type(manager, task_id, "replan")
        assert replan["round"] == 2 and "scored 3" in replan["reason"]
        assert [e["round"] for e in of_type(manager, task_id, "plan")] == [1, 2]
        replan_prompt = next(
            c.messages[-1]["content"]
            for c in scripted.calls
            if "Attempt 2. The previous plan fell short" in c.messages[-1]["content"]
        )
        assert "scored 2" in replan_prompt


async def test_rounds_are_bounded_and_the_best_effort_is_said(open_manager: Open) -> None:
    rules = [ROUTE, PLAN_ONE_STEP, *three_branches((2, 3, 2)), *three_branches((4, 1, 1), 2)]
    async with open_manager(rules, max_rounds=2) as (manager, _):
        task_id = await manager.submit("Write a haiku")
        task = await run_to_rest(manager, task_id)
        assert task["status"] == "done" and task["answer"] == "Answer 2A"
        assert len(of_type(manager, task_id, "plan")) == 2
        (selected,) = of_type(manager, task_id, "selected")
        assert selected["best_effort"] is True and selected["score"] == 4
        assert of_type(manager, task_id, "task_done")[0]["best_effort"] is True


async def test_a_malformed_plan_is_repaired(open_manager: Open) -> None:
    rules = [
        ROUTE,
        {"match": r"could not be used", "json": {"steps": [{"title": "T", "instruction": "I"}]}},
        {"match": r"Task to plan", "reply": "Sure! Here is my plan: step one, write."},
        *three_branches((9, 1, 1)),
    ]
    async with open_manager(rules) as (manager, scripted):
        task_id = await manager.submit("Write a haiku")
        task = await run_to_rest(manager, task_id)
        assert task["status"] == "done"
        plan_calls = [c for c in scripted.calls if "Task to plan" in c.messages[1]["content"]]
        assert len(plan_calls) == 2
        assert "not valid JSON" in plan_calls[1].messages[-1]["content"]


async def test_a_plan_that_stays_malformed_fails_the_task_cleanly(open_manager: Open) -> None:
    rules = [ROUTE, {"match": r"Task to plan", "json": {"steps": []}}]
    async with open_manager(rules, plan_retries=2) as (manager, scripted):
        task_id = await manager.submit("Write a haiku")
        task = await run_to_rest(manager, task_id)
        assert task["status"] == "failed"
        assert "planner gave no usable plan" in task["error"]
        assert "steps" in task["error"] and "3 attempts" in task["error"]
        assert types(manager, task_id)[-1] == "task_failed"
        assert sum("Task to plan" in c.messages[1]["content"] for c in scripted.calls) == 3


ASK_COLOUR = {
    "match": rf"Attempt 1\. {DIRECT}",
    "tool_calls": [
        {
            "name": "ask_user",
            "arguments": {"question": "Which colour?", "key": "colour", "choices": ["red", "blue"]},
        }
    ],
}


async def test_a_question_waits_for_the_person_and_the_answer_resumes(open_manager: Open) -> None:
    rules = [
        ROUTE,
        PLAN_ONE_STEP,
        judge("Painted it blue", 9),
        {"match": r"tool: blue", "reply": "Painted it blue"},
        ASK_COLOUR,
    ]
    async with open_manager(rules, branches=1) as (manager, _):
        task_id = await manager.submit("Paint the fence")
        task = await run_to_rest(manager, task_id)
        assert task["status"] == "waiting"
        (question,) = manager.store.questions(task_id)
        assert question["text"] == "Which colour?" and question["choices"] == ["red", "blue"]
        (event,) = of_type(manager, task_id, "question")
        assert event["question_id"] == question["id"] and event["key"] == "colour"
        await manager.answer(task_id, None, "blue")
        task = await run_to_rest(manager, task_id)
        assert task["status"] == "done" and task["answer"] == "Painted it blue"
        assert manager.store.questions(task_id) == []
        results = of_type(manager, task_id, "tool_result")
        assert [r["result"] for r in results] == ["blue"]


async def test_two_open_questions_can_be_answered_in_either_order(open_manager: Open) -> None:
    def ask(style: str, key: str) -> dict[str, Any]:
        return {
            "match": rf"Attempt 1\. {style}",
            "tool_calls": [{"name": "ask_user", "arguments": {"question": key, "key": key}}],
        }

    rules = [
        ROUTE,
        PLAN_ONE_STEP,
        judge("got north", 5),
        judge("got south", 8),
        {"match": r"tool: north", "reply": "got north"},
        {"match": r"tool: south", "reply": "got south"},
        ask(DIRECT, "first"),
        ask(CAREFUL, "second"),
    ]
    async with open_manager(rules, branches=2) as (manager, _):
        task_id = await manager.submit("Choose directions")
        assert (await run_to_rest(manager, task_id))["status"] == "waiting"
        questions = {q["key"]: q["id"] for q in manager.store.questions(task_id)}
        assert set(questions) == {"first", "second"}
        await manager.answer(task_id, questions["second"], "south")
        task = await run_to_rest(manager, task_id)
        assert task["status"] == "waiting"
        assert [q["key"] for q in manager.store.questions(task_id)] == ["first"]
        await manager.answer(task_id, questions["first"][:8], "north")
        task = await run_to_rest(manager, task_id)
        assert task["status"] == "done" and task["answer"] == "got south"
        assert len(of_type(manager, task_id, "question")) == 2


async def test_cancel_stops_a_running_task(open_manager: Open) -> None:
    rules = [ROUTE, PLAN_ONE_STEP, branch(DIRECT, "late", delay=30)]
    async with open_manager(rules, branches=1) as (manager, _):
        task_id = await manager.submit("Take your time")
        for _ in range(200):
            if "branch_started" in types(manager, task_id):
                break
            await asyncio.sleep(0.02)
        await manager.cancel(task_id)
        task = manager.store.get_task(task_id)
        assert task is not None and task["status"] == "cancelled"
        assert types(manager, task_id)[-1] == "task_cancelled"


async def test_an_at_mention_chooses_the_agent_without_the_router(open_manager: Open) -> None:
    rules = [ROUTE, PLAN_ONE_STEP, *three_branches((9, 1, 1))]
    async with open_manager(rules) as (manager, scripted):
        task_id = await manager.submit("@coder reverse a list in Python")
        await run_to_rest(manager, task_id)
        (routed,) = of_type(manager, task_id, "routed")
        assert routed["agent"] == "coder" and routed["reason"] == "chosen by the person"
        assert not any("Route this task" in str(c.messages) for c in scripted.calls)
        assert of_type(manager, task_id, "task_started")[0]["text"] == "reverse a list in Python"


async def test_a_routing_correction_is_shown_to_the_router_next_time(open_manager: Open) -> None:
    rules = [ROUTE, PLAN_ONE_STEP, *three_branches((9, 1, 1))]
    async with open_manager(rules) as (manager, scripted):
        manager.store.add_route_correction("summarise the quarterly sales figures", "researcher")
        task_id = await manager.submit("summarise the weekly sales figures")
        await run_to_rest(manager, task_id)
        route_call = next(c for c in scripted.calls if "Route this task" in str(c.messages))
        prompt = route_call.messages[-1]["content"]
        # The correction is shown as the kind of work that goes to the agent it named.
        assert "Task: summarise the quarterly sales figures\nKind: sources" in prompt
        (routed,) = of_type(manager, task_id, "routed")
        assert routed["examples"] == ["summarise the quarterly sales figures"]


async def test_a_question_in_one_branch_stores_each_event_once(open_manager: Open) -> None:
    """The other branches finish while one waits; LangGraph then reorders that step's writes.
    History must still hold each event exactly once."""
    rules = [
        ROUTE,
        PLAN_ONE_STEP,
        judge("Painted it blue", 9),
        judge("Other", 3),
        {"match": r"tool: blue", "reply": "Painted it blue"},
        ASK_COLOUR,
        {"match": rf"Attempt 1\. {CAREFUL}", "reply": "Other"},
        {"match": r"Attempt 1\.", "reply": "Other again"},
    ]
    async with open_manager(rules) as (manager, _):
        task_id = await manager.submit("Paint the fence")
        assert (await run_to_rest(manager, task_id))["status"] == "waiting"
        await manager.answer(task_id, None, "blue")
        task = await run_to_rest(manager, task_id)
        assert task["status"] == "done" and task["answer"] == "Painted it blue"
        events = manager.store.events(task_id)
        done = sorted(e["branch_id"] for e in events if e["type"] == "branch_done")
        assert done == ["s1r1b1", "s1r1b2", "s1r1b3"]
        assert [e["type"] for e in events].count("task_done") == 1
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))


async def test_a_model_without_tools_asks_with_one_ask_line(open_manager: Open) -> None:
    """Small models are not offered a tool list; they ask with 'ASK: …', parsed in code."""
    rules = [
        ROUTE,
        PLAN_ONE_STEP,
        judge("Booked for 4", 9),
        {"match": r"The person answered: 4", "reply": "Booked for 4"},
        {"match": rf"Attempt 1\. {DIRECT}", "reply": "ASK: How many guests?\n"},
    ]
    async with open_manager(rules, branches=1) as (manager, scripted):
        task_id = await manager.submit("Book a table")
        assert (await run_to_rest(manager, task_id))["status"] == "waiting"
        (question,) = manager.store.questions(task_id)
        assert question["text"] == "How many guests?"
        assert all(call.tools is None for call in scripted.calls)
        await manager.answer(task_id, None, "4")
        task = await run_to_rest(manager, task_id)
        assert task["status"] == "done" and task["answer"] == "Booked for 4"


@pytest.mark.parametrize(
    "question",
    [
        "What is the power of tmux?",
        "How does tmux enhance productivity?",
        "Why tmux?",
        # The writer's own instructions, asked back (small models echo their system prompt).
        "Which text should I produce in Markdown, ready to use?",
        "How do I find the right rhyme for the poem?",  # how to do its own task
        "Can you please provide a draft of the poem about tmux?",  # the task, asked back
    ],
)
async def test_a_question_about_the_world_is_answered_not_asked(
    open_manager: Open, question: str
) -> None:
    rules = [
        ROUTE,
        PLAN_ONE_STEP,
        judge("A poem about panes", 8),
        {"match": r"Do not ask", "reply": "A poem about panes"},
        {"match": rf"Attempt 1\. {DIRECT}", "reply": f"ASK: {question}\n"},
    ]
    async with open_manager(rules, branches=1) as (manager, _):
        task_id = await manager.submit("Write a poem about tmux")
        task = await run_to_rest(manager, task_id)
        assert task["status"] == "done" and task["answer"] == "A poem about panes"
        assert manager.store.questions(task_id, status=None) == []


async def test_a_question_about_the_person_is_asked(open_manager: Open) -> None:
    rules = [
        ROUTE,
        PLAN_ONE_STEP,
        {"match": rf"Attempt 1\. {DIRECT}", "reply": "ASK: What is your budget?\n"},
    ]
    async with open_manager(rules, branches=1) as (manager, _):
        task_id = await manager.submit("Plan my trip")
        assert (await run_to_rest(manager, task_id))["status"] == "waiting"
        assert [q["text"] for q in manager.store.questions(task_id)] == ["What is your budget?"]


async def test_one_answer_serves_branches_that_asked_the_same(open_manager: Open) -> None:
    rules = [
        ROUTE,
        PLAN_ONE_STEP,
        judge("Trip planned for 500", 9),
        {"match": r"The person answered: 500", "reply": "Trip planned for 500"},
        {"match": rf"Attempt 1\. ({DIRECT}|{CAREFUL})", "reply": "ASK: What is your budget?\n"},
    ]
    async with open_manager(rules, branches=2) as (manager, _):
        task_id = await manager.submit("Plan my trip")
        assert (await run_to_rest(manager, task_id))["status"] == "waiting"
        asked = manager.store.questions(task_id)
        assert [q["text"] for q in asked] == ["What is your budget?"] * 2
        await manager.answer(task_id, None, "500")  # no id needed: it is one question
        task = await run_to_rest(manager, task_id)
        assert task["status"] == "done" and task["answer"] == "Trip planned for 500"
        answered = manager.store.questions(task_id, status=None)
        assert [(q["status"], q["answer"]) for q in answered] == [("answered", "500")] * 2


async def test_branches_with_the_same_answer_are_judged_once(open_manager: Open) -> None:
    rules = [ROUTE, PLAN_ONE_STEP, judge("Same", 8), {"match": r"Attempt 1\.", "reply": "Same"}]
    async with open_manager(rules) as (manager, scripted):
        task_id = await manager.submit("Say something")
        await run_to_rest(manager, task_id)
        judged = [c for c in scripted.calls if "Candidate:" in c.messages[-1]["content"]]
        assert len(judged) == 1
        scores = [e["score"] for e in of_type(manager, task_id, "evaluation")]
        assert scores == [8, 8, 8]


async def test_branches_and_scores_are_kept_in_their_table(open_manager: Open) -> None:
    async with open_manager([ROUTE, PLAN_ONE_STEP, *three_branches((4, 9, 6))]) as (manager, _):
        task_id = await manager.submit("Write a limerick")
        await run_to_rest(manager, task_id)
        rows = {r["branch_id"]: r for r in manager.store.branches(task_id)}
        assert {b: (r["score"], r["kept"], r["text"]) for b, r in rows.items()} == {
            "s1r1b1": (4, False, "Answer 1A"),
            "s1r1b2": (9, True, "Answer 1B"),
            "s1r1b3": (6, False, "Answer 1C"),
        }
        assert rows["s1r1b3"]["temperature"] == 0.9 and rows["s1r1b3"]["agent"] == "writer"


async def test_the_planner_sees_similar_past_tasks_that_went_well(open_manager: Open) -> None:
    rules = [ROUTE, PLAN_ONE_STEP, *three_branches((9, 1, 1))]
    async with open_manager(rules) as (manager, scripted):
        good = await manager.submit("write a limerick about cats")
        bad = await manager.submit("write a limerick about dogs")
        await run_to_rest(manager, good)
        await run_to_rest(manager, bad)
        manager.store.add_feedback(bad, "bad", note="not funny")
        scripted.calls.clear()
        task_id = await manager.submit("write a limerick about cats and dogs")
        await run_to_rest(manager, task_id)
        (plan,) = of_type(manager, task_id, "plan")
        assert plan["examples"] == [good]
        assert manager.store.get_task(task_id)["examples"] == [good]
        prompt = next(c for c in scripted.calls if "Task to plan" in str(c.messages))
        assert "A similar past task: write a limerick about cats" in prompt.messages[-1]["content"]
        assert "about dogs\n" not in prompt.messages[-1]["content"]


async def test_notify_command_gets_the_question_as_json(open_manager: Open, tmp_path: Path) -> None:
    out = tmp_path / "notified.json"
    rules = [ROUTE, PLAN_ONE_STEP, ASK_COLOUR]
    scripted = ScriptedBackend("embedded", [Rule(**r) for r in rules])
    cfg = Config.model_validate(
        {"graph": {"branches": 1}, "notify_command": f"sh -c 'cat > {out}'"}
    )
    async with TaskManager.open(cfg, tmp_path / "d2", backends={"embedded": scripted}) as manager:
        task_id = await manager.submit("Paint the fence")
        await run_to_rest(manager, task_id)
    sent = json.loads(out.read_text())
    assert sent["event"] == "question"
    assert sent["task_id"] == task_id and sent["text"] == "Which colour?"
    assert sent["answer_command"].startswith(f"myninja answer {task_id} {sent['question_id']}")


@asynccontextmanager
async def notifying(
    tmp_path: Path, rules: list[dict[str, Any]], **settings: Any
) -> AsyncIterator[TaskManager]:
    """A manager whose notify_command writes each payload to a file of its own in
    tmp_path/notified (the runs may overlap, so they must not share a file)."""
    (tmp_path / "notified").mkdir()
    command = f"sh -c 'cat > $(mktemp -p {tmp_path / 'notified'} n.XXXXXX)'"
    cfg = Config.model_validate(
        {"graph": {"branches": 1, "max_steps": 4}, "notify_command": command, **settings}
    )
    scripted = ScriptedBackend("embedded", [Rule(**r) for r in rules])
    async with TaskManager.open(cfg, tmp_path / "d2", backends={"embedded": scripted}) as manager:
        yield manager


def notified(tmp_path: Path) -> list[dict[str, Any]]:
    """The payloads sent, once the manager is closed (closing waits for the commands)."""
    payloads = [json.loads(p.read_text()) for p in (tmp_path / "notified").iterdir()]
    return sorted(payloads, key=lambda p: ["question", "finished"].index(p["event"]))


PAINTED = [
    ROUTE,
    PLAN_ONE_STEP,
    judge("Painted it blue", 9),
    {"match": r"tool: blue", "reply": "Painted it blue"},
    ASK_COLOUR,
]


async def test_notify_command_gets_the_finished_task_as_json(tmp_path: Path) -> None:
    async with notifying(tmp_path, [ROUTE, PLAN_ONE_STEP, *three_branches((9, 1, 1))]) as manager:
        task_id = await manager.submit("Write a haiku")
        assert (await run_to_rest(manager, task_id))["status"] == "done"
    assert notified(tmp_path) == [
        {
            "event": "finished",
            "task_id": task_id,
            "status": "done",
            "text": "Write a haiku",
            "answer": "Answer 1A",
        }
    ]


async def test_a_failed_task_is_notified_once_even_when_resumed(tmp_path: Path) -> None:
    rules = [ROUTE, {"match": r"Task to plan", "json": {"steps": []}}]
    async with notifying(tmp_path, rules) as manager:
        task_id = await manager.submit("Write a haiku")
        assert (await run_to_rest(manager, task_id))["status"] == "failed"
        await manager.resume(task_id)  # replays the finished checkpoint: no news
        assert (await run_to_rest(manager, task_id))["status"] == "failed"
    (sent,) = notified(tmp_path)
    assert sent["event"] == "finished" and sent["status"] == "failed"
    assert sent["text"] == "Write a haiku" and "answer" not in sent
    assert "planner gave no usable plan" in sent["error"]


async def test_a_task_that_crashes_is_notified_as_failed(tmp_path: Path) -> None:
    """Not a graph failure (task_failed in the state) but one the manager records: here the
    backend the task names cannot be built."""
    broken = {"type": "scripted", "script": str(tmp_path / "missing.json")}
    backends = {"embedded": broken, "broken": broken}
    async with notifying(tmp_path, [], backends=backends) as manager:
        task_id = await manager.submit("Write a haiku", backend="broken")
        task = await run_to_rest(manager, task_id)
        assert task["status"] == "failed" and "cannot read script" in task["error"]
        assert manager.store.has_event(task_id, "r:failed")
    (sent,) = notified(tmp_path)
    assert (sent["event"], sent["status"], sent["error"]) == ("finished", "failed", task["error"])


async def answer_the_fence(manager: TaskManager) -> None:
    task_id = await manager.submit("Paint the fence")
    assert (await run_to_rest(manager, task_id))["status"] == "waiting"
    await manager.answer(task_id, None, "blue")
    assert (await run_to_rest(manager, task_id))["status"] == "done"


@pytest.mark.parametrize(
    ("switches", "events"),
    [
        ({}, ["question", "finished"]),
        ({"on_question": False}, ["finished"]),
        ({"on_finish": False}, ["question"]),
        ({"command": False}, []),
    ],
)
async def test_notify_switches_choose_what_runs_the_command(
    tmp_path: Path, switches: dict[str, bool], events: list[str]
) -> None:
    async with notifying(tmp_path, PAINTED, notify=switches) as manager:
        await answer_the_fence(manager)
    assert [p["event"] for p in notified(tmp_path)] == events


async def test_a_listener_that_breaks_does_not_fail_the_task(open_manager: Open) -> None:
    seen: list[str] = []

    def broken(event: dict[str, Any]) -> None:
        seen.append(event["type"])
        raise BrokenPipeError("the reader went away")

    async with open_manager([ROUTE, PLAN_ONE_STEP, *three_branches((4, 9, 6))]) as (manager, _):
        task_id = await manager.submit("Write a limerick", start=False)
        manager.listen(task_id, broken)
        manager.start(task_id)
        task = await run_to_rest(manager, task_id)
        assert task["status"] == "done" and task["answer"] == "Answer 1B"
        assert seen == ["task_started"]  # dropped after its first failure


async def test_on_the_embedded_backend_a_task_is_one_step_unless_configured(
    tmp_path: Path,
) -> None:
    """A small model's planner splits a task into steps that lose it ("send the email"): on
    the embedded backend the task itself is the one step, and no planning call is made,
    unless the agent or the graph sets max_steps."""
    rules = [ROUTE, PLAN_TWO_STEPS, judge("Memo.", 8), {"match": "Attempt 1", "reply": "Memo."}]

    async def plans(settings: dict[str, Any], folder: str) -> tuple[list[str], list[Any]]:
        scripted = ScriptedBackend("embedded", [Rule(**r) for r in rules])
        cfg = Config.model_validate({"graph": {"branches": 1}, **settings})
        async with TaskManager.open(
            cfg, tmp_path / folder, backends={"embedded": scripted}
        ) as manager:
            task_id = await manager.submit("Write a memo")
            assert (await run_to_rest(manager, task_id))["status"] == "done"
            (plan,) = of_type(manager, task_id, "plan")
            schemas = [c.json_schema for c in scripted.calls if "Task to plan" in str(c.messages)]
            return [s["title"] for s in plan["steps"]], schemas

    titles, schemas = await plans({}, "default")
    assert titles == ["Answer"] and schemas == []
    titles, schemas = await plans({"agents": {"writer": {"max_steps": 3}}}, "agent")
    assert titles == ["Outline", "Write"]
    assert schemas[0]["properties"]["steps"]["maxItems"] == 3
    titles, _ = await plans({"graph": {"branches": 1, "max_steps": 2}}, "graph")
    assert titles == ["Outline", "Write"]


def test_a_question_restating_the_task_in_other_word_forms_is_a_repeat() -> None:
    from myninja.agent_graph.branch_text import repeats

    task = "I have 20,000 EUR in savings. Should I pay off my 3% mortgage early or invest?"
    asked_back = "What are the pros and cons of paying off my mortgage early or investing?"
    assert repeats(asked_back, task)
    assert not repeats("What is your monthly income after tax?", task)


async def test_by_default_the_writer_leaves_a_placeholder_rather_than_ask(tmp_path: Path) -> None:
    rules = [
        ROUTE,
        judge(r"Dear \[name\]", 8),
        # Only a branch invited to ask would be told this; it would ask.
        {"match": "reply with just one line", "reply": "ASK: Who is the letter for?"},
        {"match": "Attempt 1", "reply": "Dear [name]"},
    ]
    scripted = ScriptedBackend("embedded", [Rule(**r) for r in rules])
    cfg = Config.model_validate({"graph": {"branches": 1}})
    async with TaskManager.open(cfg, tmp_path / "d", backends={"embedded": scripted}) as manager:
        task_id = await manager.submit("Write a thank-you letter")
        task = await run_to_rest(manager, task_id)
        assert task["status"] == "done" and task["answer"] == "Dear [name]"
        (branch_call,) = [c for c in scripted.calls if "Attempt 1" in str(c.messages)]
        assert "name it in square brackets" in str(branch_call.messages[0])


async def test_the_same_task_text_as_a_correction_goes_where_the_person_said(
    open_manager: Open,
) -> None:
    rules = [ROUTE, PLAN_ONE_STEP, *three_branches((9, 1, 1))]
    async with open_manager(rules) as (manager, scripted):
        manager.store.add_route_correction("Summarise the weekly  sales figures", "researcher")
        task_id = await manager.submit("summarise the weekly sales figures")
        await run_to_rest(manager, task_id)
        (routed,) = of_type(manager, task_id, "routed")
        assert routed["agent"] == "researcher" and routed["path"] == "agent"
        assert routed["reason"] == "the person routed this task so before"
        assert not any("Route this task" in str(c.messages) for c in scripted.calls)
