"""The background worker: one per data dir, holding a TaskManager, reached over a Unix socket.

`myninja run --detach` (and the TUI) hand tasks to it, so they keep going after the command
exits. It is started on demand, guarded by an exclusive lock on `worker.lock` (a second one
exits at once), resumes every unfinished task whose owner is gone when it starts, and exits
after `worker_idle_s` with no task running and no client connected.

Protocol: one JSON request per line, one or more JSON replies per line. Every reply has
`ok`; a failed request carries `error` (one line) and `exit_code`. `follow` streams the task's
events (stored ones after `after_seq`, then live ones) and ends with `{"end": STATUS}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from myninja import paths
from myninja.config import Config
from myninja.config_file import load_config
from myninja.errors import EXIT_FAILED, BackendUnreachable, MyninjaError

if TYPE_CHECKING:
    from agent_graph.runtime import TaskManager

RESTING = ("waiting", "done", "failed", "cancelled")
ORPHAN_GRACE_S = 3.0  # a task no runner holds, not at rest, for this long: its end was lost
BACKLOG = 1024  # scripts submit hundreds of tasks at once; the kernel caps it at somaxconn


def socket_path(data_dir: Path) -> Path:
    path = data_dir / "worker.sock"
    if len(str(path)) < 100:  # AF_UNIX paths are limited to about 108 bytes
        return path
    digest = hashlib.sha1(str(data_dir).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"myninja-{digest}.sock"


class Worker:
    def __init__(self, manager: TaskManager, idle_s: float) -> None:
        self.manager = manager
        self.idle_s = idle_s
        self.clients = 0
        self.last_busy = time.monotonic()
        self.stop = asyncio.Event()
        self.config_stamp = _stamp(paths.config_file())

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.clients += 1
        try:
            while line := await reader.readline():
                try:
                    request = json.loads(line)
                    await self._dispatch(request, writer)
                except MyninjaError as exc:
                    await _send(
                        writer, {"ok": False, "error": exc.one_line(), "exit_code": exc.exit_code}
                    )
                except (ValueError, KeyError, TypeError) as exc:
                    await _send(
                        writer,
                        {"ok": False, "error": f"bad request: {exc}", "exit_code": EXIT_FAILED},
                    )
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.clients -= 1
            self.last_busy = time.monotonic()
            with contextlib.suppress(ConnectionError):
                writer.close()

    async def _dispatch(self, request: dict[str, Any], writer: asyncio.StreamWriter) -> None:
        op = request["op"]
        manager = self.manager
        if op == "ping":
            await _send(writer, {"ok": True, "pid": os.getpid(), "running": manager.running()})
        elif op == "submit":
            self._pick_up_config()
            task_id = await manager.submit(
                request["text"],
                agent=request.get("agent"),
                backend=request.get("backend"),
                model=request.get("model"),
                allow=request.get("allow"),
            )
            await _send(writer, {"ok": True, "task_id": task_id})
        elif op == "answer":
            qid = await manager.answer(
                request["task_id"], request.get("question_id"), request["text"]
            )
            await _send(writer, {"ok": True, "question_id": qid})
        elif op == "cancel":
            await manager.cancel(request["task_id"])
            await _send(writer, {"ok": True})
        elif op == "resume":
            await manager.resume(request["task_id"])
            await _send(writer, {"ok": True})
        elif op == "follow":
            await self._follow(request["task_id"], int(request.get("after_seq", 0)), writer)
        elif op == "shutdown":
            await _send(writer, {"ok": True})
            self.stop.set()
        else:
            raise ValueError(f"unknown op {op!r}")

    def _pick_up_config(self) -> None:
        """Reload the config file if it changed (the app's settings screen writes it), so a
        new task uses it without restarting the worker. A broken file refuses the task."""
        path = paths.config_file()
        stamp = _stamp(path)
        if stamp != self.config_stamp:
            self.manager.reconfigure(load_config(path))
            self.config_stamp = stamp

    async def _follow(self, task_id: str, after_seq: int, writer: asyncio.StreamWriter) -> None:
        from agent_graph.runtime import owner_alive

        task = self.manager._task(task_id)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        unlisten = self.manager.listen(task["id"], queue.put_nowait)
        try:
            sent = after_seq
            for event in self.manager.store.events(task["id"], after_seq=after_seq):
                await _send(writer, {"ok": True, "event": event})
                sent = event["seq"]
            orphaned_since: float | None = None
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), 0.5)
                except TimeoutError:
                    event = None
                if event is not None:
                    if event["seq"] and event["seq"] <= sent:
                        continue  # already replayed from the store
                    sent = event["seq"] or sent
                    await _send(writer, {"ok": True, "event": event})
                    continue
                current = self.manager.store.get_task(task["id"]) or {}
                if task["id"] in self.manager.running():
                    orphaned_since = None
                    continue
                if current.get("status") in RESTING:
                    await _send(writer, {"ok": True, "end": current["status"]})
                    return
                owner = current.get("owner")
                if owner != self.manager.owner and owner_alive(owner):
                    continue  # another process (a foreground `ask`) runs it
                # Nothing runs it, yet history says it runs: its end could not be recorded
                # (a full disk, say). Say so instead of following it forever.
                orphaned_since = orphaned_since or time.monotonic()
                if time.monotonic() - orphaned_since > ORPHAN_GRACE_S:
                    await _send(
                        writer,
                        {
                            "ok": False,
                            "error": f"task {task['id']} stopped, but its end could not be "
                            f"recorded (history says {current.get('status')!r}); see "
                            f"{self.manager.store.path.parent / 'worker.log'} (a full disk?)",
                            "exit_code": EXIT_FAILED,
                        },
                    )
                    return
        finally:
            unlisten()

    async def idle_watch(self) -> None:
        while not self.stop.is_set():
            if self.manager.running() or self.clients:
                self.last_busy = time.monotonic()
            elif time.monotonic() - self.last_busy > self.idle_s:
                self.stop.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), 1.0)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


async def _send(writer: asyncio.StreamWriter, obj: dict[str, Any]) -> None:
    writer.write((json.dumps(obj, ensure_ascii=False) + "\n").encode())
    await writer.drain()


async def _connect_unix(path: str, log: Path, wait_s: float = 30.0) -> socket.socket:
    """A connected Unix socket. A full listen backlog makes connect() fail with EAGAIN, which
    asyncio takes for a connect in progress: it hands back a socket that never connected and
    the first write fails with "Connection lost". So retry the connect until the worker
    accepts."""
    deadline = time.monotonic() + wait_s
    delay = 0.005
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.connect(path)
            return sock
        except BlockingIOError:
            sock.close()
            if time.monotonic() > deadline:
                raise BackendUnreachable(
                    f"the background worker accepted no connection for {wait_s:.0f} s",
                    hint=f"see {log}",
                ) from None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)
        except BaseException:
            sock.close()
            raise


def run_worker(config: Config, data_dir: Path) -> int:
    """The worker's main loop. Returns at once if another worker holds the lock."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / "worker.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0
        sock = socket_path(data_dir)
        sock.unlink(missing_ok=True)  # a stale socket of a dead worker; we hold the lock
        try:
            asyncio.run(_serve(config, data_dir, sock))
        finally:
            sock.unlink(missing_ok=True)
    return 0


async def _serve(config: Config, data_dir: Path, sock: Path) -> None:
    from agent_graph.runtime import TaskManager

    async with TaskManager.open(config, data_dir) as manager:
        worker = Worker(manager, config.worker_idle_s)
        server = await asyncio.start_unix_server(worker.handle, path=str(sock), backlog=BACKLOG)
        os.chmod(sock, 0o600)
        await manager.resume_unfinished()
        try:
            await worker.idle_watch()
        finally:
            server.close()


# The client side -----------------------------------------------------------------------------
class WorkerClient:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = socket_path(data_dir)

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        sock = await _connect_unix(str(self.path), self.data_dir / "worker.log")
        return await asyncio.open_unix_connection(sock=sock, limit=2**24)

    async def alive(self) -> bool:
        try:
            reply = await self.request("ping")
        except (OSError, MyninjaError):
            return False
        return bool(reply.get("ok"))

    async def ensure(self, wait_s: float = 30.0) -> None:
        """Start a worker for this data dir unless one answers already."""
        if await self.alive():
            return
        _spawn_worker(self.data_dir)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if await self.alive():
                return
            await asyncio.sleep(0.1)
        raise BackendUnreachable(
            "the background worker did not start",
            hint=f"see {self.data_dir / 'worker.log'}",
        )

    async def request(self, op: str, **fields: Any) -> dict[str, Any]:
        reader, writer = await self._open()
        try:
            await _send(writer, {"op": op, **fields})
            line = await reader.readline()
        finally:
            writer.close()
        if not line:
            raise BackendUnreachable("the background worker closed the connection")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise _error(reply)
        return reply

    async def follow(self, task_id: str, after_seq: int = 0) -> AsyncIterator[dict[str, Any]]:
        """The task's events, then a final `{"end": STATUS}`."""
        reader, writer = await self._open()
        try:
            await _send(writer, {"op": "follow", "task_id": task_id, "after_seq": after_seq})
            while line := await reader.readline():
                reply = json.loads(line)
                if not reply.get("ok"):
                    raise _error(reply)
                yield reply
                if "end" in reply:
                    return
            raise BackendUnreachable("the background worker stopped while following the task")
        finally:
            writer.close()


def _spawn_worker(data_dir: Path) -> None:
    """Start `myninja worker` in its own session, so it outlives this command's terminal."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / "worker.log", "ab") as log:
        subprocess.Popen(
            [sys.executable, "-m", "ninja_tui", "worker"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )


def _error(reply: dict[str, Any]) -> MyninjaError:
    error = MyninjaError(reply.get("error", "the worker refused the request"))
    error.exit_code = int(reply.get("exit_code", EXIT_FAILED))
    return error
