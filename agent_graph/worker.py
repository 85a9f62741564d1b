"""The background worker: one per data dir, holding a TaskManager, reached over a Unix socket.

`myninja run --detach` (and the TUI) hand tasks to it, so they keep going after the command
exits. It is started on demand, guarded by an exclusive lock on `worker-serving.lock` (a second
one exits at once), resumes every unfinished task whose owner is gone when it starts, and exits
after `worker_idle_s` with no task running and no client connected. Its socket lives in the
user's private runtime dir (`paths.runtime_dir`), named after the data dir.

Client and worker tell each other which code they run (`code_identity`: the version and a
digest of the code files; `ping` answers with the worker's, a request carries the client's).
A worker started from older code than the client's is retired when the client asks and the
worker agrees that the client's code is the newer: it gives its socket name and the lock to a
new worker, finishes the tasks it is running, and exits; meanwhile the new worker passes
requests about those tasks on to it (its socket moves to a name with its pid). A client
older than the worker (an app left open across an update) uses it as it is.

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
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from myninja.agent_graph.code_identity import code_identity, same_code, which_code

from myninja import paths
from myninja.config import Config
from myninja.config_file import load_config
from myninja.errors import EXIT_FAILED, BackendUnreachable, MyninjaError, UsageError

if TYPE_CHECKING:
    from myninja.agent_graph.runtime import TaskManager

RESTING = ("waiting", "done", "failed", "cancelled")
ORPHAN_GRACE_S = 3.0  # a task no runner holds, not at rest, for this long: its end was lost
BACKLOG = 1024  # scripts submit hundreds of tasks at once; the kernel caps it at somaxconn
# AF_UNIX paths end at 103 bytes on macOS (107 on Linux); a handover name adds ".PID" (8).
SOCKET_PATH_MAX = 95
TASK_OPS = ("answer", "cancel", "resume", "follow")  # what a retiring worker still answers


# Where it listens ---------------------------------------------------------------------------
def socket_path(data_dir: Path) -> Path:
    """The worker's socket, in the user's private runtime dir. Each data dir (MYNINJA_HOME) has
    its own worker, so the name is a digest of the data dir's path."""
    return _socket_in(paths.runtime_dir(data_dir), data_dir)


def existing_socket_path(data_dir: Path) -> Path | None:
    """`socket_path`, without making its directory: None where there is none (no worker)."""
    folder = paths.existing_runtime_dir(data_dir)
    return None if folder is None else _socket_in(folder, data_dir)


def _socket_in(folder: Path, data_dir: Path) -> Path:
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
    path = folder / f"worker-{digest}.sock"
    if len(os.fsencode(path)) > SOCKET_PATH_MAX:
        raise UsageError(
            f"the worker's socket path {path} is too long for a Unix socket",
            hint="set TMPDIR (or XDG_RUNTIME_DIR) to a shorter directory",
        )
    return path


def handover_path(sock: Path, pid: int) -> Path:
    """Where a retiring worker's socket moves: a new worker passes requests about the tasks
    still running there on to it."""
    return sock.with_name(f"{sock.stem}.{pid}.sock")


def lock_path(data_dir: Path) -> Path:
    """Held by the worker that takes new tasks; a retiring one lets go of it. (Not the
    `worker.lock` of the earlier layout: a worker of that layout, still finishing its tasks
    with its socket in the data dir, must not keep a new one from starting.)"""
    return data_dir / "worker-serving.lock"


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
        if op in TASK_OPS and await self._relay(request, writer):
            pass
        elif op == "ping":
            await _send(
                writer,
                {
                    "ok": True,
                    "pid": os.getpid(),
                    "running": manager.running(),
                    "identity": self.identity,
                },
            )
        elif op == "retire":
            running = manager.running()
            newer = self._newer(request.get("client") or {})
            if newer:
                self.retire()  # before the reply: the client then starts the new worker
            await _send(
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

    def _newer(self, theirs: dict[str, Any]) -> bool:
        """Whether a client runs other code, read after ours: then ours is the stale one. (An
        older client, or two at once, must not retire a worker of newer code.)"""
        later = theirs.get("read_at", 0) > self.identity["read_at"]
        return later and not same_code(theirs, self.identity)

    async def _relay(self, request: dict[str, Any], writer: asyncio.StreamWriter) -> bool:
        """A task that a retiring worker still runs is that worker's to answer, cancel or
        follow: pass the request on and the replies back. False: the task is not such a one."""
        from myninja.agent_graph.runtime import owner_alive

        task = self.manager.store.get_task(request["task_id"]) or {}
        owner = task.get("owner") or ""
        if self.retired or owner == self.manager.owner or not owner_alive(owner):
            return False
        handover = handover_path(self.sock, int(owner.split(":")[1]))
        try:
            sock = await _connect_unix(str(handover), self.manager.store.path.parent / "worker.log")
        except OSError:  # not a retiring worker (a foreground `ask`), or it just exited
            return False
        reader, upstream = await asyncio.open_unix_connection(sock=sock, limit=2**24)
        try:
            await _send(upstream, request)
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
        new task uses it without restarting the worker. A broken file refuses the task."""
        path = paths.config_file()
        stamp = _stamp(path)
        if stamp != self.config_stamp:
            self.manager.reconfigure(load_config(path))
            self.config_stamp = stamp

    async def _follow(self, task_id: str, after_seq: int, writer: asyncio.StreamWriter) -> None:
        from myninja.agent_graph.runtime import owner_alive

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
            elif self.retired or time.monotonic() - self.last_busy > self.idle_s:
                self.stop.set()
            if not self.retired and not self._ours(self.sock):
                # Our name was removed (the runtime dir went with a logout): nobody reaches us
                # any more, so let a new worker start.
                self.retire()
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
    code_identity()  # first: the code this process started from, before any change to it
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_path(data_dir), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0
        sock = socket_path(data_dir)
        sock.unlink(missing_ok=True)  # a stale socket of a dead worker; we hold the lock
        asyncio.run(_serve(config, data_dir, sock, lock))
    return 0


async def _serve(config: Config, data_dir: Path, sock: Path, lock: IO[str]) -> None:
    from myninja.agent_graph.runtime import TaskManager

    async with TaskManager.open(config, data_dir) as manager:
        worker = Worker(manager, config.worker_idle_s, sock, lock)
        try:
            await worker.listen()
            await manager.resume_unfinished()
            await worker.idle_watch()
        finally:
            worker.close()


# The client side -----------------------------------------------------------------------------
class WorkerClient:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = existing_socket_path(data_dir)
        self.identity = code_identity()  # now, not at the first request: the TUI lives long
        self.told_older = False

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        self.path = self.path or existing_socket_path(self.data_dir)
        if self.path is None:
            raise BackendUnreachable("the background worker is not running")
        sock = await _connect_unix(str(self.path), self.data_dir / "worker.log")
        return await asyncio.open_unix_connection(sock=sock, limit=2**24)

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
            await _send(writer, {"op": op, "client": self.identity, **fields})
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
            request = {"op": "follow", "client": self.identity, "task_id": task_id}
            await _send(writer, {**request, "after_seq": after_seq})
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


def _error(reply: dict[str, Any]) -> MyninjaError:
    error = MyninjaError(reply.get("error", "the worker refused the request"))
    error.exit_code = int(reply.get("exit_code", EXIT_FAILED))
    return error
