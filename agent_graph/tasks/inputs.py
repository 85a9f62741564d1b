"""What a task's run starts from: the request checked, the graph's context, the first state."""

from __future__ import annotations

from typing import Any

from myninja.agent_graph.context import BackendPool, GraphContext
from myninja.agent_graph.events import make_event
from myninja.agent_graph.history import HistoryStore
from myninja.agent_graph.nodes.route import split_mention
from myninja.agent_graph.tasks.skillset import SkillSet
from myninja.config import Config, Permission
from myninja.errors import UsageError


def checked_request(
    config: Config, text: str, agent: str | None, backend: str | None, allow: list[str] | None
) -> tuple[str | None, str]:
    """The agent (named, or @mentioned first in `text`) and the task's text without the
    mention; a UsageError for an empty task, an unknown backend or permission."""
    mention, body = split_mention(text)
    if not body.strip():
        raise UsageError("the task is empty", hint="write what you want done")
    if backend and backend not in config.backends:
        known = ", ".join(sorted(config.backends))
        raise UsageError(f"unknown backend {backend!r}", hint=f"configured: {known}")
    unknown = sorted(set(allow or ()) - set(Permission))
    if unknown:
        names = ", ".join(Permission)
        raise UsageError(f"unknown permission {unknown[0]!r}", hint=f"one of: {names}")
    return agent or mention, body


def graph_context(
    config: Config,
    backends: BackendPool,
    store: HistoryStore,
    skillset: SkillSet,
    task: dict[str, Any],
) -> GraphContext:
    """What the graph's nodes of this task use: the options it was submitted with."""
    options = task.get("options") or {}
    if options.get("dry_run"):  # `ask --dry-run`: the scheduler books nothing for this task
        scheduler = config.scheduler.model_copy(update={"dry_run": True})
        config = config.model_copy(update={"scheduler": scheduler})
    return GraphContext(
        config,
        backends,
        store,
        backend_override=options.get("backend"),
        model_override=options.get("model"),
        skills=skillset.skills,
        grants=skillset.grants,
        allow=set(options.get("allow") or ()),
        task_id=task["id"],
    )


def first_state(config: Config, ctx: GraphContext, task: dict[str, Any]) -> dict[str, Any]:
    """The graph's input for a task that has no checkpoint yet."""
    agent = task.get("agent")
    backend_name = ctx.backend_override or config.agent(agent or "router").backend
    started = make_event(
        "task_started",
        text=task["text"],
        agent=agent,
        backend=backend_name,
        model=ctx.model_override,
    )
    # Stamped with the task's creation time, so an input rebuilt after a crash that came
    # before the first checkpoint is the same event, stored once.
    started["ts"] = round(task["created_at"], 6)
    return {"task_id": task["id"], "text": task["text"], "agent": agent, "events": [started]}
