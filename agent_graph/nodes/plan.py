"""plan: a JSON plan of steps, shown similar successful past tasks; repaired, or failing clean."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Command

from myninja.agent_graph.context import GraphContext
from myninja.agent_graph.events import make_event
from myninja.agent_graph.history import memories as memory_store
from myninja.agent_graph.personas import persona
from myninja.agent_graph.prompts import plan_messages, plan_repair_message, plan_schema
from myninja.agent_graph.state import TaskState
from myninja.agent_graph.structured import StructuredOutputError, structured_call
from myninja.errors import BackendError


async def plan(state: TaskState, runtime: Runtime[GraphContext]) -> Command:
    ctx = runtime.context
    settings = ctx.config.graph
    agent = state["agent"] or ctx.config.default_agent
    round_ = state.get("round", 0) + 1
    max_steps = ctx.max_steps(agent)
    memories = memories_for(ctx, state["text"], agent)
    if max_steps == 1:
        return _one_step(state["text"], round_, memories)
    past: list[dict[str, Any]] = []
    if settings.use_past_tasks and ctx.store is not None:
        past = [
            p
            for p in ctx.store.similar_successful(state["text"], exclude_id=state["task_id"])
            if p.get("plan")
        ]
    backend, _, model = ctx.agent_backend(agent)
    usage: dict[str, int] = {}
    try:
        value = await structured_call(
            backend,
            plan_messages(
                state["text"],
                agent,
                max_steps,
                past,
                round_,
                state.get("plan") if round_ > 1 else None,
                state.get("replan_reason", ""),
                persona(agent).system_prompt,
                memories,
            ),
            plan_schema(max_steps),
            retries=settings.plan_retries,
            repair=plan_repair_message,
            model=model,
            usage=usage,
        )
    except StructuredOutputError as exc:
        return _fail(f"the planner gave no usable plan: {exc}", "PlanError", 1, usage)
    except BackendError as exc:
        return _fail(exc.one_line(), type(exc).__name__, exc.exit_code, usage)
    steps = [
        {"title": s["title"].strip(), "instruction": s["instruction"].strip()}
        for s in value["steps"]
    ]
    examples = [p["id"] for p in past]
    event = make_event(
        "plan", steps=steps, round=round_, examples=examples, memories=[m["id"] for m in memories]
    )
    update = {
        "plan": steps,
        "round": round_,
        "step": 0,
        "wave": 1,
        "examples": examples,
        "memories": memories,
        "events": [event],
        "usage": usage,
    }
    return Command(update=update, goto="fan_out")


def memories_for(ctx: GraphContext, text: str, agent: str | None = None) -> list[dict[str, Any]]:
    """The person's memories most relevant to the task (and those from answers to questions
    `agent` asked before), within the configured token budget. Chosen once per plan (the fast
    path's too) and kept in the graph state, so the plan event can say which were shown, and
    a replayed branch finds the same memory answering the same question."""
    budget = ctx.config.memory.max_tokens
    if ctx.store is None or budget <= 0:
        return []
    rows = memory_store.relevant(ctx.store, text, max_tokens=budget, agent=agent)
    shown = []
    for row in rows:
        memory = {"id": row["id"], "text": row["text"]}
        # What lets a memory made from an answer answer the same question (branch.py).
        memory.update({k: row[k] for k in ("question", "key", "answer") if row.get(k)})
        shown.append(memory)
    return shown


def _one_step(text: str, round_: int, memories: list[dict[str, Any]]) -> Command:
    """The plan of an agent whose tasks are one step: the task itself, with no model call."""
    steps = [{"title": "Answer", "instruction": text}]
    event = make_event(
        "plan", steps=steps, round=round_, examples=[], memories=[m["id"] for m in memories]
    )
    update = {
        "plan": steps,
        "round": round_,
        "step": 0,
        "wave": 1,
        "examples": [],
        "memories": memories,
        "events": [event],
    }
    return Command(update=update, goto="fan_out")


def _fail(error: str, error_type: str, exit_code: int, usage: dict[str, int]) -> Command:
    event = make_event(
        "task_failed", error=error, error_type=error_type, exit_code=exit_code, partial_text=""
    )
    return Command(update={"failed": True, "events": [event], "usage": usage}, goto="__end__")
