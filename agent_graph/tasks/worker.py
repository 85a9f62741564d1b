"""The background worker: one per data dir, holding a TaskManager, reached over a Unix socket
(wire.py). `myninja run --detach` (and the app) hand tasks to it, so they keep going after the
command exits.

It is started on demand (client.py), guarded by an exclusive lock on `worker-serving.lock` (a
second one exits at once), resumes every unfinished task whose owner is gone when it starts,
and exits after `worker_idle_s` with no task running, no client connected and no schedule on
(it runs the due ones: schedules.py).

Client and worker tell each other which code they run (`code_identity`: the version and a
digest of the code files; `ping` answers with the worker's, a request carries the client's).
A worker started from older code than the client's is retired when the client asks and the
worker agrees that the client's code is the newer: it gives its socket name and the lock to a
new worker, finishes the tasks it is running, and exits; meanwhile the new worker passes
requests about those tasks on to it (its socket moves to a name with its pid). A client
older than the worker (an app left open across an update) uses it as it is.

Requests: ping, retire, submit, answer, cancel, resume, follow, shutdown. `follow` streams the
task's feed (feed.py: stored events after `after_seq`, then live ones) as `{"event": …}`
replies and ends with `{"end": STATUS}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from myninja import paths
from myninja.agent_graph.code_identity import code_identity, same_code
from myninja.agent_graph.tasks.desktop import DesktopNotices
from myninja.agent_graph.tasks.owners import owner_alive, owner_pid
from myninja.agent_graph.tasks.wire import (
    handover_path,
    lock_path,
    open_connection,
    refused,
    send,
    socket_path,
)
from myninja.config import Config
from myninja.config_file import load_config
from myninja.errors import EXIT_FAILED, BackendUnreachable, MyninjaError

if TYPE_CHECKING:
    from myninja.agent_graph.tasks.manager import TaskManager
    from myninja.agent_graph.tasks.schedules import Scheduler

BACKLOG = 1024  # scripts submit hundreds of tasks at once; the kernel caps it at somaxconn
TASK_OPS = ("answer", "cancel", "resume", "follow")  # what a retiring worker still answers
TERMINAL = "x-terminal-emulator"  # Debian's alternatives name for the desktop's terminal


class Worker:
    def __init__(self, manager: TaskManager, idle_s: float, sock: Path, lock: IO[str]) -> None:
        self.manager = manager
        self.idle_s = idle_s
        self.clients = 0
        self.last_busy = time.monotonic()
        self.stop = asyncio.Event()
        self.config_stamp = _stamp(paths.config_file())
        self.identity = code_identity()
        self.sock = sock  # the name clients reach; ours while we hold the lock
        self.lock = lock
        self.server: asyncio.Server | None = None
        self.listening: Path | None = None  # where our socket is now (None: closed)
        self.sock_id: tuple[int, int] | None = None
        self.retired = False
        self.scheduler: Scheduler | None = None  # runs due schedules; keeps us while any is on

    async def listen(self) -> None:
        self.server = await asyncio.start_unix_server(
            self.handle, path=str(self.sock), backlog=BACKLOG
        )
        os.chmod(self.sock, 0o600)
        info = self.sock.stat()
        self.listening, self.sock_id = self.sock, (info.st_dev, info.st_ino)

    def _ours(self, path: Path) -> bool:
        try:
            info = path.stat()
        except OSError:
            return False
        return (info.st_dev, info.st_ino) == self.sock_id

    def retire(self) -> None:
        """Take no new tasks: move the socket to this pid's handover name and let go of the lock,
        so that a new worker starts; keep the open connections; finish the running tasks, then
        exit (idle_watch)."""
        if self.retired:
            return
        self.retired = True
        handover = handover_path(self.sock, os.getpid())
        self.listening = None
        if self._ours(self.sock):
            with contextlib.suppress(OSError):
                os.rename(self.sock, handover)
                self.listening = handover
        if self.listening is None and self.server is not None:
            self.server.close()  # the name is gone (a cleaned runtime dir): nobody reaches us
        fcntl.flock(self.lock, fcntl.LOCK_UN)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        if self.listening is not None and self._ours(self.listening):
            self.listening.unlink(missing_ok=True)
        if not self.retired:  # holding the lock: no worker of this data dir is starting
            paths.drop_runtime_dir(self.manager.store.path.parent)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.clients += 1
        try:
            while line := await reader.readline():
                try:
                    request = json.loads(line)
                    await self._dispatch(request, writer)
                except MyninjaError as exc:
                    await send(writer, refused(exc))
                except (ValueError, KeyError, TypeError) as exc:
                    await send(
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
        if op in TASK_OPS and await self._relay(request, writer):
            pass
        elif op == "ping":
            reply = {"pid": os.getpid(), "running": manager.running(), "identity": self.identity}
            await send(writer, {"ok": True, **reply})
        elif op == "retire":
            running = manager.running()
            newer = self._newer(request.get("client") or {})
            if newer:
                self.retire()  # before the reply: the client then starts the new worker
            await send(
                writer, {"ok": True, "pid": os.getpid(), "retired": newer, "running": running}
            )
        elif op == "submit":
            self._pick_up_config()
            task_id = await manager.submit(
                request["text"],
                agent=request.get("agent"),
                backend=request.get("backend"),
                model=request.get("model"),
                allow=request.get("allow"),
            )
            await send(writer, {"ok": True, "task_id": task_id})
        elif op == "answer":
            qid = await manager.answer(
                request["task_id"], request.get("question_id"), request["text"]
            )
            await send(writer, {"ok": True, "question_id": qid})
        elif op == "cancel":
            await manager.cancel(request["task_id"])
            await send(writer, {"ok": True})
        elif op == "resume":
            # With the config as it is now: a task stopped by a budget is resumed after the
            # person raised it.
            self._pick_up_config()
            await manager.resume(request["task_id"])
            await send(writer, {"ok": True})
        elif op == "follow":
            task_id = manager.task(request["task_id"])["id"]
            with manager.feed(task_id, int(request.get("after_seq", 0))) as feed:
                async for item in feed:
                    await send(writer, {"ok": True, **item})
        elif op == "shutdown":
            await send(writer, {"ok": True})
            self.stop.set()
        else:
            raise ValueError(f"unknown op {op!r}")

    def _newer(self, theirs: dict[str, Any]) -> bool:
        """Whether a client runs other code, read after ours: then ours is the stale one. (An
        older client, or two at once, must not retire a worker of newer code.)"""
        later = theirs.get("read_at", 0) > self.identity["read_at"]
        return later and not same_code(theirs, self.identity)

    async def _relay(self, request: dict[str, Any], writer: asyncio.StreamWriter) -> bool:
        """A task that a retiring worker still runs is that worker's to answer, cancel or
        follow: pass the request on and the replies back. False: the task is not such a one."""
        task = self.manager.store.get_task(request["task_id"]) or {}
        owner = task.get("owner") or ""
        if self.retired or owner == self.manager.owner or not owner_alive(owner):
            return False
        handover = handover_path(self.sock, owner_pid(owner))
        try:
            log = self.manager.store.path.parent / "worker.log"
            reader, upstream = await open_connection(str(handover), log)
        except OSError:  # not a retiring worker (a foreground `ask`), or it just exited
            return False
        try:
            await send(upstream, request)
            while line := await reader.readline():
                writer.write(line)
                await writer.drain()
                reply = json.loads(line)
                if request["op"] != "follow" or "end" in reply or not reply.get("ok"):
                    return True
            raise BackendUnreachable(f"the retiring worker of task {task['id']} stopped")
        finally:
            upstream.close()

    def _pick_up_config(self) -> None:
        """Reload the config file if it changed (the app's settings screen writes it), so a
        new or resumed task uses it without restarting the worker. A broken file refuses the
        task."""
        path = paths.config_file()
        stamp = _stamp(path)
        if stamp != self.config_stamp:
            self.manager.reconfigure(load_config(path))
            self.config_stamp = stamp

    async def idle_watch(self) -> None:
        while not self.stop.is_set():
            scheduling = self.scheduler is not None and self.scheduler.active
            desktop = self.manager.notifier.desktop
            pressable = desktop is not None and desktop.awaiting_press()
            if self.manager.running() or self.clients or scheduling or pressable:
                self.last_busy = time.monotonic()
            elif self.retired or time.monotonic() - self.last_busy > self.idle_s:
                self.stop.set()
            if not self.retired and not self._ours(self.sock):
                # Our name was removed (the runtime dir went with a logout): nobody reaches us
                # any more, so let a new worker start.
                self.retire()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), 1.0)


class WorkerActions:
    """What a button of the worker's OS notification does: answer through the task manager;
    Open starts the app in a new terminal window, where the system names one."""

    def __init__(self, manager: TaskManager) -> None:
        self.manager = manager

    async def answer(self, task_id: str, question_id: str, text: str) -> None:
        await self.manager.answer(task_id, question_id or None, text)

    def can_open(self) -> bool:
        return shutil.which(TERMINAL) is not None

    async def open(self, task_id: str) -> None:
        app = Path(sys.executable).with_name("myninja")
        with contextlib.suppress(OSError):
            await asyncio.create_subprocess_exec(
                TERMINAL,
                "-e",
                str(app),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


def run_worker(config: Config, data_dir: Path, *, stay: bool = False) -> int:
    """The worker's main loop. Returns at once if another worker holds the lock. `stay`: never
    exit for being idle (a service manager runs it: `myninja worker install`)."""
    code_identity()  # first: the code this process started from, before any change to it
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_path(data_dir), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0
        sock = socket_path(data_dir)
        sock.unlink(missing_ok=True)  # a stale socket of a dead worker; we hold the lock
        asyncio.run(_serve(config, data_dir, sock, lock, math.inf if stay else None))
    return 0


async def _serve(
    config: Config, data_dir: Path, sock: Path, lock: IO[str], idle_s: float | None
) -> None:
    from myninja.agent_graph.tasks.manager import TaskManager
    from myninja.agent_graph.tasks.schedules import ScheduleBook, Scheduler

    async with TaskManager.open(config, data_dir) as manager:
        worker = Worker(manager, idle_s or config.worker_idle_s, sock, lock)
        manager.notifier.desktop = DesktopNotices(WorkerActions(manager))
        try:
            await worker.listen()
            await manager.resume_unfinished()
            # On the manager's own connection to history.db (see ScheduleBook).
            book = ScheduleBook(manager.store)

            async def submit(text: str, task_id: str) -> str:
                worker._pick_up_config()  # as a submit request does
                return await manager.submit(text, task_id=task_id)

            worker.scheduler = Scheduler(
                book,
                submit,
                lambda: manager.config.schedules.missed,
                lambda: manager.config.schedules.pause_after,
                lambda row: manager.notifier.schedule_paused(row),
            )
            ticking = asyncio.create_task(worker.scheduler.run(worker.stop, lambda: worker.retired))
            try:
                await worker.idle_watch()
            finally:
                worker.stop.set()
                await ticking
        finally:
            worker.close()
