"""The TaskManager: many tasks at once in one asyncio process, checkpointed, recorded, resumable.

Each task is a LangGraph thread (thread id = task id) checkpointed in checkpoints.db with
durability "sync", so a killed process loses at most the step that was running. After every
step the recorder copies the step's new events into history.db (recorder.py); listeners hear
them once committed, and tokens as they stream (feed.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Command, StateSnapshot

from myninja import paths
from myninja.agent_graph.checkpoints import open_checkpointer
from myninja.agent_graph.context import BackendPool
from myninja.agent_graph.graph import build_graph
from myninja.agent_graph.history import HistoryStore
from myninja.agent_graph.history.connection import Recovery, announce, make_folder
from myninja.agent_graph.history.statuses import FINISHED, NEVER_RESUMED
from myninja.agent_graph.tasks.feed import EventHub, Listener, TaskFeed
from myninja.agent_graph.tasks.inputs import checked_request, first_state, graph_context
from myninja.agent_graph.tasks.notify import NotifyCommand
from myninja.agent_graph.tasks.owners import owner_alive, process_owner
from myninja.agent_graph.tasks.questions import copies_answered, recorded_answers
from myninja.agent_graph.tasks.recorder import Recorder, TaskRecord
from myninja.agent_graph.tasks.skillset import SkillSet
from myninja.backends.base import Backend
from myninja.config import Config
from myninja.errors import EXIT_FAILED, BudgetSpent, MyninjaError, UsageError


def new_task_id() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


@dataclass
class TaskHandle:
    task_id: str
    record: TaskRecord
    runner: asyncio.Task[None] | None = None
    cancel_requested: bool = False
    # Submitted here under a new id and not run yet: there is no checkpoint to look for.
    fresh: bool = False


# What aget_state returns for a thread without a checkpoint.
NO_CHECKPOINT = StateSnapshot(
    values={},
    next=(),
    config={},
    metadata=None,
    created_at=None,
    parent_config=None,
    tasks=(),
    interrupts=(),
)


class TaskManager:
    def __init__(
        self,
        config: Config,
        store: HistoryStore,
        checkpointer: BaseCheckpointSaver,
        backends: BackendPool,
    ) -> None:
        self.config = config
        self.store = store
        self.graph = build_graph().compile(checkpointer=checkpointer)
        self.backends = backends
        self.owner = process_owner()
        self.hub = EventHub()
        self.recorder = Recorder(store, self.hub)
        self.notifier = NotifyCommand(config, store)
        self._handles: dict[str, TaskHandle] = {}
        self.skillset = SkillSet(config)
        # What tasks started before a reconfigure still use: closed with the manager.
        self.retired: list[BackendPool | SkillSet] = []

    @property
    def skills(self) -> Any:
        """The skills of tasks started from now on (a `SkillRegistry`)."""
        return self.skillset.skills

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        config: Config,
        data_dir: Path | None = None,
        *,
        backends: dict[str, Backend] | None = None,
        checkpointer: BaseCheckpointSaver | None = None,
    ) -> AsyncIterator[TaskManager]:
        """A manager over `data_dir`; `checkpointer` replaces checkpoints.db (benchmarks)."""
        data_dir = data_dir or paths.data_dir()
        make_folder(data_dir)  # a file in the way, a read-only parent: one clear line
        store = HistoryStore(data_dir / "history.db")
        pool = BackendPool(config, backends)
        async with contextlib.AsyncExitStack() as stack:
            if checkpointer is None:
                checkpointer = await stack.enter_async_context(
                    open_checkpointer(data_dir / "checkpoints.db")
                )
            manager = cls(config, store, checkpointer, pool)
            try:
                recovered = getattr(checkpointer, "recovered", None)
                if recovered is not None:
                    manager._checkpoints_lost(recovered)
                yield manager
            finally:
                await manager.shutdown()
                for used in (*manager.retired, manager.backends, manager.skillset):
                    await used.aclose()
                store.close()

    def _checkpoints_lost(self, recovery: Recovery) -> None:
        """checkpoints.db was damaged and replaced: a running or waiting task whose owner is
        gone cannot continue where it was, so it fails with the reason (its history stays)."""
        lost = [
            task["id"]
            for task in self.store.unfinished_tasks()
            if task["status"] != "queued"
            and (task["owner"] == self.owner or not owner_alive(task["owner"]))
        ]
        for task_id in lost:
            error = (
                f"its checkpoint was lost: {recovery.path} was damaged and is kept as "
                f"{recovery.kept_as}; run the task again"
            )
            self._crashed(task_id, error, "CheckpointLost", EXIT_FAILED)
        n = len(lost)
        more = f"; {n} unfinished task{'s' * (n != 1)} could not resume: marked failed" if n else ""
        announce(recovery, more)

    def reconfigure(self, config: Config) -> None:
        """Use `config` for tasks started from now on; running ones keep the backends they
        have (their pool is closed with the manager)."""
        self.retired += [self.backends, self.skillset]
        self.config = config
        self.notifier.config = config
        self.backends = BackendPool(config)
        self.skillset = SkillSet(config)

    # Listening ----------------------------------------------------------------------------
    def listen(self, task_id: str | None, listener: Listener) -> Callable[[], None]:
        """Call `listener` with every event of one task (or of all tasks); returns unlisten."""
        return self.hub.listen(task_id, listener)

    def feed(self, task_id: str, after_seq: int = 0) -> TaskFeed:
        """The task's events after `after_seq`, stored then live, until it rests (feed.py)."""
        return TaskFeed(self, task_id, after_seq)

    # Submitting ---------------------------------------------------------------------------
    async def submit(
        self,
        text: str,
        *,
        agent: str | None = None,
        backend: str | None = None,
        model: str | None = None,
        task_id: str | None = None,
        start: bool = True,
        allow: list[str] | None = None,
        dry_run: bool = False,
    ) -> str:
        agent, body = checked_request(self.config, text, agent, backend, allow)
        fresh = task_id is None
        task_id = task_id or new_task_id()
        self.store.create_task(task_id, body, agent=agent, status="queued", owner=self.owner)
        options = {"backend": backend, "model": model, "allow": sorted(set(allow or ()))}
        if dry_run:  # kept with the task, so answering its questions later stays a dry run
            options["dry_run"] = True
        self.store.update_task(task_id, options=options)
        self._handle(task_id).fresh = fresh
        if start:
            self._start(task_id)
        return task_id

    def start(self, task_id: str) -> None:
        """Run a task submitted with `start=False` (after its listeners are in place)."""
        self._start(task_id)

    def _handle(self, task_id: str) -> TaskHandle:
        handle = self._handles.get(task_id)
        if handle is None:
            handle = self._handles[task_id] = TaskHandle(task_id, TaskRecord(task_id))
        return handle

    def _start(self, task_id: str) -> TaskHandle:
        handle = self._handle(task_id)
        if handle.runner and not handle.runner.done():
            return handle
        handle.runner = asyncio.create_task(self._drive(handle), name=task_id)
        handle.runner.add_done_callback(_unrecorded_end)
        return handle

    # Running ------------------------------------------------------------------------------
    async def _drive(self, handle: TaskHandle) -> None:
        task_id, record = handle.task_id, handle.record
        cfg = {"configurable": {"thread_id": task_id}}
        task = self.task(task_id)
        skillset = self.skillset
        ctx = graph_context(self.config, self.backends, self.store, skillset, task)
        self.store.update_task(task_id, status="running", owner=self.owner)
        try:
            if not skillset.mcp_listed:
                await skillset.list_mcp_tools()
            if handle.fresh:  # a new id: nothing to ask the checkpointer for
                handle.fresh = False
                snapshot = NO_CHECKPOINT
            else:
                snapshot = await self.graph.aget_state(cfg)
            payload: Any = None  # None continues from the last checkpoint
            if not snapshot.values:
                payload = first_state(self.config, ctx, task)
            while True:
                if snapshot.values:
                    self.recorder.sync(record, snapshot.values.get("events", []))
                if snapshot.interrupts:
                    for question in self.recorder.questions(task_id, snapshot.interrupts):
                        self.notifier.question(task_id, question)
                    answers = self._answers_for(task_id, snapshot.interrupts)
                    if not answers:
                        self.store.update_task(task_id, status="waiting")
                        return
                    payload = Command(resume=answers)
                elif snapshot.values and not snapshot.next and not snapshot.tasks:
                    # Ended. (No next but tasks: every task of a step saved its writes and a
                    # crash came before the step's checkpoint; continuing applies them.)
                    if self.recorder.finished(record, snapshot.values):
                        self.notifier.finished(task_id)
                    return
                async for mode, chunk in self.graph.astream(
                    payload,
                    cfg,
                    context=ctx,
                    stream_mode=["values", "custom"],
                    durability="sync",
                ):
                    if mode == "custom":
                        self.hub.publish(
                            {"v": 1, "seq": 0, "ts": time.time(), "task_id": task_id, **chunk}
                        )
                    elif isinstance(chunk, dict):
                        self.recorder.sync(record, chunk.get("events", []))
                snapshot = await self.graph.aget_state(cfg)
        except asyncio.CancelledError:
            if handle.cancel_requested:
                self.recorder.cancelled(task_id, "cancelled by the person")
            raise
        except BudgetSpent as exc:
            # It rests failed, resumable from its last step; each stop is its own event (a
            # task stopped again after a resume says so again).
            key = f"r:budget:{time.time_ns()}"
            self._crashed(task_id, exc.one_line(), type(exc).__name__, exc.exit_code, key)
        except MyninjaError as exc:
            self._crashed(task_id, exc.one_line(), type(exc).__name__, exc.exit_code)
        except Exception as exc:  # a bug must fail one task, not the worker
            self._crashed(
                task_id,
                f"internal error: {type(exc).__name__}: {exc}",
                type(exc).__name__,
                EXIT_FAILED,
            )
        finally:
            record.keys.clear()

    def _crashed(
        self, task_id: str, error: str, error_type: str, exit_code: int, key: str = "r:failed"
    ) -> None:
        if self.recorder.crashed(task_id, error, error_type, exit_code, key):
            self.notifier.finished(task_id)

    # Questions ----------------------------------------------------------------------------
    def _answers_for(self, task_id: str, interrupts: Any) -> dict[str, str]:
        answers = recorded_answers(self.store, task_id, interrupts)
        for question_id, text in answers.items():
            self.recorder.answered(task_id, question_id, text, self.config.memory.confirm)
        return answers

    async def answer(self, task_id: str, question_id: str | None, text: str) -> str:
        """Record an answer and resume the task; returns the question id answered."""
        task_id = self.task(task_id)["id"]
        open_questions = self.store.questions(task_id, status="open")
        question_id, copies = copies_answered(task_id, open_questions, question_id)
        for copy in copies:
            self.store.answer_question(copy, text)
            self.recorder.answered(task_id, copy, text, self.config.memory.confirm)
        # A running task picks the answer up from the store when its current step ends.
        self._start(task_id)
        return question_id

    # Control ------------------------------------------------------------------------------
    def task(self, task_id: str) -> dict[str, Any]:
        """The task with this id (or unique id prefix); a UsageError where there is none."""
        task = self.store.get_task(task_id)
        if task is None:
            raise UsageError(f"no task {task_id!r}", hint="see `myninja tasks list`")
        return task

    async def cancel(self, task_id: str) -> None:
        task = self.task(task_id)
        if task["status"] in FINISHED:
            raise UsageError(f"task {task['id']} already ended ({task['status']})")
        runner = self.runner(task["id"])
        if runner is not None:
            self._handles[task["id"]].cancel_requested = True
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        else:
            self.recorder.cancelled(task["id"], "cancelled by the person")

    async def resume(self, task_id: str) -> None:
        """Continue a task from its last checkpoint (after a crash, or a waiting one whose
        questions were answered)."""
        task = self.task(task_id)
        if task["status"] in NEVER_RESUMED:
            raise UsageError(f"task {task['id']} already ended ({task['status']})")
        self._start(task["id"])

    async def resume_unfinished(self) -> list[str]:
        """Pick up every unfinished task whose owner is gone. A running one continues from
        its last checkpoint; a waiting one re-records its questions and continues only if they
        were answered meanwhile."""
        resumed = []
        for task in self.store.unfinished_tasks():
            if task["owner"] != self.owner and owner_alive(task["owner"]):
                continue
            self._start(task["id"])
            resumed.append(task["id"])
        return resumed

    def runner(self, task_id: str) -> asyncio.Task[None] | None:
        """The asyncio task running `task_id` in this process now, if any."""
        handle = self._handles.get(task_id)
        if handle is None or handle.runner is None or handle.runner.done():
            return None
        return handle.runner

    def running(self) -> list[str]:
        return [h.task_id for h in self._handles.values() if h.runner and not h.runner.done()]

    async def wait(self, task_id: str) -> None:
        handle = self._handles.get(task_id)
        if handle and handle.runner:
            with contextlib.suppress(asyncio.CancelledError):
                await handle.runner

    async def shutdown(self) -> None:
        """Stop running tasks without marking them: the next start resumes them."""
        runners = [h.runner for h in self._handles.values() if h.runner and not h.runner.done()]
        for runner in runners:
            runner.cancel()
        for runner in runners:
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        await self.notifier.drain()


def _unrecorded_end(runner: asyncio.Task[None]) -> None:
    """A run raises only when even its failure could not be recorded (a full disk): the task's
    feed tells the person in one line, so the traceback goes to the log, not to the terminal
    as "Task exception was never retrieved"."""
    if not runner.cancelled() and (exc := runner.exception()) is not None:
        logging.getLogger(__name__).debug(
            "task %s: end not recorded", runner.get_name(), exc_info=exc
        )
