"""Which process runs a task, and whether that process is still alive.

An owner is `pid:PID:START`, START being the process's start time from /proc, so a pid the
kernel reused for another process is not taken for the owner."""

from __future__ import annotations

import os
from pathlib import Path


def process_owner() -> str:
    """Who runs a task: this process, named so a later process can tell whether it is alive."""
    return f"pid:{os.getpid()}:{_start_time(os.getpid())}"


def owner_pid(owner: str) -> int:
    """The pid of an owner named by `process_owner`."""
    return int(owner.split(":")[1])


def owner_alive(owner: str | None) -> bool:
    """Whether the process named `owner` still runs (a zombie does not)."""
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


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name (which may hold spaces and parentheses)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def _start_time(pid: int) -> str:
    fields = _stat_fields(pid)
    return "?" if fields is None else fields[19]


def _zombie(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is not None and fields[0] in ("Z", "X")
