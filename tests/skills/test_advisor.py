"""The advisor's decision table, with every weighted score worked out by hand, and its review of
decision advice."""

from __future__ import annotations

from pathlib import Path

import pytest

from myninja.skills import advisor
from myninja.skills.advisor import skill, weigh_options
from myninja.skills.api import Draft, ToolArgumentError, ToolContext, ToolError

OPTIONS = ["Rent", "Buy", "Stay with parents"]
CRITERIA = ["Cost", "Flexibility", "Comfort"]
SCORES = [[3, 5, 3], [2, 1, 5], [5, 2, 1]]


async def weigh(**arguments: object) -> str:
    given: dict[str, object] = {"options": OPTIONS, "criteria": CRITERIA, "scores": SCORES}
    given.update(arguments)
    # No permissions granted: the tool needs none.
    return await weigh_options.call(given, ToolContext(task_id="t1"))


async def test_weighted_table_best_first_with_the_winner_and_its_weak_point() -> None:
    # Weights 2, 1, 1 (sum 4):
    #   Rent  (2*3 + 5 + 3) / 4 = 14/4 = 3.50
    #   Buy   (2*2 + 1 + 5) / 4 = 10/4 = 2.50
    #   Stay  (2*5 + 2 + 1) / 4 = 13/4 = 3.25
    out = await weigh(weights=[2, 1, 1])
    assert out == (
        "| Option | Cost (×2) | Flexibility (×1) | Comfort (×1) | Weighted |\n"
        "|---|---:|---:|---:|---:|\n"
        "| Rent | 3 | 5 | 3 | 3.50 |\n"
        "| Stay with parents | 5 | 2 | 1 | 3.25 |\n"
        "| Buy | 2 | 1 | 5 | 2.50 |\n"
        "\n"
        "Best: **Rent** (3.50 of 5), ahead of Stay with parents (3.25).\n"
        "Weakest point of Rent: Cost, Comfort (3 of 5)."
    )


async def test_equal_weights_by_default() -> None:
    # Rent 11/3 = 3.67; Buy 8/3 and Stay 8/3 = 2.67 tie for second and keep their order.
    out = await weigh()
    lines = out.splitlines()
    assert lines[0] == "| Option | Cost | Flexibility | Comfort | Weighted |"
    assert lines[2:5] == [
        "| Rent | 3 | 5 | 3 | 3.67 |",
        "| Buy | 2 | 1 | 5 | 2.67 |",
        "| Stay with parents | 5 | 2 | 1 | 2.67 |",
    ]
    assert lines[-2] == "Best: **Rent** (3.67 of 5), ahead of Buy (2.67)."


async def test_a_tie_at_the_top_is_named_not_broken() -> None:
    # Stay (2*5 + 3 + 1) / 4 = 3.50, as Rent.
    out = await weigh(weights=[2, 1, 1], scores=[[3, 5, 3], [2, 1, 5], [5, 3, 1]])
    assert out.splitlines()[-1] == (
        "Tie: **Rent** and **Stay with parents** score 3.50 of 5; "
        "decide on what these criteria leave out."
    )
    # With weights 0.1 and 0.2, (0.1*1 + 0.2*4) / 0.3 and (0.1*3 + 0.2*3) / 0.3 are both 3
    # but differ in floating point.
    tie = await weigh(
        options=["A", "B"], criteria=["x", "y"], scores=[[1, 4], [3, 3]], weights=[0.1, 0.2]
    )
    assert tie.splitlines()[-1].startswith("Tie: **A** and **B** score 3.00 of 5")


async def test_a_perfect_winner_has_no_weak_point_and_names_are_table_safe() -> None:
    out = await weigh(options=["Go | stay", "Wait"], criteria=["Joy"], scores=[[5], [4]])
    assert "| Go \\| stay | 5 | 5.00 |" in out
    assert out.splitlines()[-1] == "Best: **Go \\| stay** (5.00 of 5), ahead of Wait (4.00)."


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"scores": SCORES[:2]}, "scores needs one row per option: 3 options, 2 rows"),
        (
            {"scores": [[3, 5, 3], [2, 1], [5, 2, 1]]},
            "scores row 2 has 2 scores; it needs one per criterion (3)",
        ),
        ({"weights": [1, 2]}, "weights needs one per criterion: 3 criteria, 2 weights"),
        ({"weights": [0, 0, 0]}, "at least one weight must be above 0"),
        ({"options": ["Rent", "rent ", "Buy"]}, "the option 'rent' is given twice"),
        ({"criteria": ["Cost", " ", "Comfort"]}, "criterion 2 has no name"),
    ],
)
async def test_bad_shapes_are_one_line_tool_errors(
    arguments: dict[str, object], message: str
) -> None:
    with pytest.raises(ToolError) as err:
        await weigh(**arguments)
    assert str(err.value) == f"weigh_options: {message}"


@pytest.mark.parametrize(
    ("arguments", "where"),
    [
        ({"scores": [[3, 5, 6], [2, 1, 5], [5, 2, 1]]}, "scores.0.2"),
        ({"scores": [[3, 5, 3], [0, 1, 5], [5, 2, 1]]}, "scores.1.0"),
        ({"weights": [1, -1, 1]}, "weights.1"),
        ({"options": ["Rent"], "scores": [[3, 5, 3]]}, "options"),
    ],
)
async def test_scores_outside_1_to_5_and_bad_values_fail_the_schema(
    arguments: dict[str, object], where: str
) -> None:
    with pytest.raises(ToolArgumentError) as err:
        await weigh(**arguments)
    message = str(err.value)
    assert message.startswith(f"weigh_options: argument '{where}'")
    assert "\n" not in message


def test_the_skill_needs_no_permission_and_serves_the_advisor() -> None:
    assert skill.name == "advisor"
    assert skill.agents == ("advisor",)
    assert skill.permissions == frozenset()
    assert [t.name for t in skill.tools] == ["weigh_options"]


def advice_draft(task: str, text: str) -> Draft:
    async def use(name: str, arguments: dict) -> str:
        raise AssertionError("the review uses no tool")

    return Draft(task=task, agent="advisor", task_id="t1", use=use, workspace=Path("."), text=text)


FULL = (
    "Options:\n1. Pay off the mortgage early\n2. Invest in an index fund\n\n"
    "Pros and cons: paying off is a sure 3% return; investing has a higher expected return "
    "but can fall.\n\nI recommend investing, keeping six months of savings aside.\n\n"
    "Main risk: a crash just before you need the money."
)


@pytest.mark.parametrize(
    "task",
    [
        "Should I pay off my mortgage early or invest?",
        "Index fund or mortgage, which is better?",
        "What are the pros and cons of renting vs buying",
        "Should our team of six move CI from Jenkins to GitHub Actions?",
        "We have two offers. Should my partner take the one in Lyon",
    ],
)
async def test_decision_advice_with_every_part_passes(task: str) -> None:
    review = await advisor.review(advice_draft(task, FULL))
    assert review is not None and review.passed is True and review.feedback is None


async def test_advice_without_recommendation_or_risk_is_sent_back() -> None:
    partial = FULL.split("\n\nI recommend")[0]
    review = await advisor.review(advice_draft("Should I pay it off early?", partial))
    assert review is not None and review.passed is False
    assert review.verdict == "missing a recommendation, the main risk"
    assert "lacks a recommendation, the main risk" in (review.feedback or "")


@pytest.mark.parametrize(
    "task",
    [
        "What is the capital of Norway?",
        "Explain how index funds work",
        "Write a haiku",
        "Which tests should fail when the port is out of range?",
    ],
)
async def test_a_question_that_is_not_a_decision_is_not_checked(task: str) -> None:
    assert await advisor.review(advice_draft(task, "Oslo.")) is None


def test_missing_parts_reads_each_part() -> None:
    assert advisor.missing_parts(FULL) == []
    assert advisor.missing_parts("Just do it.") == [
        "the options",
        "pros and cons",
        "a recommendation",
        "the main risk",
    ]
