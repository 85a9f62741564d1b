"""The built-in `coder` skill: write files into the task's workspace, run Python and pytest in
the sandbox, and read back what is there.

Every tool works in `ToolContext.workspace` (the task's own folder) and nowhere else; code runs
only through `sandbox.py`. Results are short, plain text: a small model reads them in
a context of a few thousand tokens, so output is cut to its tail, where errors are.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated

from pydantic import Field

from myninja.skills.api import Skill, ToolContext, ToolError, tool

from .review import review
from .sandbox import (
    DEFAULT_LIMITS,
    RunResult,
    SandboxLimits,
    Workspace,
    WorkspaceError,
    arun_python,
)

MAX_READ_CHARS = 12_000
MAX_DIFF_CHARS = 4_000
TAIL_CHARS = 1_500  # of stdout and of stderr, in a run_python report
FAILURE_TAIL_CHARS = 800  # of each failing test's traceback
MAX_FAILURES_SHOWN = 5
# pytest's own start-up costs a second or two on a busy machine: more room than a plain run.
TEST_LIMITS = SandboxLimits(wall_s=30.0, cpu_s=30)
# The line the pytest plugin below prints last; the run's counts are read from it.
_COUNTS_MARK = "@@myninja-test-counts "

# Runs inside the sandbox: pytest with a plugin that counts outcomes and keeps each failure's
# traceback, printed as one JSON line at the end (parsing pytest's summary line would depend on
# its wording and on -q/-v). Plugin autoloading is off: the venv's plugins (asyncio, timeouts)
# are ours, not the task's, and each costs start-up time.
_PYTEST_RUNNER = r"""
import json, os, sys
os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
import pytest

class Counts:
    def __init__(self):
        self.passed = self.failed = self.errors = self.skipped = 0
        self.failures = []

    def pytest_runtest_logreport(self, report):
        if report.when == "call":
            if report.passed:
                self.passed += 1
            elif report.failed:
                self.failed += 1
                self.failures.append((report.nodeid, report.longreprtext))
            else:
                self.skipped += 1
        elif report.failed:  # an error in a fixture's setup or teardown
            self.errors += 1
            self.failures.append((f"{report.nodeid} ({report.when})", report.longreprtext))
        elif report.skipped:
            self.skipped += 1

    def pytest_collectreport(self, report):
        if report.failed:  # a test file that does not import: a syntax error, say
            self.errors += 1
            self.failures.append((report.nodeid or "collecting", report.longreprtext))

counts = Counts()
code = pytest.main(sys.argv[1:], plugins=[counts])
print()
print(MARK + json.dumps({
    "exit": int(code), "passed": counts.passed, "failed": counts.failed,
    "errors": counts.errors, "skipped": counts.skipped,
    "failures": [[name, text[-TAIL:]] for name, text in counts.failures[:SHOWN]],
}))
sys.exit(int(code))
"""


def pytest_runner() -> str:
    """The script `run_tests` runs in the sandbox; its arguments are pytest's."""
    return (
        f"MARK = {_COUNTS_MARK!r}\nTAIL = {FAILURE_TAIL_CHARS}\nSHOWN = {MAX_FAILURES_SHOWN}\n"
        + _PYTEST_RUNNER
    )


def _workspace(ctx: ToolContext) -> Workspace:
    return Workspace(ctx.workspace.resolve())


def _inside(ws: Workspace, path: str) -> Path:
    try:
        return ws.path(path)
    except WorkspaceError as exc:
        raise ToolError(
            f"{exc}; use a path relative to the workspace, like 'solution.py'"
        ) from None


def _files_line(ws: Workspace) -> str:
    files = ws.files()
    return "files in the workspace: " + (", ".join(files[:30]) if files else "none yet")


_FENCED = re.compile(r"\A\s*```[\w+-]*[ \t]*\n(.*?)\n?```\s*\Z", re.DOTALL)


def _unfence(content: str) -> str:
    """Small models often wrap a file's content in a ``` fence; the fence is not the file."""
    match = _FENCED.match(content)
    return match.group(1) + "\n" if match else content


@tool(workspace=True)
def write_file(
    path: Annotated[str, Field(description="File path in the workspace, e.g. 'solution.py'")],
    content: Annotated[str, Field(description="The whole new content of the file")],
    ctx: ToolContext,
) -> str:
    """Write a file in your workspace (replacing it if it exists). Returns the diff."""
    ws = _workspace(ctx)
    target = _inside(ws, path)
    if target.is_dir():
        raise ToolError(f"{path} is a directory")
    if not path.endswith((".md", ".markdown")):
        content = _unfence(content)
    diff = ws.diff(path, content)
    ws.write(path, content)
    if not diff:
        return f"{path}: unchanged"
    if len(diff) > MAX_DIFF_CHARS:
        diff = diff[:MAX_DIFF_CHARS] + f"\n[diff cut at {MAX_DIFF_CHARS} characters]\n"
    return f"wrote {path}\n{diff}"


@tool(name="read_workspace_file", workspace=True)
def read_workspace_file(
    path: Annotated[str, Field(description="File path in the workspace, e.g. 'solution.py'")],
    ctx: ToolContext,
) -> str:
    """Read a file from your workspace."""
    # Named apart from the files skill's read_file (the person's folders): a skill whose tool
    # name is taken would not load, and the two read different places.
    ws = _workspace(ctx)
    target = _inside(ws, path)
    if not target.is_file():
        raise ToolError(f"no such file: {path}; {_files_line(ws)}")
    text = target.read_text(encoding="utf-8", errors="replace")
    if len(text) > MAX_READ_CHARS:
        return text[:MAX_READ_CHARS] + f"\n[cut: the file has {len(text)} characters]"
    return text


def _tail(text: str, chars: int) -> str:
    text = text.rstrip()
    return text if len(text) <= chars else "…" + text[-chars:]


def run_report(result: RunResult) -> str:
    """A compact account of one sandboxed run: exit code, the limit that stopped it, the tails
    of stdout and stderr."""
    lines = [f"exit code {result.exit_code}" + (" (ok)" if result.ok else "")]
    message = result.limit_message()
    if message:
        lines.append(message)
    # The sandbox appends its own "[sandbox] ..." line to stderr; the message above says it.
    stderr = result.stderr.replace(f"[sandbox] {message}\n", "") if message else result.stderr
    for name, text in (("stdout", result.stdout), ("stderr", stderr)):
        if text.strip():
            lines.append(f"{name}:\n{_tail(text, TAIL_CHARS)}")
    if not result.stdout.strip() and not stderr.strip():
        lines.append("no output")
    lines.append(confinement_line(result))
    return "\n".join(lines)


def confinement_line(result: RunResult) -> str:
    """Which confinement the run had, for the tool result (and so the event that records it)."""
    if result.confinement == "kernel":
        return "sandbox: confined by the kernel"
    if result.confinement == "in-process":
        return "sandbox: in-process guard only"
    return "sandbox: not run"


def _looks_like_path(text: str) -> bool:
    return "\n" not in text and text.strip().endswith(".py") and " " not in text.strip()


@tool(workspace=True)
async def run_python(
    path_or_code: Annotated[
        str, Field(description="A .py file in the workspace, or Python code to run")
    ],
    ctx: ToolContext,
    args: Annotated[list[str], Field(description="Command-line arguments for a file")] = [],  # noqa: B006
) -> str:
    """Run a Python file or code in your workspace (10 s limit). Returns exit code and output."""
    ws = _workspace(ctx)
    target: str | Path = path_or_code
    if _looks_like_path(path_or_code):
        script = _inside(ws, path_or_code.strip())
        if not script.is_file():
            raise ToolError(
                f"no such file: {path_or_code}; write it with write_file first ({_files_line(ws)})"
            )
        target = script
    result = await arun_python(target, workspace=ws, args=list(args), limits=DEFAULT_LIMITS)
    return run_report(result)


def report_tests(result: RunResult) -> str:
    """Passed and failed counts, and the end of each failure's traceback."""
    marked = [line for line in result.stdout.splitlines() if line.startswith(_COUNTS_MARK)]
    if not marked:
        # pytest never got to its end: a limit, or a crash before the summary.
        return "tests did not finish\n" + run_report(result)
    counts = json.loads(marked[-1][len(_COUNTS_MARK) :])
    head = f"passed {counts['passed']}, failed {counts['failed']}"
    if counts["errors"]:
        head += f", errors {counts['errors']}"
    if counts["skipped"]:
        head += f", skipped {counts['skipped']}"
    if counts["exit"] == 5:
        head = "no tests found (write test_*.py files with test_* functions)"
    lines = [head]
    for name, text in counts["failures"]:
        lines.append(f"FAILED {name}:\n{_tail(text, FAILURE_TAIL_CHARS)}")
    shown = len(counts["failures"])
    if counts["failed"] + counts["errors"] > shown:
        lines.append(f"[{counts['failed'] + counts['errors'] - shown} more failures not shown]")
    lines.append(confinement_line(result))
    return "\n".join(lines)


@tool(workspace=True)
async def run_tests(
    ctx: ToolContext,
    path: Annotated[
        str, Field(description="A test file, e.g. 'test_solution.py'; empty runs all tests")
    ] = "",
) -> str:
    """Run pytest in your workspace. Returns passed and failed counts and the failures."""
    ws = _workspace(ctx)
    target = "."
    if path.strip():
        found = _inside(ws, path.strip())
        if not found.exists():
            raise ToolError(f"no such file: {path}; {_files_line(ws)}")
        target = found.relative_to(ws.root.resolve()).as_posix() or "."
    # An empty ini of its own, so a pytest.ini or pyproject.toml above the workspace (the
    # person's home, say) cannot change how the task's tests run.
    ini = ws.tmp / "pytest.ini"
    ini.parent.mkdir(parents=True, exist_ok=True)
    ini.write_text("[pytest]\n", encoding="utf-8")
    pytest_args = [
        "-q",
        "--tb=short",
        "-p",
        "no:cacheprovider",
        "-c",
        str(ini),
        "--rootdir",
        str(ws.root),
        "--ignore",
        str(ws.tmp),  # the sandbox's scratch space, not the task's code
        target,
    ]
    result = await arun_python(pytest_runner(), workspace=ws, args=pytest_args, limits=TEST_LIMITS)
    return report_tests(result)


skill = Skill(
    name="coder",
    description="Write, run and test Python code in the task's own workspace",
    tools=[write_file, read_workspace_file, run_python, run_tests],
    agents=("coder",),
    # For a model that answers with code blocks instead of tool calls: the code is written,
    # run and tested all the same, and the chosen branch's files land in the workspace.
    review=review,
)
