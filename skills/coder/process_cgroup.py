"""A pids cgroup per sandboxed run, where this process may make one: the kernel's own count of
the run's processes, exact and race-free, which binds root too (RLIMIT_NPROC does not).

Only root makes one: for anyone else RLIMIT_NPROC inside the run's user namespace counts
exactly. Root without a writable pids controller falls back to counting the process tree from
outside. `cgroup v1` (a `pids` hierarchy) and `cgroup v2` (a cgroup whose
`cgroup.subtree_control` enables `pids`) are both used; anything unexpected means "none".
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import signal
import time
from pathlib import Path

_ROOTS = {"v1": Path("/sys/fs/cgroup/pids"), "v2": Path("/sys/fs/cgroup")}
_PREFIX = "myninja-run-"
_counter = itertools.count()


@functools.cache  # a process stays in its cgroup: read it, and sweep, once
def _parent() -> Path | None:
    """The cgroup folder under which this process may make children that limit pids. Root
    only: for anyone else RLIMIT_NPROC in the run's user namespace counts exactly, and joining
    a cgroup has rules of its own (cgroup v2 delegation) that are not worth a failed run."""
    if os.geteuid() != 0:
        return None
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "pids" in controllers.split(","):
            folder = _ROOTS["v1"] / path.lstrip("/")
            if (folder / "pids.max").exists() or folder == _ROOTS["v1"]:
                return _swept(folder) if os.access(folder, os.W_OK) else None
        if controllers == "":
            for root in (_ROOTS["v2"], _ROOTS["v2"] / "unified"):
                folder = root / path.lstrip("/")
                try:
                    enabled = (folder / "cgroup.subtree_control").read_text().split()
                except OSError:
                    continue
                if "pids" in enabled and os.access(folder, os.W_OK):
                    return _swept(folder)
    return None


def _swept(parent: Path) -> Path:
    """`parent`, rid of what a crashed process of ours left (empty folders whose owner is
    gone)."""
    for stale in parent.glob(_PREFIX + "*"):
        owner = stale.name[len(_PREFIX) :].split("-", 1)[0]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            with contextlib.suppress(OSError):
                stale.rmdir()
    return parent


class ProcessCgroup:
    """One run's cgroup: the child joins it (`procs_file`) before any user code runs."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, limit: int) -> ProcessCgroup | None:
        parent = _parent()
        if parent is None:
            return None
        path = parent / f"{_PREFIX}{os.getpid()}-{next(_counter)}"
        try:
            path.mkdir()
        except OSError:
            return None
        made = cls(path)
        try:
            (path / "pids.max").write_text(str(limit))
        except OSError:
            made.remove()
            return None
        return made

    @property
    def procs_file(self) -> str:
        return str(self.path / "cgroup.procs")

    def refused(self) -> bool:
        """Whether the kernel has refused a fork or clone in this run (the limit was reached)."""
        try:
            events = (self.path / "pids.events").read_text().split()
        except OSError:
            return False
        counts = dict(zip(events[::2], events[1::2], strict=False))
        return counts.get("max", "0") != "0"

    def kill_all(self) -> None:
        """SIGKILL every process in it, those that left the process group included."""
        for _ in range(100):
            try:
                pids = [int(p) for p in Path(self.procs_file).read_text().split()]
            except OSError:
                return
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.005)

    def remove(self) -> None:
        """Kill what is left and remove the folder (the kernel empties it as they exit)."""
        self.kill_all()
        for _ in range(200):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.005)


def available() -> bool:
    """Whether runs here get a pids cgroup (made and removed once to be sure)."""
    made = ProcessCgroup.create(1)
    if made is None:
        return False
    made.remove()
    return True


def how_counted() -> str:
    """Who counts a run's processes here, in words for `myninja sandbox check`."""
    if available():
        return "the kernel (a pids cgroup per run)"
    if os.getuid() != 0:
        return "the kernel (RLIMIT_NPROC in the run's user namespace)"
    return "the sandbox, from outside (root, no writable pids cgroup: killed at twice the limit)"
