"""Examples a task gives, found in the notations people write them in, and run against code
(in a plain subprocess here; the review runs them in the sandbox)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from myninja.skills.coder.examples import (
    MAX_EXAMPLES,
    Example,
    results,
    runner,
    signatures,
    task_examples,
)

FUNCTIONS = {"add": ["a", "b"], "pick": ["arr", "k"]}


def found(task: str, functions: dict[str, list[str]] = FUNCTIONS) -> list[tuple[str, str]]:
    return [(e.call, e.expected) for e in task_examples(task, functions)]


@pytest.mark.parametrize(
    "line",
    [
        "add(2, 3) == 5",
        "add(2, 3) = 5",
        "add(2, 3) => 5",
        "add(2, 3) ==> 5",
        "add(2, 3) ➞ 5",
        "add(2, 3) -> 5",
        "add(2, 3) → 5",
        "add(2, 3) should return 5",
        "add(2, 3) returns 5.",
        "    - add(2, 3) == 5  # two and three",
        "For example: add(2, 3) = 5, because 2 + 3 is 5",
    ],
)
def test_an_example_in_each_notation(line: str) -> None:
    assert found(f"Write add.\n{line}\n") == [("add(2, 3)", "5")]


def test_a_doctest_takes_the_next_line_as_the_value() -> None:
    task = ">>> add(2, 3)\n5\n>>> add('a', 'b')\n'ab'\n>>> add(1, 1)\n>>> add(0, 0)\n0\n"
    # add(1, 1) is followed by another prompt: it shows no value.
    assert found(task) == [("add(2, 3)", "5"), ("add('a', 'b')", "'ab'"), ("add(0, 0)", "0")]


def test_values_are_literals_written_as_python_or_as_prose_booleans() -> None:
    task = (
        "add([1, (2, 3)], [4]) == [1, (2, 3), 4]\n"
        "add('x)', 'y') == 'x)y'\n"  # a bracket inside a string does not end the call
        "add(True, False) => true\n"
        "add(None, None) = null\n"
    )
    assert found(task) == [
        ("add([1, (2, 3)], [4])", "[1, (2, 3), 4]"),
        ("add('x)', 'y')", "'x)y'"),
        ("add(True, False)", "True"),
        ("add(None, None)", "None"),
    ]


@pytest.mark.parametrize(
    "prose",
    [
        "add(a, b) = a + b",  # a formula, not a value
        "def add(a, b) -> int:",  # the signature
        "call add(2, 3) to get the sum",  # no value
        "multiply_add(2, 3) == 5",  # another function
        "self.add(2, 3) == 5",  # a method of something else
        "add(2, 3 == 5",  # unbalanced
        "add(a, bb) => False",  # words without their quotes: nothing to run them with
        "add(x=y, b=2) == 3",  # a name as a keyword's value
    ],
)
def test_prose_formulas_signatures_and_other_functions_are_not_examples(prose: str) -> None:
    assert found(prose) == []


def test_input_output_and_the_output_should_be_call_by_name() -> None:
    task = (
        "Example 1:\n    Input: arr = [-3, -4, 5], k = 3\n    Output: [-4, -3, 5]\n"
        "Input: arr = [4, -4, 4], k = 2  Output: [4, 4]\n"
        "For arr = [1, 2], k = 1 the output should be [2]\n"
        "Input: x = 1\nOutput: 2\n"  # no function takes x
        "Input: arr = [1], k = nothing\nOutput: []\n"  # not a literal
    )
    assert found(task) == [
        ("pick(arr=[-3, -4, 5], k=3)", "[-4, -3, 5]"),
        ("pick(arr=[4, -4, 4], k=2)", "[4, 4]"),
        ("pick(arr=[1, 2], k=1)", "[2]"),
    ]


def test_each_example_once_and_at_most_the_cap() -> None:
    task = "add(1, 1) == 2\nadd(1, 1) == 2\n" + "".join(
        f"add({i}, 0) == {i}\n" for i in range(2 * MAX_EXAMPLES)
    )
    calls = found(task)
    assert len(calls) == MAX_EXAMPLES
    assert calls[:2] == [("add(1, 1)", "2"), ("add(0, 0)", "0")]


def test_no_functions_no_examples() -> None:
    assert found("add(2, 3) == 5", {}) == []


def test_signatures_are_the_top_level_functions_and_their_parameters() -> None:
    code = (
        "import math\n\n"
        "def add(a, b, /, c=0, *, d=1):\n    def inner(x):\n        return x\n    return a\n\n"
        "async def fetch(url):\n    return url\n\n"
        "class Box:\n    def put(self, item):\n        pass\n"
    )
    assert signatures(code) == {"add": ["a", "b", "c", "d"], "fetch": ["url"]}
    assert signatures("def broken(:\n") == {}


def run(tmp_path: Path, code: str, examples: list[Example]) -> list[tuple[bool, str]] | None:
    (tmp_path / "solution.py").write_text(code)
    modules = {e.function: "solution" for e in examples}
    done = subprocess.run(
        [sys.executable, "-c", runner(examples, modules)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return results(done.stdout, len(examples))


def test_the_runner_reports_each_example(tmp_path: Path) -> None:
    code = (
        "print('the module prints on import')\n"
        "def add(a, b):\n"
        "    if a == 'boom':\n        raise ValueError('no booms')\n"
        "    return a + b\n"
    )
    examples = task_examples(
        "add(2, 3) == 5\nadd(2, 2) == 5\nadd('boom', 1) == 1\nadd(0.1, 0.2) == 0.3\n"
        "add(1, True) == 2\n",
        signatures(code),
    )
    assert run(tmp_path, code, examples) == [
        (True, "5"),
        (False, "4"),
        (False, "ValueError: no booms"),
        (True, "0.30000000000000004"),  # floats are compared as floats
        (True, "2"),
    ]


def test_a_module_that_does_not_import_reports_nothing(tmp_path: Path) -> None:
    examples = [Example("add(1, 1)", "2", "add")]
    assert (
        run(tmp_path, "def add(a, b):\n    return a + b\nraise SystemExit(3)\n", examples) is None
    )
    assert results('@@examples [[true, "2"]]', 2) is None  # not one result per example
    assert results("@@examples [[true", 1) is None
