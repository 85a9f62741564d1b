"""evaluate and select: which branch of the step is kept, whether more branches are tried, or
whether the task is replanned.

Adaptive branching (`[graph] adaptive`, the default): a step is worked by one branch first,
kept unless it falls short (it failed, its checks failed, its citations do not hold); only then
do the other branches run, together (a step that answers from retrieved sources runs them
all at once: `[graph] compare_sourced`). Among several branches, checks run by code decide first
(passing over unchecked over failing), then agreement between them, then the model judge as
`[graph] judge` says (one call comparing them, or none: the first); `judge = "each"` is the
classic way, a call scoring each branch, which also replans when every score is low.
Every branch failing its checks, with rounds left, means a replan (unless the plan is the task
itself, one step the planner did not make: `[graph] replan_one_step`); branches that agree, or
pass their checks, never do. When rounds run out the best branch is kept as a best effort,
and the events say so (judging.py has the ways of weighing)."""

from __future__ import annotations

import asyncio
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Command

from myninja.agent_graph import judging
from myninja.agent_graph.context import GraphContext
from myninja.agent_graph.events import make_event
from myninja.agent_graph.nodes.branch import evaluate_adaptive
from myninja.agent_graph.state import Candidate, Evaluation, StepResult, TaskState


async def evaluate(state: TaskState, runtime: Runtime[GraphContext]) -> Command:
    ctx = runtime.context
    step, round_ = state["step"], state["round"]
    candidates = [c for c in state["candidates"] if c["step"] == step and c["round"] == round_]
    if all(c.get("error") for c in candidates):
        return _all_failed(candidates)

    if state.get("wave", 1) == 1 and evaluate_adaptive(ctx, state) and len(candidates) == 1:
        (first,) = candidates
        short = judging.falls_short(state, first)
        if short is None:
            return _keep(state, first, "only", [judging.check_evaluation(first)], {})
        # Falling short is what more branches are for.
        event = make_event(
            "widened", step=step, round=round_, branch_id=first["branch_id"], reason=short
        )
        return Command(update={"wave": 2, "events": [event]}, goto="fan_out")
    return await _choose(ctx, state, candidates)


async def _choose(ctx: GraphContext, state: TaskState, candidates: list[Candidate]) -> Command:
    settings = ctx.config.graph
    round_ = state["round"]
    usage: dict[str, int] = {}
    whole = [c for c in candidates if judging.whole(c)] or [
        c for c in candidates if not c.get("error")
    ]
    best_tier, group = judging.by_checks(state, whole)
    checked = [judging.check_evaluation(c) for c in candidates]
    if best_tier == judging.FAILED and round_ < settings.max_rounds and _may_replan(ctx, state):
        reason = "; ".join(f"{c['branch_id']}: {judging.falls_short(state, c)}" for c in candidates)
        return _replan(state, reason, checked, usage)

    failed = _failed(best_tier)
    if len(group) == 1:
        by = "only" if len(whole) == 1 else "checks"  # else the checks narrowed it to one
        return _keep(state, group[0], by, checked, usage, best_effort=failed)
    if settings.judge == "each":  # the judge scores every branch, as it always did
        return await _judge_each(ctx, state, candidates, group, best_tier, usage)
    if judging.compares_sources(settings, state):
        pass  # answers from the same passages agree on wrong answers too: the judge compares
    elif agreeing := judging.agreeing(group):
        return _keep(state, agreeing[0], "agreement", checked, usage, best_effort=failed)
    if settings.judge == "compare":
        verdict = await judging.judge_compare(ctx, state, group, usage)
        chosen, by = (verdict[0], "judge") if verdict else (group[0], "first")
        return _keep(state, chosen, by, checked, usage, best_effort=failed)
    return _keep(state, group[0], "first", checked, usage, best_effort=failed)


def _may_replan(ctx: GraphContext, state: TaskState) -> bool:
    """A plan the planner made can change; a one-step plan that is the task itself cannot, and
    a new round of it is the same prompts again (on HumanEval, minutes for nothing)."""
    if ctx.config.graph.replan_one_step:
        return True
    return ctx.max_steps(state["agent"]) > 1


def _failed(best_tier: int) -> bool:
    """Kept though its checks failed: the rounds ran out."""
    return best_tier == judging.FAILED


async def _judge_each(
    ctx: GraphContext,
    state: TaskState,
    candidates: list[Candidate],
    group: list[Candidate],
    best_tier: int,
    usage: dict[str, int],
) -> Command:
    """The judge scores every branch in a call of its own (branches that wrote the same
    answer are judged once); checks and citations adjust the scores; the best is kept, or,
    when every score is below the threshold and no branch passed its checks, the task is
    replanned."""
    settings = ctx.config.graph
    distinct: dict[tuple[bool, str], Candidate] = {}
    for candidate in candidates:
        if judging.whole(candidate):
            distinct.setdefault(judging.judged_as(candidate), candidate)
    verdicts = await asyncio.gather(
        *(judging.judge_one(ctx, state, c, usage) for c in distinct.values())
    )
    by_text = dict(zip(distinct, verdicts, strict=True))
    evaluations: list[Evaluation | None] = []
    for c in candidates:
        if not judging.whole(c):
            evaluations.append(None)
            continue
        verdict = Evaluation(**{**by_text[judging.judged_as(c)], "branch_id": c["branch_id"]})
        evaluations.append(judging.checked_by_skills(c, verdict))
    scored = {e["branch_id"]: e for e in evaluations if e is not None and e["score"] >= 0}
    in_group = [scored[c["branch_id"]] for c in group if c["branch_id"] in scored]
    if not in_group:  # the judge failed every time: no basis for a replan
        return _keep(state, group[0], "first", evaluations, usage, best_effort=_failed(best_tier))
    best = max(in_group, key=lambda e: e["score"])
    below = best["score"] < settings.judge_threshold and best_tier != judging.PASSED
    if below and state["round"] < settings.max_rounds:
        reason = "; ".join(
            f"{e['branch_id']} scored {e['score']:g}: {e['reasons']}" for e in scored.values()
        )
        return _replan(state, reason, evaluations, usage)
    chosen = next(c for c in group if c["branch_id"] == best["branch_id"])
    return _keep(
        state, chosen, "judge", evaluations, usage, best_effort=below or _failed(best_tier)
    )


def _evaluation_events(evaluations: list[Evaluation | None]) -> list[dict[str, Any]]:
    return [make_event("evaluation", **e) for e in evaluations if e is not None]


def _replan(
    state: TaskState,
    reason: str,
    evaluations: list[Evaluation | None],
    usage: dict[str, int],
) -> Command:
    events = [
        *_evaluation_events(evaluations),
        make_event("replan", round=state["round"] + 1, reason=reason),
    ]
    kept = [e for e in evaluations if e is not None]
    update = {"evaluations": kept, "events": events, "usage": usage, "replan_reason": reason}
    return Command(update=update, goto="plan")


def _keep(
    state: TaskState,
    chosen: Candidate,
    by: str,
    evaluations: list[Evaluation | None],
    usage: dict[str, int],
    best_effort: bool = False,
) -> Command:
    step, round_ = state["step"], state["round"]
    score = next(
        (
            e["score"]
            for e in evaluations
            if e is not None and e["branch_id"] == chosen["branch_id"]
        ),
        None,
    )
    events = [
        *_evaluation_events(evaluations),
        make_event(
            "selected",
            step=step,
            round=round_,
            branch_id=chosen["branch_id"],
            score=max(score, 0.0) if score is not None else None,
            best_effort=best_effort,
            by=by,
        ),
    ]
    result = StepResult(
        step=step,
        round=round_,
        branch_id=chosen["branch_id"],
        score=score if score is not None else 0.0,
        text=chosen["text"],
    )
    if "source_keys" in chosen:
        result["source_keys"] = chosen["source_keys"]
    update: dict[str, Any] = {
        "evaluations": [e for e in evaluations if e is not None],
        "events": events,
        "usage": usage,
        "results": [result],
        "wave": 1,
    }
    if step + 1 < len(state["plan"]):
        update["step"] = step + 1
        return Command(update=update, goto="fan_out")
    return Command(update=update, goto="finalize")


def _all_failed(candidates: list[Candidate]) -> Command:
    first = candidates[0]["error"]  # type: ignore[typeddict-item]
    # The backend's own exit code (2 for a model name that does not exist, 4 when it cannot
    # be reached); older checkpoints carry none.
    code = candidates[0].get("exit_code")  # type: ignore[misc]
    failed = make_event(
        "task_failed",
        error=f"every branch failed: {first}",
        error_type="BackendError",
        exit_code=code or (4 if "connect" in first or "unreachable" in first else 1),
        partial_text="",
    )
    return Command(update={"failed": True, "events": [failed]}, goto="__end__")
