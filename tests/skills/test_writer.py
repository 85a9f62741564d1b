"""The writer skill saves and edits Markdown only inside the task's workspace."""

from __future__ import annotations

from pathlib import Path

import pytest

from myninja.skills import writer
from myninja.skills.api import Draft, Permission, ToolContext, ToolError
from myninja.skills.writer import edit_document, save_document, skill

WRITE = frozenset({Permission.WRITE_FILES})
PLAN = "# Project plan\n\nShip the beta in May.\nReview the beta with Dana.\n"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return (tmp_path / "ws").resolve()


def ctx(workspace: Path, granted: frozenset[Permission] = WRITE) -> ToolContext:
    return ToolContext(task_id="t1", workspace_dir=workspace, granted=granted)


async def test_save_writes_a_slugged_markdown_file_and_counts_words(workspace: Path) -> None:
    out = await save_document.call({"name": "Project Plan: Q2!", "markdown": PLAN}, ctx(workspace))
    path = workspace / "project-plan-q2.md"
    # "#" is no word; "Project plan" 2 + "Ship the beta in May" 5 + "Review the beta with Dana" 5
    assert out == f"Saved {path} (12 words)"
    assert path.read_text() == PLAN
    again = await save_document.call(
        {"name": "project-plan-q2.md", "markdown": "Shorter, don't you think?"}, ctx(workspace)
    )
    assert again == f"Replaced {path} (4 words)"
    assert path.read_text() == "Shorter, don't you think?\n"  # a final newline is added


async def test_save_into_a_subfolder(workspace: Path) -> None:
    out = await save_document.call({"name": "Drafts/Café menu", "markdown": "Soup"}, ctx(workspace))
    assert out == f"Saved {workspace / 'drafts' / 'cafe-menu.md'} (1 word)"
    assert (workspace / "drafts" / "cafe-menu.md").read_text() == "Soup\n"


async def test_edit_replaces_one_occurrence_and_returns_a_diff(workspace: Path) -> None:
    await save_document.call({"name": "plan", "markdown": PLAN}, ctx(workspace))
    diff = await edit_document.call(
        {"name": "plan", "find": "in May", "replace": "in June"}, ctx(workspace)
    )
    assert diff == (
        "--- a/plan.md\n"
        "+++ b/plan.md\n"
        "@@ -1,4 +1,4 @@\n"
        " # Project plan\n"
        " \n"
        "-Ship the beta in May.\n"
        "+Ship the beta in June.\n"
        " Review the beta with Dana.\n"
    )
    assert (workspace / "plan.md").read_text() == PLAN.replace("May", "June")


async def test_zero_or_several_matches_are_clear_errors(workspace: Path) -> None:
    await save_document.call({"name": "plan", "markdown": PLAN}, ctx(workspace))
    with pytest.raises(ToolError) as several:
        await edit_document.call(
            {"name": "plan", "find": "the beta", "replace": "the release"}, ctx(workspace)
        )
    assert str(several.value) == (
        "the text to find occurs 2 times in plan.md; "
        "include more of the text around it so that it occurs once"
    )
    with pytest.raises(ToolError) as none:
        await edit_document.call(
            {"name": "plan", "find": "Ship the beta in april.", "replace": "x"}, ctx(workspace)
        )
    assert str(none.value) == (
        "the text to find is not in plan.md; the closest line is 'Ship the beta in May.'"
    )
    with pytest.raises(ToolError, match="find is empty"):
        await edit_document.call({"name": "plan", "find": "", "replace": "x"}, ctx(workspace))
    assert (workspace / "plan.md").read_text() == PLAN  # nothing changed on any error


async def test_editing_a_document_that_does_not_exist(workspace: Path) -> None:
    with pytest.raises(ToolError, match=r"^no document notes\.md; no documents saved yet$"):
        await edit_document.call({"name": "notes", "find": "a", "replace": "b"}, ctx(workspace))
    await save_document.call({"name": "plan", "markdown": PLAN}, ctx(workspace))
    with pytest.raises(ToolError, match=r"^no document notes\.md; saved documents: plan\.md$"):
        await edit_document.call({"name": "notes", "find": "a", "replace": "b"}, ctx(workspace))


@pytest.mark.parametrize("name", ["../escape", "a/../../escape", "/etc/passwd", "~/notes"])
async def test_paths_out_of_the_workspace_are_refused(tmp_path: Path, name: str) -> None:
    workspace = tmp_path / "ws"
    with pytest.raises(ToolError, match=r"^refused: .* is outside the workspace"):
        await save_document.call({"name": name, "markdown": "x"}, ctx(workspace))
    with pytest.raises(ToolError, match=r"^refused: .* is outside the workspace"):
        await edit_document.call({"name": name, "find": "x", "replace": "y"}, ctx(workspace))
    assert not (tmp_path / "escape.md").exists()
    assert not workspace.exists() or list(workspace.iterdir()) == []


async def test_a_symlink_out_of_the_workspace_is_refused(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    outside = tmp_path / "outside"
    outside.mkdir()
    workspace.mkdir()
    (workspace / "drafts").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ToolError, match=r"^refused: 'drafts/plan' leads outside the workspace"):
        await save_document.call({"name": "drafts/plan", "markdown": "x"}, ctx(workspace))
    assert list(outside.iterdir()) == []


async def test_names_without_letters_are_refused(workspace: Path) -> None:
    with pytest.raises(ToolError, match="not a usable document name"):
        await save_document.call({"name": "!!!", "markdown": "x"}, ctx(workspace))


async def test_both_tools_work_in_the_workspace_with_no_grant(workspace: Path) -> None:
    no_grant = ctx(workspace, granted=frozenset())
    await save_document.call({"name": "plan", "markdown": PLAN}, no_grant)
    assert (workspace / "plan.md").read_text() == PLAN + ("" if PLAN.endswith("\n") else "\n")
    assert save_document.workspace and edit_document.workspace
    assert skill.name == "writer" and skill.agents == ("writer",)
    assert skill.permissions == set()


def _draft(text: str, task: str = "Draft the launch email") -> Draft:
    async def use(name: str, arguments: dict) -> str:
        raise AssertionError("the review uses no tool")

    return Draft(task=task, agent="writer", task_id="t1", use=use, workspace=Path("."), text=text)


@pytest.mark.parametrize(
    "reply",
    [
        "Sure.",
        "Certainly, I will provide the short project update email.",
        "The project update email has been drafted and is ready for review.",
        "I will write the email now.",
        "",
    ],
)
async def test_a_note_about_the_text_is_sent_back(reply: str) -> None:
    review = await writer.review(_draft(reply))
    assert review is not None and review.passed is False
    assert review.verdict == "a note about the text, not the text"
    assert "Write the whole text itself now" in (review.feedback or "")


@pytest.mark.parametrize(
    "reply",
    [
        "An old silent pond\nA frog jumps into the pond\nSplash! Silence again.",
        "Sure. " + "The search feature shipped on Monday and users love it. " * 8,
    ],
)
async def test_a_text_is_not_checked(reply: str) -> None:
    assert await writer.review(_draft(reply, "Write a haiku")) is None
