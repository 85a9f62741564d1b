"""finalize: the answer (composed when the plan had several steps) and the task_done event."""

from __future__ import annotations

import time
from typing import Any

from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime

from agent_graph.context import GraphContext
from agent_graph.events import make_event
from agent_graph.personas import persona
from agent_graph.prompts import compose_messages
from agent_graph.state import TaskState, add_usage
from backends.base import ChatRequest
from myninja.errors import BackendError


async def finalize(state: TaskState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
    ctx = runtime.context
    results = [r for r in state["results"] if r["round"] == state["round"]]
    selected = [
        e for e in state["events"] if e["type"] == "selected" and e["round"] == state["round"]
    ]
    best_effort = any(e["best_effort"] for e in selected)
    usage: dict[str, int] = {}
    if len(results) == 1:
        answer = results[0]["text"]
    else:
        answer, usage = await _compose(ctx, state, results)
    total = add_usage(state.get("usage"), usage)
    total["total_tokens"] = total.get("prompt_tokens", 0) + total.get("completion_tokens", 0)
    started = state["events"][0]["ts"] if state.get("events") else time.time()
    answered = make_event("answer", text=answer)
    done = make_event(
        "task_done",
        answer=answer,
        usage=total,
        timings={"total_s": round(time.time() - started, 4)},
        kept=[r["branch_id"] for r in results],
        best_effort=best_effort,
        agent=state.get("agent"),
    )
    return {"answer": answer, "usage": usage, "events": [answered, done]}


async def _compose(ctx: GraphContext, state: TaskState, results: list) -> tuple[str, dict]:
    agent = state["agent"] or ctx.config.default_agent
    backend, settings, model = ctx.agent_backend(agent)
    write = get_stream_writer()
    parts: list[str] = []
    usage = {"prompt_tokens": 0, "completion_tokens": 0}
    request = ChatRequest(
        compose_messages(state["text"], persona(agent).system_prompt, results, state["plan"]),
        model=model,
        temperature=0.2,
        max_tokens=settings.max_tokens or ctx.config.graph.max_tokens,
    )
    try:
        async for chunk in backend.stream(request):
            if chunk.text:
                parts.append(chunk.text)
                write({"type": "token", "branch_id": "final", "text": chunk.text})
            if chunk.usage:
                usage["prompt_tokens"] += chunk.usage.prompt_tokens
                usage["completion_tokens"] += chunk.usage.completion_tokens
    except BackendError:
        # The steps' own results still answer the task; keep them rather than fail here.
        return "\n\n".join(r["text"] for r in results), usage
    return "".join(parts).strip(), usage
