"""The app driven with Textual's Pilot: tasks go to a real background worker (scripted
backend), and what the app shows comes back from history."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Markdown, OptionList, Tree

from agent_graph.worker import WorkerClient
from ninja_tui.app import MyninjaApp
from tests.agent_graph.scripts import FENCE_RULES
from tests.conftest import scripted_config


@pytest.fixture
def data_dir(myninja_home: Path) -> Iterator[Path]:
    scripted_config(myninja_home, FENCE_RULES, idle_s=30)
    data = myninja_home / "data"
    yield data
    client = WorkerClient(data)
    if asyncio.run(client.alive()):
        asyncio.run(client.request("shutdown"))


def tree_text(app: MyninjaApp) -> str:
    lines: list[str] = []

    def walk(node) -> None:  # type: ignore[no-untyped-def]
        lines.append(str(node.label))
        for child in node.children:
            walk(child)

    walk(app.query_one("#plan", Tree).root)
    return "\n".join(lines)


async def type_and_enter(pilot: Pilot, text: str) -> None:
    await pilot.press(*text)
    await pilot.press("enter")


async def wait_for(pilot: Pilot, check, within_s: float = 30) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(within_s / 0.1)):
        if check():
            return
        await pilot.pause(0.1)
    raise AssertionError("the app never showed what was expected")


async def test_a_typed_task_runs_and_its_branches_show_their_scores(data_dir: Path) -> None:
    app = MyninjaApp(data_dir, refresh_s=0.1)
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.focused is app.query_one("#ask", Input)
        await type_and_enter(pilot, "Paint the gate")
        answer = app.query_one("#answer", Markdown)
        await wait_for(pilot, lambda: answer.source == "Fence painted")
        plan = tree_text(app)
        assert "1. Draft" in plan
        assert plan.count("6/10") == 3 and plan.count("✓ kept") == 1
        assert app.query_one("#tasks", OptionList).option_count == 1
        await type_and_enter(pilot, "Paint the door")
        header = app.query_one("#task-header")
        await wait_for(pilot, lambda: "Paint the door" in str(header.render()))
        await wait_for(pilot, lambda: app.query_one("#tasks", OptionList).option_count == 2)
        assert app.query_one("#tasks", OptionList).highlighted == 0  # the newest, selected


async def test_a_question_is_answered_from_the_input_box(data_dir: Path) -> None:
    app = MyninjaApp(data_dir, refresh_s=0.1)
    async with app.run_test(size=(120, 40)) as pilot:
        await type_and_enter(pilot, "Paint the fence")
        box = app.query_one("#ask", Input)
        await wait_for(pilot, lambda: box.placeholder == "Answer: Which colour?")
        assert "Which colour?" in str(app.query_one("#questions").render())
        await type_and_enter(pilot, "blue")
        answer = app.query_one("#answer", Markdown)
        await wait_for(pilot, lambda: answer.source == "Painted it blue")
        assert app.query_one("#tasks", OptionList).option_count == 1


async def test_on_start_the_box_starts_a_new_task_even_if_one_waits(data_dir: Path) -> None:
    first = MyninjaApp(data_dir, refresh_s=0.1)
    async with first.run_test(size=(120, 40)) as pilot:
        await type_and_enter(pilot, "Paint the fence")
        box = first.query_one("#ask", Input)
        await wait_for(pilot, lambda: box.placeholder == "Answer: Which colour?")
    again = MyninjaApp(data_dir, refresh_s=0.1)
    async with again.run_test(size=(120, 40)) as pilot:
        box = again.query_one("#ask", Input)
        await pilot.pause(0.3)
        assert not box.placeholder.startswith("Answer:")
        await type_and_enter(pilot, "Paint the gate")
        tasks = again.query_one("#tasks", OptionList)
        await wait_for(pilot, lambda: tasks.option_count == 2)
        assert again.store is not None
        assert [t["status"] for t in again.store.list_tasks(status="waiting")] == ["waiting"]
