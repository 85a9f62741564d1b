"""route: pick the specialised agent for the task, unless the person already did."""

from __future__ import annotations

import re
from typing import Any

from langgraph.runtime import Runtime

from agent_graph.context import GraphContext
from agent_graph.events import make_event
from agent_graph.personas import PERSONAS
from agent_graph.prompts import ROUTE_SCHEMA, WORKER_AGENTS, route_messages
from agent_graph.state import TaskState
from agent_graph.structured import StructuredOutputError, structured_call
from myninja.errors import BackendError

_MENTION = re.compile(r"^\s*@(\w+)\s*[:,]?\s*")


def split_mention(text: str) -> tuple[str | None, str]:
    """`@coder write …` → ("coder", "write …"); text without a known @agent is left as it is."""
    match = _MENTION.match(text)
    if match and match.group(1).lower() in WORKER_AGENTS:
        return match.group(1).lower(), text[match.end() :]
    return None, text


async def route(state: TaskState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
    ctx = runtime.context
    if state.get("agent"):
        agent = state["agent"]
        return {
            "events": [
                make_event("routed", agent=agent, reason="chosen by the person", examples=[])
            ]
        }
    examples = ctx.store.route_examples(state["text"]) if ctx.store else []
    backend, _, model = ctx.agent_backend("router")
    usage: dict[str, int] = {}
    try:
        choice = await structured_call(
            backend,
            route_messages(
                state["text"], {a: PERSONAS[a].description for a in WORKER_AGENTS}, examples
            ),
            ROUTE_SCHEMA,
            retries=1,
            model=model,
            max_tokens=96,
            usage=usage,
        )
        agent, reason = choice["agent"], choice["reason"]
    except (StructuredOutputError, BackendError) as exc:
        # Routing is a convenience: a task is never lost to it.
        agent, reason = ctx.config.default_agent, f"router failed ({exc}); used the default"
    event = make_event(
        "routed", agent=agent, reason=reason, examples=[ex["text"] for ex in examples]
    )
    return {"agent": agent, "events": [event], "usage": usage}
