"""The coder skill's review hook: code blocks taken from an answer, written into a
branch's folder, run or tested in the real sandbox, and the chosen files put in the workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from myninja.skills.api import Draft, Permission, Review, ToolContext, ToolError
from myninja.skills.coder import skill as coder
from myninja.skills.coder.answer_files import code_files
from myninja.skills.coder.review import FIX, review
from myninja.skills.coder.sandbox import SandboxLimits

BRANCH = "s1r0b1"

CODE = "def add(a, b):\n    return a + b\n"
TESTS = (
    "from solution import add\n\n\n"
    "def test_adds():\n    assert add(2, 3) == 5\n\n\n"
    "def test_adds_negatives():\n    assert add(-1, -1) == -2\n"
)


def fenced(code: str, lang: str = "python") -> str:
    return f"```{lang}\n{code}```\n"


# -- code_files ---------------------------------------------------------------------------------


def test_files_named_by_a_comment_a_backticked_or_a_bold_line_above() -> None:
    answer = (
        "The code:\n\n"
        + fenced("# calc.py\n" + CODE)
        + "\n`test_calc.py`:\n"
        + fenced("from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n")
        + "\n**util.py**\n\n"
        + fenced("def double(x):\n    return 2 * x\n")
        + fenced("# file: pkg/mod.py\nVALUE = 1\n")
        + fenced("X = 1\n", lang="python:conf.py")
    )
    files = code_files(answer)
    assert list(files) == ["calc.py", "test_calc.py", "util.py", "pkg/mod.py", "conf.py"]
    assert files["calc.py"] == "# calc.py\n" + CODE
    assert files["test_calc.py"].startswith("from calc import add\n")
    assert files["util.py"] == "def double(x):\n    return 2 * x\n"


def test_unnamed_blocks_are_joined_into_solution_py_and_tests_into_their_file() -> None:
    answer = (
        fenced("import math\n")
        + "and\n"
        + fenced(CODE)
        + "Tests:\n"
        + fenced(TESTS)
        + "Use it:\n"
        + fenced("from solution import add\n\nprint(add(2, 3))\n")
    )
    files = code_files(answer)
    assert list(files) == ["solution.py", "test_solution.py"]
    # The usage example's import of solution.py from solution.py itself is dropped.
    assert files["solution.py"] == f"import math\n\n{CODE}\n\nprint(add(2, 3))\n"
    assert files["test_solution.py"] == TESTS


def test_tests_without_an_import_get_the_code_s_names() -> None:
    tests = "def test_adds():\n    assert add(2, 3) == 5\n"
    files = code_files(fenced(CODE) + fenced(tests))
    assert files["test_solution.py"] == f"from solution import *  # noqa: F403\n\n{tests}"


def test_a_named_test_file_without_an_import_gets_the_code_s_names_too() -> None:
    tests = "def test_adds():\n    assert add(2, 3) == 5\n"
    files = code_files(fenced(CODE) + "`slugify_test.py`:\n" + fenced(tests))
    assert files["slugify_test.py"] == f"from solution import *  # noqa: F403\n\n{tests}"
    assert files["solution.py"] == CODE


def test_code_and_tests_in_one_block_stay_together() -> None:
    block = CODE + "\n\ndef test_adds():\n    assert add(2, 3) == 5\n"
    assert code_files(fenced(block)) == {"solution.py": block}


def test_unnamed_code_takes_the_module_name_its_tests_import() -> None:
    stack = "class Stack:\n    def __init__(self):\n        self.items = []\n"
    tests = "from stack import Stack\n\n\ndef test_empty():\n    assert Stack().items == []\n"
    files = code_files(fenced(stack) + "`test_stack.py`:\n" + fenced(tests))
    assert files == {"stack.py": stack, "test_stack.py": tests}


def test_a_name_above_that_the_block_imports_is_not_the_block_s_name() -> None:
    tests = "from stack import Stack\n\n\ndef test_empty():\n    assert Stack() is not None\n"
    files = code_files("Tests, which import from `stack.py`:\n" + fenced(tests))
    assert list(files) == ["test_stack.py"]


def test_shell_commands_output_and_sessions_are_not_code() -> None:
    answer = (
        fenced("pip install requests\n", lang="bash")
        + fenced("pip install requests\n")
        + fenced("python solution.py\n", lang="")
        + fenced("pytest -q\n", lang="")
        + fenced("$ python solution.py\n5\n", lang="console")
        + fenced(">>> add(2, 3)\n5\n")
        + "Output:\n"
        + fenced("print(5)\n", lang="")
        + fenced("[1, 2, 3]\n", lang="")
        + fenced("Total: 3\n", lang="")
        + fenced('{"a": 1}\n', lang="json")
    )
    assert code_files(answer) == {}
    # A Python line that starts like a command is still Python.
    assert code_files(fenced("python = 3\nprint(python)\n")) == {
        "solution.py": "python = 3\nprint(python)\n"
    }


def test_a_python_block_that_does_not_parse_is_kept_a_bare_one_is_not() -> None:
    assert code_files(fenced("def broken(:\n    pass\n")) == {
        "solution.py": "def broken(:\n    pass\n"
    }
    assert code_files(fenced("Hello, world!\n", lang="")) == {}
    assert code_files("No code here, just an explanation.") == {}


def test_a_block_repeated_verbatim_is_dropped() -> None:
    answer = fenced(CODE) + "Again, the whole thing:\n" + fenced(CODE) + fenced("print(1)\n")
    assert code_files(answer) == {"solution.py": f"{CODE}\nprint(1)\n"}


@pytest.mark.parametrize(
    "line",
    ["# ../evil.py", "# /etc/evil.py", "# tmp/evil.py", "# a/../../evil.py", "# my file.py"],
)
def test_unsafe_names_are_ignored(line: str) -> None:
    assert list(code_files(fenced(f"{line}\nx = 1\n"))) == ["solution.py"]


def test_unsafe_names_above_a_fence_are_ignored() -> None:
    assert list(code_files("`../evil.py`:\n" + fenced("x = 1\n"))) == ["solution.py"]


def test_a_named_file_given_again_keeps_its_later_version() -> None:
    answer = fenced("# calc.py\nx = 1\n") + "Better:\n" + fenced("# calc.py\nx = 2\n")
    assert code_files(answer) == {"calc.py": "# calc.py\nx = 2\n"}


# -- review on the real sandbox ------------------------------------------------------------


class Tools:
    """A Draft's `use`: the coder skill's real tools on the branch's folder, every call kept."""

    def __init__(self, folder: Path) -> None:
        self.context = ToolContext("t1", workspace_dir=folder, granted=frozenset(Permission))
        self.calls: list[tuple[str, dict[str, Any], str]] = []

    async def use(self, name: str, arguments: dict[str, Any]) -> str:
        result = await coder.skill.tool(name).call(arguments, self.context)
        self.calls.append((name, arguments, result))
        return result

    @property
    def names(self) -> list[str]:
        return [name for name, _, _ in self.calls]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "workspace"


@pytest.fixture
def tools(root: Path) -> Tools:
    return Tools(root / BRANCH)


def branch_draft(
    root: Path, tools: Tools, text: str, revision: int = 0, task: str = "write add"
) -> Draft:
    return Draft(
        task=task,
        agent="coder",
        task_id="t1",
        use=tools.use,
        workspace=root / BRANCH,
        text=text,
        branch_id=BRANCH,
        revision=revision,
    )


async def run_review(root: Path, tools: Tools, text: str, revision: int = 0) -> Review | None:
    return await review(branch_draft(root, tools, text, revision))


def test_the_skill_has_the_hooks() -> None:
    assert coder.skill.review is review


async def test_no_code_is_not_checked(root: Path, tools: Tools) -> None:
    assert await run_review(root, tools, "Use a list comprehension; no code needed.") is None
    assert tools.calls == []


@pytest.mark.slow
async def test_passing_code_and_tests(root: Path, tools: Tools) -> None:
    result = await run_review(root, tools, fenced(CODE) + "Tests:\n" + fenced(TESTS))
    assert result == Review(verdict="tests: passed 2", passed=True)
    assert tools.names == ["write_file", "write_file", "run_tests"]
    assert tools.calls[2][1] == {"path": "test_solution.py"}
    assert (root / BRANCH / "solution.py").read_text() == CODE
    assert (root / BRANCH / "test_solution.py").read_text() == TESTS


@pytest.mark.slow
async def test_a_failing_test_asks_for_a_fix_and_the_revision_shows_a_diff(
    root: Path, tools: Tools
) -> None:
    wrong = "def add(a, b):\n    return a - b\n"
    tests = "`test_solution.py`:\n" + fenced(TESTS)
    result = await run_review(root, tools, fenced(wrong) + tests)
    assert result is not None and result.passed is False
    assert result.verdict == "tests: passed 0, failed 2"
    assert result.feedback is not None
    assert "FAILED test_solution.py::test_adds:" in result.feedback
    assert "assert -1 == 5" in result.feedback
    assert result.feedback.startswith("I ran the tests (pytest) on solution.py, test_solution.py.")
    assert result.feedback.endswith(FIX)

    fixed = await run_review(root, tools, fenced(CODE) + tests, revision=1)
    assert fixed == Review(verdict="tests: passed 2", passed=True)
    rewrite = tools.calls[3]
    assert rewrite[0] == "write_file" and rewrite[1]["path"] == "solution.py"
    assert "-    return a - b\n+    return a + b\n" in rewrite[2]
    assert tools.calls[4][2] == "test_solution.py: unchanged"


@pytest.mark.slow
async def test_a_program_without_tests_is_run(root: Path, tools: Tools) -> None:
    result = await run_review(root, tools, fenced(CODE + "\nprint(add(2, 3))\n"))
    assert result == Review(verdict="solution.py ran: exit code 0", passed=True)
    assert tools.calls[-1][:2] == ("run_python", {"path_or_code": "solution.py"})


DOCTESTED = (
    "def add(a, b):\n"
    '    """Add two numbers.\n\n'
    "    >>> add(2, 3)\n    5\n    >>> add(-1, 1)\n    0\n"
    '    """\n'
    "    return a + b\n"
)


@pytest.mark.slow
async def test_docstring_examples_are_the_tests_when_there_are_none(
    root: Path, tools: Tools
) -> None:
    result = await run_review(root, tools, fenced(DOCTESTED))
    assert result == Review(verdict="doctests: passed 2", passed=True)
    assert tools.names == ["write_file", "run_python"]
    wrong = await run_review(root, tools, fenced(DOCTESTED.replace("a + b", "abs(a) + b")), 1)
    assert wrong is not None and wrong.passed is False
    assert wrong.verdict == "doctests: passed 1, failed 1"
    assert wrong.feedback is not None
    assert wrong.feedback.startswith("I ran the examples in the docstrings of solution.py")
    assert "Failed example:\n    add(-1, 1)\nExpected:\n    0\nGot:\n    2" in wrong.feedback


@pytest.mark.slow
async def test_docstring_examples_are_checked_by_value_and_comparisons_assert(
    root: Path, tools: Tools
) -> None:
    code = (
        "def shout(word):\n"
        '    """The word in capitals.\n\n'
        '    >>> shout("ab")\n    "AB"\n'  # the value 'AB', written as people write it
        "    >>> shout('x') == 'X'\n"  # no line after it: the comparison asserts
        '    """\n'
        "    return word.upper()\n"
    )
    result = await run_review(root, tools, fenced(code))
    assert result == Review(verdict="doctests: passed 2", passed=True)
    wrong = await run_review(root, tools, fenced(code.replace("word.upper()", "word")), 1)
    assert wrong is not None and wrong.verdict == "doctests: passed 0, failed 2"


@pytest.mark.slow
async def test_code_whose_examples_cannot_run_is_run_as_a_program(root: Path, tools: Tools) -> None:
    broken = DOCTESTED + "print(1 / 0)\n"  # fails on import: the plain run says why
    result = await run_review(root, tools, fenced(broken))
    assert result is not None and result.passed is False
    assert result.verdict == "solution.py: exit code 1 (ZeroDivisionError)"
    assert tools.names == ["write_file", "run_python", "run_python"]


@pytest.mark.slow
async def test_a_runtime_error_without_tests_fails(root: Path, tools: Tools) -> None:
    result = await run_review(root, tools, fenced("print(1 / 0)\n"))
    assert result is not None and result.passed is False
    assert result.verdict == "solution.py: exit code 1 (ZeroDivisionError)"
    assert result.feedback is not None
    assert result.feedback.startswith("I ran `python solution.py` (solution.py).")
    assert "ZeroDivisionError: division by zero" in result.feedback


@pytest.mark.slow
async def test_a_syntax_error_fails(root: Path, tools: Tools) -> None:
    result = await run_review(root, tools, fenced("def add(a, b)\n    return a + b\n"))
    assert result is not None and result.passed is False
    assert result.verdict == "solution.py: exit code 1 (SyntaxError)"


@pytest.mark.slow
async def test_long_output_is_trimmed_in_the_feedback_keeping_the_error(
    root: Path, tools: Tools
) -> None:
    code = "for i in range(500):\n    print('line', i)\nraise ValueError('the end')\n"
    result = await run_review(root, tools, fenced(code))
    assert result is not None and result.passed is False and result.feedback is not None
    assert len(result.feedback) < 1_800
    assert "ValueError: the end" in result.feedback


@pytest.mark.slow
async def test_a_program_waiting_for_input_is_not_checked(root: Path, tools: Tools) -> None:
    result = await run_review(root, tools, fenced("name = input('Name? ')\nprint('Hi', name)\n"))
    assert result == Review(verdict="solution.py: not checked: it waits for input")


@pytest.mark.slow
async def test_a_program_needing_arguments_is_not_checked(root: Path, tools: Tools) -> None:
    code = (
        "import argparse\n\n"
        "parser = argparse.ArgumentParser()\nparser.add_argument('path')\nparser.parse_args()\n"
    )
    result = await run_review(root, tools, fenced(code))
    assert result == Review(verdict="solution.py: not checked: it needs command-line arguments")


@pytest.mark.slow
async def test_a_server_loop_that_times_out_is_not_checked(
    root: Path, tools: Tools, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(coder, "DEFAULT_LIMITS", SandboxLimits(wall_s=1.5))
    loop = "import time\n\nwhile True:\n    time.sleep(0.1)\n"
    result = await run_review(root, tools, fenced(loop))
    assert result == Review(
        verdict="solution.py: not checked: it keeps running (a server or a loop)"
    )
    # A program that is not meant to run on and times out is a failure.
    stuck = "import time\n\ntime.sleep(30)\n"
    result = await run_review(root, tools, fenced(stuck))
    assert result is not None and result.passed is False
    assert result.verdict == "solution.py: exit code -9 (timed out after 1.5 s (wall time))"


@pytest.mark.slow
async def test_network_use_refused_by_the_sandbox_is_not_the_code_s_fault(
    root: Path, tools: Tools
) -> None:
    code = "import socket\n\nsocket.create_connection(('example.com', 80), timeout=2)\n"
    result = await run_review(root, tools, fenced(code))
    assert result is not None and result.passed is None
    assert result.verdict.startswith("solution.py: not checked: ")


@pytest.mark.slow
async def test_a_package_the_code_needs_is_not_its_fault_a_wrong_test_import_is(
    root: Path, tools: Tools
) -> None:
    result = await run_review(root, tools, fenced("import no_such_pkg\n"))
    assert result == Review(
        verdict="solution.py: not checked: it needs no_such_pkg, which is not installed here"
    )
    tests = "from calculator import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n"
    answer = fenced("# calc.py\n" + CODE) + "`test_calc.py`:\n" + fenced(tests)
    result = await run_review(root, tools, answer)
    assert result is not None and result.passed is False
    assert result.verdict == "tests: passed 0, failed 0, errors 1"
    assert result.feedback is not None and "No module named 'calculator'" in result.feedback


async def test_a_refused_tool_is_not_run_and_does_not_raise(root: Path) -> None:
    async def denied(name: str, arguments: dict[str, Any]) -> str:
        raise ToolError("the person did not allow the coder skill to do that")

    draft = Draft(
        task="t", agent="coder", task_id="t1", use=denied, workspace=root, text=fenced(CODE)
    )
    assert await review(draft) == Review(
        verdict="not run: the person did not allow the coder skill to do that"
    )


# -- the examples the task gives -----------------------------------------------------------------

EXAMPLE_TASK = (
    "Write choose_num(x, y): the biggest even number in [x, y], else -1.\n"
    "For example:\n    choose_num(12, 15) = 14\n    choose_num(13, 12) = -1\n"
)
NO_RANGE_CHECK = "def choose_num(x, y):\n    return y if y % 2 == 0 else y - 1\n"
RIGHT = (
    "def choose_num(x, y):\n    if x > y:\n        return -1\n"
    "    return y if y % 2 == 0 else y - 1\n"
)


async def review_for(root: Path, tools: Tools, task: str, text: str) -> Review | None:
    return await review(branch_draft(root, tools, text, task=task))


@pytest.mark.slow
async def test_the_task_s_examples_fail_code_that_runs_cleanly(root: Path, tools: Tools) -> None:
    result = await review_for(root, tools, EXAMPLE_TASK, fenced(NO_RANGE_CHECK))
    assert result is not None and result.passed is False
    assert result.verdict == "solution.py ran: exit code 0; examples: passed 1, failed 1"
    assert result.feedback == (
        "I ran the examples the task gives; these are wrong:\n"
        "- choose_num(13, 12) should be -1, got 12\n\n" + FIX
    )
    assert tools.names == ["write_file", "run_python", "run_python"]

    fixed = await review_for(root, tools, EXAMPLE_TASK, fenced(RIGHT))
    assert fixed == Review(verdict="solution.py ran: exit code 0; examples: passed 2", passed=True)


@pytest.mark.slow
async def test_the_task_s_examples_beside_the_answer_s_own_tests(root: Path, tools: Tools) -> None:
    # Code and its (wrong) test in one block: both failures go back, asking for a fix once.
    wrong_test = "\n\ndef test_odd_end():\n    assert choose_num(2, 5) == 5\n"
    result = await review_for(root, tools, EXAMPLE_TASK, fenced(NO_RANGE_CHECK + wrong_test))
    assert result is not None and result.passed is False
    assert result.verdict == "tests: passed 0, failed 1; examples: passed 1, failed 1"
    assert result.feedback is not None
    assert result.feedback.startswith("I ran the examples the task gives; these are wrong:\n")
    assert "assert 4 == 5" in result.feedback
    assert result.feedback.count(FIX) == 1 and result.feedback.endswith(FIX)

    right_test = "\n\ndef test_even_end():\n    assert choose_num(2, 6) == 6\n"
    passed = await review_for(root, tools, EXAMPLE_TASK, fenced(RIGHT + right_test))
    assert passed == Review(verdict="tests: passed 1; examples: passed 2", passed=True)


@pytest.mark.slow
async def test_code_that_cannot_be_imported_fails_the_examples_with_the_reason(
    root: Path, tools: Tools
) -> None:
    broken = RIGHT + "raise RuntimeError('configuration missing')\n"
    result = await review_for(root, tools, EXAMPLE_TASK, fenced(broken))
    assert result is not None and result.passed is False
    assert result.verdict == (
        "solution.py: exit code 1 (RuntimeError); examples: passed 0, failed 2"
    )
    assert result.feedback is not None
    assert "- choose_num(12, 15) should be 14, got RuntimeError: configuration missing" in (
        result.feedback
    )

    leaving = RIGHT + "raise SystemExit(2)\n"  # the runner itself never gets to its report
    result = await review_for(root, tools, EXAMPLE_TASK, fenced(leaving))
    assert result is not None and result.passed is False
    assert result.verdict == "solution.py: exit code 2; examples: did not run"
    assert result.feedback is not None
    assert result.feedback.startswith(
        "I ran the examples the task gives, and the code did not get that far."
    )
