"""Running a task to its next rest in this process (ask, answer), or through the worker (run):
either way the person sees the task's feed (agent_graph/tasks/feed.py), each event once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterable, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from myninja import paths
from myninja.agent_graph.history import HistoryStore
from myninja.agent_graph.history.statuses import UNFINISHED
from myninja.agent_graph.tasks.client import WorkerClient
from myninja.errors import UsageError
from myninja.ninja_tui.cli.render import EventPrinter

if TYPE_CHECKING:
    from myninja.agent_graph.tasks.manager import TaskManager


class PresetAnswers:
    """Answers given ahead of time (`--answers FILE`): a JSON object keyed by a question's key
    or its exact text, or a JSON list used in the order questions come."""

    def __init__(self, path: Path | None) -> None:
        self.by_key: dict[str, str] = {}
        self.in_order: list[str] = []
        if path is None:
            return
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(f"--answers {path}: cannot read it as JSON: {exc}") from exc
        if isinstance(data, dict):
            self.by_key = {str(k): str(v) for k, v in data.items()}
        elif isinstance(data, list):
            self.in_order = [str(v) for v in data]
        else:
            raise UsageError(f"--answers {path}: expected a JSON object or list")

    def for_question(self, question: dict[str, Any]) -> str | None:
        for name in (question.get("key"), question["text"]):
            if name and name in self.by_key:
                return self.by_key.pop(name)
        return self.in_order.pop(0) if self.in_order else None


async def show_feed(feed: AsyncIterable[dict[str, Any]], printer: EventPrinter) -> str | None:
    """Print a task's feed; returns the status it came to rest at."""
    status = None
    async for item in feed:
        if "event" in item:
            printer.show(item["event"])
        else:
            status = item["end"]
    return status


async def drive_here(
    manager: TaskManager,
    task_id: str,
    printer: EventPrinter,
    answers: PresetAnswers,
    *,
    after_seq: int = 0,
    begin: Callable[[], Awaitable[object]] | None = None,
) -> int:
    """Print the task's feed from `after_seq` until it rests, answering its questions from
    `answers` while they last. `begin` (starting the task, or answering it) runs once the feed
    listens, so the person sees every event it causes."""
    try:
        while True:
            with manager.feed(task_id, after_seq) as feed:
                if begin is not None:
                    await begin()
                    begin = None
                status = await show_feed(feed, printer)
                after_seq = feed.cursor.seq
            if status != "waiting":
                return printer.exit_code
            questions = manager.store.questions(task_id)
            supplied = [(q, a) for q in questions if (a := answers.for_question(q)) is not None]
            if not supplied:
                return printer.waiting(task_id, questions)
            for question, answer in supplied:
                await manager.answer(task_id, question["id"], answer)
    except asyncio.CancelledError:
        # Ctrl-C on a foreground task stops it for good.
        task = manager.store.get_task(task_id) or {}
        if task.get("status") in UNFINISHED:
            await manager.cancel(task_id)
        raise


async def ensure_worker(client: WorkerClient) -> None:
    """Start the data dir's worker, or replace one started from other code; one line says so
    when tasks go on in the one replaced."""
    if notice := await client.ensure():
        click.echo(f"myninja: {notice}", err=True)


async def follow_worker(
    client: WorkerClient, task_id: str, printer: EventPrinter, after_seq: int = 0
) -> int:
    """Print the task's feed (its events after `after_seq`) through the worker until it rests."""
    if await show_feed(client.follow(task_id, after_seq), printer) == "waiting":
        store = HistoryStore(paths.data_dir() / "history.db")
        try:
            return printer.waiting(task_id, store.questions(task_id))
        finally:
            store.close()
    return printer.exit_code
