"""The progress notes `ask` prints for a person watching (stderr is a terminal)."""

from __future__ import annotations

import io

from myninja.ninja_tui.cli.render import EventPrinter


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def notes(*events: dict) -> list[str]:
    out, err = io.StringIO(), Terminal()
    printer = EventPrinter(False, out=out, err=err)
    for event in events:
        printer.show(event)
    return err.getvalue().splitlines()


def test_tool_results_and_checks_are_one_line_each() -> None:
    lines = notes(
        {"type": "tool_result", "branch_id": "s1r1b2", "name": "run_tests",
         "result": "passed 0, failed 1\nFAILED test_add", "error": None},
        {"type": "tool_result", "branch_id": None, "name": "find_meeting_slots",
         "result": "", "error": "the person did not allow the scheduler skill to do that"},
        {"type": "branch_done", "branch_id": "s1r1b2", "text": "x", "revisions": 1, "checks": [
            {"skill": "coder", "verdict": "tests: passed 1", "passed": True}]},
        {"type": "branch_done", "branch_id": "s1r1b3", "text": "y", "revisions": 0, "checks": [
            {"skill": "coder", "verdict": "not checked: no code", "passed": None}]},
        {"type": "branch_done", "branch_id": "s1r1b1", "text": "z"},
    )  # fmt: skip
    assert lines == [
        "· s1r1b2 run_tests: passed 0, failed 1",
        "· task find_meeting_slots: the person did not allow the scheduler skill to do that",
        "· s1r1b2 done after 1 revision: ✓ tests: passed 1",
        "· s1r1b3 done",
    ]


def test_a_script_reading_stderr_gets_no_notes() -> None:
    out, err = io.StringIO(), io.StringIO()
    printer = EventPrinter(False, out=out, err=err)
    event = {"type": "tool_result", "branch_id": "b", "name": "x", "result": "r", "error": None}
    printer.show(event)
    assert err.getvalue() == ""
