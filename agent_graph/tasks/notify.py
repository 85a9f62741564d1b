"""The worker's notices, heard with no app open (the app's own are ninja_tui/notify.py): the
`notify_command`, run with a JSON payload on stdin when a task asks a question or finishes, or
when a schedule pauses itself after failed runs; and, while no app is open, the OS notification
whose buttons answer the task here (agent_graph/tasks/desktop.py)."""

from __future__ import annotations

import asyncio
import json
import shlex
import subprocess
from typing import Any

from myninja.agent_graph.events import answer_command
from myninja.agent_graph.history import HistoryStore
from myninja.agent_graph.tasks.desktop import DesktopNotices, Notice
from myninja.agent_graph.tasks.presence import app_open
from myninja.config import Config


def question_payload(task_id: str, question: dict[str, Any]) -> dict[str, Any]:
    """What the command gets for a question event: the question and the command answering it."""
    answer = answer_command(task_id, question["question_id"])
    return {"event": "question", "task_id": task_id, **question, "answer_command": answer}


def finished_payload(task: dict[str, Any]) -> dict[str, Any]:
    """What the command gets for a finished task row: its answer, or its error."""
    outcome = "answer" if task["status"] == "done" else "error"
    return {
        "event": "finished",
        "task_id": task["id"],
        "status": task["status"],
        "text": task["text"],
        outcome: task.get(outcome),
    }


def paused_payload(schedule: dict[str, Any]) -> dict[str, Any]:
    """What the command gets when a schedule paused itself: which one, why, how to resume it."""
    return {
        "event": "schedule_paused",
        "schedule_id": schedule["id"],
        "spec": schedule["spec"],
        "text": schedule["text"],
        "reason": schedule["paused_reason"],
        "resume_command": f"myninja schedule resume {schedule['id']}",
    }


class NotifyCommand:
    """Runs the configured command, each run in a thread: a slow command must not stall the
    other tasks on this event loop. `drain` waits for the runs in flight."""

    def __init__(self, config: Config, store: HistoryStore) -> None:
        self.config = config
        self.store = store
        self.running: set[asyncio.Task[Any]] = set()
        # The OS notification while no app is open: set by the worker (a foreground `ask`
        # speaks in its own terminal).
        self.desktop: DesktopNotices | None = None

    def question(self, task_id: str, question: dict[str, Any]) -> None:
        if self.config.notify.on_question:
            self.send(question_payload(task_id, question))
            task = self.store.get_task(task_id) or {"id": task_id, "text": ""}
            self.tell_desktop(question_notice(task, question))

    def finished(self, task_id: str) -> None:
        task = self.store.get_task(task_id) if self.config.notify.on_finish else None
        if task is not None:
            self.send(finished_payload(task))
            self.tell_desktop(finished_notice(task))

    def tell_desktop(self, notice: Notice) -> None:
        """The OS notification, when switched on and no app is open to tell the person."""
        if self.desktop is None or not self.config.notify.desktop:
            return
        if app_open(self.store.path.parent):
            return
        sent = asyncio.create_task(self.desktop.send(notice))
        self.running.add(sent)
        sent.add_done_callback(self.running.discard)

    def schedule_paused(self, schedule: dict[str, Any]) -> None:
        self.send(paused_payload(schedule))

    def send(self, payload: dict[str, Any]) -> None:
        command = self.config.notify_command
        if not command or not self.config.notify.command:
            return
        run = asyncio.create_task(asyncio.to_thread(run_command, command, payload))
        self.running.add(run)
        run.add_done_callback(self.running.discard)

    async def drain(self) -> None:
        if self.running:  # each is bounded by its own timeout
            await asyncio.gather(*self.running, return_exceptions=True)
        if self.desktop is not None:
            await self.desktop.settle()


def question_notice(task: dict[str, Any], question: dict[str, Any]) -> Notice:
    """A task's question as an OS notification (`question` as the question event has it)."""
    return Notice(
        kind="question",
        task_id=task["id"],
        title=f"myninja · Needs your answer: {task.get('text') or ''}",
        body=str(question.get("text") or "a question"),
        question=question,
    )


def finished_notice(task: dict[str, Any]) -> Notice:
    failed = task["status"] == "failed"
    label = str(task["status"]).capitalize()
    said = task.get("error") if failed else task.get("answer")
    return Notice(
        kind="finished",
        task_id=task["id"],
        title=f"myninja · {label}: {task.get('text') or ''}",
        body=str(said or task.get("text") or ""),
        urgent=failed,
    )


def run_command(command: str, payload: dict[str, Any]) -> None:
    """Run `command` with `payload` as JSON on stdin, at most 10 s; its failures are ignored."""
    try:  # a notifier must never take a task down with it
        subprocess.run(
            shlex.split(command),
            input=json.dumps(payload, default=str),
            text=True,
            timeout=10,
            capture_output=True,
            check=False,
        )
    except (OSError, ValueError, subprocess.TimeoutExpired):  # ValueError: unbalanced quotes
        pass
