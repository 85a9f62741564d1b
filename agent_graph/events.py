"""The one event schema. Every view renders these: the TUI, `--json` output, the history store.

An event is a flat JSON object: `v` (schema version), `type`, `task_id`, `seq` (1, 2, … per
task), `ts` (Unix seconds) and the fields of its type, listed in `FIELDS`. Consumers must ignore
fields they do not know; a new field never changes the meaning of an old one.

Most events are durable: the history store keeps each exactly once, with its `seq`. Events of
the types in `TRANSIENT` (tokens as they stream) are delivered live only and carry `seq` 0; what
they add up to is kept in a durable event (`branch_done`, `answer`).
"""

from __future__ import annotations

import re
import time
from typing import Any

SCHEMA_VERSION = 1

# type -> the fields it carries (documented in README "Events").
FIELDS: dict[str, tuple[str, ...]] = {
    "task_started": ("text", "agent", "backend", "model"),
    "routed": ("agent", "path", "reason", "examples"),
    "plan": ("steps", "round", "examples", "memories"),
    "branch_started": ("step", "round", "branch_id", "agent", "temperature", "style"),
    "token": ("text", "branch_id"),
    "tool_call": ("branch_id", "call_id", "name", "arguments"),
    "tool_result": ("branch_id", "call_id", "name", "result", "error"),
    "branch_done": ("step", "round", "branch_id", "text", "checks", "revisions"),
    "evaluation": ("step", "round", "branch_id", "score", "reasons"),
    "widened": ("step", "round", "branch_id", "reason"),
    "selected": ("step", "round", "branch_id", "score", "best_effort", "by"),
    "replan": ("round", "reason"),
    "question": ("question_id", "text", "choices", "key", "step", "branch_id"),
    "question_answered": ("question_id", "answer"),
    "memory_proposed": ("memory_id", "text", "status", "question_id"),
    "memory_answered": ("memory_id", "text", "question", "key", "branch_id"),
    "retrieved": ("query", "hop", "branch_id", "passages", "notes"),
    "citations": ("sources", "dropped", "repaired", "attributed"),
    "answer": ("text",),
    "task_done": ("answer", "usage", "timings"),
    "task_failed": ("error", "error_type", "exit_code", "partial_text"),
    "task_cancelled": ("reason",),
    "task_waiting": ("questions",),
}
# Delivered live only: tokens as they stream, and the notice that a run paused for questions.
TRANSIENT = frozenset({"token", "task_waiting"})
TERMINAL = frozenset({"task_done", "task_failed", "task_cancelled"})


def make_event(type_: str, **data: Any) -> dict[str, Any]:
    """An event as graph nodes write it into state: no task id or seq yet (the runtime adds
    them when it stores the event), but its timestamp, so a replay is byte-identical."""
    if type_ not in FIELDS:
        raise ValueError(f"unknown event type {type_!r}")
    return {"type": type_, "ts": round(time.time(), 6), **data}


def question_key(text: str) -> str:
    """What makes two questions the same question: their words, whatever the case or marks
    (branches often ask the same thing; one answer serves them all)."""
    return " ".join(re.findall(r"\w+", text.lower()))


def answer_command(task_id: str, question_id: str) -> str:
    """The exact command that answers a question (printed by `ask`, sent to notifiers)."""
    return f'myninja answer {task_id} {question_id} "YOUR ANSWER"'
