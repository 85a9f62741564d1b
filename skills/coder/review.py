"""The coder skill's hooks for models that cannot call tools: `review` takes the Python code
blocks of an answer, writes them into the branch's folder, runs them (or their tests) in the
sandbox and asks for a revision when they fail (the graph then copies the chosen branch's files
into the task's workspace).

Everything `review` does goes through `draft.use`, so it is gated and traced exactly as if the
model had called write_file / run_tests / run_python itself.
"""

from __future__ import annotations

import re

from myninja.skills.api import Draft, Review, ToolError

from . import doctests, examples
from .answer_files import (
    code_files,
    has_tests,
    imports,
    is_test_name,
    main_file,
    module_of,
)

FEEDBACK_CHARS = 1_500  # of a report, in the feedback a small model reads
MAX_FILES_LISTED = 12
MAX_EXAMPLES_SHOWN = 6  # failing task examples listed in the feedback
FIX = "Fix the code and reply with the whole corrected code (and its tests) in ```python blocks."
# The first line of run_tests' report (skills/coder/skill.py: report_tests).
_COUNTS = re.compile(r"passed (\d+), failed (\d+)(?:, errors (\d+))?(?:, skipped (\d+))?")
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
_NO_NETWORK = (
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
)


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
    test_files = [name for name, code in files.items() if has_tests(code)]
    if test_files:
        # One file: only it, so a test file left by an earlier revision under another name
        # does not fail this one; and pytest collects an explicit file whatever its name.
        arguments = {"path": test_files[0]} if len(test_files) == 1 else {}
        report = await draft.use("run_tests", arguments)
        return _judge_tests(report, files)
    main = main_file(files)
    if doctests.PROMPT.search(files[main]):
        # The examples in its docstrings are the tests it came with: run those.
        report = await draft.use("run_python", {"path_or_code": doctests.runner(module_of(main))})
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
            if function not in modules and not is_test_name(function):
                modules[function], functions[function] = module_of(name), params
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
        ours = {module_of(name).split(".")[0] for name in files}
        # A package the code (not its tests) imports: tests importing a module that is not
        # there are more likely to have its name wrong, which a revision can fix.
        wanted = any(
            imports(code, f"{module}.py") for code in files.values() if not has_tests(code)
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
