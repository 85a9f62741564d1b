"""The coder skill's tools on a real workspace: files written with diffs, Python and pytest run
in the sandbox, and the permissions each tool needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from myninja.skills.api import Permission, ToolContext, ToolError
from myninja.skills.coder import skill as coder
from myninja.skills.coder.confinement import offer

pytestmark = pytest.mark.slow  # real sandboxed subprocesses

ALL = frozenset(Permission)
KERNEL_LINE = "confined by the kernel" if offer()["ok"] else "in-process guard only"
PASSING = "from calc import add\n\n\ndef test_adds():\n    assert add(2, 3) == 5\n"
FAILING = (
    "from calc import add\n\n\n"
    "def test_adds_negatives():\n    assert add(-1, -1) == -2\n\n\n"
    "def test_adds_wrongly():\n    assert add(1, 1) == 3\n"
)


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    return ToolContext("t-coder", granted=ALL, workspace_dir=tmp_path / "ws")


async def call(name: str, ctx: ToolContext, **arguments: object) -> str:
    return await coder.skill.tool(name).call(arguments, ctx)


def test_the_skill_works_in_its_workspace_and_asks_for_nothing() -> None:
    assert coder.skill.name == "coder" and coder.skill.agents == ("coder",)
    # Writing and running code in the task's own sandboxed workspace is what it is for.
    assert {t.name: (set(t.permissions), t.workspace) for t in coder.skill.tools} == {
        "write_file": (set(), True),
        "read_workspace_file": (set(), True),
        "run_python": (set(), True),
        "run_tests": (set(), True),
    }
    assert coder.skill.permissions == set()


async def test_tools_run_with_no_permission_granted(tmp_path: Path) -> None:
    bare = ToolContext("t-bare", workspace_dir=tmp_path / "ws")
    assert (await call("write_file", bare, path="a.py", content="print(6 * 7)\n")).startswith(
        "wrote a.py"
    )
    assert "42" in await call("run_python", bare, path_or_code="a.py")


async def test_write_file_returns_the_diff_and_read_gives_it_back(ctx: ToolContext) -> None:
    first = await call("write_file", ctx, path="calc.py", content="def add(a, b):\n    return a\n")
    assert first.startswith("wrote calc.py\n--- /dev/null\n+++ b/calc.py\n")
    assert "+    return a\n" in first
    second = await call(
        "write_file", ctx, path="calc.py", content="def add(a, b):\n    return a + b\n"
    )
    assert "--- a/calc.py\n+++ b/calc.py\n" in second
    assert "-    return a\n+    return a + b\n" in second
    assert " def add(a, b):\n" in second  # unchanged context line
    same = await call(
        "write_file", ctx, path="calc.py", content="def add(a, b):\n    return a + b\n"
    )
    assert same == "calc.py: unchanged"
    assert await call("read_workspace_file", ctx, path="calc.py") == (
        "def add(a, b):\n    return a + b\n"
    )
    assert (ctx.workspace / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"


async def test_a_fence_around_the_content_is_not_written(ctx: ToolContext) -> None:
    await call("write_file", ctx, path="f.py", content="```python\nx = 1\n```")
    assert (ctx.workspace / "f.py").read_text() == "x = 1\n"


async def test_paths_outside_the_workspace_are_refused(ctx: ToolContext) -> None:
    with pytest.raises(ToolError, match="escapes the workspace"):
        await call("write_file", ctx, path="../evil.py", content="x = 1\n")
    with pytest.raises(ToolError, match="not a path inside the workspace"):
        await call("read_workspace_file", ctx, path="/etc/passwd")
    assert not (ctx.workspace.parent / "evil.py").exists()


async def test_reading_a_missing_file_lists_what_is_there(ctx: ToolContext) -> None:
    await call("write_file", ctx, path="calc.py", content="x = 1\n")
    with pytest.raises(
        ToolError, match=r"no such file: nope\.py; files in the workspace: calc\.py"
    ):
        await call("read_workspace_file", ctx, path="nope.py")


async def test_run_python_reports_exit_code_and_output_tails(ctx: ToolContext) -> None:
    report = await call(
        "run_python",
        ctx,
        path_or_code="import sys\nprint('out', sys.argv[1:])\nraise ValueError('bad input')",
        args=["a", "b"],
    )
    assert report.startswith("exit code 1\n")
    assert "stdout:\nout ['a', 'b']" in report
    assert "stderr:\n" in report and "ValueError: bad input" in report


async def test_run_python_runs_a_file_of_the_workspace(ctx: ToolContext) -> None:
    await call("write_file", ctx, path="calc.py", content="def add(a, b):\n    return a + b\n")
    await call(
        "write_file", ctx, path="main.py", content="from calc import add\nprint(add(2, 3))\n"
    )
    report = await call("run_python", ctx, path_or_code="main.py")
    # the last line says which confinement ran (this machine has the kernel's: sandbox check)
    assert report == f"exit code 0 (ok)\nstdout:\n5\nsandbox: {KERNEL_LINE}"
    with pytest.raises(ToolError, match=r"no such file: other\.py; write it with write_file first"):
        await call("run_python", ctx, path_or_code="other.py")


async def test_run_python_stops_a_program_at_the_wall_time_limit(ctx: ToolContext) -> None:
    report = await call(
        "run_python", ctx, path_or_code="import time\nprint('start', flush=True)\ntime.sleep(60)"
    )
    assert report.splitlines()[1] == "timed out after 10 s (wall time)"
    assert "stdout:\nstart" in report and "[sandbox]" not in report


async def test_run_tests_counts_a_passing_file(ctx: ToolContext) -> None:
    await call("write_file", ctx, path="calc.py", content="def add(a, b):\n    return a + b\n")
    await call("write_file", ctx, path="test_calc.py", content=PASSING)
    assert await call("run_tests", ctx) == f"passed 1, failed 0\nsandbox: {KERNEL_LINE}"


async def test_run_tests_counts_failures_and_shows_their_tails(ctx: ToolContext) -> None:
    await call("write_file", ctx, path="calc.py", content="def add(a, b):\n    return a + b\n")
    await call("write_file", ctx, path="test_calc.py", content=PASSING)
    await call("write_file", ctx, path="test_more.py", content=FAILING)
    report = await call("run_tests", ctx, path="test_more.py")
    lines = report.splitlines()
    assert lines[0] == "passed 1, failed 1"
    assert lines[1] == "FAILED test_more.py::test_adds_wrongly:"
    assert "assert add(1, 1) == 3" in report and "assert 2 == 3" in report
    # The whole workspace: both files.
    assert (await call("run_tests", ctx)).startswith("passed 2, failed 1\n")


async def test_run_tests_reports_a_test_file_that_does_not_import(ctx: ToolContext) -> None:
    await call("write_file", ctx, path="test_broken.py", content="def test_x(:\n    pass\n")
    report = await call("run_tests", ctx)
    assert report.startswith("passed 0, failed 0, errors 1\nFAILED test_broken.py:")
    assert "SyntaxError" in report


async def test_run_tests_without_tests_says_so(ctx: ToolContext) -> None:
    await call("write_file", ctx, path="calc.py", content="x = 1\n")
    assert (await call("run_tests", ctx)).startswith("no tests found")
