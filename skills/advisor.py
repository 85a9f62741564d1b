"""The built-in `advisor` skill: a decision table for the advisor's "options, pros and cons,
a recommendation" answers.

The model supplies the judgement (a 1–5 score per option and criterion, optional weights);
the tool does the arithmetic a small model gets wrong, and names the best option and its
weakest point, which is where the risk usually is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated

from pydantic import Field

from myninja.skills.api import Draft, Review, Skill, ToolError, tool

MAX_OPTIONS = 10
MAX_CRITERIA = 12
# Scores are compared after rounding: 0.1 + 0.2 and 0.3 are the same score to a reader.
_PLACES = 9

Score = Annotated[int, Field(ge=1, le=5)]
Weight = Annotated[float, Field(ge=0)]


@tool
def weigh_options(
    options: Annotated[
        list[str],
        Field(
            min_length=2, max_length=MAX_OPTIONS, description="The choices, e.g. ['Rent', 'Buy']"
        ),
    ],
    criteria: Annotated[
        list[str],
        Field(min_length=1, max_length=MAX_CRITERIA, description="What matters, e.g. ['Cost']"),
    ],
    scores: Annotated[
        list[list[Score]],
        Field(
            description="One row per option, one score per criterion, 1 (poor) to 5 (best; "
            "for cost, 5 = cheapest)"
        ),
    ],
    weights: Annotated[
        list[Weight] | None,
        Field(description="How much each criterion counts, same order; default all equal"),
    ] = None,
) -> str:
    """Score options against criteria: returns a Markdown table with each option's weighted
    score (1-5) and names the best option and its weakest point."""
    names = _labels(options, "option")
    headers = _labels(criteria, "criterion")
    _check_shape(scores, len(names), len(headers), weights)
    counts = weights if weights is not None else [1.0] * len(headers)
    total_weight = sum(counts)
    if total_weight <= 0:
        raise ToolError("weigh_options: at least one weight must be above 0")
    totals = [
        round(sum(w * s for w, s in zip(counts, row, strict=True)) / total_weight, _PLACES)
        for row in scores
    ]
    # Best first; equal scores keep the order they were given in.
    order = sorted(range(len(names)), key=lambda i: -totals[i])

    def header(index: int) -> str:
        return headers[index] if weights is None else f"{headers[index]} (×{counts[index]:g})"

    lines = [
        "| Option | " + " | ".join(header(c) for c in range(len(headers))) + " | Weighted |",
        "|---|" + "---:|" * len(headers) + "---:|",
    ]
    for i in order:
        cells = " | ".join(str(s) for s in scores[i])
        lines.append(f"| {names[i]} | {cells} | {totals[i]:.2f} |")
    lines.append("")
    lines.extend(_verdict(names, headers, scores, totals, order))
    return "\n".join(lines)


def _labels(values: Sequence[str], kind: str) -> list[str]:
    """Names fit for a table cell: one line, no bare `|`, none empty, none twice."""
    labels: list[str] = []
    seen: set[str] = set()
    for number, value in enumerate(values, 1):
        label = " ".join(value.split()).replace("|", "\\|")
        if not label:
            raise ToolError(f"weigh_options: {kind} {number} has no name")
        if label.casefold() in seen:
            raise ToolError(f"weigh_options: the {kind} {label!r} is given twice")
        seen.add(label.casefold())
        labels.append(label)
    return labels


def _check_shape(
    scores: Sequence[Sequence[int]],
    options: int,
    criteria: int,
    weights: Sequence[float] | None,
) -> None:
    if len(scores) != options:
        raise ToolError(
            f"weigh_options: scores needs one row per option: {options} options, {len(scores)} rows"
        )
    for number, row in enumerate(scores, 1):
        if len(row) != criteria:
            raise ToolError(
                f"weigh_options: scores row {number} has {len(row)} scores; "
                f"it needs one per criterion ({criteria})"
            )
    if weights is not None and len(weights) != criteria:
        raise ToolError(
            f"weigh_options: weights needs one per criterion: {criteria} criteria, "
            f"{len(weights)} weights"
        )


def _verdict(
    names: list[str],
    headers: list[str],
    scores: Sequence[Sequence[int]],
    totals: list[float],
    order: list[int],
) -> list[str]:
    best = order[0]
    tied = [i for i in order if totals[i] == totals[best]]
    if len(tied) > 1:
        together = " and ".join(f"**{names[i]}**" for i in tied)
        return [
            f"Tie: {together} score {totals[best]:.2f} of 5; "
            "decide on what these criteria leave out."
        ]
    runner_up = order[1]
    lines = [
        f"Best: **{names[best]}** ({totals[best]:.2f} of 5), "
        f"ahead of {names[runner_up]} ({totals[runner_up]:.2f})."
    ]
    low = min(scores[best])
    if low < 5:
        weakest = ", ".join(headers[c] for c, s in enumerate(scores[best]) if s == low)
        lines.append(f"Weakest point of {names[best]}: {weakest} ({low} of 5).")
    return lines


# A task asking for a choice, not a fact: "should I…", "A or B", "which … better", "pros and cons".
_DECISION = re.compile(
    r"^\W*(should|shall)\b|\b((should|shall) (i|we|my|our)\b|"
    r"which (one|option|is better|should)|better to|pros and cons|trade-?offs?|decide|"
    r"choose between|worth it)\b|\w\s+or\s+\w.*\?",
    re.IGNORECASE,
)
# The parts of structured advice, each with the words that show it is there.
PARTS = {
    "the options": re.compile(
        r"\boption|\balternative|^\s*(#+|\*\*)?\s*\d[.)]|^\s*[-*]\s", re.I | re.M
    ),
    "pros and cons": re.compile(r"\bpros?\b|\bcons?\b|advantage|downside|drawback|upside", re.I),
    "a recommendation": re.compile(
        r"recommend|\bi would\b|\bi'd\b|\bgo with\b|\bbest choice", re.I
    ),
    "the main risk": re.compile(r"\brisks?\b|\bwatch out\b|\bdanger", re.I),
}


def missing_parts(answer: str) -> list[str]:
    """Which parts of structured advice an answer lacks."""
    return [name for name, pattern in PARTS.items() if not pattern.search(answer)]


async def review(draft: Draft) -> Review | None:
    """For a decision, advice has options with pros and cons, a recommendation and its main
    risk (a small model often stops after the options); a factual question is not checked."""
    if not _DECISION.search(draft.task):
        return None
    missing = missing_parts(draft.text)
    if not missing:
        return Review(
            verdict="options, pros and cons, recommendation and risk all given", passed=True
        )
    wanted = ", ".join(missing)
    return Review(
        verdict=f"missing {wanted}",
        passed=False,
        feedback=f"Your advice lacks {wanted}. Give the whole advice again: the options, each "
        "with its pros and cons, then your recommendation and the main risk of it.",
    )


skill = Skill(
    name="advisor",
    description="Weigh options against criteria in a scored decision table",
    tools=[weigh_options],
    agents=("advisor",),
    review=review,
)
