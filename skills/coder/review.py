"""The coder skill's hooks for models that cannot call tools: `review` takes the Python code
blocks of an answer, writes them into the branch's folder, runs them (or their tests) in the
sandbox and asks for a revision when they fail (the graph then copies the chosen branch's files
into the task's workspace).

Everything `review` does goes through `draft.use`, so it is gated and traced exactly as if the
model had called write_file / run_tests / run_python itself.
"""

from __future__ import annotations

import ast
import importlib.machinery
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from skills.api import Draft, Review, ToolError

from . import doctests, examples
from .sandbox import Workspace

CODE_FILE = "solution.py"
FEEDBACK_CHARS = 1_500  # of a report, in the feedback a small model reads
MAX_FILES_LISTED = 12
MAX_EXAMPLES_SHOWN = 6  # failing task examples listed in the feedback
FIX = "Fix the code and reply with the whole corrected code (and its tests) in ```python blocks."

# ``` or ~~~ fences, indented at most three spaces (CommonMark), with an optional info string.
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*([^`\n]*)$")
_PYTHON_LANGS = {"", "python", "py", "python3", "py3"}
# A file name a block may be written to: relative, simple characters, a .py file.
_SAFE_NAME = re.compile(r"[A-Za-z0-9_/.-]+\.py")
# "# solution.py", "# file: test_x.py", "# filename: src/app.py" as a block's first line.
_NAME_COMMENT = re.compile(r"#\s*(?:file(?:name)?\s*[:=]\s*)?(\S+\.py)\s*", re.IGNORECASE)
# A name in backticks or bold on the line just above a fence: "`test_stack.py`:", "**stack.py**".
_NAME_ABOVE = re.compile(r"(?:`|\*\*|__)([^`*\s]+\.py)(?:`|\*\*|__)")
# Shell commands small models put in ```python blocks; some of them even parse ("pytest").
_SHELL = re.compile(
    r"\s*(?:\$\s|(?:pip3?|python3?|py|pytest|uv|poetry|conda|cd|ls|mkdir|export)"
    r"(?:\s+[-\w./]|\s*$))"  # an argument next, not "= 3": `python = 3` is Python
)
# The first line of run_tests' report (skills/coder/skill.py: report_tests).
_COUNTS = re.compile(r"passed (\d+), failed (\d+)(?:, errors (\d+))?(?:, skipped (\d+))?")
_OUTPUT_ABOVE = re.compile(r"\b(output|prints?|result|console|terminal)\b[^\n]*:\s*$", re.I)
# Code that is meant to keep running: a time-out is its nature, not a bug.
_LONG_RUNNING = (
    "serve_forever",
    "while True",
    "while 1:",
    "app.run(",
    "run_forever",
    "uvicorn.run(",
    ".mainloop(",
)
# The sandbox's scratch folder (tmp/): pytest ignores it and it is never copied out.
_SCRATCH = Workspace(Path(".")).tmp.name
_NO_NETWORK = (
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
)


@dataclass(frozen=True)
class _Block:
    code: str
    name: str | None  # the file it names, if any
    tests: bool  # whether it is tests of code elsewhere (see _holds_tests)


def code_files(answer: str) -> dict[str, str]:
    """The Python code blocks of a Markdown answer, as {file name: content}.

    A block goes into the file its first-line comment or the line above its fence names;
    other blocks are joined, in order, into one code file (solution.py, or the module the tests
    import) and one test file. Shell commands and program output are not code."""
    blocks: list[_Block] = []
    seen: set[str] = set()
    for code, above, info in _fenced_blocks(answer):
        # "python", "python:stack.py", "python title=stack.py": the language, then maybe a name
        lang = re.split(r"[\s:{]", info, maxsplit=1)[0].lower()
        key = code.strip()
        if key in seen or not _is_code(code, lang, above):
            continue
        seen.add(key)
        blocks.append(_Block(code, _named(code, above, info), _holds_tests(code)))

    named = {b.name for b in blocks if b.name}
    code_name = _code_file_name(blocks, named)
    test_name = f"test_{code_name}"
    parts: dict[str, list[str]] = {}
    for block in blocks:
        if block.name:
            parts[block.name] = [block.code]  # a file given again: its later version wins
        else:
            parts.setdefault(test_name if block.tests else code_name, []).append(block.code)

    files: dict[str, str] = {}
    for name, chunks in parts.items():
        text = "\n\n".join(chunk.strip("\n") for chunk in chunks) + "\n"
        files[name] = _without_self_imports(text, _module(name))
    for name, text in list(files.items()):
        if name == code_name or code_name not in files:
            continue
        if _holds_tests(text) and not _imports_local(text):
            # Tests written as if they sat beside the code (in a file of their own, named or
            # not): they need its names.
            files[name] = f"from {_module(code_name)} import *  # noqa: F403\n\n{text}"
    return files


def _fenced_blocks(answer: str) -> Iterator[tuple[str, str, str]]:
    """(content, the non-blank line above the fence, info string) of each fenced block."""
    lines = answer.splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence, info = opening.group(1), opening.group(2).strip()
        above = next((ln.strip() for ln in reversed(lines[:i]) if ln.strip()), "")
        end = i + 1
        while end < len(lines) and not (
            lines[end].strip().startswith(fence[0] * len(fence))
            and not lines[end].strip().strip(fence[0])
        ):
            end += 1
        yield "\n".join(lines[i + 1 : end]), above, info
        i = end + 1


def _is_code(code: str, lang: str, above: str) -> bool:
    if lang not in _PYTHON_LANGS or not code.strip():
        return False
    first = next(ln for ln in code.splitlines() if ln.strip())
    if _SHELL.match(first) or first.lstrip().startswith(">>>"):
        return False  # a command to type, or an interactive session
    if not lang and _OUTPUT_ABOVE.search(above):
        return False  # "Output:" above a bare fence: what the program prints
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        # A ```python block that does not parse is broken code, which running it will show;
        # a bare block that does not parse is output or prose.
        return bool(lang)
    # Output that happens to parse ("5", "[1, 2]", "Total: 3") does something only if it has
    # a statement beyond bare expressions without calls and bare annotations.
    return any(not _inert(node) for node in tree.body)


def _inert(node: ast.stmt) -> bool:
    if isinstance(node, ast.AnnAssign):
        return node.value is None
    if isinstance(node, ast.Expr):
        return not any(isinstance(n, ast.Call | ast.Await) for n in ast.walk(node))
    return False


def _safe(name: str) -> bool:
    """A relative path of simple parts, not into the sandbox's scratch folder."""
    if not _SAFE_NAME.fullmatch(name) or name.startswith("/"):
        return False
    parts = name.split("/")
    return all(p not in ("", ".", "..") for p in parts) and parts[0] != _SCRATCH


def _named(code: str, above: str, info: str) -> str | None:
    first = code.lstrip("\n").split("\n", 1)[0].strip()
    comment = _NAME_COMMENT.fullmatch(first)
    if comment and _safe(comment.group(1)):
        return comment.group(1)
    in_info = re.search(r"([\w/.-]+\.py)\b", info)
    if in_info and _safe(in_info.group(1)):
        return in_info.group(1)
    names = {m.group(1) for m in _NAME_ABOVE.finditer(above)}
    if len(names) == 1:
        name = names.pop()
        # "the tests, which import from `stack.py`:" names the module the block uses, not the
        # block: a file never imports itself.
        if _safe(name) and not _imports(code, name):
            return name
    return None


def _test_names(tree: ast.Module) -> list[str]:
    """Test functions at module level, or in a Test* class or a unittest.TestCase."""
    found = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _is_test_name(node.name):
            found.append(node.name)
        elif isinstance(node, ast.ClassDef) and _is_test_class(node):
            found.extend(
                f"{node.name}.{item.name}"
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                and _is_test_name(item.name)
            )
    return found


def _is_test_name(name: str) -> bool:
    return name.startswith("test")  # pytest's default prefix, unittest's too


def _is_test_class(node: ast.ClassDef) -> bool:
    # pytest collects Test* classes, and unittest.TestCase subclasses whatever their name.
    return node.name.startswith("Test") or any(
        ast.unparse(base).endswith("TestCase") for base in node.bases
    )


def _holds_tests(code: str) -> bool:
    """Whether a block is tests (of code elsewhere) rather than code, tests or not."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return _only_tests(tree) or _tests_with_imports(tree)


def _only_tests(tree: ast.Module) -> bool:
    """Tests and nothing to test: every function or class is a test or a fixture."""
    if not _test_names(tree):
        return False
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if not _is_test_name(node.name) and not node.decorator_list:
                return False
        elif isinstance(node, ast.ClassDef) and not _is_test_class(node):
            return False
    return True


def _tests_with_imports(tree: ast.Module) -> bool:
    """Tests that import the code they test from a module of their own (with helpers beside)."""
    return bool(_test_names(tree)) and bool(_local_imports(tree))


def _local_imports(tree: ast.Module) -> list[str]:
    """Top-level modules imported that are neither in the standard library nor installed:
    the answer's own files."""
    found = []
    for node in ast.walk(tree):
        # `from stack import Stack` only: a bare `import numpy` is more often a package that
        # is missing here than a file of the answer.
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            top = node.module.split(".")[0]
            if top not in found and not _installed(top):
                found.append(top)
    return found


def _imports_local(code: str) -> bool:
    try:
        return bool(_local_imports(ast.parse(code)))
    except (SyntaxError, ValueError):
        return False


def _installed(module: str) -> bool:
    if module in sys.stdlib_module_names or module in sys.builtin_module_names:
        return True
    # The sandbox runs this same interpreter in isolated mode (-I): it sees site-packages but
    # not our working folder, where a stray stack.py must not count as installed.
    here = {"", str(Path.cwd())}
    paths = [p for p in sys.path if p not in here]
    try:
        return importlib.machinery.PathFinder.find_spec(module, paths) is not None
    except (ImportError, ValueError):
        return False


def _code_file_name(blocks: list[_Block], named: set[str]) -> str:
    """solution.py, unless the tests import one module that no named block provides: then the
    unnamed code is that module ("from stack import Stack" under a bare class block)."""
    wanted: list[str] = []
    for block in blocks:
        if block.tests:  # which parsed
            wanted += [m for m in _local_imports(ast.parse(block.code)) if m not in wanted]
    missing = [m for m in wanted if f"{m}.py" not in named]
    if len(missing) == 1 and _safe(f"{missing[0]}.py"):
        return f"{missing[0]}.py"
    return CODE_FILE


def _module(file_name: str) -> str:
    return file_name.removesuffix(".py").replace("/", ".")


def _imports(code: str, file_name: str) -> bool:
    """Whether `code` imports the module of `file_name` (or one inside it)."""
    module = _module(file_name)
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        if any(name == module or name.startswith(f"{module}.") for name in names):
            return True
    return False


def _defined(tree: ast.Module) -> set[str]:
    """The names a module defines at its top level."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign | ast.AugAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def _without_self_imports(text: str, module: str) -> str:
    """Drop `from solution import add` from solution.py when it defines `add` itself: a usage
    example joined under the code would otherwise run the whole file a second time."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return text
    defined = _defined(tree)
    drop: set[int] = set()
    for node in tree.body:
        if (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and node.module == module
            and all(a.name in defined and a.asname is None for a in node.names)
        ):
            drop.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    if not drop:
        return text
    lines = text.splitlines(keepends=True)
    return "".join(line for number, line in enumerate(lines, 1) if number not in drop)


def _has_tests(code: str) -> bool:
    try:
        return bool(_test_names(ast.parse(code)))
    except (SyntaxError, ValueError):
        return False


def _main_file(files: dict[str, str]) -> str:
    """The file to run when there are no tests: solution.py, the only file, the one with a
    `__main__` guard, main.py or app.py, else the first."""
    if CODE_FILE in files:
        return CODE_FILE
    if len(files) == 1:
        return next(iter(files))
    guarded = [name for name, code in files.items() if "__name__" in code and "__main__" in code]
    if len(guarded) == 1:
        return guarded[0]
    for name in ("main.py", "app.py"):
        if name in files:
            return name
    return next(iter(files))


async def review(draft: Draft) -> Review | None:
    """Write the answer's code into the branch's folder and run its tests, or the program
    itself when it has none. None for an answer without Python code."""
    files = code_files(draft.text)
    if not files:
        return None
    try:
        for path, content in files.items():
            await draft.use("write_file", {"path": path, "content": content})
        own = await _own_checks(draft, files)
        given = await _task_examples(draft, files)
    except ToolError as exc:
        # A denied permission or a tool that failed: nothing was checked, and nothing to fix.
        return Review(verdict=f"not run: {_first_line(str(exc))}")
    return own if given is None else _both(own, given)


async def _own_checks(draft: Draft, files: dict[str, str]) -> Review:
    """The answer's own tests; else the examples in its docstrings; else the program run."""
    test_files = [name for name, code in files.items() if _has_tests(code)]
    if test_files:
        # One file: only it, so a test file left by an earlier revision under another name
        # does not fail this one; and pytest collects an explicit file whatever its name.
        arguments = {"path": test_files[0]} if len(test_files) == 1 else {}
        report = await draft.use("run_tests", arguments)
        return _judge_tests(report, files)
    main = _main_file(files)
    if doctests.PROMPT.search(files[main]):
        # The examples in its docstrings are the tests it came with: run those.
        report = await draft.use("run_python", {"path_or_code": _doctest_runner(main)})
        reviewed = _judge_doctests(report, main, files)
        if reviewed is not None:
            return reviewed
    report = await draft.use("run_python", {"path_or_code": main})
    return _judge_run(report, main, files)


async def _task_examples(draft: Draft, files: dict[str, str]) -> Review | None:
    """The examples the task itself gives of the functions the answer defines (`f(2) == 4`,
    `Input: … Output: …`), run against them: the person's own word on what is right, which
    the model's tests may have got wrong. None when the task gives none."""
    modules: dict[str, str] = {}
    functions: dict[str, list[str]] = {}
    for name, code in files.items():
        for function, params in examples.signatures(code).items():
            if function not in modules and not _is_test_name(function):
                modules[function], functions[function] = _module(name), params
    found = examples.task_examples(draft.task, functions)
    if not found:
        return None
    report = await draft.use("run_python", {"path_or_code": examples.runner(found, modules)})
    outcomes = examples.results(report, len(found))
    if outcomes is None:
        return Review(
            verdict="examples: did not run",
            passed=False,
            feedback=_feedback(
                "I ran the examples the task gives, and the code did not get that far.",
                report,
                trim="tail",
            ),
        )
    failed = [
        f"{example.call} should be {example.expected}, got {got}"
        for example, (ok, got) in zip(found, outcomes, strict=True)
        if not ok
    ]
    if not failed:
        return Review(verdict=f"examples: passed {len(found)}", passed=True)
    listed = "\n".join(f"- {line}" for line in failed[:MAX_EXAMPLES_SHOWN])
    return Review(
        verdict=f"examples: passed {len(found) - len(failed)}, failed {len(failed)}",
        passed=False,
        feedback=f"I ran the examples the task gives; these are wrong:\n{listed}\n\n{FIX}",
    )


def _both(own: Review, given: Review) -> Review:
    """One review of the answer's own checks and the task's examples: it passes when neither
    fails and one passed; the feedback is each failure's."""
    outcomes = (own.passed, given.passed)
    passed = False if False in outcomes else (True in outcomes) or None
    failures = [r.feedback for r in (given, own) if r.passed is False and r.feedback]
    # Each failure's feedback ends by asking for a fix; the two together ask once.
    joined = "\n\n".join(text.removesuffix(f"\n\n{FIX}") for text in failures)
    feedback = f"{joined}\n\n{FIX}" if failures else None
    return Review(verdict=f"{own.verdict}; {given.verdict}", passed=passed, feedback=feedback)


def _doctest_runner(main: str) -> str:
    """Code that runs the docstring examples of `main` and prints a line of counts."""
    return doctests.runner(_module(main))


def _judge_doctests(report: str, main: str, files: dict[str, str]) -> Review | None:
    """The docstring examples' verdict; None when none ran (the program is run instead)."""
    counts = re.search(rf"^{doctests.MARK}(\d+) (\d+)$", report, re.M)
    if counts is None:
        return None  # it did not import, say: running it says why
    attempted, failed = int(counts.group(1)), int(counts.group(2))
    if not attempted:
        return None
    if not failed:
        return Review(verdict=f"doctests: passed {attempted}", passed=True)
    return Review(
        verdict=f"doctests: passed {attempted - failed}, failed {failed}",
        passed=False,
        feedback=_feedback(
            f"I ran the examples in the docstrings of {main} (doctest).", report, trim="head"
        ),
    )


def _judge_tests(report: str, files: dict[str, str]) -> Review:
    head = report.split("\n", 1)[0].strip()
    counts = _COUNTS.fullmatch(head)
    if counts:
        passed, failed = int(counts.group(1)), int(counts.group(2))
        errors, skipped = int(counts.group(3) or 0), int(counts.group(4) or 0)
        if not failed and not errors:
            if not passed:
                return Review(verdict=f"tests: none ran ({head})")
            extra = f", skipped {skipped}" if skipped else ""
            return Review(verdict=f"tests: passed {passed}{extra}", passed=True)
        verdict = f"tests: {head}"
    elif head.startswith("no tests found"):
        # We saw test functions that pytest did not collect: not something a revision fixes.
        return Review(verdict="tests: pytest found none to run")
    else:  # "tests did not finish": a time-out, or a crash before pytest's summary
        why = _limit_line(report) or _exception(report) or "no summary"
        verdict = f"tests: did not finish ({why})"
    unchecked = _environment(report, files)
    if unchecked:
        return Review(verdict=f"tests: not checked: {unchecked}")
    return Review(
        verdict=verdict,
        passed=False,
        feedback=_feedback(f"I ran the tests (pytest) on {_listed(files)}.", report, trim="head"),
    )


def _judge_run(report: str, main: str, files: dict[str, str]) -> Review:
    head = report.split("\n", 1)[0].strip()
    if head.startswith("exit code 0") and not _limit_line(report):
        return Review(verdict=f"{main} ran: exit code 0", passed=True)
    code = files[main]
    limit = _limit_line(report)
    if limit and limit.startswith("timed out") and any(m in code for m in _LONG_RUNNING):
        return Review(verdict=f"{main}: not checked: it keeps running (a server or a loop)")
    if "EOFError" in report or "sys.stdin" in code:
        return Review(verdict=f"{main}: not checked: it waits for input")
    if "Traceback" not in report and re.search(r"^\s*usage:", report, re.I | re.M):
        return Review(verdict=f"{main}: not checked: it needs command-line arguments")
    unchecked = _environment(report, files)
    if unchecked:
        return Review(verdict=f"{main}: not checked: {unchecked}")
    why = limit or _exception(report)
    verdict = f"{main}: {head}" + (f" ({why})" if why else "")
    return Review(
        verdict=verdict,
        passed=False,
        feedback=_feedback(f"I ran `python {main}` ({_listed(files)}).", report, trim="tail"),
    )


def _environment(report: str, files: dict[str, str]) -> str | None:
    """Why a failure is the sandbox's and not the code's: the network, a refused write, a
    package that is not installed here. None when it is the code's."""
    refused = re.search(r"sandbox: ([^\n>]*not allowed)", report)
    if refused:
        return f"the sandbox refused it ({refused.group(1)})"
    if any(text in report for text in _NO_NETWORK):
        return "it needs the network, which the sandbox does not have"
    missing = re.search(r"No module named '([\w.]+)'", report)
    if missing:
        module = missing.group(1).split(".")[0]
        ours = {_module(name).split(".")[0] for name in files}
        # A package the code (not its tests) imports: tests importing a module that is not
        # there are more likely to have its name wrong, which a revision can fix.
        wanted = any(
            _imports(code, f"{module}.py") for code in files.values() if not _has_tests(code)
        )
        if module not in ours and wanted:
            return f"it needs {module}, which is not installed here"
    return None


def _limit_line(report: str) -> str | None:
    """The sandbox's "timed out after 10 s (wall time)" / "killed: …" line of a run report."""
    found = re.search(r"^(timed out after [^\n]+|killed: [^\n]+|stopped: [^\n]+)$", report, re.M)
    return found.group(1) if found else None


def _exception(report: str) -> str | None:
    """The name of the last exception a traceback in the report ends with."""
    found = re.findall(r"^(?:E\s+)?([A-Za-z_][\w.]*(?:Error|Exception|Exit))\b", report, re.M)
    return found[-1].rsplit(".", 1)[-1] if found else None


def _listed(files: dict[str, str]) -> str:
    names = list(files)
    more = len(names) - MAX_FILES_LISTED
    return ", ".join(names[:MAX_FILES_LISTED]) + (f" and {more} more" if more > 0 else "")


def _feedback(what: str, report: str, *, trim: str) -> str:
    return f"{what} The report:\n{_trimmed(report, trim)}\n\n{FIX}"


def _trimmed(report: str, trim: str) -> str:
    """The report cut to FEEDBACK_CHARS: a test report keeps its head (the counts and the first
    failures), a run report its first line and its tail (where the traceback ends)."""
    report = report.strip()
    if len(report) <= FEEDBACK_CHARS:
        return report
    if trim == "head":
        return report[:FEEDBACK_CHARS].rstrip() + "\n[cut]"
    first = report.split("\n", 1)[0]
    return f"{first}\n…{report[-(FEEDBACK_CHARS - len(first)) :]}"


def _first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0]
