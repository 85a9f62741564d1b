"""The graph's state types. State holds ids, texts and small records; history.db holds the rest.

`events` is the task's durable event log: each node appends what it did, and LangGraph applies
the appends of parallel branches in branch order, so an interrupted and resumed run ends with
exactly the log of a run that was never interrupted."""

from __future__ import annotations

import operator
from typing import Annotated, Any, NotRequired, TypedDict


def add_usage(old: dict[str, int] | None, new: dict[str, int] | None) -> dict[str, int]:
    total = dict(old or {})
    for key, value in (new or {}).items():
        total[key] = total.get(key, 0) + value
    return total


def add_sources(
    old: list[dict[str, Any]] | None, new: list[dict[str, Any]] | None
) -> list[dict[str, Any]]:
    """The task's sources: new passages appended, each passage once (by its `key`), so their
    numbers never change once given."""
    merged = list(old or [])
    seen = {s["key"] for s in merged}
    for source in new or []:
        if source["key"] not in seen:
            seen.add(source["key"])
            merged.append(source)
    return merged


class Step(TypedDict):
    title: str
    instruction: str


class Candidate(TypedDict):
    step: int
    round: int
    branch_id: str
    agent: str
    temperature: float
    style: str
    text: str
    source_keys: NotRequired[list[str]]  # the passages its [n] count in (researcher)
    checks: NotRequired[list[dict[str, Any]]]  # its skills' reviews: skill, verdict, passed


class Evaluation(TypedDict):
    step: int
    round: int
    branch_id: str
    score: float
    reasons: str


class StepResult(TypedDict):
    step: int
    round: int
    branch_id: str
    score: float
    text: str
    source_keys: NotRequired[list[str]]


class TaskState(TypedDict, total=False):
    task_id: str
    text: str  # the task as the person wrote it, without a leading @agent
    agent: str | None  # given by the person, or chosen by route
    path: str  # "fast" (one call, nodes/answer.py) or "agent" (plan, branches, judge)
    events: Annotated[list[dict[str, Any]], operator.add]
    usage: Annotated[dict[str, int], add_usage]
    plan: list[Step]
    examples: list[str]  # ids of past tasks whose plans the planner was shown
    memories: list[dict[str, Any]]  # the person's memories shown to the agent: id, text
    round: int  # 1 for the first plan, +1 per replan
    step: int  # index into plan of the step being worked
    wave: int  # 1: the step's first branch (adaptive branching); 2: the others
    candidates: Annotated[list[Candidate], operator.add]
    evaluations: Annotated[list[Evaluation], operator.add]
    results: Annotated[list[StepResult], operator.add]
    sources: Annotated[list[dict[str, Any]], add_sources]  # the researcher's passages, numbered
    web: bool  # whether the web could be searched (after one failure it is not asked again)
    prepared: str  # what the agent's skills computed for its branches (skills' prepare hooks)
    facts: dict[str, str]  # what the agent needs of the person, by need key (agent_graph/needs.py)
    missing: list[str]  # the needs nothing answered: asked before the branches run
    replan_reason: str
    failed: bool
    answer: str


class BranchInput(TypedDict):
    """What `Send` hands one branch."""

    task_id: str
    text: str
    agent: str
    plan: list[Step]
    step: int
    round: int
    branch_id: str
    temperature: float
    style: str
    results: list[StepResult]
    sources: list[dict[str, Any]]  # the task's passages so far, [1] first
    follow_up: bool  # may search again with a query written from what was found
    web: bool  # the follow-up may search the web too
    prepared: NotRequired[str]  # what the agent's skills computed for it
    memories: NotRequired[list[dict[str, Any]]]  # the person's memories: id, text
    facts: NotRequired[dict[str, str]]  # the person's time zone, say, by need key
    revisions: NotRequired[int]  # how often it may revise when its skills' checks fail it
