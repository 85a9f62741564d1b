"""finalize: the answer (composed when the plan had several steps); deliver: the skills'
finish hooks, then the answer and task_done events.

A researcher's answer is checked against the passages retrieved for the task before anyone
sees it as final: every [n] must name one of them and every quoted span must occur in the one
it cites (skills/research/citations.py); a sentence written from a passage without a mark gets
one when most of its words are that passage's. A failing answer gets one repair round; what is
still unsupported is dropped, and the `citations` event says what and why. The cited passages
are renumbered 1..k and listed under the answer."""

from __future__ import annotations

import time
from typing import Any

from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime

from myninja.agent_graph import skill_hooks
from myninja.agent_graph.context import GraphContext
from myninja.agent_graph.events import make_event
from myninja.agent_graph.personas import persona
from myninja.agent_graph.prompts import compose_messages
from myninja.agent_graph.research import (
    NOT_FOUND,
    source_passages,
    sources_block,
    to_task_numbers,
)
from myninja.agent_graph.state import TaskState
from myninja.backends.base import ChatRequest
from myninja.errors import BackendError
from myninja.skills.research.citations import (
    attribute_uncited,
    check_citations,
    cited_numbers,
    drop_unsupported,
    render_sources,
    renumber,
    repair_prompt,
    strip_marks,
)


async def finalize(state: TaskState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
    ctx = runtime.context
    results = [r for r in state["results"] if r["round"] == state["round"]]
    usage: dict[str, int] = {}
    sources = list(state.get("sources") or [])
    if sources:
        # Every result into the task's numbering, so one source list serves the answer.
        numbers = {source["key"]: n for n, source in enumerate(sources, 1)}
        results = [
            {**r, "text": to_task_numbers(r["text"], r.get("source_keys") or [], numbers)}
            for r in results
        ]
    if len(results) == 1:
        answer = results[0]["text"]
    else:
        answer, usage = await _compose(ctx, state, results, sources)
    events: list[dict[str, Any]] = []
    if sources:
        answer, checked = await _checked(ctx, state, answer, sources, usage)
        events.append(checked)
    else:
        answer = strip_marks(answer)  # a mark with no source behind it names nothing
    return {"answer": answer, "usage": usage, "events": events}


async def deliver(state: TaskState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
    """The skills' finish hooks on the answer (a document saved, the chosen code put in the
    workspace), their lines under it, then the `answer` and `task_done` events. A node of its
    own: a hook that asks the person for a permission re-runs only this on resume."""
    ctx = runtime.context
    results = [r for r in state["results"] if r["round"] == state["round"]]
    selected = [
        e for e in state["events"] if e["type"] == "selected" and e["round"] == state["round"]
    ]
    agent = state.get("agent") or ctx.config.default_agent
    events: list[dict[str, Any]] = []
    answer = state.get("answer") or ""
    root = skill_hooks.workspace_of(state["task_id"])
    skill_hooks.promote(root, [r["branch_id"] for r in results])
    files = skill_hooks.task_files(root)
    lines = await skill_hooks.finish(
        ctx,
        task=state["text"],
        agent=agent,
        task_id=state["task_id"],
        branch_id=results[-1]["branch_id"] if results else None,
        text=answer,
        events=events,
    )
    if files and not any(str(root) in line for line in lines):
        lines.insert(0, f"Files: {', '.join(files[:12])} in {root}")
    if lines:
        answer = answer.rstrip() + "\n\n" + "\n".join(f"{line}  " for line in lines).rstrip()
    total = dict(state.get("usage") or {})
    total["total_tokens"] = total.get("prompt_tokens", 0) + total.get("completion_tokens", 0)
    started = state["events"][0]["ts"] if state.get("events") else time.time()
    answered = make_event("answer", text=answer)
    done = make_event(
        "task_done",
        answer=answer,
        usage=total,
        timings={"total_s": round(time.time() - started, 4)},
        kept=[r["branch_id"] for r in results],
        best_effort=any(e["best_effort"] for e in selected),
        agent=state.get("agent"),
    )
    return {"answer": answer, "events": [*events, answered, done]}


async def _checked(
    ctx: GraphContext,
    state: TaskState,
    answer: str,
    sources: list[dict[str, Any]],
    usage: dict[str, int],
) -> tuple[str, dict[str, Any]]:
    """The answer with only supported citations and its source list, and the `citations`
    event that records what was checked, repaired and dropped."""
    passages = source_passages(sources)
    answer, attributed = attribute_uncited(answer, passages)
    report = check_citations(answer, passages)
    repaired = False
    if not report.ok:
        fixed = await _repair(ctx, state, answer, sources, repair_prompt(report), usage)
        if fixed:
            fixed_report = check_citations(fixed, passages)
            # Better only if it has fewer problems and still cites: a "repair" that drops
            # every mark has no problems left and nothing supported either.
            better = len(fixed_report.problems) < len(report.problems)
            if better and cited_numbers(fixed):
                answer, report, repaired = fixed, fixed_report, True
    answer, dropped = drop_unsupported(answer, report)
    answer, cited = renumber(answer.strip(), passages)
    if not answer.strip():
        answer = NOT_FOUND
    if cited:
        answer = (
            f"{answer}\n\n**Sources**\n\n"
            + "\n".join(f"{line}  " for line in render_sources(cited).splitlines()).rstrip()
        )
    event = make_event(
        "citations",
        sources=[
            {
                "n": p.n,
                "passage_id": p.passage_id,
                "title": p.title,
                "source": p.source,
                "text": p.text,
                "published": p.published,
            }
            for p in cited.values()
        ],
        dropped=dropped,
        repaired=repaired,
        attributed=attributed,
    )
    return answer, event


async def _repair(
    ctx: GraphContext,
    state: TaskState,
    answer: str,
    sources: list[dict[str, Any]],
    instruction: str,
    usage: dict[str, int],
) -> str:
    """The one repair round: the answer, its sources and what is wrong, back to the model."""
    agent = state["agent"] or ctx.config.default_agent
    backend, settings, model = ctx.agent_backend(agent)
    request = ChatRequest(
        [
            {"role": "system", "content": persona(agent).system(cited=True)},
            {
                "role": "user",
                "content": f"Sources:\n{sources_block(sources)}\n\nTask: {state['text']}",
            },
            {"role": "assistant", "content": answer},
            {"role": "user", "content": instruction},
        ],
        model=model,
        temperature=0.0,
        max_tokens=settings.max_tokens or ctx.config.graph.max_tokens,
    )
    try:
        result = await backend.chat(request)
    except BackendError:
        return ""
    usage["prompt_tokens"] = usage.get("prompt_tokens", 0) + result.usage.prompt_tokens
    usage["completion_tokens"] = usage.get("completion_tokens", 0) + result.usage.completion_tokens
    return result.text.strip()


async def _compose(
    ctx: GraphContext, state: TaskState, results: list, sources: list[dict[str, Any]]
) -> tuple[str, dict]:
    agent = state["agent"] or ctx.config.default_agent
    backend, settings, model = ctx.agent_backend(agent)
    write = get_stream_writer()
    parts: list[str] = []
    usage = {"prompt_tokens": 0, "completion_tokens": 0}
    system = persona(agent).system(cited=bool(sources))
    messages = compose_messages(state["text"], system, results, state["plan"])
    if sources:
        messages[-1]["content"] = (
            f"Sources:\n{sources_block(sources)}\n\n{messages[-1]['content']}\n\n"
            "Keep the [n] citations of the work below."
        )
    request = ChatRequest(
        messages,
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
