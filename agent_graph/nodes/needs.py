"""needs and ask_needs: the facts about the person an agent needs before its branches run
(the scheduler's time zone; agent_graph/needs.py), once per task.

`needs` resolves each of the agent's needs from the task's own words, a kept memory (the one
that would answer its question, as a branch's `ask_user` is answered: a `memory_answered`
event), the config, or the machine, and keeps what it found and what is missing in the state.
`ask_needs` then asks the person for what is missing, one question per need with the need's
key (so the answer is proposed as a memory under it), once more with the problem where the
answer gives no value. Splitting the two keeps the asking node's decisions in the state:
LangGraph re-runs a node that was interrupted, and a memory the answer made meanwhile must not
change what it does."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from myninja.agent_graph.asking import ask_person, from_memory
from myninja.agent_graph.context import GraphContext
from myninja.agent_graph.needs import need
from myninja.agent_graph.nodes.plan import memories_for
from myninja.agent_graph.personas import persona
from myninja.agent_graph.state import TaskState


async def needs(state: TaskState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
    ctx = runtime.context
    agent = state.get("agent") or ctx.config.default_agent
    wanted = [n for key in persona(agent).needs if (n := need(key)) is not None]
    facts = dict(state.get("facts") or {})
    wanted = [n for n in wanted if n.key not in facts]
    if not wanted:
        return {}
    events: list[dict[str, Any]] = []
    memories = memories_for(ctx, state["text"], agent)
    missing = []
    for item in wanted:
        value = item.from_task(state["text"]) or from_memory(
            memories, item.question, item.key, events, usable=item.check
        )
        value = value or item.default(ctx.config)
        if value is None:
            missing.append(item.key)
        else:
            facts[item.key] = value
    return {"facts": facts, "missing": missing, "events": events}


async def ask_needs(state: TaskState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
    """Ask for each missing need; an answer that gives no value is asked about once more, and
    a second such answer leaves the need unknown (the branches are told nothing of it)."""
    facts = dict(state.get("facts") or {})
    for key in state.get("missing") or []:
        item = need(key)
        if item is None or key in facts:
            continue
        answer = ask_person(item.question, key=item.key)
        value = item.check(answer)
        if value is None:
            answer = ask_person(item.retry_question(answer), key=item.key)
            value = item.check(answer)
        if value is not None:
            facts[key] = value
    return {"facts": facts, "missing": []}


def after_needs(state: TaskState) -> str:
    return "ask_needs" if state.get("missing") else "prepare"
