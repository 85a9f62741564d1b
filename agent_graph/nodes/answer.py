"""answer: the fast path. One streamed call answers the task; checks in code decide whether
that answer stands or the task goes on to a specialist agent's full machinery.

No plan is made, no branches are tried, no judge is asked: the `plan`, `branch_started` and
`branch_done` events it writes describe the one call, so every view shows it like any other
step. The call is round 0; an escalated task's first plan is round 1."""

from __future__ import annotations

import ast
import re
from typing import Any

from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime
from langgraph.types import Command

from myninja.agent_graph import computed
from myninja.agent_graph.context import GraphContext
from myninja.agent_graph.events import make_event
from myninja.agent_graph.nodes.plan import memories_for
from myninja.agent_graph.nodes.route import AGENT
from myninja.agent_graph.personas import persona
from myninja.agent_graph.prompts import FAST_AGENT, fast_messages
from myninja.agent_graph.state import StepResult, TaskState
from myninja.backends.base import ChatRequest
from myninja.errors import BackendError
from myninja.skills.research.citations import strip_marks

BRANCH_ID = "fast"
ROUND = 0
TEMPERATURE = 0.2

_PYTHON_BLOCK = re.compile(r"```(?:python|py)[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)


def problem_with(text: str) -> tuple[str, str] | None:
    """(what is wrong, the agent that should take over) when a fast answer fails a check."""
    if not text.strip():
        return "the fast answer was empty", "advisor"
    for block in _PYTHON_BLOCK.findall(text):
        try:
            ast.parse(block)
        except SyntaxError as exc:
            return f"its Python does not parse ({exc.msg}, line {exc.lineno})", "coder"
    return None


async def _nothing() -> Any:
    return
    yield


async def _compute(backend: Any, model: str | None, text: str, usage: dict[str, int]) -> str | None:
    """The answer worked out by a short program the model writes and the sandbox runs."""
    request = ChatRequest(
        [{"role": "system", "content": computed.SYSTEM}, {"role": "user", "content": text}],
        model=model,
        temperature=0.0,
        max_tokens=computed.MAX_TOKENS,
    )
    parts: list[str] = []
    async for chunk in backend.stream(request):
        parts.append(chunk.text or "")
        if chunk.usage:
            usage["prompt_tokens"] += chunk.usage.prompt_tokens
            usage["completion_tokens"] += chunk.usage.completion_tokens
    source = computed.source_of("".join(parts))
    program = computed.program_of(source)
    value = await computed.run_program(program) if program else None
    return computed.computed_answer(value, source) if value else None


async def answer(state: TaskState, runtime: Runtime[GraphContext]) -> Command:
    ctx = runtime.context
    write = get_stream_writer()
    backend, settings, model = ctx.agent_backend(FAST_AGENT)
    text = state["text"]
    steps = [{"title": "Answer", "instruction": text}]
    temperature = settings.temperature if settings.temperature is not None else TEMPERATURE
    memories = memories_for(ctx, text)
    events: list[dict[str, Any]] = [
        make_event(
            "plan", steps=steps, round=ROUND, examples=[], memories=[m["id"] for m in memories]
        ),
        make_event(
            "branch_started",
            step=0,
            round=ROUND,
            branch_id=BRANCH_ID,
            agent=FAST_AGENT,
            temperature=temperature,
            style="fast",
        ),
    ]
    request = ChatRequest(
        fast_messages(text, persona(FAST_AGENT).system_prompt, memories),
        model=model,
        temperature=temperature,
        max_tokens=settings.max_tokens or ctx.config.graph.max_tokens,
    )
    usage = {"prompt_tokens": 0, "completion_tokens": 0}
    parts: list[str] = []
    try:
        if ctx.config.graph.compute and computed.is_calculation(text):
            # Computed, or None: then the prose call below answers as it always did.
            found = await _compute(backend, model, text, usage)
            if found is not None:
                parts.append(found)
                write({"type": "token", "branch_id": BRANCH_ID, "text": found})
                request = None
        async for chunk in backend.stream(request) if request else _nothing():
            if chunk.text:
                parts.append(chunk.text)
                write({"type": "token", "branch_id": BRANCH_ID, "text": chunk.text})
            if chunk.usage:
                usage["prompt_tokens"] += chunk.usage.prompt_tokens
                usage["completion_tokens"] += chunk.usage.completion_tokens
    except BackendError as exc:
        failed = make_event(
            "task_failed",
            error=exc.one_line(),
            error_type=type(exc).__name__,
            exit_code=exc.exit_code,
            partial_text="".join(parts),
        )
        return Command(
            update={"failed": True, "events": [*events, failed], "usage": usage}, goto="__end__"
        )
    # No sources were searched: a citation mark here would name nothing.
    reply = strip_marks("".join(parts).strip())
    events.append(
        make_event(
            "branch_done",
            step=0,
            round=ROUND,
            branch_id=BRANCH_ID,
            text=reply,
            error=None,
            checks=None,
            revisions=0,
        )
    )
    update: dict[str, Any] = {"events": events, "usage": usage, "plan": steps, "step": 0}
    problem = problem_with(reply)
    if problem is not None and ctx.config.graph.escalate:
        why, agent = problem
        update["agent"] = agent
        update["path"] = AGENT
        update["round"] = ROUND
        events.append(
            make_event("routed", agent=agent, path=AGENT, reason=f"escalated: {why}", examples=[])
        )
        return Command(update=update, goto="retrieve")
    update["round"] = ROUND
    update["results"] = [
        StepResult(step=0, round=ROUND, branch_id=BRANCH_ID, score=0.0, text=reply)
    ]
    return Command(update=update, goto="finalize")
