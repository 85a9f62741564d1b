"""evaluate and select: a judge scores every branch; the best is kept, or the task is replanned.

If every branch scores below the threshold and rounds are left, the task goes back to plan
with the judge's reasons; when rounds run out the best branch is kept as a best effort, and
the events say so."""

from __future__ import annotations

import asyncio
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Command

from agent_graph.context import GraphContext
from agent_graph.events import make_event
from agent_graph.personas import persona
from agent_graph.prompts import JUDGE_SCHEMA, judge_messages
from agent_graph.research import source_passages
from agent_graph.state import Candidate, Evaluation, StepResult, TaskState
from agent_graph.structured import StructuredOutputError, structured_call
from myninja.errors import BackendError
from skills.research.citations import check_citations


async def _judge(
    ctx: GraphContext, state: TaskState, candidate: Candidate, usage: dict[str, int]
) -> Evaluation:
    base = {
        "step": candidate["step"],
        "round": candidate["round"],
        "branch_id": candidate["branch_id"],
    }
    if candidate.get("error"):
        # What arrived before its call broke (a cut stream, a timeout mid-reply) is part of an
        # answer: never judged, never kept.
        return Evaluation(**base, score=0.0, reasons=f"the branch failed: {candidate['error']}")
    if not candidate["text"]:
        return Evaluation(**base, score=0.0, reasons="the branch produced no answer")
    backend, _, model = ctx.agent_backend("judge")
    try:
        verdict = await structured_call(
            backend,
            judge_messages(
                state["text"],
                state["plan"][candidate["step"]],
                candidate["text"],
                persona("judge").system_prompt,
                len(state["plan"]) > 1,
                cited=bool(candidate.get("source_keys")),
            ),
            JUDGE_SCHEMA,
            retries=1,
            model=model,
            max_tokens=200,
            usage=usage,
        )
    except (StructuredOutputError, BackendError) as exc:
        return Evaluation(**base, score=-1.0, reasons=f"the judge failed: {exc}")
    return Evaluation(**base, score=float(verdict["score"]), reasons=verdict["reasons"].strip())


def _cited_fairly(state: TaskState, candidate: Candidate, verdict: Evaluation) -> Evaluation:
    """The judge's score less one point per sentence whose citations the code finds false
    (a mark naming no passage the branch was shown, a quote not in the passage it cites):
    a small judge cannot check that, and a researcher must not win with it."""
    keys = candidate.get("source_keys")
    if not keys or verdict["score"] <= 1:
        return verdict
    by_key = {source["key"]: source for source in state.get("sources") or []}
    shown = [by_key[key] for key in keys if key in by_key]
    faulty = len(check_citations(candidate["text"], source_passages(shown)).by_sentence())
    if not faulty:
        return verdict
    score = max(1.0, verdict["score"] - faulty)
    note = f" Citation check: {faulty} sentence{'s' * (faulty != 1)} not supported."
    return Evaluation(**{**verdict, "score": score, "reasons": verdict["reasons"] + note})


def _judged_as(candidate: Candidate) -> tuple[bool, str]:
    """Candidates judged once together: the same words, and whether the branch failed."""
    return bool(candidate.get("error")), " ".join(candidate["text"].split())


FAILED_CHECK_CAP = 3.0  # the most a branch whose own checks fail can score: below any threshold


def _checked_by_skills(candidate: Candidate, verdict: Evaluation) -> Evaluation:
    """The judge's score weighed with what the skills' reviews found by running things (the
    code's tests, say): failing them caps it, passing them is worth a point. A small judge
    reading code cannot tell whether it runs; this can."""
    checks = candidate.get("checks") or []
    ran = [c for c in checks if c.get("passed") is not None]
    if not ran or verdict["score"] < 0:
        return verdict
    note = " Checks: " + "; ".join(f"{c['skill']}: {c['verdict']}" for c in ran) + "."
    if any(c["passed"] is False for c in ran):
        score = min(verdict["score"], FAILED_CHECK_CAP)
    else:
        score = min(10.0, verdict["score"] + 1)
    return Evaluation(**{**verdict, "score": score, "reasons": verdict["reasons"] + note})


async def evaluate(state: TaskState, runtime: Runtime[GraphContext]) -> Command:
    ctx = runtime.context
    settings = ctx.config.graph
    step, round_ = state["step"], state["round"]
    candidates = [c for c in state["candidates"] if c["step"] == step and c["round"] == round_]
    usage: dict[str, int] = {}
    # Branches that wrote the same answer are judged once: on a small model that is common,
    # and every judge call costs seconds.
    distinct: dict[tuple[bool, str], Candidate] = {}
    for candidate in candidates:
        distinct.setdefault(_judged_as(candidate), candidate)
    verdicts = await asyncio.gather(*(_judge(ctx, state, c, usage) for c in distinct.values()))
    by_text = dict(zip(distinct, verdicts, strict=True))
    evaluations = [
        _checked_by_skills(
            c,
            _cited_fairly(
                state,
                c,
                Evaluation(**{**by_text[_judged_as(c)], "branch_id": c["branch_id"]}),
            ),
        )
        for c in candidates
    ]
    events = [make_event("evaluation", **e) for e in evaluations]
    update: dict[str, Any] = {"evaluations": evaluations, "events": events, "usage": usage}

    if all(c.get("error") for c in candidates):
        first = candidates[0]["error"]  # type: ignore[typeddict-item]
        # The backend's own exit code (2 for a model name that does not exist, 4 when it
        # cannot be reached); older checkpoints carry none.
        code = candidates[0].get("exit_code")  # type: ignore[misc]
        update["failed"] = True
        update["events"] = [
            *events,
            make_event(
                "task_failed",
                error=f"every branch failed: {first}",
                error_type="BackendError",
                exit_code=code or (4 if "connect" in first or "unreachable" in first else 1),
                partial_text="",
            ),
        ]
        return Command(update=update, goto="__end__")

    # Only branches whose calls completed can be kept.
    whole = [e for e, c in zip(evaluations, candidates, strict=True) if not c.get("error")]
    judged = [e for e in whole if e["score"] >= 0]
    # max keeps the first of equal scores; if the judge failed every time there is no basis
    # for a replan, and the first whole branch is kept.
    best = max(judged, key=lambda e: e["score"]) if judged else whole[0]
    below = bool(judged) and best["score"] < settings.judge_threshold
    if below and round_ < settings.max_rounds:
        reason = "; ".join(
            f"{e['branch_id']} scored {e['score']:g}: {e['reasons']}" for e in judged
        )
        update["events"] = [*events, make_event("replan", round=round_ + 1, reason=reason)]
        update["replan_reason"] = reason
        return Command(update=update, goto="plan")

    chosen = next(c for c in candidates if c["branch_id"] == best["branch_id"])
    update["events"] = [
        *events,
        make_event(
            "selected",
            step=step,
            round=round_,
            branch_id=best["branch_id"],
            score=max(best["score"], 0.0),
            best_effort=below,
        ),
    ]
    update["results"] = [
        StepResult(
            step=step,
            round=round_,
            branch_id=best["branch_id"],
            score=best["score"],
            text=chosen["text"],
        )
    ]
    if "source_keys" in chosen:
        update["results"][0]["source_keys"] = chosen["source_keys"]
    if step + 1 < len(state["plan"]):
        update["step"] = step + 1
        return Command(update=update, goto="fan_out")
    return Command(update=update, goto="finalize")
