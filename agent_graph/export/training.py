"""Fine-tuning records from the history: SFT chat records and ORPO preference pairs.

SFT: one record per good task — rated good, or edited by the person (their edit is the
target), or judged at least `min_score` and not rated bad; never a task rated bad. The system
message is the agent's persona, so a model trained on an agent's records learns that agent.

ORPO: {"prompt", "chosen", "rejected"} from three sources, strongest first:
  - edit: the person's edited answer over the original;
  - rating: a good-rated answer over a bad-rated one to the same (or a near-duplicate) prompt;
  - judge: the best-judged branch over the worst of the same step, when their scores differ by
    at least `min_gap` (a multi-step task's prompt names the step).
Near-duplicate prompts are kept once (the strongest source, then the newest)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from myninja.agent_graph.export.collect import TaskRecord
from myninja.agent_graph.export.dedupe import clusters, keep_best
from myninja.agent_graph.personas import PERSONAS

SOURCES = ("edit", "rating", "judge")  # strongest first


@dataclass
class Example:
    """One SFT record or ORPO pair before it is written: prompt text, and what trains on it."""

    agent: str
    task_id: str
    prompt: str
    created_at: float
    chosen: str
    rejected: str | None = None
    source: str = "sft"
    meta: dict[str, Any] = field(default_factory=dict)
    task_text: str = ""  # the request itself (a step's prompt also names the step)

    def __post_init__(self) -> None:
        self.task_text = self.task_text or self.prompt


def system_prompt(agent: str | None) -> str | None:
    persona = PERSONAS.get(agent or "")
    return persona.system_prompt if persona else None


def sft_examples(tasks: list[TaskRecord], *, min_score: float) -> tuple[list[Example], int]:
    """The records, and how many near-duplicates were left out."""
    picked = []
    for task in tasks:
        if task.rating == "bad":
            continue
        judged_good = task.score is not None and task.score >= min_score
        if not (task.rating == "good" or task.edited or judged_good):
            continue
        why = "rated good" if task.rating == "good" else "edited" if task.edited else "judged"
        picked.append(
            Example(
                task.agent or "unknown",
                task.id,
                task.text,
                task.created_at,
                task.best_answer,
                meta={"why": why, "score": task.score},
            )
        )
    kept = keep_best(picked, lambda e: e.prompt, _sft_rank)
    return kept, len(picked) - len(kept)


def _sft_rank(example: Example) -> tuple:
    strength = {"rated good": 2, "edited": 2, "judged": 1}[example.meta["why"]]
    return (strength, example.meta["score"] or 0, example.created_at)


def orpo_examples(tasks: list[TaskRecord], *, min_gap: float) -> tuple[list[Example], int]:
    """The pairs, and how many near-duplicates were left out."""
    pairs = _edit_pairs(tasks) + _rating_pairs(tasks) + _judge_pairs(tasks, min_gap)
    kept = keep_best(pairs, lambda e: e.task_text, _orpo_rank, lambda e: e.meta.get("step"))
    return kept, len(pairs) - len(kept)


def _orpo_rank(example: Example) -> tuple:
    return (-SOURCES.index(example.source), example.meta.get("gap", 0), example.created_at)


def _edit_pairs(tasks: list[TaskRecord]) -> list[Example]:
    return [
        Example(
            task.agent or "unknown",
            task.id,
            task.text,
            task.created_at,
            task.edited,
            task.answer,
            "edit",
        )
        for task in tasks
        if task.edited and task.answer.strip() and task.edited.strip() != task.answer.strip()
    ]


def _rating_pairs(tasks: list[TaskRecord]) -> list[Example]:
    rated = [t for t in tasks if t.rating in ("good", "bad") and t.answer.strip()]
    pairs = []
    for group in clusters([t.text for t in rated]):
        good = [rated[i] for i in group if rated[i].rating == "good"]
        bad = [rated[i] for i in group if rated[i].rating == "bad"]
        if good and bad:
            winner = max(good, key=lambda t: t.created_at)
            loser = max(bad, key=lambda t: t.created_at)
            pairs.append(
                Example(
                    winner.agent or "unknown",
                    winner.id,
                    winner.text,
                    max(winner.created_at, loser.created_at),
                    winner.best_answer,
                    loser.answer,
                    "rating",
                    meta={"rejected_task": loser.id},
                )
            )
    return pairs


def _judge_pairs(tasks: list[TaskRecord], min_gap: float) -> list[Example]:
    pairs = []
    for task in tasks:
        groups: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
        for branch in task.branches:
            if branch["score"] is not None and (branch["text"] or "").strip():
                groups[(branch["round"], branch["step"])].append(branch)
        last_round = max((r for r, _ in groups), default=None)
        for (round_, step), branches in sorted(groups.items()):
            best = max(branches, key=lambda b: b["score"])
            worst = min(branches, key=lambda b: b["score"])
            gap = float(best["score"]) - float(worst["score"])
            if gap < min_gap:
                continue
            prompt = _step_prompt(task, step, round_ == last_round)
            if prompt is None:
                continue
            pairs.append(
                Example(
                    task.agent or "unknown",
                    task.id,
                    prompt,
                    task.created_at,
                    best["text"],
                    worst["text"],
                    "judge",
                    meta={
                        "gap": gap,
                        "round": round_,
                        "step": step if prompt != task.text else None,
                    },
                    task_text=task.text,
                )
            )
    return pairs


def _step_prompt(task: TaskRecord, step: int, final_round: bool) -> str | None:
    """The task for a one-step plan; the task and the step for a longer one (known only for
    the final round, whose plan is the one kept)."""
    steps = task.plan if final_round else []
    if final_round and len(steps) <= 1:
        return task.text
    if not (0 <= step < len(steps)) or not isinstance(steps[step], dict):
        return None
    title, instruction = steps[step].get("title", ""), steps[step].get("instruction", "")
    return f"{task.text}\n\nStep {step + 1} of {len(steps)}: {title}. {instruction}".strip()


# -- shapes on disk ------------------------------------------------------------------------


def sft_record(example: Example) -> dict[str, Any]:
    messages = []
    if system := system_prompt(example.agent):
        messages.append({"role": "system", "content": system})
    messages += [
        {"role": "user", "content": example.prompt},
        {"role": "assistant", "content": example.chosen},
    ]
    return {"messages": messages}


def orpo_record(example: Example, *, chat: bool) -> dict[str, Any]:
    """TRL's conversational preference format (`chat`), or plain strings."""
    if not chat:
        return {"prompt": example.prompt, "chosen": example.chosen, "rejected": example.rejected}
    prompt = []
    if system := system_prompt(example.agent):
        prompt.append({"role": "system", "content": system})
    prompt.append({"role": "user", "content": example.prompt})
    return {
        "prompt": prompt,
        "chosen": [{"role": "assistant", "content": example.chosen}],
        "rejected": [{"role": "assistant", "content": example.rejected}],
    }
