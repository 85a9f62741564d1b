"""A task answered by one model call with the agent's persona.

This is the whole path until the agent graph lands; it already speaks the event schema, so
views written against it keep working when the graph replaces it."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

from agent_graph.events import Event, EventSequencer
from agent_graph.personas import persona
from backends.base import Backend, ChatRequest, Usage
from myninja.config import AgentConfig
from myninja.errors import MyninjaError


def new_task_id() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


async def run_single_call(
    text: str,
    *,
    agent: str,
    backend: Backend,
    agent_config: AgentConfig,
    model: str | None = None,
    task_id: str | None = None,
) -> AsyncIterator[Event]:
    event = EventSequencer(task_id or new_task_id())
    model = model or agent_config.model
    yield event("task_started", text=text, agent=agent, backend=backend.name, model=model)
    request = ChatRequest(
        messages=[
            {"role": "system", "content": persona(agent).system_prompt},
            {"role": "user", "content": text},
        ],
        model=model,
        temperature=agent_config.temperature,
        max_tokens=agent_config.max_tokens,
    )
    started = time.perf_counter()
    first_token: float | None = None
    last_token = started
    parts: list[str] = []
    usage = Usage()
    try:
        async for chunk in backend.stream(request):
            if chunk.text:
                last_token = time.perf_counter()
                first_token = first_token or last_token
                parts.append(chunk.text)
                yield event("token", text=chunk.text, branch_id=None)
            if chunk.usage:
                usage = chunk.usage
    except MyninjaError as exc:
        yield event(
            "task_failed",
            error=exc.one_line(),
            error_type=type(exc).__name__,
            exit_code=exc.exit_code,
            partial_text=getattr(exc, "partial_text", "") or "".join(parts),
        )
        return
    ended = time.perf_counter()
    answer = "".join(parts).strip()
    decode_s = last_token - (first_token or last_token)
    yield event("answer", text=answer)
    yield event(
        "task_done",
        answer=answer,
        usage=usage.to_dict(),
        timings={
            "total_s": round(ended - started, 4),
            "first_token_s": round((first_token or ended) - started, 4),
            "decode_tokens_per_s": round((len(parts) - 1) / decode_s, 2) if decode_s > 0 else None,
        },
    )
