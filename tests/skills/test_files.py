"""The files skill reads and searches only inside the allowed directories."""

from __future__ import annotations

from pathlib import Path

import pytest

from myninja.skills.api import Permission, PermissionNeeded, ToolContext, ToolError
from myninja.skills.files import MAX_LINES, read_file, search_files


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """allowed/ with notes and a link out; secret/ beside it, outside."""
    allowed = tmp_path / "allowed"
    (allowed / "notes" / "deep").mkdir(parents=True)
    (allowed / "notes" / "todo.md").write_text("buy milk\nCall Alice about the Budget\n")
    (allowed / "notes" / "deep" / "plan.md").write_text("budget: 10k\n")
    (allowed / "notes" / "code.py").write_text("budget = 3\n")
    (allowed / ".git").mkdir()
    (allowed / ".git" / "budget.md").write_text("budget in git internals\n")
    (allowed / "blob.bin").write_bytes(b"budget\0\1\2")
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "passwords.md").write_text("budget password hunter2\n")
    (allowed / "link.md").symlink_to(secret / "passwords.md")
    (allowed / "linkdir").symlink_to(secret, target_is_directory=True)
    return tmp_path


def ctx(tree: Path) -> ToolContext:
    return ToolContext(
        "t1", allowed_dirs=[tree / "allowed"], granted=frozenset({Permission.READ_FILES})
    )


async def test_reads_a_file_by_relative_or_absolute_path(tree: Path) -> None:
    c = ctx(tree)
    assert await read_file.call({"path": "notes/todo.md"}, c) == (
        "buy milk\nCall Alice about the Budget"
    )
    absolute = str(tree / "allowed" / "notes" / "todo.md")
    assert (await read_file.call({"path": absolute}, c)).startswith("buy milk")


@pytest.mark.parametrize(
    "path",
    [
        "../secret/passwords.md",
        "notes/../../secret/passwords.md",
        "link.md",
        "linkdir/passwords.md",
    ],
)
async def test_escapes_and_links_out_are_refused(tree: Path, path: str) -> None:
    with pytest.raises(ToolError) as err:
        await read_file.call({"path": path}, ctx(tree))
    message = str(err.value)
    assert message.startswith(f"refused: {path} is outside the allowed directories (")
    assert "hunter2" not in message


async def test_an_absolute_path_outside_is_refused(tree: Path) -> None:
    with pytest.raises(ToolError, match=r"refused: .* is outside the allowed directories"):
        await read_file.call({"path": str(tree / "secret" / "passwords.md")}, ctx(tree))


async def test_missing_binary_and_no_allowed_dirs(tree: Path) -> None:
    with pytest.raises(ToolError, match=r"no such file: notes/none\.md"):
        await read_file.call({"path": "notes/none.md"}, ctx(tree))
    with pytest.raises(ToolError, match=r"blob\.bin is not a text file"):
        await read_file.call({"path": "blob.bin"}, ctx(tree))
    with pytest.raises(ToolError, match="no directories are allowed"):
        await read_file.call(
            {"path": "x"}, ToolContext("t1", granted=frozenset({Permission.READ_FILES}))
        )


async def test_reading_needs_the_permission(tree: Path) -> None:
    with pytest.raises(PermissionNeeded):
        await read_file.call({"path": "notes/todo.md"}, ToolContext("t1", allowed_dirs=[tree]))


async def test_a_long_file_is_read_a_window_at_a_time(tree: Path) -> None:
    lines = [f"line {n}" for n in range(1, MAX_LINES + 51)]
    (tree / "allowed" / "long.txt").write_text("\n".join(lines) + "\n")
    first = await read_file.call({"path": "long.txt"}, ctx(tree))
    assert first.splitlines()[-1] == (
        f"[lines 1-{MAX_LINES} of {MAX_LINES + 50}; read again with first_line={MAX_LINES + 1} "
        "for more]"
    )
    rest = await read_file.call({"path": "long.txt", "first_line": MAX_LINES + 1}, ctx(tree))
    assert rest.splitlines()[0] == f"line {MAX_LINES + 1}"
    assert rest.splitlines()[-1] == f"[lines {MAX_LINES + 1}-{MAX_LINES + 50} of {MAX_LINES + 50}]"


async def test_search_finds_lines_inside_only(tree: Path) -> None:
    out = await search_files.call({"pattern": "*.md", "query": "budget"}, ctx(tree))
    allowed = (tree / "allowed").resolve()
    assert out.splitlines() == [
        f"{allowed}/notes/todo.md:2: Call Alice about the Budget",
        f"{allowed}/notes/deep/plan.md:1: budget: 10k",
    ]


async def test_search_patterns_and_listing(tree: Path) -> None:
    allowed = (tree / "allowed").resolve()
    out = await search_files.call({"pattern": "notes/*"}, ctx(tree))
    assert out.splitlines() == [f"{allowed}/notes/code.py", f"{allowed}/notes/todo.md"]
    out = await search_files.call({"pattern": "notes/**/*.md", "query": "BUDGET"}, ctx(tree))
    assert len(out.splitlines()) == 2
    assert await search_files.call({"pattern": "*.rs"}, ctx(tree)) == "no matches"
    with pytest.raises(ToolError, match=r"without '\.\.'"):
        await search_files.call({"pattern": "../secret/*"}, ctx(tree))
    with pytest.raises(ToolError, match=r"without '\.\.'"):
        await search_files.call({"pattern": "/etc/*"}, ctx(tree))
