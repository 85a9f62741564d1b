"""Scripts for the scripted backend, shared by graph, runtime and crash tests.

Prompts name the attempt and the branch style in fixed words (see agent_graph/prompts.py), so
each rule below answers exactly one kind of call."""

from __future__ import annotations

import re
from typing import Any

from myninja.agent_graph.prompts import BRANCH_STYLES

ROUTE = {"match": r"Route this task", "json": "document"}
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


# The first words of each style's line: plain text, safe in a regex and as a substring.
DIRECT, CAREFUL, ALTERNATIVE = (re.split(r"[.;,]", hint)[0] for _, _, hint in BRANCH_STYLES[:3])


def three_branches(scores: tuple[int, int, int], attempt: int = 1) -> list[dict[str, Any]]:
    """Branch replies 'Answer <attempt><A|B|C>' with the given judge scores."""
    names = [f"Answer {attempt}{x}" for x in "ABC"]
    rules = [judge(name, score) for name, score in zip(names, scores, strict=True)]
    rules += [
        branch(words, name, attempt)
        for words, name in zip((DIRECT, CAREFUL, ALTERNATIVE), names, strict=True)
    ]
    return rules


FENCE_ASK = {
    "match": rf"Attempt 1\. {DIRECT}",
    "tool_calls": [
        {"name": "ask_user", "arguments": {"question": "Which colour?", "key": "colour"}}
    ],
}
# The fence task asks which colour; every other task is answered at once; 'Slow task' hangs.
FENCE_RULES = [
    ROUTE,
    PLAN_ONE_STEP,
    judge("Painted it blue", 9),
    judge("Fence painted", 6),
    {"match": r"tool: blue", "reply": "Painted it blue"},
    {"match": r"Slow task.*Attempt", "reply": "never", "delay": 60},
    {
        "match": r"Paint the fence.*Attempt 1\. Answer directly",
        **{k: v for k, v in FENCE_ASK.items() if k != "match"},
    },
    {"match": r"Attempt 1\.", "reply": "Fence painted"},
]
