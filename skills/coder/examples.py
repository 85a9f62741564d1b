"""Examples a task gives of the functions it asks for, turned into checks.

People (and problem sets) write examples in many notations: `add(2, 3) == 5`, `add(2, 3) ➞ 5`,
`add(2, 3) => 5`, `add(2, 3) = 5`, a doctest (`>>> add(2, 3)` then `5`), `Input: a = 2, b = 3`
then `Output: 5`, "For a = 2, b = 3 the output should be 5". Only examples of functions the
answer defines are taken, and only when the expected value is a Python literal: anything else
is prose, not a check. The calls run in the sandbox (`runner`), never here.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass

MAX_EXAMPLES = 20
MARK = "@@examples "
# What stands between a call and the value it should give.
_ARROW = re.compile(
    r"\s*(?:==>|=>|==|=|➞|->|→|⇒|:|\bshould\s+(?:return|be|give)\b|\breturns?\b|\bgives\b)\s*"
)
_INPUT_OUTPUT = re.compile(
    r"\bInput\s*:\s*(?P<args>[^\n]+?)\s*(?:\n\s*)?\bOutput\s*:\s*(?P<out>[^\n]+)", re.IGNORECASE
)
_FOR_THE_OUTPUT = re.compile(
    r"\bFor\s+(?P<args>\w+\s*=[^\n]+?),?\s+the\s+output\s+should\s+be\s+(?P<out>[^\n]+)",
    re.IGNORECASE,
)
_NAMED = re.compile(r"\b([A-Za-z_]\w*)\s*=(?!=)\s*")
_WORDS = {"true": True, "false": False, "none": None, "null": None}


@dataclass(frozen=True)
class Example:
    call: str  # Python source of the call, e.g. "add(2, 3)"
    expected: str  # the expected value, as a Python literal
    function: str


def signatures(code: str) -> dict[str, list[str]]:
    """The top-level functions of `code` and their parameter names ({} if it does not parse)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return {}
    found: dict[str, list[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            arguments = node.args
            found[node.name] = [
                a.arg for a in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
            ]
    return found


def _literal(text: str) -> str | None:
    """`text` as the source of a Python literal, trying it whole and without what prose tends
    to put after a value (a full stop, a comment, "because …"); None if it is none."""
    text = text.strip()
    tries = [
        text.rstrip(".,;"),  # "returns 5." ends a sentence: 5, not 5.0
        text,
        text.split(" #", 1)[0],
        re.split(r"\s+(?:because|since|as|as the|\()", text, maxsplit=1)[0].rstrip(".,;"),
    ]
    for candidate in tries:
        candidate = candidate.strip()
        if not candidate:
            continue
        if candidate.lower() in _WORDS:
            return repr(_WORDS[candidate.lower()])
        try:
            value = ast.literal_eval(candidate)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        return repr(value)
    return None


def _call_at(line: str, start: int) -> int | None:
    """The end of the call whose `(` is at `start` (brackets and strings balanced), or None."""
    depth, quote, i = 0, "", start
    while i < len(line):
        char = line[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


def _valued(call: str) -> bool:
    """Whether `call` parses and its arguments are values: `is_happy(abcd)` names nothing
    the check could run (the task wrote a string without its quotes), so it is prose."""
    try:
        tree = ast.parse(call, mode="eval").body
    except SyntaxError:
        return False
    if not isinstance(tree, ast.Call):
        return False
    arguments = [*tree.args, *(k.value for k in tree.keywords)]
    return not any(
        isinstance(node, ast.Name | ast.Attribute | ast.Call)
        for argument in arguments
        for node in ast.walk(argument)
    )


def _calls_in(lines: list[str], names: set[str]) -> list[tuple[str, str]]:
    """(call, expected) for each `name(...) <arrow> value` and doctest in the lines."""
    found: list[tuple[str, str]] = []
    pattern = re.compile(r"(?<![\w.])(" + "|".join(map(re.escape, sorted(names))) + r")\s*\(")
    for number, line in enumerate(lines):
        for match in pattern.finditer(line):
            if re.search(r"\bdef\s+$", line[: match.start()]):
                continue
            end = _call_at(line, match.end() - 1)
            if end is None:
                continue
            call = line[match.start() : end]
            if not _valued(call):
                continue
            rest = line[end:]
            arrow = _ARROW.match(rest)
            if arrow and rest[arrow.end() :].strip():
                expected = _literal(rest[arrow.end() :])
            elif not rest.strip() and line[: match.start()].strip() == ">>>":
                # A doctest: the value is the next line, unless that is another prompt.
                following = lines[number + 1].strip() if number + 1 < len(lines) else ""
                expected = _literal(following) if not following.startswith(">>>") else None
            else:
                expected = None
            if expected is not None:
                found.append((call, expected))
    return found


def _named_arguments(text: str) -> dict[str, str] | None:
    """`a = [1, 2], b = 3` as {"a": "[1, 2]", "b": "3"}, every value a literal; else None."""
    marks = list(_NAMED.finditer(text))
    if not marks or text[: marks[0].start()].strip():
        return None
    arguments: dict[str, str] = {}
    for mark, following in zip(marks, [*marks[1:], None], strict=True):
        value = text[mark.end() : following.start() if following else len(text)]
        value = re.sub(r"(?:,|\band)\s*$", "", value.strip()).strip()
        literal = _literal(value)
        if literal is None:
            return None
        arguments[mark.group(1)] = literal
    return arguments


def _described(text: str, functions: dict[str, list[str]]) -> list[tuple[str, str, str]]:
    """(function, call, expected) for "Input: … Output: …" and "For … the output should be …",
    when exactly one function takes all the named arguments."""
    found: list[tuple[str, str, str]] = []
    for pattern in (_INPUT_OUTPUT, _FOR_THE_OUTPUT):
        for match in pattern.finditer(text):
            arguments = _named_arguments(match.group("args"))
            expected = _literal(match.group("out"))
            if not arguments or expected is None:
                continue
            takers = [name for name, params in functions.items() if set(arguments) <= set(params)]
            if len(takers) != 1:
                continue
            listed = ", ".join(f"{key}={value}" for key, value in arguments.items())
            found.append((takers[0], f"{takers[0]}({listed})", expected))
    return found


def task_examples(task: str, functions: dict[str, list[str]]) -> list[Example]:
    """The examples in `task` of the given functions (name → parameter names), in order, each
    once, at most MAX_EXAMPLES."""
    if not functions:
        return []
    found = [
        Example(call, expected, call.split("(", 1)[0].strip())
        for call, expected in _calls_in(task.splitlines(), set(functions))
    ]
    found += [Example(call, expected, name) for name, call, expected in _described(task, functions)]
    unique = list(dict.fromkeys(found))
    return unique[:MAX_EXAMPLES]


def runner(examples: list[Example], modules: dict[str, str]) -> str:
    """Python that imports each example's module (`modules`: function → module), runs the calls
    and prints MARK and one JSON list of [passed, what it gave] per example."""
    cases = [[modules[e.function], e.call, e.expected] for e in examples]
    return (
        "import importlib, json, math, sys\n"
        "sys.path.insert(0, '.')\n"
        f"CASES = {json.dumps(cases)}\n"
        "def same(got, want):\n"
        "    if isinstance(want, float) and isinstance(got, (int, float)):\n"
        "        return math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9)\n"
        "    return got == want\n"
        "results = []\n"
        "for module, call, expected in CASES:\n"
        "    try:\n"
        "        got = eval(call, vars(importlib.import_module(module)))\n"
        "        results.append([bool(same(got, eval(expected))), repr(got)[:200]])\n"
        "    except Exception as exc:\n"
        "        results.append([False, f'{type(exc).__name__}: {exc}'[:200]])\n"
        f"print({MARK!r} + json.dumps(results))\n"
    )


def results(report: str, count: int) -> list[tuple[bool, str]] | None:
    """What the runner printed, or None if it never got there (it did not import, say)."""
    line = next((line for line in report.splitlines() if line.startswith(MARK)), None)
    if line is None:
        return None
    try:
        parsed = json.loads(line[len(MARK) :])
    except json.JSONDecodeError:
        return None
    if not isinstance(parsed, list) or len(parsed) != count:
        return None
    return [(bool(ok), str(got)) for ok, got in parsed]
