"""Computed answers on the fast path: which questions are calculations, and the program the
model writes run in the real sandbox; on the scripted backend, a computed answer and the
prose call that stands in when the program does not run."""

from __future__ import annotations

import pytest

from myninja.agent_graph import computed
from tests.agent_graph.test_fast_path import FAST, calls_matching
from tests.agent_graph.test_graph import Open, of_type, open_manager, run_to_rest

__all__ = ["open_manager"]

COMPUTE = r"You turn a question into a short Python program"


@pytest.mark.parametrize(
    "text",
    [
        "What is 17 times 24?",
        "What is 15% of 240?",
        "How many ounces are in 3 pounds?",
        "Convert 12 inches to centimetres",
        "What day of the week was 9 November 1989?",
        "Is 2400 a leap year?",
        "How many days are there between 2 May 2026 and 30 June 2026?",
    ],
)
def test_calculations_are_recognised(text: str) -> None:
    assert computed.is_calculation(text)


@pytest.mark.parametrize(
    "text",
    [
        "What is the capital of Australia?",  # no number
        "Write a Python function that adds 2 numbers",  # about code
        "Who won the 1966 World Cup?",  # a number, but a fact
        "Draft a two-line e-mail saying I'll be 10 minutes late",
    ],
)
def test_other_questions_are_not(text: str) -> None:
    assert not computed.is_calculation(text)


def test_the_last_expression_is_the_answer() -> None:
    source = computed.source_of("Sure:\n```python\nx = 80\nx * (1 - 0.35)\n```")
    assert source == "x = 80\nx * (1 - 0.35)"
    assert computed.program_of(source) == "x = 80\n__answer = x * (1 - 0.35)"
    assert computed.program_of("x = 3") is None  # no expression to report
    assert computed.program_of("3 +") is None


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("(12 + 18 + 27) / 3", "19"),
        ("(100 - 32) * 5 / 9", "37.7778"),
        ("calendar.isleap(2100)", "No"),
        ("date(2023, 2, 28) + timedelta(days=1)", "Wednesday 1 March 2023"),
        ("(date(2024, 2, 20) - date(2024, 1, 10))", "41 days"),
        ("math.factorial(7)", "5040"),
    ],
)
async def test_programs_run_in_the_sandbox(source: str, value: str) -> None:
    program = computed.program_of(source)
    assert program is not None
    assert await computed.run_program(program) == value


async def test_a_program_that_fails_gives_nothing() -> None:
    for source in (
        "1 / 0",
        "__import__('socket').create_connection(('127.0.0.1', 9)) and 1",
        "[1, 2]",
        "float('nan')",
    ):
        program = computed.program_of(source)
        assert program is not None
        assert await computed.run_program(program) is None, source


async def test_a_calculation_is_answered_by_the_program(open_manager: Open) -> None:
    rules = [
        {"match": COMPUTE, "reply": "```python\n17 * 24\n```"},
        {"match": FAST, "reply": "About 400."},
    ]
    async with open_manager(rules) as (manager, scripted):
        task_id = await manager.submit("What is 17 times 24?")
        task = await run_to_rest(manager, task_id)
        assert task["status"] == "done"
        assert task["answer"].startswith("408\n")
        assert "17 * 24" in task["answer"]
        assert calls_matching(scripted, FAST) == 0  # no prose call
        (routed,) = of_type(manager, task_id, "routed")
        assert routed["path"] == "fast"


async def test_when_the_program_does_not_run_the_prose_answer_stands(open_manager: Open) -> None:
    rules = [
        {"match": COMPUTE, "reply": "```python\nundefined_name * 24\n```"},
        {"match": FAST, "reply": "17 times 24 is 408."},
    ]
    async with open_manager(rules) as (manager, scripted):
        task_id = await manager.submit("What is 17 times 24?")
        task = await run_to_rest(manager, task_id)
        assert task["answer"] == "17 times 24 is 408."
        assert calls_matching(scripted, COMPUTE) == 1


async def test_with_compute_off_the_prose_call_answers(open_manager: Open) -> None:
    rules = [
        {"match": COMPUTE, "reply": "```python\n17 * 24\n```"},
        {"match": FAST, "reply": "408."},
    ]
    async with open_manager(rules, compute=False) as (manager, scripted):
        task_id = await manager.submit("What is 17 times 24?")
        task = await run_to_rest(manager, task_id)
        assert task["answer"] == "408."
        assert calls_matching(scripted, COMPUTE) == 0
