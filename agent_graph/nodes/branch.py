"""fan_out and branch: N candidate solutions of the current step, worked in parallel.

A branch is the agent working the step in a bounded ReAct loop: it may call its skills' tools
and `ask_user`, which pauses the task with a question (LangGraph `interrupt`) until the person
answers. Branches differ in temperature and in the angle their prompt asks for."""

from __future__ import annotations

import json
from typing import Any

from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime
from langgraph.types import Send

from myninja.agent_graph import judging, skill_hooks
from myninja.agent_graph.asking import ask_person, from_memory
from myninja.agent_graph.branch_text import (
    asked_in_text,
    asks_a_fact,
    drop_echoed_label,
    drop_reply_to_note,
    repeats,
)
from myninja.agent_graph.context import GraphContext
from myninja.agent_graph.events import make_event
from myninja.agent_graph.needs import facts_lines
from myninja.agent_graph.personas import persona
from myninja.agent_graph.prompts import (
    ASK_USER_TOOL,
    BRANCH_STYLES,
    NO_ASKING,
    answer_message,
    branch_messages,
    follow_up_messages,
)
from myninja.agent_graph.research import (
    FOLLOW_UP_INSTRUCTION,
    FOLLOW_UP_K,
    follow_up_query,
    gather,
    sources_block,
)
from myninja.agent_graph.state import BranchInput, Candidate, TaskState
from myninja.backends.base import ChatRequest, ToolCall
from myninja.errors import BackendError
from myninja.skills.api import Review, ToolError


def branch_inputs(state: TaskState, branches: int, revisions: int) -> list[BranchInput]:
    step, round_ = state["step"], state["round"]
    done = [r for r in state.get("results", []) if r["round"] == round_ and r["step"] < step]
    inputs = []
    for i in range(branches):
        style, temperature, _ = BRANCH_STYLES[i % len(BRANCH_STYLES)]
        inputs.append(
            BranchInput(
                task_id=state["task_id"],
                text=state["text"],
                agent=state["agent"] or "advisor",
                plan=state["plan"],
                step=step,
                round=round_,
                branch_id=f"s{step + 1}r{round_}b{i + 1}",
                temperature=temperature,
                style=style,
                results=done,
                sources=list(state.get("sources") or []),
                # The first of several branches answers from what the task found; the others
                # (or a lone branch) may search again first, so the judge weighs both.
                follow_up=i > 0 or branches == 1,
                web=bool(state.get("web")),
                prepared=state.get("prepared") or "",
                memories=list(state.get("memories") or []),
                facts=dict(state.get("facts") or {}),
                revisions=revisions,
            )
        )
    return inputs


def wave_inputs(state: TaskState, ctx: GraphContext) -> list[BranchInput]:
    """The branches of the step's current wave: with adaptive branching the first branch
    alone, then (if it fell short) the others together; otherwise all of them at once.

    A first branch that others will follow if it falls short revises less (by default not
    at all): on a small model a fresh branch is likelier to get it right than a revision."""
    settings = ctx.config.graph
    if not evaluate_adaptive(ctx, state):
        return branch_inputs(state, settings.branches, settings.max_revisions)
    if state.get("wave", 1) == 1:
        return branch_inputs(state, 1, min(settings.first_revisions, settings.max_revisions))
    return branch_inputs(state, settings.branches, settings.max_revisions)[1:]


def evaluate_adaptive(ctx: GraphContext, state: TaskState) -> bool:
    """Whether the step runs one branch first. Not where it answers from retrieved sources
    (`compare_sourced`): there every branch runs and the judge compares them."""
    settings = ctx.config.graph
    if judging.compares_sources(settings, state):
        return False
    return settings.adaptive and settings.branches > 1


async def fan_out(state: TaskState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
    """Announce the branches of this wave (durably, before any of them runs)."""
    events = [
        make_event(
            "branch_started",
            step=b["step"],
            round=b["round"],
            branch_id=b["branch_id"],
            agent=b["agent"],
            temperature=b["temperature"],
            style=b["style"],
        )
        for b in wave_inputs(state, runtime.context)
    ]
    return {"events": events}


def send_branches(state: TaskState, runtime: Runtime[GraphContext]) -> list[Send]:
    return [Send("branch", b) for b in wave_inputs(state, runtime.context)]


async def branch(inp: BranchInput, runtime: Runtime[GraphContext]) -> dict[str, Any]:
    ctx = runtime.context
    write = get_stream_writer()
    backend, settings, model = ctx.agent_backend(inp["agent"])
    style_hint = next(hint for name, _, hint in BRANCH_STYLES if name == inp["style"])
    who = persona(inp["agent"])
    may_ask = who.may_ask if settings.may_ask is None else settings.may_ask
    if inp.get("prepared") and settings.may_ask is None:
        # Its skills already worked out what it needs (the free times, say): a small model
        # given that still asks for it, which only stops the task.
        may_ask = False
    events: list[dict[str, Any]] = []
    usage = {"prompt_tokens": 0, "completion_tokens": 0}
    sources: list[dict[str, Any]] = list(inp.get("sources") or [])
    extra: list[dict[str, Any]] = []
    if sources and inp.get("follow_up") and ctx.config.research.follow_up:
        extra = await _follow_up(inp, ctx, who.system(cited=True), sources, events, usage)
        sources += extra
    messages: list[dict[str, Any]] = branch_messages(
        inp["text"],
        who.system(cited=bool(sources)),
        style_hint,
        inp["plan"],
        inp["step"],
        inp["round"],
        inp["results"],
        may_ask,
        sources_block(sources) if sources else "",
        prepared=inp.get("prepared") or "",
        memories=inp.get("memories") or [],
        facts=facts_lines(inp.get("facts") or {}),
    )
    # ask_user travels as a tool only beside real tools; otherwise the prompt's one-line ASK
    # protocol carries it (small models given a tool list tend to echo it instead of working).
    skill_tools = ctx.tools(inp["agent"])
    tools = [*skill_tools, ASK_USER_TOOL] if skill_tools else None
    text, error, exit_code = "", None, None
    checks: list[tuple[str, Review]] = []
    revision, tool_round = 0, -1
    # A greedy branch sampled again writes the same answer: it revises from the report.
    fresh = inp["temperature"] > 0 and ctx.revises_fresh(inp["agent"])
    first_messages, seed = list(messages), None
    try:
        while tool_round < ctx.config.graph.max_tool_rounds:
            tool_round += 1
            offer = tool_round < ctx.config.graph.max_tool_rounds  # the last round must answer
            request = ChatRequest(
                messages,
                model=model,
                temperature=inp["temperature"],
                max_tokens=settings.max_tokens or ctx.config.graph.max_tokens,
                tools=tools if offer else None,
                seed=seed,
            )
            parts: list[str] = []
            calls: list[ToolCall] = []
            async for chunk in backend.stream(request):
                if chunk.text:
                    parts.append(chunk.text)
                    write({"type": "token", "branch_id": inp["branch_id"], "text": chunk.text})
                calls.extend(chunk.tool_calls)
                if chunk.usage:
                    usage["prompt_tokens"] += chunk.usage.prompt_tokens
                    usage["completion_tokens"] += chunk.usage.completion_tokens
            text = drop_echoed_label("".join(parts).strip())
            if revision and not fresh:
                text = drop_reply_to_note(text)
            question = asked_in_text(text) if may_ask and offer and not calls else None
            # What it was told of the person counts as given with the task: "What time
            # should the meeting be in Europe/Berlin?" asks back what the task and the zone say.
            given = f"{inp['text']}\n{facts_lines(inp.get('facts') or {})}"
            asked_back = question is not None and (
                repeats(question, given) or repeats(question, who.system_prompt)
            )
            if question is not None and (asked_back or asks_a_fact(question)):
                # Asking the person their own task (or its own instructions) back, or a
                # general fact, is never needed.
                messages += [{"role": "assistant", "content": text}, NO_ASKING]
                continue
            if question is not None:
                call = ToolCall(f"ask_{tool_round}", "ask_user", json.dumps({"question": question}))
                answer = await _use_tool(inp, ctx, call, events)
                messages += [{"role": "assistant", "content": text}, answer_message(answer)]
                continue
            if not calls:
                checks = await skill_hooks.review(
                    ctx,
                    task=inp["text"],
                    agent=inp["agent"],
                    task_id=inp["task_id"],
                    step=inp["step"],
                    branch_id=inp["branch_id"],
                    text=text,
                    revision=revision,
                    events=events,
                )
                feedback = [r.feedback for _, r in checks if r.passed is False and r.feedback]
                outcomes = [r.passed for _, r in checks]
                if True in outcomes and False not in outcomes:
                    ctx.passed.add(inp["branch_id"])
                budget = inp.get("revisions", ctx.config.graph.max_revisions)
                if not feedback or revision >= budget or _sibling_passed(ctx, inp):
                    break
                # The skills' checks failed it: the model tries again, its tool rounds anew.
                revision, tool_round = revision + 1, -1
                if fresh:  # another sample of the same prompt (another seed)
                    messages, seed = list(first_messages), revision
                    continue
                messages += [
                    {"role": "assistant", "content": text},
                    {"role": "user", "content": "\n\n".join(feedback)},
                ]
                continue
            messages.append(
                {
                    "role": "assistant",
                    "content": text or None,
                    "tool_calls": [call.to_openai() for call in calls],
                }
            )
            for call in calls:
                result = await _use_tool(inp, ctx, call, events)
                messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    except BackendError as exc:
        error, exit_code = exc.one_line(), exc.exit_code
        text = text or exc.partial_text
    candidate = Candidate(
        step=inp["step"],
        round=inp["round"],
        branch_id=inp["branch_id"],
        agent=inp["agent"],
        temperature=inp["temperature"],
        style=inp["style"],
        text=text,
    )
    if sources:
        candidate["source_keys"] = [source["key"] for source in sources]
    if error:
        candidate["error"] = error  # type: ignore[typeddict-unknown-key]
        candidate["exit_code"] = exit_code  # type: ignore[typeddict-unknown-key]
    if checks:
        candidate["checks"] = [
            {"skill": name, "verdict": r.verdict, "passed": r.passed} for name, r in checks
        ]
    events.append(
        make_event(
            "branch_done",
            step=inp["step"],
            round=inp["round"],
            branch_id=inp["branch_id"],
            text=text,
            error=error,
            checks=candidate.get("checks") or None,
            revisions=revision,
        )
    )
    update: dict[str, Any] = {"candidates": [candidate], "events": events, "usage": usage}
    if extra:
        update["sources"] = extra
    return update


def _sibling_passed(ctx: GraphContext, inp: BranchInput) -> bool:
    """Whether another branch of this step passed its checks: the checks keep that one, so
    a revision of this one would only cost time."""
    step_round = inp["branch_id"].rsplit("b", 1)[0]  # "s1r2b3" -> "s1r2"
    return any(b != inp["branch_id"] and b.rsplit("b", 1)[0] == step_round for b in ctx.passed)


async def _follow_up(
    inp: BranchInput,
    ctx: GraphContext,
    system: str,
    sources: list[dict[str, Any]],
    events: list[dict[str, Any]],
    usage: dict[str, int],
) -> list[dict[str, Any]]:
    """The second hop: the branch writes a query from what the first hop found, and up to
    FOLLOW_UP_K passages it has not seen are added. A failed call or search adds nothing."""
    backend, _, model = ctx.agent_backend(inp["agent"])
    request = ChatRequest(
        follow_up_messages(inp["text"], system, sources_block(sources), FOLLOW_UP_INSTRUCTION),
        model=model,
        temperature=inp["temperature"],
        max_tokens=48,
    )
    try:
        result = await backend.chat(request)
    except BackendError:
        return []
    usage["prompt_tokens"] += result.usage.prompt_tokens
    usage["completion_tokens"] += result.usage.completion_tokens
    query = follow_up_query(result.text, inp["text"])
    if query is None:
        return []
    found, notes, _ = await gather(
        query, ctx.config, FOLLOW_UP_K + len(sources), web=bool(inp.get("web"))
    )
    seen = {source["key"] for source in sources}
    extra = [s for s in found if s["key"] not in seen][:FOLLOW_UP_K]
    events.append(
        make_event(
            "retrieved",
            query=query,
            hop=2,
            branch_id=inp["branch_id"],
            passages=extra,
            notes=notes,
        )
    )
    return extra


async def _use_tool(
    inp: BranchInput, ctx: GraphContext, call: ToolCall, events: list[dict[str, Any]]
) -> str:
    try:
        arguments = call.parsed_arguments()
    except ValueError:
        arguments = None
    events.append(
        make_event(
            "tool_call",
            branch_id=inp["branch_id"],
            call_id=call.id,
            name=call.name,
            arguments=arguments or call.arguments,
        )
    )
    result, error = "", None
    if arguments is None or not isinstance(arguments, dict):
        error = "the arguments were not a JSON object"
    elif call.name == "ask_user" and isinstance(arguments.get("question"), str):
        key = arguments.get("key") if isinstance(arguments.get("key"), str) else None
        # A memory the agent was shown that answers this already: the person is not asked.
        # Only the plan's memories (kept in the state) count, so a replay decides the same.
        known = from_memory(
            inp.get("memories") or [], arguments["question"], key, events, inp["branch_id"]
        )
        if known is not None:
            result = known
        else:
            result = ask_person(
                arguments["question"],
                key=arguments.get("key"),
                choices=arguments.get("choices"),
                step=inp["step"],
                branch_id=inp["branch_id"],
            )
    elif ctx.skills is not None:
        try:
            skill, tool = ctx.skills.tool(call.name, agent=inp["agent"])
        except ToolError as exc:
            error = str(exc)
        else:
            result, error = await skill_hooks.gated_call(
                ctx,
                skill,
                tool,
                arguments,
                task_id=inp["task_id"],
                step=inp["step"],
                branch_id=inp["branch_id"],
                workspace=skill_hooks.workspace_of(inp["task_id"], inp["branch_id"]),
            )
    else:
        error = f"no tool named {call.name!r} is available"
    events.append(
        make_event(
            "tool_result",
            branch_id=inp["branch_id"],
            call_id=call.id,
            name=call.name,
            result=result,
            error=error,
        )
    )
    return json.dumps({"error": error}) if error else result
