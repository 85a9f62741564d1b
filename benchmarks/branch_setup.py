"""A step's branches as the graph builds them, for the benchmarks that measure branching
(branches.py, judge.py): the branch prompts (persona, task, style line, temperature), the
coder skill's checks of an answer, and the candidate the graph's judging reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def source(key: str, title: str, text: str) -> dict[str, Any]:
    """A passage as the researcher's branches are given it."""
    return {"key": key, "id": key, "title": title, "source": title, "text": text,
            "origin": "corpus", "published": None}  # fmt: skip


def branch_requests(
    agent: str, text: str, sources: list[dict[str, Any]], branches: int, max_tokens: int
) -> list[Any]:
    """Branch i has the graph's temperature and style line for branch i."""
    from myninja.agent_graph.personas import persona
    from myninja.agent_graph.prompts import BRANCH_STYLES, branch_messages
    from myninja.agent_graph.research import sources_block
    from myninja.backends.base import ChatRequest

    who = persona(agent)
    block = sources_block(sources) if sources else ""
    plan = [{"title": "Answer", "instruction": text}]
    requests = []
    for i in range(branches):
        _, temperature, hint = BRANCH_STYLES[i % len(BRANCH_STYLES)]
        messages = branch_messages(
            text, who.system(cited=bool(block)), hint, plan, 0, 1, [], who.may_ask, block
        )
        requests.append(ChatRequest(messages, temperature=temperature, max_tokens=max_tokens))
    return requests


async def coder_checks(task: str, answer: str, workspace: Path) -> list[dict[str, Any]]:
    """The coder skill's review of one answer, as the graph runs it (no revision)."""
    from myninja.skills.api import Draft, ToolContext
    from myninja.skills.coder import skill as coder

    context = ToolContext("branch-bench", workspace_dir=workspace)

    async def use(name: str, arguments: dict[str, Any]) -> str:
        return await coder.skill.tool(name).call(arguments, context)

    draft = Draft(task=task, agent="coder", task_id="branch-bench", use=use,
                  workspace=workspace, text=answer, branch_id="b")  # fmt: skip
    verdict = await coder.review(draft)
    if verdict is None:
        return []
    return [{"skill": "coder", "verdict": verdict.verdict, "passed": verdict.passed}]


def candidate(
    index: int, text: str, checks: list[dict[str, Any]], sources: list[dict[str, Any]]
) -> dict[str, Any]:
    """Branch `index` of a one-step plan's first round, as `agent_graph.judging` reads it."""
    found: dict[str, Any] = {"step": 0, "round": 1, "branch_id": f"b{index + 1}", "text": text,
                             "checks": checks}  # fmt: skip
    if sources:
        found["source_keys"] = [s["key"] for s in sources]
    return found
