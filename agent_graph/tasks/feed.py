"""One task's events, for every view of it: `ask` in its own process, the worker's `follow`
(and through it `run` and the app), replayed from history and then live, in seq order, each
exactly once.

Events reach listeners through the manager's `EventHub` as soon as they are committed
(tokens as they stream, with seq 0). A `TaskFeed` listens first, then reads what history
already holds, so nothing falls between the two; a `Cursor` lets each stored event through
once."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from myninja.agent_graph.history.statuses import RESTING
from myninja.agent_graph.tasks.owners import owner_alive
from myninja.errors import MyninjaError

if TYPE_CHECKING:
    from myninja.agent_graph.tasks.manager import TaskManager

Listener = Callable[[dict[str, Any]], None]
QUIET_S = 0.5  # with nothing live, look at history this often
ORPHAN_GRACE_S = 3.0  # a task no runner holds, not at rest, for this long: its end was lost


class EventHub:
    """Who hears events as they happen: listeners of one task, and listeners of every task."""

    def __init__(self) -> None:
        self._by_task: dict[str, list[Listener]] = {}
        self._every: list[Listener] = []

    def listen(self, task_id: str | None, listener: Listener) -> Callable[[], None]:
        """Call `listener` with every event of one task (or of all tasks); returns unlisten."""
        bucket = self._every if task_id is None else self._by_task.setdefault(task_id, [])
        bucket.append(listener)

        def unlisten() -> None:
            if listener in bucket:
                bucket.remove(listener)
            if task_id is not None and not bucket:
                self._by_task.pop(task_id, None)

        return unlisten

    def publish(self, event: dict[str, Any]) -> None:
        for bucket in (self._by_task.get(event["task_id"], ()), self._every):
            for listener in list(bucket):
                try:
                    listener(event)
                except Exception:  # a broken view (a closed pipe, say) must not fail the task
                    bucket.remove(listener)


class Cursor:
    """How far a consumer has read a task's stored events. A stored event passes once, and
    only after those before it; a live-only one (seq 0: a token) always passes."""

    def __init__(self, after_seq: int = 0) -> None:
        self.seq = after_seq

    def admit(self, event: dict[str, Any]) -> bool:
        seq = event.get("seq") or 0
        if not seq:
            return True
        if seq <= self.seq:
            return False
        self.seq = seq
        return True

    def behind(self, event: dict[str, Any]) -> bool:
        """Whether stored events come between what was read and `event` (read them first)."""
        return (event.get("seq") or 0) > self.seq + 1


class TaskFeed:
    """One task's events for one consumer: `{"event": …}` items, then `{"end": STATUS}` once
    the task rests. Open it (`with`) before starting the task so no live event is missed.
    Stored events that reach history without passing here (another process runs the task)
    are read from history while nothing comes live. A task nothing runs whose history says
    it runs ends the feed with an error after ORPHAN_GRACE_S: its end could not be recorded."""

    def __init__(self, manager: TaskManager, task_id: str, after_seq: int = 0) -> None:
        self.manager = manager
        self.task_id = task_id
        self.cursor = Cursor(after_seq)
        self._pending: deque[dict[str, Any]] = deque()
        self._wake = asyncio.Event()
        self._watched: asyncio.Task[None] | None = None
        self._unlisten = manager.listen(task_id, self._hear)

    def __enter__(self) -> TaskFeed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._unlisten()

    def _hear(self, event: dict[str, Any]) -> None:
        self._pending.append(event)
        self._wake.set()

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        store, task_id = self.manager.store, self.task_id
        for event in self._stored():
            yield {"event": event}
        orphaned_since: float | None = None
        while True:
            event = await self._next()
            if event is not None:
                if self.cursor.behind(event):  # stored without being heard here
                    for missed in self._stored(before=event["seq"]):
                        yield {"event": missed}
                if self.cursor.admit(event):
                    yield {"event": event}
                continue
            if self.manager.runner(task_id) is not None:
                orphaned_since = None
                continue
            for missed in self._stored():
                yield {"event": missed}
            current = store.get_task(task_id) or {}
            if current.get("status") in RESTING:
                yield {"end": current["status"]}
                return
            ran_here = self._watched
            if ran_here is not None and ran_here.done() and not ran_here.cancelled():
                if isinstance(error := ran_here.exception(), MyninjaError):
                    raise error  # its end could not be recorded, and this says why (a full disk)
            owner = current.get("owner")
            if owner != self.manager.owner and owner_alive(owner):
                continue  # another process (a foreground `ask`) runs it
            # Nothing runs it, yet history says it runs: its end could not be recorded
            # (a full disk, say). Say so instead of following it forever.
            orphaned_since = orphaned_since or time.monotonic()
            if time.monotonic() - orphaned_since > ORPHAN_GRACE_S:
                log = store.path.parent / "worker.log"
                raise MyninjaError(
                    f"task {task_id} stopped, but its end could not be recorded (history says "
                    f"{current.get('status')!r}); see {log} (a full disk?)"
                )

    def _stored(self, before: int | None = None) -> list[dict[str, Any]]:
        """Stored events after the cursor (and before seq `before`), admitted."""
        events = self.manager.store.events(self.task_id, after_seq=self.cursor.seq)
        return [e for e in events if (before is None or e["seq"] < before) and self.cursor.admit(e)]

    async def _next(self) -> dict[str, Any] | None:
        """The next live event; None after QUIET_S without one, or once the run here ends."""
        if self._pending:
            return self._pending.popleft()
        self._wake.clear()
        runner = self.manager.runner(self.task_id)
        if runner is not None and runner is not self._watched:
            self._watched = runner
            runner.add_done_callback(lambda _: self._wake.set())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), QUIET_S)
        return self._pending.popleft() if self._pending else None
