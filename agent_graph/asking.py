"""Asking the person, shared by a branch's `ask_user` and the agent's needs (nodes/needs.py):
a kept memory that answers the question answers it (a `memory_answered` event), else the task
pauses with the question (LangGraph `interrupt`) until the person answers.

Only memories kept in the graph state count (the plan's, or those the needs node was shown),
so a replayed node decides the same way."""

from __future__ import annotations

from typing import Any

from langgraph.types import interrupt

from myninja.agent_graph.events import make_event
from myninja.agent_graph.history import memories as memory_store


def from_memory(
    memories: list[dict[str, Any]],
    question: str,
    key: str | None,
    events: list[dict[str, Any]],
    branch_id: str | None = None,
    usable: Any = None,
) -> str | None:
    """The answer a kept memory among `memories` gives to `question`, recorded as a
    `memory_answered` event; None where none answers it. `usable(answer)` (optional) turns the
    memory's answer into the value, or None to leave it unused."""
    known = memory_store.answering(memories, question, key)
    if known is None:
        return None
    answer = memory_store.answer_of(known)
    if usable is not None:
        answer = usable(answer)
        if answer is None:
            return None
    events.append(
        make_event(
            "memory_answered",
            memory_id=known["id"],
            text=known["text"],
            question=question,
            key=key,
            branch_id=branch_id,
        )
    )
    return answer


def ask_person(
    question: str,
    *,
    key: str | None = None,
    choices: list[Any] | None = None,
    step: int | None = None,
    branch_id: str | None = None,
) -> str:
    """Pause the task with `question` until the person answers; their answer."""
    answer = interrupt(
        {
            "text": question,
            "choices": [str(c) for c in choices or []] or None,
            "key": key,
            "step": step,
            "branch_id": branch_id,
        }
    )
    return str(answer)
