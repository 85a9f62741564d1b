"""The router's rules in code: cues that leave no doubt go straight to their agent; everything
else is left to the router model. And how a router reply is read."""

from __future__ import annotations

import pytest

from myninja.agent_graph.nodes.route import agent_in, by_rule


@pytest.mark.parametrize(
    ("text", "agent"),
    [
        ("Find a free slot for anna=cal/anna.ics and me next week", "scheduler"),
        ("Schedule a call with the Lisbon office on Friday", "scheduler"),
        ("When are Jo and Ric both free for a sync?", "scheduler"),
        ("What does https://example.org/post say about tariffs?", "researcher"),
        ("Summarise the effects of caffeine and give sources", "researcher"),
        ("What do my notes say about the Q3 launch?", "researcher"),
        ("Write a slugify function with tests", "coder"),
        ("Here is my code:\n```\nprint(x\n```\nwhat's wrong?", "coder"),
        ("Draft a README for my CLI tool", "writer"),
        ("Rewrite this paragraph so it is shorter: ...", "writer"),
        ("Should we move our CI to GitHub Actions?", "advisor"),
        ("Is it better to lease or buy a car for city driving?", "advisor"),
        ("What is the capital of Australia?", "assistant"),
        ("How many minutes are in 3.5 hours?", "assistant"),
        ("Are we free on Monday morning?", "scheduler"),
        ("Reserve an hour every Friday afternoon for admin.", "scheduler"),
        ("Make this draft into a short memo for the board: ...", "writer"),
        ("Does the research back standing desks? Show me studies.", "researcher"),
        ("Which files in ~/Downloads/invoices are from 2024?", "researcher"),
        ("Write a script that tidies ~/Downloads and run it", "coder"),  # code first
        ("Rust or Go for a CLI? Compare them and pick one.", "advisor"),
        ("Give me a plan for running my first marathon in spring.", "advisor"),
        ("Define 'latency' in one sentence.", "assistant"),
        ("Write a one-liner that sums a list of numbers in Python.", "assistant"),
        # A one-liner is short however long its description.
        (
            "Write a Python one-liner that turns the list of pairs `rows` into a dict, the first "
            "item of each pair as key and the second as its value, later keys winning.",
            "assistant",
        ),
        ("Draft a brief note to my landlord saying the boiler is broken again.", "assistant"),
        ("Write a quick text to Jo: running ten minutes late, start without me.", "assistant"),
        ("Write a short report on our Q3 sales for the board.", "writer"),  # a document
    ],
)
def test_clear_cues_pick_their_agent(text: str, agent: str) -> None:
    rule = by_rule(text)
    assert rule is not None and rule.agent == agent, rule


@pytest.mark.parametrize(
    "text",
    [
        "Tell me the boiling point of water",  # no cue: the model decides
        "Convert 100 degrees Fahrenheit to Celsius",
        # A long question is not "short": the model weighs it.
        "What would be a sensible way to organise a small team's on-call rota across three "
        "time zones without burning anyone out?",
        "What is x?\nAnd y?",  # several lines
        "the source code of the parser is slow",  # "source" alone is not a request for sources
        "Write a message to the whole company announcing the new parental-leave policy.",
    ],
)
def test_without_a_clear_cue_the_model_decides(text: str) -> None:
    assert by_rule(text) is None


@pytest.mark.parametrize(
    ("reply", "agent"),
    [
        ('"quick"', "assistant"),
        ("code", "coder"),
        ("Kind: sources", "researcher"),
        ('{"agent": "writer", "reason": "a text"}', "writer"),  # an agent named outright
    ],
)
def test_a_router_reply_names_its_agent(reply: str, agent: str) -> None:
    found = agent_in(reply)
    assert found is not None and found[0] == agent


def test_a_reply_naming_nothing_is_none() -> None:
    assert agent_in("I am not sure") is None
