"""prepare: what the agent's skills work out in code before it plans (free meeting slots read
from the calendars a task names, say), once per task; every branch is given it. Models that
cannot call tools get the tools' results this way. Agents whose skills have no prepare hook
pass straight through."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from myninja.agent_graph import skill_hooks
from myninja.agent_graph.context import GraphContext
from myninja.agent_graph.state import TaskState


async def prepare(state: TaskState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
    ctx = runtime.context
    events: list[dict[str, Any]] = []
    prepared = await skill_hooks.prepare(
        ctx,
        task=state["text"],
        agent=state.get("agent") or ctx.config.default_agent,
        task_id=state["task_id"],
        events=events,
        facts=state.get("facts") or {},
    )
    return {"prepared": prepared, "events": events} if prepared or events else {}
