"""The app driven with Textual's Pilot: tasks go to a real background worker (scripted
backend), and what the app shows comes back from history and the worker's live events."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, OptionList, TextArea, Tree

from myninja.agent_graph.history import HistoryStore, memories
from myninja.agent_graph.tasks.client import WorkerClient
from myninja.agent_graph.tasks.manager import TaskManager
from myninja.config import NotifyConfig
from myninja.config_file import load_config
from myninja.ninja_tui.app import MyninjaApp
from myninja.ninja_tui.notify import Notifier
from myninja.ninja_tui.screens.dialogs import (
    EditAnswerDialog,
    ExportDialog,
    PassageDialog,
    RateDialog,
)
from myninja.ninja_tui.screens.help import HelpScreen
from myninja.ninja_tui.screens.history import HistoryScreen
from myninja.ninja_tui.screens.inbox import InboxScreen, QuestionCard
from myninja.ninja_tui.widgets.task_view import TaskView
from tests.agent_graph.scripts import FENCE_RULES
from tests.conftest import CLASSIC_GRAPH, scripted_config
from tests.ninja_tui.seed import ANSWER, seed_history

STORY = " ".join(f"word{i}" for i in range(60))
# A task whose branches stream slowly, so the app can be seen showing a draft mid-way.
STREAM_RULES = [
    {"match": r"Tell a story.*Attempt 1\.", "reply": STORY, "token_delay": 0.03},
    *FENCE_RULES,
]


@pytest.fixture
def data_dir(myninja_home: Path) -> Iterator[Path]:
    scripted_config(myninja_home, STREAM_RULES, idle_s=30, graph=CLASSIC_GRAPH)
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


def answer_text(app: MyninjaApp) -> str:
    return app.query_one(TaskView).answer.text


async def type_and_enter(pilot: Pilot, text: str) -> None:
    await pilot.press(*text)
    await pilot.press("enter")


async def wait_for(pilot: Pilot, check, within_s: float = 30) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(within_s / 0.1)):
        if check():
            return
        await pilot.pause(0.1)
    raise AssertionError("the app never showed what was expected")


def store_of(app: MyninjaApp) -> HistoryStore:
    assert app.store is not None
    return app.store


async def run_to_done(pilot: Pilot, app: MyninjaApp, text: str) -> str:
    await type_and_enter(pilot, text)
    await wait_for(pilot, lambda: answer_text(app) == "Fence painted")
    assert app.selected is not None
    return app.selected


async def test_a_typed_task_runs_and_its_branches_show_their_scores(data_dir: Path) -> None:
    app = MyninjaApp(data_dir, refresh_s=0.1)
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.focused is app.query_one("#ask", Input)
        await run_to_done(pilot, app, "Paint the gate")
        plan = tree_text(app)
        assert "1. Draft" in plan
        assert plan.count("6/10") == 3 and plan.count("✓ kept") == 1
        assert app.query_one("#tasks", OptionList).option_count == 1
        await type_and_enter(pilot, "Paint the door")
        header = app.query_one("#task-header")
        await wait_for(pilot, lambda: "Paint the door" in str(header.render()))
        await wait_for(pilot, lambda: app.query_one("#tasks", OptionList).option_count == 2)
        assert app.query_one("#tasks", OptionList).highlighted == 0  # the newest, selected


async def test_a_task_is_shown_from_its_feed_while_refreshes_read_only_the_list(
    data_dir: Path,
) -> None:
    app = MyninjaApp(data_dir, refresh_s=0.1)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.store is not None)
        statements: list[str] = []
        store_of(app).db.conn.set_trace_callback(statements.append)
        await type_and_enter(pilot, "Tell a story")  # streams for a few seconds
        with HistoryStore(data_dir / "history.db") as probe:  # a connection of its own

            def done() -> bool:
                task = probe.get_task(app.selected or "") or {}
                return task.get("status") == "done" and answer_text(app) == task["answer"]

            await wait_for(pilot, done)
        store_of(app).db.conn.set_trace_callback(None)
        assert tree_text(app).count("✓ kept") == 1
        # The app's own reads: FTS5 reading its shadow tables ('main'.'tasks_fts_config') inside
        # the app's one write (clearing the unread mark) is SQLite's, not a read of the app's.
        reads = [
            " ".join(s.split())
            for s in statements
            if s.lstrip().startswith("SELECT") and "'main'." not in s
        ]
        listing = [r for r in reads if r.startswith("SELECT * FROM tasks WHERE 1 ")]
        rows = sorted(r.split(" FROM ")[1].split()[0] for r in reads if r not in listing)
        # The chosen task's events, questions and sources, once; then only the task list.
        assert [r for r in rows if r != "usage"] == ["citations", "events", "questions"], reads
        assert len(listing) >= 5  # it streamed for a while, refreshed every 0.1 s
        # Tokens and cost: read when the task is chosen and when its status moves, and today's
        # total when it ends (widgets/usage.py); a few times, never once per refresh. (The
        # reads for the task's end may come after the answer is on screen and the trace off.)
        assert rows.count("usage") <= 6 < len(listing), reads


async def test_without_a_worker_a_task_run_elsewhere_is_shown_from_history(
    data_dir: Path,
) -> None:
    app = MyninjaApp(data_dir, refresh_s=0.1)
    async with (
        TaskManager.open(load_config(), data_dir) as elsewhere,  # as a foreground `ask`
        app.run_test(size=(120, 40)) as pilot,
    ):
        await wait_for(pilot, lambda: app.store is not None)
        task_id = await elsewhere.submit("Paint the gate")
        await wait_for(pilot, lambda: answer_text(app) == "Fence painted")
        assert app.selected == task_id
        plan = tree_text(app)
        assert plan.count("6/10") == 3 and plan.count("✓ kept") == 1
        assert not await app.worker_client.alive()


async def test_the_answer_streams_in_while_the_task_runs(data_dir: Path) -> None:
    app = MyninjaApp(data_dir, refresh_s=0.1)
    async with app.run_test(size=(120, 40)) as pilot:
        await type_and_enter(pilot, "Tell a story")
        # Part of the draft is on screen before the branch has finished writing it.
        await wait_for(pilot, lambda: 0 < len(answer_text(app).split()) < 40)
        caption = str(app.query_one("#answer-caption").render())
        assert "draft from branch" in caption
        assert STORY.startswith(answer_text(app).strip())
        await wait_for(pilot, lambda: store_of(app).list_tasks()[0]["status"] == "done")
        await wait_for(pilot, lambda: answer_text(app) == store_of(app).list_tasks()[0]["answer"])


async def test_a_question_is_answered_from_the_input_box(data_dir: Path) -> None:
    app = MyninjaApp(data_dir, refresh_s=0.1)
    async with app.run_test(size=(120, 40)) as pilot:
        await type_and_enter(pilot, "Paint the fence")
        box = app.query_one("#ask", Input)
        await wait_for(pilot, lambda: box.placeholder == "Answer: Which colour?")
        assert "Which colour?" in str(app.query_one("#questions").render())
        await type_and_enter(pilot, "blue")
        await wait_for(pilot, lambda: answer_text(app) == "Painted it blue")
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
        assert [t["status"] for t in store_of(again).list_tasks(status="waiting")] == ["waiting"]


async def test_the_inbox_answers_any_of_several_waiting_tasks(data_dir: Path) -> None:
    app = MyninjaApp(data_dir, refresh_s=0.1)
    async with app.run_test(size=(120, 40)) as pilot:
        await type_and_enter(pilot, "Paint the fence")
        await pilot.press("ctrl+n")
        await type_and_enter(pilot, "Paint the fence again")
        store = store_of(app)
        await wait_for(pilot, lambda: len(store.list_tasks(status="waiting")) == 2)
        await pilot.press("ctrl+o")
        assert isinstance(app.screen, InboxScreen)
        await wait_for(pilot, lambda: len(app.screen.query(QuestionCard)) == 2)
        cards = list(app.screen.query(QuestionCard))
        second = next(c for c in cards if c.waiting_task["text"] == "Paint the fence again")
        second.query_one(Input).focus()
        await type_and_enter(pilot, "blue")
        task_id = second.waiting_task["id"]
        await wait_for(pilot, lambda: (store.get_task(task_id) or {}).get("status") == "done")
        assert store.get_task(task_id)["answer"] == "Painted it blue"  # type: ignore[index]
        # The answered card goes; the other task still waits, its card still there.
        await wait_for(pilot, lambda: len(app.screen.query(QuestionCard)) == 1)
        assert app.screen.query_one(QuestionCard).waiting_task["text"] == "Paint the fence"
        assert [t["text"] for t in store.list_tasks(status="waiting")] == ["Paint the fence"]
        await pilot.press("escape")
        assert not isinstance(app.screen, InboxScreen)


async def test_waiting_and_finishing_notify_on_each_switched_on_channel(data_dir: Path) -> None:
    app = MyninjaApp(data_dir, refresh_s=0.1)
    written: list[str] = []
    settings = NotifyConfig(
        toast=True, bell=True, title=True, osc="777", desktop=False, quiet_when_focused=False
    )
    app.notifier = Notifier(app, settings, write=written.append)
    async with app.run_test(size=(120, 40)) as pilot:
        await type_and_enter(pilot, "Paint the fence")
        task_id = app.selected
        await wait_for(pilot, lambda: any(kind == "question" for _, kind, _ in app.notifier.sent))
        asked = {channel for channel, kind, tid in app.notifier.sent if kind == "question"}
        assert asked == {"toast", "bell", "osc"}
        assert any("777;notify" in w and "Which colour?" in w for w in written)
        assert any("1 waiting" in w for w in written)  # the title marker
        await type_and_enter(pilot, "blue")
        await wait_for(pilot, lambda: any(kind == "finished" for _, kind, _ in app.notifier.sent))
        finished = [(c, tid) for c, kind, tid in app.notifier.sent if kind == "finished"]
        assert {c for c, _ in finished} == {"toast", "bell", "osc"}
        assert {tid for _, tid in finished} == {task_id}


async def test_a_task_is_rated_with_a_note(data_dir: Path) -> None:
    app = MyninjaApp(data_dir, refresh_s=0.1)
    async with app.run_test(size=(120, 40)) as pilot:
        task_id = await run_to_done(pilot, app, "Paint the gate")
        await pilot.press("plus")  # typed into the box: the task keys work outside it
        assert not isinstance(app.screen, RateDialog)
        await pilot.press("backspace", "escape", "minus")
        assert isinstance(app.screen, RateDialog)
        await pilot.press("ctrl+t")  # bad → good
        await type_and_enter(pilot, "right colour")
        assert not isinstance(app.screen, RateDialog)
        feedback = store_of(app).feedback(task_id)
        assert [(f["rating"], f["note"]) for f in feedback] == [("good", "right colour")]


async def open_seeded(pilot: Pilot, app: MyninjaApp, task_id: str) -> HistoryStore:
    """The seeded history shown with `task_id` selected, the task keys on (the box left)."""
    await wait_for(pilot, lambda: app.store is not None)
    await app.select_task(task_id)
    await pilot.press("escape")
    return store_of(app)


def notices(app: MyninjaApp) -> list[str]:
    return [n.message for n in app._notifications]


def edits(store: HistoryStore, task_id: str) -> list[tuple[str, str | None]]:
    return [(f["rating"], f["edited_answer"]) for f in store.feedback(task_id)]


async def test_an_edited_answer_is_kept_as_feedback_and_edited_again(data_dir: Path) -> None:
    seed_history(data_dir)
    app = MyninjaApp(data_dir, refresh_s=0.1)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.store is not None)
        await pilot.press("a")  # typed into the box: the task keys work outside it
        assert not isinstance(app.screen, EditAnswerDialog)
        store = await open_seeded(pilot, app, "t_0000000000a1")
        await pilot.press("a")
        assert isinstance(app.screen, EditAnswerDialog)
        editor = app.screen.query_one(TextArea)
        assert editor.text == ANSWER and app.screen.focused is editor
        await pilot.press("f7", *"Tuesday 09:30 suits everyone.")  # select all, type over it
        await pilot.press("ctrl+s")  # saves here; it does not open history
        assert not isinstance(app.screen, (EditAnswerDialog, HistoryScreen))
        assert edits(store, "t_0000000000a1") == [("edit", "Tuesday 09:30 suits everyone.")]
        assert notices(app)[-1].startswith("Edit saved: it will be preferred")
        # A second edit starts from the first, and the original answer stays as it was.
        await pilot.press("a")
        editor = app.screen.query_one(TextArea)
        assert editor.text == "Tuesday 09:30 suits everyone."
        editor.text = "Tuesday 09:30 suits Alice, Bob and you.\n"
        await pilot.press("ctrl+s")
        assert edits(store, "t_0000000000a1")[-1] == (
            "edit",
            "Tuesday 09:30 suits Alice, Bob and you.",
        )
        assert store.get_task("t_0000000000a1")["answer"] == ANSWER  # type: ignore[index]


async def test_a_fact_added_in_an_edit_is_proposed_as_a_memory(data_dir: Path) -> None:
    seed_history(data_dir)
    app = MyninjaApp(data_dir, refresh_s=0.1)
    async with app.run_test(size=(120, 40)) as pilot:
        store = await open_seeded(pilot, app, "t_0000000000a1")
        await pilot.press("a")
        app.screen.query_one(TextArea).text = ANSWER + "\nBob is on my team.\n"
        await pilot.press("ctrl+s")
        assert not isinstance(app.screen, EditAnswerDialog)
        (proposed,) = memories.all_memories(store)
        assert (proposed["text"], proposed["status"]) == ("Bob is on my team.", "proposed")
        assert proposed["task_id"] == "t_0000000000a1"
        assert notices(app)[-1] == (
            "remember “Bob is on my team.”? Keep or reject it in Memory (f3)."
        )
        assert store.events("t_0000000000a1")[-1]["type"] == "memory_proposed"


async def test_an_unchanged_or_cancelled_edit_saves_nothing(data_dir: Path) -> None:
    seed_history(data_dir)
    app = MyninjaApp(data_dir, refresh_s=0.1)
    async with app.run_test(size=(120, 40)) as pilot:
        store = await open_seeded(pilot, app, "t_0000000000a1")
        await pilot.press("a")
        app.screen.query_one(TextArea).text = "  " + ANSWER.strip() + "\n\n"
        await pilot.press("ctrl+s")
        assert not isinstance(app.screen, EditAnswerDialog)
        assert notices(app)[-1] == "No change."
        await pilot.press("a", "f7", *"Something else", "escape")
        assert not isinstance(app.screen, EditAnswerDialog)
        assert store.feedback("t_0000000000a1") == []
        # The palette opens the same dialog.
        await pilot.press("ctrl+p", *"Edit answer")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, EditAnswerDialog))


async def test_a_task_without_an_answer_has_nothing_to_edit(data_dir: Path) -> None:
    seed_history(data_dir)
    app = MyninjaApp(data_dir, refresh_s=0.1)
    async with app.run_test(size=(120, 40)) as pilot:
        store = await open_seeded(pilot, app, "t_0000000000c3")  # the failed task
        await pilot.press("a")
        assert not isinstance(app.screen, EditAnswerDialog)
        assert notices(app)[-1] == "This task has no answer yet."
        assert store.feedback("t_0000000000c3") == []


async def test_the_answer_is_copied_and_exported_as_markdown(
    data_dir: Path, tmp_path: Path
) -> None:
    app = MyninjaApp(data_dir, refresh_s=0.1)
    async with app.run_test(size=(120, 40)) as pilot:
        task_id = await run_to_done(pilot, app, "Paint the gate")
        await pilot.press("escape", "y")
        assert app.clipboard == "Fence painted"
        await pilot.press("e")
        assert isinstance(app.screen, ExportDialog)
        target = tmp_path / "out" / "gate.md"
        app.screen.query_one(Input).value = str(target)
        await pilot.press("enter")
        text = target.read_text()
        assert text.startswith("# Paint the gate\n") and "Fence painted" in text
        assert task_id in text
        # A second export to the same path refuses rather than overwrite.
        await pilot.press("e")
        app.screen.query_one(Input).value = str(target)
        target.write_text("mine")
        await pilot.press("enter")
        assert target.read_text() == "mine"
        assert not list(target.parent.glob(".export-*"))


async def test_history_search_opens_the_chosen_task(data_dir: Path) -> None:
    app = MyninjaApp(data_dir, refresh_s=0.1)
    async with app.run_test(size=(120, 40)) as pilot:
        gate = await run_to_done(pilot, app, "Paint the gate")
        await pilot.press("ctrl+n")
        door = await run_to_done(pilot, app, "Paint the door")
        assert app.selected == door
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, HistoryScreen)
        await pilot.press(*"gate")
        await pilot.pause(0.5)
        await pilot.press("enter", "enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, HistoryScreen))
        assert app.selected == gate
        header = app.query_one("#task-header")
        await wait_for(pilot, lambda: "Paint the gate" in str(header.render()))


async def test_help_lists_the_keys_and_the_palette_retries(data_dir: Path) -> None:
    app = MyninjaApp(data_dir, refresh_s=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        await run_to_done(pilot, app, "Paint the gate")
        await pilot.press("escape", "question_mark")
        assert isinstance(app.screen, HelpScreen)
        actions = {action for _, action in app.screen.rows}
        assert {"Questions", "History", "Settings", "Cancel", "Retry", "Edit"} <= actions
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await pilot.press(*"Retry task")
        await pilot.pause(0.3)
        await pilot.press("enter")
        tasks = app.query_one("#tasks", OptionList)
        await wait_for(pilot, lambda: tasks.option_count == 2)
        texts = [t["text"] for t in store_of(app).list_tasks()]
        assert texts == ["Paint the gate", "Paint the gate"]


async def test_a_cited_source_opens_its_passage(data_dir: Path) -> None:
    app = MyninjaApp(data_dir, refresh_s=0.1)
    async with app.run_test(size=(120, 40)) as pilot:
        task_id = await run_to_done(pilot, app, "Paint the gate")
        store_of(app).record_citation(
            task_id, 1, passage_id="p7", title="Gates", source="gates.md", text="Gates swing."
        )
        await app.select_task(task_id)  # a task's rows are read when it is chosen
        sources = app.query_one("#sources", OptionList)
        await wait_for(pilot, lambda: sources.option_count == 1)
        sources.focus()
        await pilot.press("enter")
        assert isinstance(app.screen, PassageDialog)
        assert app.screen.citation["text"] == "Gates swing."


async def test_a_task_finished_while_the_app_was_closed_shows_unread(data_dir: Path) -> None:
    client = WorkerClient(data_dir)
    await client.ensure()
    task_id = (await client.request("submit", text="Paint the gate"))["task_id"]
    async for reply in client.follow(task_id):
        if "end" in reply:
            assert reply["end"] == "done"
    app = MyninjaApp(data_dir, refresh_s=0.1)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.3)
        tasks = app.query_one("#tasks", OptionList)
        assert "•" in str(tasks.get_option_at_index(0).prompt)
        assert any("while you were away" in n.message for n in app._notifications)
        await app.select_task(task_id)  # what a click or an arrow key does
        await wait_for(pilot, lambda: "•" not in str(tasks.get_option_at_index(0).prompt))
        assert not store_of(app).get_task(task_id)["unread"]  # type: ignore[index]


async def test_the_chosen_theme_is_kept_for_the_next_start(
    data_dir: Path, myninja_home: Path
) -> None:
    app = MyninjaApp(data_dir, refresh_s=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        app.theme = "nord"  # what the palette's theme picker sets
        await pilot.pause()
    assert 'theme = "nord"' in (myninja_home / "config.toml").read_text()
    again = MyninjaApp(data_dir, refresh_s=0.1)
    async with again.run_test(size=(80, 24)):
        assert again.theme == "nord"
