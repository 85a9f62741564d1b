"""Finished tasks with what people and the judge said about them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from myninja.agent_graph.history.store import HistoryStore


@dataclass
class TaskRecord:
    id: str
    text: str
    agent: str | None
    answer: str
    created_at: float
    rating: str | None = None  # the latest good/bad, if any
    notes: list[str] = field(default_factory=list)
    edited: str | None = None  # the latest edited answer, if any
    score: float | None = None  # the judge's score of the answer (see judged_score)
    branches: list[dict[str, Any]] = field(default_factory=list)
    plan: list[dict[str, Any]] = field(default_factory=list)
    citations: list[dict[str, Any]] = field(default_factory=list)
    status: str = "done"

    @property
    def best_answer(self) -> str:
        """What the person would have wanted: their own edit, else the answer."""
        return self.edited if self.edited else self.answer


def judged_score(branches: list[dict[str, Any]]) -> float | None:
    """The weakest chosen branch of the last round: an answer is as good as its worst step."""
    kept = [b for b in branches if b["kept"] and b["score"] is not None]
    if not kept:
        return None
    last = max(b["round"] for b in kept)
    return min(float(b["score"]) for b in kept if b["round"] == last)


def collect(
    store: HistoryStore,
    *,
    agent: str | None = None,
    since: float | None = None,
    statuses: tuple[str, ...] = ("done",),
) -> list[TaskRecord]:
    """Tasks with an answer, oldest first, with their feedback, branches and citations."""
    records = []
    for task in reversed(store.list_tasks(status=statuses, agent=agent, since=since, limit=None)):
        if not (task.get("answer") or "").strip() and task["status"] == "done":
            continue
        record = TaskRecord(
            id=task["id"],
            text=task["text"],
            agent=task.get("agent"),
            answer=task.get("answer") or "",
            created_at=task["created_at"],
            status=task["status"],
            plan=task.get("plan") if isinstance(task.get("plan"), list) else [],
        )
        for row in store.feedback(task["id"]):  # oldest first: later rows win
            if row["rating"] in ("good", "bad"):
                record.rating = row["rating"]
            if row.get("note"):
                record.notes.append(row["note"])
            if (row.get("edited_answer") or "").strip():
                record.edited = row["edited_answer"]
        record.branches = store.branches(task["id"])
        record.score = judged_score(record.branches)
        record.citations = store.citations(task["id"])
        records.append(record)
    return records
