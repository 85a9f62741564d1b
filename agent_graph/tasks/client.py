"""The background worker's client: requests over its socket (wire.py), the task feed it
streams, and starting a worker (or replacing one of other code) when needed."""

from __future__ import annotations

import asyncio
import fcntl
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from myninja.agent_graph.code_identity import code_identity, same_code, which_code
from myninja.agent_graph.tasks.feed import Cursor
from myninja.agent_graph.tasks.wire import (
    existing_socket_path,
    lock_path,
    open_connection,
    refusal,
    send,
)
from myninja.errors import BackendUnreachable, MyninjaError


class WorkerClient:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = existing_socket_path(data_dir)
        self.identity = code_identity()  # now, not at the first request: the app lives long
        self.told_older = False

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        self.path = self.path or existing_socket_path(self.data_dir)
        if self.path is None:
            raise BackendUnreachable("the background worker is not running")
        return await open_connection(str(self.path), self.data_dir / "worker.log")

    async def _ping(self) -> dict[str, Any] | None:
        try:
            return await self.request("ping")
        except (OSError, MyninjaError):
            return None

    async def alive(self) -> bool:
        return await self._ping() is not None

    async def ensure(self, wait_s: float = 30.0) -> str | None:
        """Make sure a worker started from this code serves this data dir: start one, or retire
        one started from other code (an idle one exits at once; a busy one finishes its tasks,
        then exits). Returns one line for the person when tasks go on in a retired worker, or
        (once) when this process's code is older than the worker's."""
        notice = None
        reply = await self._ping()
        if reply is not None:
            theirs = reply.get("identity") or {}
            if same_code(theirs, self.identity):
                return None
            if theirs.get("read_at", 0) > self.identity["read_at"]:
                # Ours is the older code (this process started before an update): use the
                # worker; replacing it would only start one of its code again.
                return self._older_notice(reply["pid"], theirs)
            retired = await self.request("retire")
            if not retired["retired"]:
                return None
            if count := len(retired["running"]):
                code = which_code(theirs, self.identity, "older")
                notice = (
                    f"the background worker (pid {retired['pid']}) runs {code}: it finishes "
                    f"its {count} running task{'s' if count > 1 else ''}, then exits; a new "
                    "worker takes new tasks"
                )
        await self._start(wait_s)
        return notice

    def _older_notice(self, pid: int, theirs: dict[str, Any]) -> str | None:
        if self.told_older:
            return None
        self.told_older = True
        return (
            f"the background worker (pid {pid}) runs {which_code(theirs, self.identity, 'newer')}"
            ", and this myninja started before it: start it again to use the new code"
        )

    async def _start(self, wait_s: float) -> None:
        deadline = time.monotonic() + wait_s
        started = _spawn_worker(self.data_dir)
        while time.monotonic() < deadline:
            # Where the new worker listens: the last one may have removed its directory.
            self.path = existing_socket_path(self.data_dir)
            if await self.alive():
                return
            if started.poll() == 0:
                # It found the lock held: by a worker still starting, or by one on its way out
                # (its socket name was removed) that lets go within a second. Start another
                # once the lock is free.
                if lock_free(lock_path(self.data_dir)):
                    started = _spawn_worker(self.data_dir)
            elif started.returncode is not None:
                raise BackendUnreachable(
                    f"the background worker exited at start (exit code {started.returncode})",
                    hint=f"see {self.data_dir / 'worker.log'}",
                )
            await asyncio.sleep(0.1)
        raise BackendUnreachable(
            "the background worker did not start",
            hint=f"see {self.data_dir / 'worker.log'}",
        )

    async def request(self, op: str, **fields: Any) -> dict[str, Any]:
        reader, writer = await self._open()
        try:
            await send(writer, {"op": op, "client": self.identity, **fields})
            line = await reader.readline()
        finally:
            writer.close()
        if not line:
            raise BackendUnreachable("the background worker closed the connection")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise refusal(reply)
        return reply

    async def follow(self, task_id: str, after_seq: int = 0) -> AsyncIterator[dict[str, Any]]:
        """The task's feed (feed.py) through the worker: `{"event": …}` replies, each stored
        event once and in order, then a final `{"end": STATUS}`."""
        reader, writer = await self._open()
        cursor = Cursor(after_seq)
        try:
            request = {"op": "follow", "client": self.identity, "task_id": task_id}
            await send(writer, {**request, "after_seq": after_seq})
            while line := await reader.readline():
                reply = json.loads(line)
                if not reply.get("ok"):
                    raise refusal(reply)
                if "event" in reply and not cursor.admit(reply["event"]):
                    continue
                yield reply
                if "end" in reply:
                    return
            raise BackendUnreachable("the background worker stopped while following the task")
        finally:
            writer.close()


def _spawn_worker(data_dir: Path) -> subprocess.Popen[bytes]:
    """Start `myninja worker` in its own session, so it outlives this command's terminal."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / "worker.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "myninja", "worker"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )


def lock_free(path: Path) -> bool:
    """Whether no worker holds the data dir's lock (one that exited has let go of it)."""
    with open(path, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(lock, fcntl.LOCK_UN)
        return True
