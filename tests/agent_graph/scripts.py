"""Scripts for the scripted backend, shared by graph, runtime and crash tests.

Prompts name the attempt and the branch style in fixed words (see agent_graph/prompts.py), so
each rule below answers exactly one kind of call."""

from __future__ import annotations

from typing import Any

ROUTE = {"match": r"Route this task", "json": {"agent": "writer", "reason": "it is writing"}}
PLAN_ONE_STEP = {
    "match": r"Task to plan",
    "json": {"steps": [{"title": "Draft", "instruction": "Write the text."}]},
}
PLAN_TWO_STEPS = {
    "match": r"Task to plan",
    "json": {
        "steps": [
            {"title": "Outline", "instruction": "List the points."},
            {"title": "Write", "instruction": "Write the text from the outline."},
        ]
    },
}


def judge(candidate: str, score: int) -> dict[str, Any]:
    return {
        "match": rf"Candidate:\n{candidate}",
        "json": {"score": score, "reasons": f"{candidate} judged {score}"},
    }


def branch(style_words: str, reply: str, attempt: int = 1, **extra: Any) -> dict[str, Any]:
    return {"match": rf"Attempt {attempt}\. {style_words}", "reply": reply, **extra}


DIRECT, CAREFUL, ALTERNATIVE = "Answer directly", "Work it out", "Consider an approach"


def three_branches(scores: tuple[int, int, int], attempt: int = 1) -> list[dict[str, Any]]:
    """Branch replies 'Answer <attempt><A|B|C>' with the given judge scores."""
    names = [f"Answer {attempt}{x}" for x in "ABC"]
    rules = [judge(name, score) for name, score in zip(names, scores, strict=True)]
    rules += [branch(words, name, attempt) for words, name in
              zip((DIRECT, CAREFUL, ALTERNATIVE), names, strict=True)]
    return rules
