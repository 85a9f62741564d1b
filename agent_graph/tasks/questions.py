"""Which open questions an answer is for, and which pending interrupts have answers."""

from __future__ import annotations

from typing import Any

from myninja.agent_graph.events import question_key
from myninja.agent_graph.history import HistoryStore
from myninja.errors import UsageError


def copies_answered(
    task_id: str, open_questions: list[dict[str, Any]], question_id: str | None
) -> tuple[str, list[str]]:
    """The question `question_id` (an id prefix; None where the task asks one thing) and the
    ids of every open copy of it: branches often ask the same thing, and one answer serves
    them all. A UsageError names the choices where that is not one question."""
    if question_id is None:
        if len({question_key(q["text"]) for q in open_questions}) != 1:
            ids = ", ".join(q["id"] for q in open_questions) or "none"
            raise UsageError(
                f"task {task_id} has {len(open_questions)} open questions ({ids})",
                hint="name the question id: myninja answer TASK QUESTION_ID TEXT",
            )
        question_id = open_questions[0]["id"]
    else:
        matches = [q["id"] for q in open_questions if q["id"].startswith(question_id)]
        if len(matches) != 1:
            raise UsageError(f"task {task_id} has no single open question {question_id!r}")
        question_id = matches[0]
    asked = question_key(next(q["text"] for q in open_questions if q["id"] == question_id))
    same = [q["id"] for q in open_questions if question_key(q["text"]) == asked]
    return question_id, same


def recorded_answers(store: HistoryStore, task_id: str, interrupts: Any) -> dict[str, str]:
    """Answers recorded for still-pending interrupts (given while the task was busy, or
    before a restart), by interrupt id."""
    answered = {q["id"]: q["answer"] for q in store.questions(task_id, status="answered")}
    return {i.id: answered[i.id] for i in interrupts if i.id in answered}
