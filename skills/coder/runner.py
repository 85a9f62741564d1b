"""Run one sandboxed child process to its end: start it in a session of its own, feed its stdin,
capture a head and a tail of its output, count its processes, and kill its whole process group
when a limit is reached (wall time, output, processes) or the run is cancelled; then say which
limit, if any, ended it (`run_process` returns the `RunResult`).

Output is read incrementally and only a head and a tail of it are kept, so a program that prints
a gigabyte cannot fill our memory; past `OUTPUT_KILL_FACTOR` times the cap it is killed. Wall
time is enforced from here by killing the process group.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import threading
import time
from pathlib import Path

from myninja.skills.coder.limits import OUTPUT_KILL_FACTOR, NetworkIsolation, SandboxLimits
from myninja.skills.coder.process_cgroup import ProcessCgroup
from myninja.skills.coder.run_result import RunResult

# open (a daemonised grandchild that left the process group).
_DRAIN_GRACE_S = 1.0
# How often the run's process tree is counted from here (kernel mode): a walk of a few /proc
# files for a usual run.
_COUNT_EVERY_S = 0.05
# A run the kernel has refused a fork is given this long to handle it (Python's hook raises a
# clear error, a pool makes do with fewer workers) before it is stopped as a fork bomb.
_REFUSED_GRACE_S = 1.0
# Code longer than this goes to a file in the workspace's tmp/ rather than on the command line


class _CappedBuffer:
    """Keeps the first three quarters and the last quarter of `cap` bytes of a stream; counts
    the rest. The tail matters: that is where tracebacks and test summaries are."""

    def __init__(self, cap: int) -> None:
        self.tail_cap = cap // 4
        self.head_cap = cap - self.tail_cap
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = self.head_cap - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if not data or not self.tail_cap:
            return
        if len(data) >= self.tail_cap:
            self.tail = bytearray(data[-self.tail_cap :])
        else:
            self.tail += data
            if len(self.tail) > self.tail_cap:
                del self.tail[: len(self.tail) - self.tail_cap]

    @property
    def dropped(self) -> int:
        return self.total - len(self.head) - len(self.tail)

    def text(self) -> str:
        if not self.dropped:
            return (self.head + self.tail).decode("utf-8", "replace")
        head = self.head.decode("utf-8", "replace")
        tail = self.tail.decode("utf-8", "replace")
        return f"{head}\n[sandbox: {self.dropped} bytes of output dropped]\n{tail}"


def _tree_size(pid: int, enough: int) -> int:
    """Processes in the tree under `pid` (itself included), counted up to `enough`."""
    seen, todo = 0, [pid]
    while todo and seen < enough:
        current = todo.pop()
        seen += 1
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children", "rb") as f:
                    todo.extend(int(child) for child in f.read().split())
        except (OSError, ValueError):
            continue  # it exited meanwhile
    return seen


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # already gone


def _exited(pid: int) -> bool:
    """Whether the child has exited, without reaping it: while it is an unreaped zombie its
    process group id cannot be reused, so killpg() cannot hit a stranger."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped by someone else (a waitpid(-1) child watcher)
        return True


def run_process(
    command: list[str],
    workspace: Path,
    env: dict[str, str],
    stdin: str | None,
    limits: SandboxLimits,
    isolation: NetworkIsolation,
    cancel: threading.Event | None,
    count_tree: bool = False,
    cgroup: ProcessCgroup | None = None,
) -> RunResult:
    """With a `cgroup`, the kernel counts the run's processes: a second after the first fork
    it refuses, a run still going is killed. Without one, `count_tree` counts them from here
    (its own /proc is closed to it under the kernel's confinement, and programs it starts or
    libc forks never sign in): past twice `limits.processes` the group is killed."""
    started = time.monotonic()
    next_count = started
    proc = subprocess.Popen(
        command,
        cwd=workspace,
        env=env,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, so one killpg() ends all of it
        close_fds=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    out, err = _CappedBuffer(limits.output_bytes), _CappedBuffer(limits.output_bytes)
    buffers = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
    pending = (stdin or "").encode()
    selector = selectors.DefaultSelector()
    for fd in buffers:
        selector.register(fd, selectors.EVENT_READ)
    if proc.stdin is not None:
        os.set_blocking(proc.stdin.fileno(), False)
        if pending:
            selector.register(proc.stdin.fileno(), selectors.EVENT_WRITE)
        else:
            proc.stdin.close()

    deadline = started + limits.wall_s
    kill_after = limits.output_bytes * OUTPUT_KILL_FACTOR
    reason: str | None = None
    exited_at: float | None = None
    refused_at: float | None = None  # when the cgroup first refused a fork
    try:
        while True:
            now = time.monotonic()
            if exited_at is None:
                if _exited(proc.pid):
                    exited_at = now
                    _kill_group(proc.pid)  # whatever it left running in its group
                elif reason is None:
                    if now >= deadline:
                        reason = "wall time"
                    elif cancel is not None and cancel.is_set():
                        reason = "cancelled"
                    elif out.total + err.total > kill_after:
                        reason = "output"
                    elif cgroup is not None:
                        if refused_at is None and cgroup.refused():
                            refused_at = now
                        elif refused_at is not None and now - refused_at > _REFUSED_GRACE_S:
                            reason = "processes"
                    elif count_tree and now >= next_count:
                        next_count = now + _COUNT_EVERY_S
                        # A backstop past the hook's own count (exact for Python's forks,
                        # which concurrent forks can overshoot): twice the limit.
                        backstop = 2 * limits.processes
                        if _tree_size(proc.pid, backstop + 1) > backstop:
                            reason = "processes"
                    if reason is not None:
                        _kill_group(proc.pid)
                        if cgroup is not None:
                            cgroup.kill_all()
            if exited_at is not None and (
                not selector.get_map() or now - exited_at > _DRAIN_GRACE_S
            ):
                break
            if not selector.get_map():
                time.sleep(0.02)  # the program closed its pipes but still runs
                continue
            for key, _ in selector.select(timeout=0.05):
                fd = key.fd
                if fd in buffers:
                    data = os.read(fd, 65536)
                    if data:
                        buffers[fd].add(data)
                    else:
                        selector.unregister(fd)
                    continue
                try:
                    written = os.write(fd, pending[:65536])
                    pending = pending[written:]
                except BlockingIOError:
                    continue
                except BrokenPipeError:
                    pending = b""  # it stopped reading: fine
                if not pending:
                    selector.unregister(fd)
                    assert proc.stdin is not None
                    proc.stdin.close()
    finally:
        selector.close()
        if exited_at is None:
            _kill_group(proc.pid)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None and not stream.closed:
                stream.close()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            cpu_time = usage.ru_utime + usage.ru_stime
        except ChildProcessError:  # reaped by someone else: its status is lost
            proc.returncode, cpu_time = -1, 0.0
    duration = time.monotonic() - started
    exit_code = proc.returncode
    if reason is None:
        reason = _reason_from_exit(exit_code, cpu_time, limits, err)
    if reason is None and exit_code != 0 and cgroup is not None and cgroup.refused():
        reason = "processes"  # it failed after the kernel refused it a fork
    result = RunResult(
        exit_code=exit_code,
        stdout=out.text(),
        stderr=err.text(),
        timed_out=reason == "wall time",
        killed_reason=reason,
        duration_s=duration,
        truncated=bool(out.dropped or err.dropped),
        network_isolation=isolation,
        limits=limits,
        cpu_time_s=cpu_time,
    )
    message = result.limit_message()
    if message:
        result.stderr += ("" if not result.stderr or result.stderr.endswith("\n") else "\n") + (
            f"[sandbox] {message}\n"
        )
    return result


def _reason_from_exit(
    exit_code: int, cpu_time: float, limits: SandboxLimits, err: _CappedBuffer
) -> str | None:
    """Which limit, if any, ended a program that we did not kill ourselves."""
    if exit_code < 0:
        number = -exit_code
        if number == signal.SIGXCPU or (number == signal.SIGKILL and cpu_time >= limits.cpu_s):
            return "cpu time"
        if number == signal.SIGXFSZ:
            return "file size"
        try:
            return f"signal {signal.Signals(number).name}"
        except ValueError:
            return f"signal {number}"
    if exit_code != 0:
        tail = err.tail.decode("utf-8", "replace") or err.head[-4096:].decode("utf-8", "replace")
        last_line = tail.rstrip().rpartition("\n")[2]
        if last_line.startswith("MemoryError"):
            return "memory"
        if "[Errno 27] File too large" in last_line:
            return "file size"
        if last_line.startswith("PermissionError: sandbox: process limit reached") or (
            last_line.startswith("BlockingIOError: [Errno 11]") and "fork" in tail
        ):
            return "processes"
    return None
