"""Where the background worker listens, and how requests and replies travel: one JSON object
per line over a Unix socket in the user's private runtime dir (`paths.runtime_dir`), named
after the data dir. Every reply has `ok`; a failed request carries `error` (one line) and
`exit_code`."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from myninja import paths
from myninja.errors import EXIT_FAILED, BackendUnreachable, MyninjaError, UsageError

# AF_UNIX paths end at 103 bytes on macOS (107 on Linux); a handover name adds ".PID" (8).
SOCKET_PATH_MAX = 95
READ_LIMIT = 2**24  # one line: a follow replays events that may hold long answers


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


async def send(writer: asyncio.StreamWriter, obj: dict[str, Any]) -> None:
    """Write one JSON line and wait until the transport takes it."""
    writer.write((json.dumps(obj, ensure_ascii=False) + "\n").encode())
    await writer.drain()


async def connect_unix(path: str, log: Path, wait_s: float = 30.0) -> socket.socket:
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


async def open_connection(
    path: str, log: Path
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """`connect_unix`, as asyncio streams."""
    sock = await connect_unix(path, log)
    return await asyncio.open_unix_connection(sock=sock, limit=READ_LIMIT)


def refusal(reply: dict[str, Any]) -> MyninjaError:
    """The error a failed reply stands for, with its exit code."""
    error = MyninjaError(reply.get("error", "the worker refused the request"))
    error.exit_code = int(reply.get("exit_code", EXIT_FAILED))
    return error


def refused(exc: MyninjaError) -> dict[str, Any]:
    """The reply that reports `exc`."""
    return {"ok": False, "error": exc.one_line(), "exit_code": exc.exit_code}
