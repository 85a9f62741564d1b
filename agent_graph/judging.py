"""How a step's branches are weighed. Checks run by code come first (the code's tests, the
task's examples, the citation checker); then agreement between branches (self-consistency
for short answers); the model judge only where it is configured, either comparing the
branches in one call or scoring each in its own.

A small judge fails right answers and passes wrong ones (benchmarks/judge.py measures how
often); code does not."""

from __future__ import annotations

import re
import string

from myninja.agent_graph.context import GraphContext
from myninja.agent_graph.personas import persona
from myninja.agent_graph.prompts import (
    COMPARE_SCHEMA,
    JUDGE_SCHEMA,
    compare_messages,
    judge_messages,
)
from myninja.agent_graph.research import source_passages
from myninja.agent_graph.state import Candidate, Evaluation, TaskState
from myninja.agent_graph.structured import StructuredOutputError, structured_call
from myninja.config import GraphConfig
from myninja.errors import BackendError
from myninja.skills.research.citations import check_citations

FAILED, UNCHECKED, PASSED = 0, 1, 2  # what the checks say of a branch
PASSED_SCORE, FAILED_SCORE = 9.0, 3.0  # the score a branch weighed by its checks alone gets
SHORT_WORDS = 40  # an answer whose first sentence is longer is not compared for agreement

_ABSTAINS = re.compile(
    r"\b(could not find|couldn't find|cannot find|can't find|do(es)? not (contain|mention|say)|"
    r"don't (contain|mention|say)|not enough information|no information)\b",
    re.IGNORECASE,
)


def tier(candidate: Candidate) -> int:
    """PASSED when its checks ran and passed, FAILED when one failed, else UNCHECKED."""
    ran = [c for c in candidate.get("checks") or [] if c.get("passed") is not None]
    if any(c["passed"] is False for c in ran):
        return FAILED
    return PASSED if ran else UNCHECKED


def whole(candidate: Candidate) -> bool:
    """Whether its calls completed and it said something (only such a branch can be kept)."""
    return not candidate.get("error") and bool(candidate["text"].strip())


def unsupported(state: TaskState, candidate: Candidate) -> int:
    """Sentences of a researcher's answer whose citations the checker finds false."""
    keys = candidate.get("source_keys")
    if not keys:
        return 0
    by_key = {source["key"]: source for source in state.get("sources") or []}
    shown = [by_key[key] for key in keys if key in by_key]
    return len(check_citations(candidate["text"], source_passages(shown)).by_sentence())


def compares_sources(settings: GraphConfig, state: TaskState) -> bool:
    """Whether the step answers from retrieved sources and `[graph] compare_sourced` has its
    branches compared by the judge: all of them run, and agreement does not decide."""
    return settings.compare_sourced and settings.branches > 1 and bool(state.get("sources"))


def falls_short(state: TaskState, candidate: Candidate) -> str | None:
    """Why one branch alone is not enough (None: keep it): it failed, its checks failed, its
    citations do not hold, or it found no answer in its sources."""
    if candidate.get("error"):
        return f"it failed: {candidate['error']}"
    if not candidate["text"].strip():
        return "it gave no answer"
    if tier(candidate) == FAILED:
        failed = [c["verdict"] for c in candidate.get("checks") or [] if c["passed"] is False]
        return "its checks failed: " + "; ".join(failed)
    if faulty := unsupported(state, candidate):
        return f"{faulty} of its sentences are not supported by its sources"
    if candidate.get("source_keys") and _ABSTAINS.search(first_sentence(candidate["text"])):
        return "it found no answer in its sources"
    return None


def first_sentence(text: str) -> str:
    line = next((ln for ln in text.strip().splitlines() if ln.strip()), "")
    return re.split(r"(?<=[.!?])\s", line.strip(), maxsplit=1)[0]


def normalise(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _f1(a: list[str], b: list[str]) -> float:
    common = sum(min(a.count(w), b.count(w)) for w in set(a))
    if not common:
        return 0.0
    precision, recall = common / len(a), common / len(b)
    return 2 * precision * recall / (precision + recall)


def agree(a: str, b: str) -> bool:
    """Whether two answers say the same thing: their first sentences, normalised, are the same,
    or (five words or more each, where one word more or less is wording) share nearly all
    their words."""
    if "```" in a or "```" in b:
        return False  # code agrees by what it does, which its checks tell, not by its words
    x, y = normalise(first_sentence(a)).split(), normalise(first_sentence(b)).split()
    if not x or not y or len(x) > SHORT_WORDS or len(y) > SHORT_WORDS:
        return False
    return x == y or (min(len(x), len(y)) >= 5 and _f1(x, y) >= 0.8)


def agreeing(candidates: list[Candidate]) -> list[Candidate]:
    """The largest group of two or more branches that agree (in branch order), or []."""
    best: list[Candidate] = []
    for i, one in enumerate(candidates):
        group = [one, *(c for c in candidates[i + 1 :] if agree(one["text"], c["text"]))]
        if len(group) > max(1, len(best)):
            best = group
    return best


def check_evaluation(candidate: Candidate) -> Evaluation | None:
    """The branch weighed by its checks alone, when they ran."""
    ran = [c for c in candidate.get("checks") or [] if c.get("passed") is not None]
    if not ran:
        return None
    note = "Checks: " + "; ".join(f"{c['skill']}: {c['verdict']}" for c in ran) + "."
    score = PASSED_SCORE if tier(candidate) == PASSED else FAILED_SCORE
    return Evaluation(
        step=candidate["step"],
        round=candidate["round"],
        branch_id=candidate["branch_id"],
        score=score,
        reasons=note,
    )


async def judge_one(
    ctx: GraphContext, state: TaskState, candidate: Candidate, usage: dict[str, int]
) -> Evaluation:
    """The model judge's 1-10 score of one branch (-1 when the judge failed)."""
    base = {
        "step": candidate["step"],
        "round": candidate["round"],
        "branch_id": candidate["branch_id"],
    }
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


async def judge_compare(
    ctx: GraphContext, state: TaskState, candidates: list[Candidate], usage: dict[str, int]
) -> tuple[Candidate, str] | None:
    """The branch the model judge finds best when it sees them side by side, in one call, and
    why; None when the judge failed."""
    backend, _, model = ctx.agent_backend("judge")
    step = state["plan"][candidates[0]["step"]]
    try:
        verdict = await structured_call(
            backend,
            compare_messages(
                state["text"],
                step,
                [c["text"] for c in candidates],
                persona("judge").system_prompt,
                len(state["plan"]) > 1,
            ),
            COMPARE_SCHEMA,
            retries=1,
            model=model,
            max_tokens=160,
            usage=usage,
        )
    except (StructuredOutputError, BackendError):
        return None
    best = int(verdict["best"])
    if not 1 <= best <= len(candidates):
        return None
    return candidates[best - 1], verdict["reasons"].strip()


def checked_by_skills(candidate: Candidate, verdict: Evaluation) -> Evaluation:
    """The judge's score weighed with what the skills' reviews found by running things:
    failing them caps it below any threshold, passing them is worth a point."""
    checks = candidate.get("checks") or []
    ran = [c for c in checks if c.get("passed") is not None]
    if not ran or verdict["score"] < 0:
        return verdict
    note = " Checks: " + "; ".join(f"{c['skill']}: {c['verdict']}" for c in ran) + "."
    if tier(candidate) == FAILED:
        score = min(verdict["score"], FAILED_SCORE)
    else:
        score = min(10.0, verdict["score"] + 1)
    return Evaluation(**{**verdict, "score": score, "reasons": verdict["reasons"] + note})


def judged_as(candidate: Candidate) -> tuple[bool, str]:
    """Candidates judged once together: the same words, and whether the branch failed."""
    return bool(candidate.get("error")), " ".join(candidate["text"].split())


# "doctests: passed 2, failed 1; examples: passed 2, failed 1": the coder's reviews count.
_COUNTS = re.compile(r"passed (\d+), failed (\d+)")


def passed_share(candidate: Candidate) -> float:
    """Of the tests and examples its checks counted, the share that passed (0.0: none counted)."""
    passed = failed = 0
    for check in candidate.get("checks") or []:
        for p, f in _COUNTS.findall(str(check.get("verdict") or "")):
            passed, failed = passed + int(p), failed + int(f)
    return passed / (passed + failed) if passed + failed else 0.0


def by_checks(state: TaskState, candidates: list[Candidate]) -> tuple[int, list[Candidate]]:
    """The best tier of checks among `candidates`, and those in it whose citations fail least
    (the citation checker is a check too), in branch order; among failing branches, those that
    pass the largest share of their tests and examples."""

    def rank(c: Candidate) -> tuple[int, int, float]:
        share = passed_share(c) if tier(c) == FAILED else 0.0
        return tier(c), -unsupported(state, c), share

    best = max(rank(c) for c in candidates)
    return best[0], [c for c in candidates if rank(c) == best]
