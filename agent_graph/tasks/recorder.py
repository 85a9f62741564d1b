"""Events into history: each event stored exactly once, and the queryable rows (the task's,
its branches', questions', citations') kept in step with them.

A task's durable events live in its graph state (`events`); after every step the manager hands
them here and the new ones are copied into history.db keyed by a hash of their content, so
copying again after a crash, or after LangGraph reorders the writes of a step that paused,
changes nothing. Questions (pending interrupts) are stored under their interrupt id, answers
under `a:` and that id, and the manager's own events (cancelled, crashed) under fixed keys.
Every stored event is published to the hub once committed, never before."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from myninja.agent_graph.events import make_event
from myninja.agent_graph.history import HistoryStore, memories
from myninja.agent_graph.needs import value_of
from myninja.agent_graph.tasks.branch_tree import ROW_EVENTS, BranchTree, branch_row
from myninja.agent_graph.tasks.feed import EventHub


def state_event_key(event: dict[str, Any]) -> str:
    """An event's identity: a hash of its content, timestamp included. A node that completed
    wrote its events into the checkpoint, so copying them again yields the same keys; a node
    cut short by a crash never got its events stored, so its re-run adds them once."""
    canonical = json.dumps(event, sort_keys=True, ensure_ascii=False, default=str)
    return "s:" + hashlib.sha1(canonical.encode()).hexdigest()[:24]


@dataclass
class TaskRecord:
    """What the recorder knows of one task in this process."""

    task_id: str
    stored: set[str] = field(default_factory=set)  # keys of state events already in history
    tree: BranchTree = field(default_factory=BranchTree)
    # id(event) -> (event, key) during a run: every values chunk repeats the earlier events
    # (the same objects), which need not be hashed again. Holding the event pins its id.
    keys: dict[int, tuple[dict[str, Any], str]] = field(default_factory=dict)
    # The graph's task_done / task_failed went into history during this run, not before:
    # the finish is news (a replayed finish after a restart or a resume is not).
    ended_now: bool = False


class Recorder:
    def __init__(self, store: HistoryStore, hub: EventHub) -> None:
        self.store = store
        self.hub = hub

    def store_event(self, task_id: str, key: str, event: dict[str, Any]) -> bool:
        """Store and publish `event`; False when `key` was stored before."""
        stored = {"v": 1, **event, "task_id": task_id}
        seq = self.store.append_event(task_id, key, stored)
        if seq is None:
            return False
        self.hub.publish({**stored, "seq": seq})
        return True

    def sync(self, record: TaskRecord, events: list[dict[str, Any]]) -> None:
        """Store the state events not stored yet, and the rows they change."""
        new: list[tuple[str, dict[str, Any]]] = []
        for event in events:
            cached = record.keys.get(id(event))
            if cached is not None and cached[0] is event:
                key = cached[1]
            else:
                key = state_event_key(event)
                record.keys[id(event)] = (event, key)
            if key not in record.stored:
                new.append((key, event))
        if not new:
            return
        task_id, published = record.task_id, []
        # One transaction (one commit) for the step's events and the rows they update.
        with self.store.batch():
            for key, event in new:
                stored = {"v": 1, **event, "task_id": task_id}
                seq = self.store.append_event(task_id, key, stored)
                if seq is not None:
                    published.append({**stored, "seq": seq})
                    if event["type"] in ("task_done", "task_failed"):
                        record.ended_now = True
                self._rows(record, event)
        record.stored.update(key for key, _ in new)  # once committed, not before
        for event in published:  # listeners see only committed events
            self.hub.publish(event)

    def _rows(self, record: TaskRecord, event: dict[str, Any]) -> None:
        """Keep the queryable tables (tasks, branches, citations) in step with the event log."""
        kind, task_id = event["type"], record.task_id
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
        branch = record.tree.add(event)
        if branch is not None and kind in ROW_EVENTS:
            self.store.record_branch(task_id, **branch_row(branch))

    def finished(self, record: TaskRecord, values: dict[str, Any]) -> bool:
        """The graph ended: mark the task done or failed. True when the finish is news (its
        event was stored during this run), for the notifier."""
        task_id = record.task_id
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
        news, record.ended_now = record.ended_now, False
        return news

    def crashed(
        self, task_id: str, error: str, error_type: str, exit_code: int, key: str = "r:failed"
    ) -> bool:
        """The run failed outside the graph: store that (once under `key`) and mark the task
        failed. True when that is news."""
        failed = make_event(
            "task_failed", error=error, error_type=error_type, exit_code=exit_code, partial_text=""
        )
        new = self.store_event(task_id, key, failed)
        self.store.update_task(
            task_id, status="failed", error=error, finished_at=time.time(), unread=1
        )
        return new

    def cancelled(self, task_id: str, reason: str) -> None:
        self.store_event(task_id, "r:cancelled", make_event("task_cancelled", reason=reason))
        self.store.update_task(task_id, status="cancelled", finished_at=time.time())

    def questions(self, task_id: str, interrupts: Any) -> list[dict[str, Any]]:
        """Record the pending interrupts as questions; returns the question events that are
        new (not stored before a restart)."""
        asked = []
        for intr in interrupts:
            q = intr.value if isinstance(intr.value, dict) else {"text": str(intr.value)}
            fields = {name: q.get(name) for name in ("choices", "key", "step", "branch_id")}
            self.store.record_question(task_id, intr.id, q.get("text", ""), **fields)
            # Checked apart from the question row: a crash may fall between the two writes.
            if not self.store.has_event(task_id, f"q:{intr.id}"):
                event = make_event(
                    "question", question_id=intr.id, text=q.get("text", ""), **fields
                )
                self.store_event(task_id, f"q:{intr.id}", event)
                asked.append(event)
        return asked

    def answered(
        self, task_id: str, question_id: str, text: str, confirm_mode: str | None = None
    ) -> None:
        """Store that `question_id` was answered, once; with `confirm_mode` (`[memory]
        confirm`), the answer to an agent's question is proposed as a memory, once."""
        if not self.store.has_event(task_id, f"a:{question_id}"):
            self.store_event(
                task_id,
                f"a:{question_id}",
                make_event("question_answered", question_id=question_id, answer=text),
            )
        # Apart from the answer: a crash may fall between the two, and the next call (the
        # restarted run hands the recorded answer in again) proposes it then.
        if confirm_mode is not None:
            self._propose(task_id, question_id, text, confirm_mode)

    def _propose(self, task_id: str, question_id: str, text: str, confirm_mode: str) -> None:
        asked = [q for q in self.store.questions(task_id, status=None) if q["id"] == question_id]
        if not asked:
            return
        task = self.store.get_task(task_id) or {}
        # An answer to a need's question is kept as the value it gives ("Berlin" becomes
        # Europe/Berlin); one that gives none (the person is asked again) is not kept.
        text = value_of(asked[0].get("key"), text) or ""
        # The memory and its event in one transaction: both, or neither after a crash.
        with self.store.batch():
            memory = memories.propose(
                self.store,
                task_id=task_id,
                question=asked[0]["text"],
                answer=text,
                key=asked[0].get("key"),
                agent=task.get("agent"),
                confirm_mode=confirm_mode,
            )
            if memory is None:  # no fact in it
                return
            stored = {
                "v": 1,
                **make_event(
                    "memory_proposed",
                    memory_id=memory["id"],
                    text=memory["text"],
                    status=memory["status"],
                    question_id=question_id,
                ),
                "task_id": task_id,
            }
            # Once per memory and task: the copies of one question name one memory. One
            # made before (another task's same answer) is named too, as a twin run would.
            seq = self.store.append_event(task_id, f"m:{memory['id']}", stored)
        if seq is not None:  # listeners see only committed events
            self.hub.publish({**stored, "seq": seq})
