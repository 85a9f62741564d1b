"""The history for people to read or keep: Markdown, or JSON with everything a task has."""

from __future__ import annotations

import datetime as dt
from typing import Any

from myninja.agent_graph.export.collect import TaskRecord


def task_dict(task: TaskRecord) -> dict[str, Any]:
    return {
        "id": task.id,
        "created_at": _when(task.created_at),
        "agent": task.agent,
        "status": task.status,
        "task": task.text,
        "answer": task.answer,
        "rating": task.rating,
        "notes": task.notes,
        "edited_answer": task.edited,
        "judged_score": task.score,
        "sources": [
            {"n": c["n"], "title": c.get("title"), "source": c.get("source")}
            for c in task.citations
        ],
    }


def markdown(tasks: list[TaskRecord]) -> str:
    parts = [f"# myninja tasks ({len(tasks)})\n"]
    for task in tasks:
        first = " ".join(task.text.split())
        title = first if len(first) <= 80 else first[:79] + "…"
        meta = [task.id, task.agent or "?", task.status, _when(task.created_at)]
        if task.rating:
            meta.append(f"rated {task.rating}")
        if task.score is not None:
            meta.append(f"judged {task.score:g}/10")
        parts.append(f"## {title}\n\n_{' · '.join(meta)}_\n")
        if title != first:
            parts.append(f"> {first}\n")
        parts.append((task.edited or task.answer or "(no answer)").strip() + "\n")
        if task.edited:
            parts.append("_Answer as edited by you; the original:_\n")
            parts.append("\n".join(f"> {line}" for line in task.answer.splitlines()) + "\n")
        if task.citations and "Sources" not in task.answer:
            parts.append("**Sources**\n")
            parts.extend(f"- [{c['n']}] {c.get('title') or ''} {c.get('source') or ''}".rstrip()
                         for c in task.citations)  # fmt: skip
            parts.append("")
        for note in task.notes:
            parts.append(f"_Note:_ {note}\n")
    return "\n".join(parts).rstrip() + "\n"


def _when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
