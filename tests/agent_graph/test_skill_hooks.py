"""Skills' hooks in the graph (prepare, review, finish), on a scripted backend with a real
TaskManager: what they add reaches the model and the answer, a failed review asks for a
revision and weighs on the judge's score, a hook's tool goes through the permission gate,
and the chosen branch's files become the task's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from myninja.agent_graph import judging, skill_hooks
from myninja.agent_graph.branch_text import drop_reply_to_note
from myninja.agent_graph.tasks.manager import TaskManager
from myninja.backends.scripted import Rule, ScriptedBackend
from myninja.config import Config
from myninja.skills.api import Draft, Permission, Review, Skill, ToolContext, task_workspace, tool
from tests.agent_graph.scripts import DIRECT, PLAN_ONE_STEP, judge
from tests.agent_graph.test_graph import Open, of_type, run_to_rest

PREPARED = "Slots computed: Tuesday 10:00 UTC."


@tool(permissions=[Permission.WRITE_FILES])
def keep_note(text: str, ctx: ToolContext) -> str:
    """Write a note into the workspace."""
    path = ctx.workspace / "note.txt"
    path.write_text(text, encoding="utf-8")
    return f"kept {path}"


async def _prepare(draft: Draft) -> str:
    assert draft.text == "" and draft.branch_id is None
    return PREPARED


async def _review(draft: Draft) -> Review:
    if "FIXED" in draft.text:
        return Review(verdict="looks fixed", passed=True)
    verdict = f"revision {draft.revision} not fixed"
    return Review(verdict=verdict, passed=False, feedback="Say FIXED")


async def _finish(draft: Draft) -> str:
    kept = await draft.use("keep_note", {"text": draft.text})
    return f"Note: {kept}"


def hooked_skill(**hooks: Any) -> Skill:
    return Skill(
        name="hooked",
        description="A skill with hooks, for the advisor",
        tools=[keep_note],
        agents=("advisor",),
        **hooks,
    )


@pytest.fixture
def open_hooked(tmp_path: Path) -> Open:
    @asynccontextmanager
    async def opener(
        rules: list[dict[str, Any]], skill: Skill | None = None, **config: Any
    ) -> AsyncIterator[tuple[TaskManager, ScriptedBackend]]:
        scripted = ScriptedBackend("embedded", [Rule(**r) for r in rules])
        graph = {"branches": 1, **config.pop("graph", {})}
        settings = Config.model_validate({"graph": graph, **config})
        async with TaskManager.open(
            settings, tmp_path / "data", backends={"embedded": scripted}
        ) as manager:
            if skill is not None:
                assert manager.skills.add(skill, "test") is None
            yield manager, scripted

    return opener


async def test_what_prepare_works_out_reaches_every_branch(open_hooked: Open) -> None:
    rules = [
        PLAN_ONE_STEP,
        judge("Tuesday it is", 8),
        {"match": rf"Worked out for you by code.*{PREPARED}.*{DIRECT}", "reply": "Tuesday it is"},
        {"match": DIRECT, "reply": "No idea"},
    ]
    async with open_hooked(rules, hooked_skill(prepare=_prepare)) as (manager, scripted):
        task_id = await manager.submit("@advisor When shall we meet?")
        task = await run_to_rest(manager, task_id)
        assert task["answer"] == "Tuesday it is"
        # Once per task, before the plan: the planner's call comes after it.
        assert not [c for c in scripted.calls if PREPARED in str(c.messages[0])]


async def test_a_branch_given_prepared_work_is_not_invited_to_ask(open_hooked: Open) -> None:
    rules = [
        PLAN_ONE_STEP,
        judge("Tuesday it is", 8),
        {"match": "Only if it needs a personal detail", "reply": "ASK: Which day suits you?"},
        {"match": DIRECT, "reply": "Tuesday it is"},
    ]
    async with open_hooked(rules, hooked_skill(prepare=_prepare)) as (manager, _):
        task_id = await manager.submit("@advisor When shall we meet?")
        task = await run_to_rest(manager, task_id)
        assert task["status"] == "done" and task["answer"] == "Tuesday it is"
        assert manager.store.questions(task_id, status=None) == []
    asking = {"advisor": {"may_ask": True}}
    async with open_hooked(rules, agents=asking) as (manager, _):  # nothing prepared: it may ask
        task_id = await manager.submit("@advisor When shall we meet?")
        assert (await run_to_rest(manager, task_id))["status"] == "waiting"


async def test_a_failed_review_asks_for_a_revision_and_the_pass_decides(
    open_hooked: Open,
) -> None:
    rules = [
        PLAN_ONE_STEP,
        judge("Draft FIXED", 7),
        {"match": r"Say FIXED", "reply": "Draft FIXED"},
        {"match": DIRECT, "reply": "Draft one"},
    ]
    async with open_hooked(rules, hooked_skill(review=_review)) as (manager, scripted):
        task_id = await manager.submit("@advisor Write it")
        task = await run_to_rest(manager, task_id)
        assert task["answer"] == "Draft FIXED"
        (done,) = of_type(manager, task_id, "branch_done")
        assert done["revisions"] == 1
        assert done["checks"] == [{"skill": "hooked", "verdict": "looks fixed", "passed": True}]
        (evaluation,) = of_type(manager, task_id, "evaluation")
        # A lone branch that passes its checks is weighed by them: no judge is asked.
        assert evaluation["score"] == judging.PASSED_SCORE
        assert evaluation["reasons"] == "Checks: hooked: looks fixed."
        assert not [c for c in scripted.calls if "Candidate" in str(c.messages)]


async def test_a_revision_reads_without_its_reply_to_the_checks_note(open_hooked: Open) -> None:
    revised = "Certainly! Here is the whole draft again:\n\nDraft FIXED\nwith its second line"
    rules = [
        PLAN_ONE_STEP,
        judge("Draft FIXED", 7),
        {"match": r"Say FIXED", "reply": revised},
        {"match": DIRECT, "reply": "Sure:\nDraft one"},
    ]
    async with open_hooked(rules, hooked_skill(review=_review)) as (manager, scripted):
        task_id = await manager.submit("@advisor Write it")
        task = await run_to_rest(manager, task_id)
        assert task["answer"] == "Draft FIXED\nwith its second line"
        (done,) = of_type(manager, task_id, "branch_done")
        assert done["revisions"] == 1 and done["text"] == task["answer"]
        # A first answer is the model's own: only what replies to the feedback goes.
        revising = next(c for c in scripted.calls if "Say FIXED" in str(c.messages))
        assert {"role": "assistant", "content": "Sure:\nDraft one"} in revising.messages


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Certainly, I can provide the full advice again:\n1. Pay it off", "1. Pay it off"),
        ("**You're right, I missed the risk.**\n\nOptions: ...", "Options: ..."),
        ("Here's the corrected code:\n```python\nx = 1\n```", "```python\nx = 1\n```"),
        ("Here is why: rates are low.\nSo invest.", None),  # an answer's own first line
        ("Sure thing, the answer is 4.", None),  # nothing after it
        ("Okay" + " so" * 60 + "\nrest", None),  # too long to be a reply
    ],
)
def test_drop_reply_to_note(text: str, kept: str | None) -> None:
    assert drop_reply_to_note(text) == (text if kept is None else kept)


async def test_checks_that_keep_failing_stop_after_the_revisions_and_cap_the_score(
    open_hooked: Open,
) -> None:
    rules = [
        PLAN_ONE_STEP,
        judge("Still wrong", 9),
        {"match": DIRECT, "reply": "Still wrong"},
    ]
    graph = {"max_revisions": 1, "max_rounds": 1}
    async with open_hooked(rules, hooked_skill(review=_review), graph=graph) as (manager, scripted):
        task_id = await manager.submit("@advisor Write it")
        task = await run_to_rest(manager, task_id)
        assert task["answer"] == "Still wrong"
        (done,) = of_type(manager, task_id, "branch_done")
        assert done["revisions"] == 1
        assert done["checks"][0] == {
            "skill": "hooked",
            "verdict": "revision 1 not fixed",
            "passed": False,
        }
        (evaluation,) = of_type(manager, task_id, "evaluation")
        assert evaluation["score"] == 3  # the judge said 9; its own checks failed
        (selected,) = of_type(manager, task_id, "selected")
        assert selected["best_effort"] is True
        branch_calls = [c for c in scripted.calls if DIRECT in str(c.messages)]
        assert len(branch_calls) == 2  # the answer and one revision


async def test_a_hooks_tool_asks_its_permission_and_its_line_ends_the_answer(
    open_hooked: Open,
) -> None:
    rules = [PLAN_ONE_STEP, judge("Done", 8), {"match": DIRECT, "reply": "Done"}]
    async with open_hooked(rules, hooked_skill(finish=_finish)) as (manager, _):
        task_id = await manager.submit("@advisor Do it")
        assert (await run_to_rest(manager, task_id))["status"] == "waiting"
        (question,) = manager.store.questions(task_id)
        assert question["text"] == (
            "Allow the hooked skill to write files? (its tool keep_note asks)"
        )
        await manager.answer(task_id, None, "allow once")
        task = await run_to_rest(manager, task_id)
        note = task_workspace(task_id) / "note.txt"
        assert task["answer"] == f"Done\n\nNote: kept {note}"
        assert note.read_text() == "Done"
        (call,) = of_type(manager, task_id, "tool_call")
        assert call["name"] == "keep_note" and call["call_id"].startswith("finish-hooked-")
        assert [e["type"] for e in manager.store.events(task_id)][-2:] == ["answer", "task_done"]


async def test_a_denied_hook_tool_leaves_a_note_not_a_failure(open_hooked: Open) -> None:
    rules = [PLAN_ONE_STEP, judge("Done", 8), {"match": DIRECT, "reply": "Done"}]
    async with open_hooked(rules, hooked_skill(finish=_finish)) as (manager, _):
        task_id = await manager.submit("@advisor Do it")
        await run_to_rest(manager, task_id)
        await manager.answer(task_id, None, "deny")
        task = await run_to_rest(manager, task_id)
        assert task["status"] == "done"
        assert task["answer"] == (
            "Done\n\n(hooked: the person did not allow the hooked skill to do that)"
        )
        assert not (task_workspace(task_id) / "note.txt").exists()


async def test_the_chosen_branchs_files_become_the_tasks(open_hooked: Open) -> None:
    """Two coder branches write solution.py in folders of their own; the judge's pick is
    copied into the task's workspace and named under the answer."""
    rules = [
        PLAN_ONE_STEP,
        judge("Wrote B", 9),
        judge("Wrote A", 4),
        {"match": rf"{DIRECT}.*tool: wrote solution.py", "reply": "Wrote A"},
        {"match": r"tool: wrote solution.py", "reply": "Wrote B"},
        {
            "match": DIRECT,
            "tool_calls": [
                {"name": "write_file", "arguments": {"path": "solution.py", "content": "A = 1\n"}}
            ],
        },
        {
            "match": r"Attempt 1\.",
            "tool_calls": [
                {"name": "write_file", "arguments": {"path": "solution.py", "content": "B = 2\n"}}
            ],
        },
    ]
    classic = {"branches": 2, "adaptive": False, "judge": "each"}
    async with open_hooked(rules, graph=classic, agents={"coder": {"tools": True}}) as (
        manager,
        _,
    ):
        task_id = await manager.submit("@coder Write it", allow=["write_files"])
        task = await run_to_rest(manager, task_id)
        root = task_workspace(task_id)
        assert task["answer"].startswith("Wrote B")
        assert task["answer"].endswith(f"Files: solution.py in {root}")
        assert (root / "solution.py").read_text() == "B = 2\n"
        assert (root / ".branches" / "s1r1b1" / "solution.py").read_text() == "A = 1\n"


async def test_the_writer_saves_a_document_in_its_workspace_without_asking(
    open_hooked: Open,
) -> None:
    answer = "# Launch plan\n\nShip on Monday."
    note = "Ship it on Monday."
    rules = [
        PLAN_ONE_STEP,
        judge("# Launch plan", 8),
        judge("Ship it", 8),
        {"match": r"Draft the launch plan.*Answer directly", "reply": answer},
        {"match": r"Write a note.*Answer directly", "reply": note},
    ]
    async with open_hooked(rules) as (manager, _):
        saved = await manager.submit("@writer Draft the launch plan")
        task = await run_to_rest(manager, saved)
        path = task_workspace(saved) / "launch-plan.md"
        assert task["status"] == "done"  # no question: the workspace is the task's own
        assert task["answer"] == f"{answer}\n\nSaved {path}"
        assert path.read_text() == answer + "\n"

        short = await manager.submit("@writer Write a note to ship it")
        task = await run_to_rest(manager, short)
        assert task["answer"] == note  # two lines are not a document: no file
        assert not task_workspace(short).exists()


def test_promote_copies_what_the_branches_wrote_and_nothing_else(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    first, second = root / ".branches" / "s1r1b2", root / ".branches" / "s2r1b1"
    for folder in (first, second):
        (folder / "tmp").mkdir(parents=True)  # the sandbox's scratch space
        (folder / "__pycache__").mkdir()
        (folder / "__pycache__" / "x.pyc").write_bytes(b"\0")
    (first / "solution.py").write_text("v = 1\n")
    (first / "notes.md").write_text("first\n")
    (second / "solution.py").write_text("v = 2\n")  # the later step's version wins
    (second / "pkg").mkdir()
    (second / "pkg" / "mod.py").write_text("m = 1\n")
    outside = tmp_path / "outside.txt"
    outside.write_text("keep\n")
    (first / "link.txt").symlink_to(outside)  # never copied: it could point anywhere
    (root / "notes.md").symlink_to(outside)  # never written through
    copied = skill_hooks.promote(root, ["s1r1b2", "s2r1b1", "s3r1b1"])
    assert copied == ["notes.md", "solution.py", "pkg/mod.py"]
    assert (root / "solution.py").read_text() == "v = 2\n"
    assert (root / "pkg" / "mod.py").read_text() == "m = 1\n"
    assert not (root / "notes.md").is_symlink() and (root / "notes.md").read_text() == "first\n"
    assert outside.read_text() == "keep\n"
    assert not (root / "link.txt").exists()
    assert not (root / "tmp").exists() and not (root / "__pycache__").exists()


WRONG = (
    "```python\ndef add(a, b):\n    return a - b\n\n\n"
    "def test_add():\n    assert add(2, 3) == 5\n```"
)
RIGHT = WRONG.replace("a - b", "a + b")


@pytest.mark.slow
async def test_the_coder_runs_its_answers_tests_and_revises_until_they_pass(
    open_hooked: Open,
) -> None:
    """On a model offered no tools, the coder's review writes the answer's code into the
    branch's folder, runs its test in the sandbox, and sends the failure back."""
    rules = [
        PLAN_ONE_STEP,
        judge("```python", 7),
        {"match": r"FAILED.*test_add.*Fix the code", "reply": RIGHT},
        {"match": DIRECT, "reply": WRONG},
    ]
    async with open_hooked(rules) as (manager, _):
        task_id = await manager.submit("@coder add two numbers", allow=["write_files", "run_code"])
        task = await run_to_rest(manager, task_id)
        root = task_workspace(task_id)
        assert task["answer"] == f"{RIGHT}\n\nFiles: solution.py in {root}"
        assert "return a + b" in (root / "solution.py").read_text()
        (done,) = of_type(manager, task_id, "branch_done")
        assert done["revisions"] == 1
        assert done["checks"] == [{"skill": "coder", "verdict": "tests: passed 1", "passed": True}]
        results = [
            (r["name"], r["result"].splitlines()[0])
            for r in of_type(manager, task_id, "tool_result")
        ]
        assert results == [
            ("write_file", "wrote solution.py"),
            ("run_tests", "passed 0, failed 1"),
            ("write_file", "wrote solution.py"),
            ("run_tests", "passed 1, failed 0"),
        ]
        revised = of_type(manager, task_id, "tool_result")[2]["result"]
        assert "-    return a - b\n+    return a + b" in revised  # the revision's diff
        (evaluation,) = of_type(manager, task_id, "evaluation")
        assert evaluation["score"] == judging.PASSED_SCORE  # its tests decided: no judge


CALENDARS = Path(__file__).resolve().parents[1] / "fixtures" / "calendars"


async def test_the_scheduler_works_out_the_times_before_its_model_writes(
    open_hooked: Open,
) -> None:
    """The embedded scheduler gets the free times and a drafted invite from code, once per
    task, after the person allowed it to read their files (writing the invite into the task's
    own workspace asks nothing); the invite is named under the answer."""
    task = (
        f"@scheduler Find a 30-minute slot from 2025-03-10 for anna={CALENDARS}/anna-berlin.ics "
        f"(Europe/Berlin) and ben={CALENDARS}/ben-new-york.ics (America/New_York), "
        "invite titled 'Sync'"
    )
    rules = [
        PLAN_ONE_STEP,
        judge("Monday works", 8),
        {"match": rf"Worked out for you by code.*Invite file.*{DIRECT}", "reply": "Monday works"},
        {"match": DIRECT, "reply": "No idea"},
    ]
    # The person's zone is configured: the scheduler asks nothing but the permission.
    zone = {"scheduler": {"timezone": "Europe/Berlin"}}
    async with open_hooked(rules, **zone) as (manager, scripted):
        task_id = await manager.submit(task)
        assert (await run_to_rest(manager, task_id))["status"] == "waiting"
        (question,) = manager.store.questions(task_id)
        assert question["text"] == (
            # Calendars given as files: no network needed, none asked for.
            "Allow the scheduler skill to read your files? (its tool find_meeting_slots asks)"
        )
        await manager.answer(task_id, None, "allow once")
        done = await run_to_rest(manager, task_id)
        assert len(manager.store.questions(task_id, status=None)) == 1  # only the one
        root = task_workspace(task_id)
        assert done["answer"] == f"Monday works\n\nFiles: invite-sync.ics in {root}"
        assert (root / "invite-sync.ics").read_text().startswith("BEGIN:VCALENDAR")
        names = [e["name"] for e in of_type(manager, task_id, "tool_result")]
        assert names == ["find_meeting_slots", "draft_meeting_invite"]  # once, not per branch
        prompt = next(str(c.messages) for c in scripted.calls if "Worked out" in str(c.messages))
        assert "Monday 10 March 2025" in prompt


async def test_a_hook_that_raises_is_reported_and_the_task_goes_on(open_hooked: Open) -> None:
    async def broken(draft: Draft) -> Review:
        raise RuntimeError("boom")

    rules = [PLAN_ONE_STEP, judge("Fine", 8), {"match": DIRECT, "reply": "Fine"}]
    skill = hooked_skill(review=broken, finish=broken)
    async with open_hooked(rules, skill) as (manager, _):
        task_id = await manager.submit("@advisor Go")
        task = await run_to_rest(manager, task_id)
        assert task["status"] == "done"
        assert task["answer"] == "Fine\n\n(hooked: RuntimeError: boom)"
        (done,) = of_type(manager, task_id, "branch_done")
        assert done["checks"] == [
            {"skill": "hooked", "verdict": "not checked: RuntimeError: boom", "passed": None}
        ]
