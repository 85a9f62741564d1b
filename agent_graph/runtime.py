"""The TaskManager: many tasks at once in one asyncio process, checkpointed, recorded, resumable.

Each task is a LangGraph thread (thread id = task id) checkpointed in checkpoints.db with
durability "sync", so a killed process loses at most the step that was running. The task's
durable events live in its graph state (`events`); after every step the manager copies the new
ones into history.db keyed by a hash of their content, so copying again after a crash, or
after LangGraph reorders the writes of a step that paused, changes nothing.
Questions (pending interrupts) are recorded under their interrupt id, and the manager's own
events (cancelled, crashed) under fixed keys: every event is stored exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shlex
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Command, StateSnapshot
from myninja.agent_graph.checkpoints import open_checkpointer
from myninja.agent_graph.context import BackendPool, GraphContext
from myninja.agent_graph.events import answer_command, make_event, question_key
from myninja.agent_graph.graph import build_graph
from myninja.agent_graph.history import HistoryStore
from myninja.agent_graph.history.connection import Recovery, announce, make_folder
from myninja.agent_graph.nodes.route import split_mention
from myninja.agent_graph.permissions import PERMISSION_WORDS
from myninja.backends.base import Backend

from myninja import paths
from myninja.config import Config
from myninja.errors import EXIT_FAILED, MyninjaError, UsageError

Listener = Callable[[dict[str, Any]], None]


def state_event_key(event: dict[str, Any]) -> str:
    """An event's identity: a hash of its content, timestamp included. A node that completed
    wrote its events into the checkpoint, so copying them again yields the same keys; a node
    cut short by a crash never got its events stored, so its re-run adds them once."""
    canonical = json.dumps(event, sort_keys=True, ensure_ascii=False, default=str)
    return "s:" + hashlib.sha1(canonical.encode()).hexdigest()[:24]


def new_task_id() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


def process_owner() -> str:
    """Who runs a task: this process, named so a later process can tell whether it is alive."""
    return f"pid:{os.getpid()}:{_start_time(os.getpid())}"


def owner_alive(owner: str | None) -> bool:
    if not owner or not owner.startswith("pid:"):
        return False
    _, pid_text, started = owner.split(":", 2)
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed, not yet reaped by its parent, or by an init that reaps late or never)
    # still answers kill(pid, 0) but runs nothing: its tasks are orphaned.
    # A reused pid is another process.
    return not _zombie(pid) and _start_time(pid) == started


def _start_time(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "?"
    return stat.rsplit(")", 1)[1].split()[19]


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


@dataclass
class TaskHandle:
    task_id: str
    runner: asyncio.Task[None] | None = None
    cancel_requested: bool = False
    stored: set[str] = field(default_factory=set)  # keys of state events already in history
    branches: dict[tuple[int, int, str], dict[str, Any]] = field(default_factory=dict)
    # Submitted here under a new id and not run yet: there is no checkpoint to look for.
    fresh: bool = False
    # id(event) -> (event, key) during a run: every values chunk repeats the earlier events
    # (the same objects), which need not be hashed again. Holding the event pins its id.
    keys: dict[int, tuple[dict[str, Any], str]] = field(default_factory=dict)
    # The graph's task_done / task_failed went into history during this run, not before:
    # the finish is news (a replayed finish after a restart or a resume is not).
    ended_now: bool = False


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
        self._handles: dict[str, TaskHandle] = {}
        self._listeners: dict[str, list[Listener]] = {}
        self._any_listeners: list[Listener] = []
        self.retired_pools: list[BackendPool] = []
        self.retired_mcp: list[Any] = []
        self._notifying: set[asyncio.Task[None]] = set()  # notify_command runs in flight
        self._load_skills(config)

    def _load_skills(self, config: Config) -> None:
        from myninja.agent_graph.permissions import Grants
        from myninja.skills.mcp_bridge import McpPool
        from myninja.skills.registry import load_skills

        self.skills = load_skills(config)
        self.grants = Grants(config)
        self.mcp = McpPool(config.mcp)
        self._mcp_listed = not config.mcp  # MCP servers are asked for their tools on first use
        self._mcp_lock = asyncio.Lock()

    async def _list_mcp_tools(self) -> None:
        """Add the configured MCP servers' tools as skills, once (it starts their processes)."""
        async with self._mcp_lock:
            if self._mcp_listed:
                return
            from myninja.skills.mcp_bridge import mcp_skills

            found, warnings = await mcp_skills(self.config.mcp, self.mcp)
            for skill in found:
                why = self.skills.add(skill, f"mcp:{skill.name}")
                if why:
                    self.skills.warn(f"MCP server {skill.name!r} skipped: {why}")
            for warning in warnings:
                self.skills.warn(warning)
            self._mcp_listed = True

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
                for used in (*manager.retired_pools, manager.backends):
                    await used.aclose()
                for mcp in (*manager.retired_mcp, manager.mcp):
                    await mcp.aclose()
                store.close()

    def _checkpoints_lost(self, recovery: Recovery) -> None:
        """checkpoints.db was damaged and replaced: a running or waiting task whose owner is
        gone cannot continue where it was, so it fails with the reason (its history stays)."""
        lost = [
            task["id"]
            for task in self.store.unfinished_tasks()
            if task["status"] in ("running", "waiting")
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
        self.retired_pools.append(self.backends)
        self.retired_mcp.append(self.mcp)
        self.config = config
        self.backends = BackendPool(config)
        self._load_skills(config)

    # Listening ----------------------------------------------------------------------------
    def listen(self, task_id: str | None, listener: Listener) -> Callable[[], None]:
        """Call `listener` with every event of one task (or of all tasks); returns unlisten."""
        bucket = self._any_listeners if task_id is None else self._listeners.setdefault(task_id, [])
        bucket.append(listener)
        return lambda: bucket.remove(listener) if listener in bucket else None

    def _publish(self, event: dict[str, Any]) -> None:
        buckets = [self._listeners.get(event["task_id"], []), self._any_listeners]
        for bucket in buckets:
            for listener in list(bucket):
                try:
                    listener(event)
                except Exception:  # a broken view (a closed pipe, say) must not fail the task
                    bucket.remove(listener)

    def _store_event(self, task_id: str, key: str, event: dict[str, Any]) -> bool:
        """Store and publish `event`; False when `key` was stored before."""
        stored = {"v": 1, **event, "task_id": task_id}
        seq = self.store.append_event(task_id, key, stored)
        if seq is None:
            return False
        stored["seq"] = seq
        self._publish(stored)
        return True

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
    ) -> str:
        mention, body = split_mention(text)
        agent = agent or mention
        if not body.strip():
            raise UsageError("the task is empty", hint="write what you want done")
        if backend and backend not in self.config.backends:
            known = ", ".join(sorted(self.config.backends))
            raise UsageError(f"unknown backend {backend!r}", hint=f"configured: {known}")
        unknown = sorted(set(allow or ()) - set(PERMISSION_WORDS))
        if unknown:
            raise UsageError(
                f"unknown permission {unknown[0]!r}", hint=f"one of: {', '.join(PERMISSION_WORDS)}"
            )
        fresh = task_id is None
        task_id = task_id or new_task_id()
        self.store.create_task(task_id, body, agent=agent, status="queued", owner=self.owner)
        options = {"backend": backend, "model": model, "allow": sorted(set(allow or ()))}
        self.store.update_task(task_id, options=options)
        self._handles.setdefault(task_id, TaskHandle(task_id)).fresh = fresh
        if start:
            self._start(task_id)
        return task_id

    def _context(self, task_id: str) -> GraphContext:
        task = self.store.get_task(task_id) or {}
        options = task.get("options") or {}
        return GraphContext(
            self.config,
            self.backends,
            self.store,
            backend_override=options.get("backend"),
            model_override=options.get("model"),
            skills=self.skills,
            grants=self.grants,
            allow=set(options.get("allow") or ()),
            task_id=task_id,
        )

    def _input(self, task_id: str) -> dict[str, Any]:
        task = self.store.get_task(task_id)
        assert task is not None
        ctx = self._context(task_id)
        agent = task.get("agent")
        backend_name = ctx.backend_override or self.config.agent(agent or "router").backend
        started = make_event(
            "task_started",
            text=task["text"],
            agent=agent,
            backend=backend_name,
            model=ctx.model_override,
        )
        # Stamped with the task's creation time, so an input rebuilt after a crash that came
        # before the first checkpoint is the same event, stored once.
        started["ts"] = round(task["created_at"], 6)
        return {"task_id": task_id, "text": task["text"], "agent": agent, "events": [started]}

    def start(self, task_id: str) -> None:
        """Run a task submitted with `start=False` (after its listeners are in place)."""
        self._start(task_id)

    def _start(self, task_id: str) -> TaskHandle:
        handle = self._handles.setdefault(task_id, TaskHandle(task_id))
        if handle.runner and not handle.runner.done():
            return handle
        handle.runner = asyncio.create_task(self._drive(handle), name=task_id)
        return handle

    # Running ------------------------------------------------------------------------------
    def _thread(self, task_id: str) -> dict[str, Any]:
        return {"configurable": {"thread_id": task_id}}

    async def _drive(self, handle: TaskHandle) -> None:
        task_id = handle.task_id
        cfg = self._thread(task_id)
        ctx = self._context(task_id)
        self.store.update_task(task_id, status="running", owner=self.owner)
        try:
            if not self._mcp_listed:
                await self._list_mcp_tools()
            if handle.fresh:  # a new id: nothing to ask the checkpointer for
                handle.fresh = False
                snapshot = NO_CHECKPOINT
            else:
                snapshot = await self.graph.aget_state(cfg)
            payload: Any = None  # None continues from the last checkpoint
            if not snapshot.values:
                payload = self._input(task_id)
            while True:
                if snapshot.values:
                    await self._sync(handle, snapshot.values.get("events", []))
                if snapshot.interrupts:
                    self._record_questions(task_id, snapshot.interrupts)
                    answers = self._answers_for(task_id, snapshot.interrupts)
                    if not answers:
                        self.store.update_task(task_id, status="waiting")
                        return
                    payload = Command(resume=answers)
                elif snapshot.values and not snapshot.next and not snapshot.tasks:
                    # Ended. (No next but tasks: every task of a step saved its writes and a
                    # crash came before the step's checkpoint; continuing applies them.)
                    self._finish(handle, snapshot.values)
                    return
                async for mode, chunk in self.graph.astream(
                    payload,
                    cfg,
                    context=ctx,
                    stream_mode=["values", "custom"],
                    durability="sync",
                ):
                    if mode == "custom":
                        self._publish(
                            {"v": 1, "seq": 0, "ts": time.time(), "task_id": task_id, **chunk}
                        )
                    elif isinstance(chunk, dict):
                        await self._sync(handle, chunk.get("events", []))
                snapshot = await self.graph.aget_state(cfg)
        except asyncio.CancelledError:
            if handle.cancel_requested:
                self._cancelled(task_id, "cancelled by the person")
            raise
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
            handle.keys.clear()

    async def _sync(self, handle: TaskHandle, events: list[dict[str, Any]]) -> None:
        new: list[tuple[str, dict[str, Any]]] = []
        for event in events:
            cached = handle.keys.get(id(event))
            if cached is not None and cached[0] is event:
                key = cached[1]
            else:
                key = state_event_key(event)
                handle.keys[id(event)] = (event, key)
            if key not in handle.stored:
                new.append((key, event))
        if not new:
            return
        task_id, published = handle.task_id, []
        # One transaction (one commit) for the step's events and the rows they update.
        with self.store.batch():  # nothing is awaited inside
            for key, event in new:
                stored = {"v": 1, **event, "task_id": task_id}
                seq = self.store.append_event(task_id, key, stored)
                if seq is not None:
                    published.append({**stored, "seq": seq})
                    if event["type"] in ("task_done", "task_failed"):
                        handle.ended_now = True
                self._record(handle, event)
        handle.stored.update(key for key, _ in new)  # once committed, not before
        for event in published:  # listeners see only committed events
            self._publish(event)

    def _record(self, handle: TaskHandle, event: dict[str, Any]) -> None:
        """Keep the queryable tables (tasks, branches) in step with the event log."""
        kind, task_id = event["type"], handle.task_id
        if kind == "routed":
            self.store.update_task(task_id, agent=event["agent"])
        elif kind == "plan":
            self.store.update_task(task_id, plan=event["steps"])
        elif kind == "citations":
            for source in event["sources"]:
                self.store.record_citation(
                    task_id,
                    source["n"],
                    passage_id=source["passage_id"],
                    title=source["title"],
                    source=source["source"],
                    text=source["text"],
                )
        elif kind in ("branch_started", "branch_done", "evaluation", "selected"):
            ident = (event["step"], event["round"], event["branch_id"])
            row = handle.branches.setdefault(
                ident,
                {
                    "agent": "",
                    "temperature": 0.0,
                    "text": "",
                    "score": None,
                    "reasons": None,
                    "kept": False,
                },
            )
            if kind == "branch_started":
                row.update(agent=event["agent"], temperature=event["temperature"])
            elif kind == "branch_done":
                row["text"] = event["text"]
            elif kind == "evaluation":
                row.update(score=event["score"], reasons=event["reasons"])
            else:
                row["kept"] = True
            step, round_, branch_id = ident
            self.store.record_branch(task_id, step=step, round=round_, branch_id=branch_id, **row)

    def _finish(self, handle: TaskHandle, values: dict[str, Any]) -> None:
        task_id = handle.task_id
        events = values.get("events", [])
        last = events[-1] if events else {}
        if last.get("type") == "task_done":
            self.store.update_task(
                task_id,
                status="done",
                answer=last["answer"],
                agent=values.get("agent"),
                plan=values.get("plan"),
                examples=values.get("examples"),
                finished_at=time.time(),
                unread=1,
            )
        else:
            error = last.get("error") or "the task ended without an answer"
            self.store.update_task(
                task_id,
                status="failed",
                error=error,
                agent=values.get("agent"),
                finished_at=time.time(),
                unread=1,
            )
        if handle.ended_now:
            handle.ended_now = False
            self._notify_finished(task_id)

    def _crashed(self, task_id: str, error: str, error_type: str, exit_code: int) -> None:
        new = self._store_event(
            task_id,
            "r:failed",
            make_event(
                "task_failed",
                error=error,
                error_type=error_type,
                exit_code=exit_code,
                partial_text="",
            ),
        )
        self.store.update_task(
            task_id, status="failed", error=error, finished_at=time.time(), unread=1
        )
        if new:
            self._notify_finished(task_id)

    def _cancelled(self, task_id: str, reason: str) -> None:
        self._store_event(task_id, "r:cancelled", make_event("task_cancelled", reason=reason))
        self.store.update_task(task_id, status="cancelled", finished_at=time.time())

    # Questions ----------------------------------------------------------------------------
    def _record_questions(self, task_id: str, interrupts: Any) -> None:
        for intr in interrupts:
            q = intr.value if isinstance(intr.value, dict) else {"text": str(intr.value)}
            self.store.record_question(
                task_id,
                intr.id,
                q.get("text", ""),
                choices=q.get("choices"),
                key=q.get("key"),
                step=q.get("step"),
                branch_id=q.get("branch_id"),
            )
            # Checked apart from the question row: a crash may fall between the two writes.
            if not self.store.has_event(task_id, f"q:{intr.id}"):
                event = make_event(
                    "question",
                    question_id=intr.id,
                    text=q.get("text", ""),
                    choices=q.get("choices"),
                    key=q.get("key"),
                    step=q.get("step"),
                    branch_id=q.get("branch_id"),
                )
                self._store_event(task_id, f"q:{intr.id}", event)
                self._notify_question(task_id, event)

    def _answers_for(self, task_id: str, interrupts: Any) -> dict[str, str]:
        """Answers recorded for still-pending interrupts (given while the task was busy, or
        before a restart)."""
        answered = {q["id"]: q["answer"] for q in self.store.questions(task_id, status="answered")}
        answers = {i.id: answered[i.id] for i in interrupts if i.id in answered}
        for question_id, text in answers.items():
            self._answered_event(task_id, question_id, text)
        return answers

    def _answered_event(self, task_id: str, question_id: str, text: str) -> None:
        if not self.store.has_event(task_id, f"a:{question_id}"):
            self._store_event(
                task_id,
                f"a:{question_id}",
                make_event("question_answered", question_id=question_id, answer=text),
            )

    def _notify_question(self, task_id: str, question: dict[str, Any]) -> None:
        if self.config.notify.on_question:
            answer = answer_command(task_id, question["question_id"])
            self._notify(
                {"event": "question", "task_id": task_id, **question, "answer_command": answer}
            )

    def _notify_finished(self, task_id: str) -> None:
        task = self.store.get_task(task_id)
        if task is None or not self.config.notify.on_finish:
            return
        outcome = "answer" if task["status"] == "done" else "error"
        self._notify(
            {
                "event": "finished",
                "task_id": task_id,
                "status": task["status"],
                "text": task["text"],
                outcome: task.get(outcome),
            }
        )

    def _notify(self, payload: dict[str, Any]) -> None:
        """Run notify_command with `payload` as JSON on stdin, in a thread: a slow command
        must not stall the other tasks on this event loop. `shutdown` waits for it."""
        command = self.config.notify_command
        if not command or not self.config.notify.command:
            return
        run = asyncio.create_task(asyncio.to_thread(_run_notify_command, command, payload))
        self._notifying.add(run)
        run.add_done_callback(self._notifying.discard)

    async def answer(self, task_id: str, question_id: str | None, text: str) -> str:
        """Record an answer and resume the task; returns the question id answered."""
        task = self._task(task_id)
        open_questions = self.store.questions(task["id"], status="open")
        if question_id is None:
            if len({question_key(q["text"]) for q in open_questions}) != 1:
                ids = ", ".join(q["id"] for q in open_questions) or "none"
                raise UsageError(
                    f"task {task['id']} has {len(open_questions)} open questions ({ids})",
                    hint="name the question id: myninja answer TASK QUESTION_ID TEXT",
                )
            question_id = open_questions[0]["id"]
        else:
            matches = [q["id"] for q in open_questions if q["id"].startswith(question_id)]
            if len(matches) != 1:
                raise UsageError(f"task {task['id']} has no single open question {question_id!r}")
            question_id = matches[0]
        # Branches often ask the same thing: one answer serves every copy of the question.
        asked = question_key(next(q["text"] for q in open_questions if q["id"] == question_id))
        for question in open_questions:
            if question["id"] == question_id or question_key(question["text"]) == asked:
                self.store.answer_question(question["id"], text)
                self._answered_event(task["id"], question["id"], text)
        # A running task picks the answer up from the store when its current step ends.
        self._start(task["id"])
        return question_id

    # Control ------------------------------------------------------------------------------
    def _task(self, task_id: str) -> dict[str, Any]:
        task = self.store.get_task(task_id)
        if task is None:
            raise UsageError(f"no task {task_id!r}", hint="see `myninja tasks list`")
        return task

    async def cancel(self, task_id: str) -> None:
        task = self._task(task_id)
        if task["status"] in ("done", "failed", "cancelled"):
            raise UsageError(f"task {task['id']} already ended ({task['status']})")
        handle = self._handles.get(task["id"])
        if handle and handle.runner and not handle.runner.done():
            handle.cancel_requested = True
            handle.runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await handle.runner
        else:
            self._cancelled(task["id"], "cancelled by the person")

    async def resume(self, task_id: str) -> None:
        """Continue a task from its last checkpoint (after a crash, or a waiting one whose
        questions were answered)."""
        task = self._task(task_id)
        if task["status"] in ("done", "cancelled"):
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
        if self._notifying:  # each is bounded by its own timeout
            await asyncio.gather(*self._notifying, return_exceptions=True)


def _run_notify_command(command: str, payload: dict[str, Any]) -> None:
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
