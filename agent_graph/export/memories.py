"""The person's memories in training records: left out unless asked for (`--with-memory`).

Exported prompts are built from the task's own text, so the memory lines its agents were shown
never reach a record by themselves. Asked for, each record's prompt is headed by the memories
its task's last plan showed, those still kept: a forgotten memory is never exported."""

from __future__ import annotations

from typing import Any

from myninja.agent_graph.export.training import Example
from myninja.agent_graph.history import memories
from myninja.agent_graph.history.store import HistoryStore
from myninja.agent_graph.prompts import memories_block


def shown(store: HistoryStore, task_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """task id -> the memories its last plan showed that are still kept (tasks with none are
    left out)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for task_id in task_ids:
        plans = [e for e in store.events(task_id) if e.get("type") == "plan"]
        ids = plans[-1].get("memories") if plans else None
        if ids and (rows := memories.by_ids(store, [int(i) for i in ids])):
            found[task_id] = rows
    return found


def add_to_prompts(examples: list[Example], by_task: dict[str, list[dict[str, Any]]]) -> None:
    """Head each example's prompt with its task's memories, as the agents were shown them."""
    for example in examples:
        if rows := by_task.get(example.task_id):
            example.prompt = f"{memories_block(rows)}\n\n{example.prompt}"
