"""Run untrusted Python (model-written code, its tests, benchmark completions) in a sandboxed
subprocess, never in our own process: `run_python`, `arun_python`, `run_command`, and the task's
`Workspace` they run in. The parts: limits.py (`SandboxLimits`), run_result.py (`RunResult`),
launch.py (kernel or in-process, and what the child is given), runner.py (the process, its
output, its limits, killing it), and what runs in the child: child_bootstrap.py, child_guard.py
(the audit hook), child_paths.py (what it may read and write), confine.py (the kernel's layers).

What protects us, from strongest to weakest:

- **The kernel** (the default, Linux): before any of the code runs, the child confines itself
  with confine.py: a user and network namespace, `no_new_privs`, Landlock (system folders and
  the Python installation read-only, the workspace writable, nothing else) and a seccomp
  filter (ptrace, mount, namespaces, keyctl, bpf, io_uring, sockets ... refused). It holds
  against code that sets out to escape: ctypes, raw syscalls, /proc paths, links, programs it
  starts. Where the kernel cannot confine it, code is not run unless the config opts in to the
  in-process layers below alone (`[sandbox] confinement = "in-process"`); `RunResult.
  confinement` says which ran. docs/security.md has the threat model.
- **A separate process** started with `python -I -B` (no user site, no `PYTHON*` variables,
  no bytecode files), in its own session so that a time-out kills the whole process group, with
  a minimal environment: PATH, HOME and TMPDIR pointing into the workspace, locale. Nothing else
  of ours crosses over: no API keys, no `MYNINJA_*`.
- **Resource limits** (setrlimit, set by the child's bootstrap before any user code runs, and
  impossible to raise again without privileges): CPU seconds, address space (memory), processes,
  file size, no core dumps. Wall time is enforced from here by killing the process group.
  Processes are counted by a pids cgroup per run where one can be made (process_cgroup.py):
  a run still going a second after the kernel refused it a fork is killed (killed_reason
  "processes"). The kernel does not apply RLIMIT_NPROC to root, so the audit hook below also
  counts the run's process group at every fork and program start and refuses past
  `SandboxLimits.processes`, and without a cgroup the process tree is counted from outside.
  Output is read incrementally and only a head and a tail of it are kept, so a program that
  prints a gigabyte cannot fill our memory; past 16 times the cap it is killed.
- **A network namespace** where the OS allows one: `unshare --net --map-root-user` (probed once
  per process) gives the child a network stack of its own with no interface up, so no address,
  loopback included, is reachable whatever the code does. Without user namespaces there is no
  such barrier, and `RunResult.network_isolation` says "audit-hook".
- **An audit hook** (`sys.addaudithook`, child_guard.py), installed by the bootstrap before the
  user's code, refuses with a PermissionError whose message starts with "sandbox:" writes
  outside the workspace, reading what is private to the person (child_paths.py: the real HOME
  but the Python installation, myninja's config and data folders but the task's own workspace,
  other processes' /proc entries), network use, and starting programs unless allowed. (A
  program that runs pytest itself below a HOME holding a pytest.ini, pyproject.toml, tox.ini or
  setup.cfg is refused when pytest reads it on its way up: run_tests passes `-c` and
  `--rootdir`, and is not.)

What the audit hook does NOT protect against (the kernel's layers do, where they run): it is a
guard against accidents and honest mistakes, not against code that sets out to escape. Python
code can get around it with ctypes (calling libc directly), by rewriting the hook's closure
through `gc`, by writing /proc/self/mem-like tricks through a file descriptor opened before a
check, or by racing a symlink swap between the check and the system call. `os.mkfifo` and
`os.mknod` raise no audit event; `os.open(name, ..., dir_fd=fd)` is checked against the current
directory because the "open" event does not carry `dir_fd`; a fork()ed child inherits the hook,
but a program started with `allow_subprocess=True` runs without it (only the rlimits and the
namespace apply to it). A process that calls setsid() or setpgid() leaves the process group: it
survives the kill and no longer counts towards the process limit; forks through ctypes are not
counted either. RLIMIT_FSIZE caps each file, not their sum: a loop writing many files under the
cap can still fill the disk until the wall time ends it. The operating system's own permissions
still apply: run this as an unprivileged user. The real walls are the process boundary, the
rlimits and (where available) the network namespace; a container or VM is the right tool for
code that is actually hostile.
"""

from __future__ import annotations

import asyncio
import difflib
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from myninja.errors import MyninjaError
from myninja.skills.coder import confinement
from myninja.skills.coder.launch import launch, network_isolation_available
from myninja.skills.coder.limits import DEFAULT_LIMITS, NetworkIsolation, SandboxLimits
from myninja.skills.coder.run_result import RunResult

__all__ = [
    "DEFAULT_LIMITS",
    "NetworkIsolation",
    "RunResult",
    "SandboxLimits",
    "Workspace",
    "WorkspaceError",
    "arun_python",
    "network_isolation_available",
    "run_command",
    "run_python",
]


class WorkspaceError(MyninjaError):
    """A workspace path that escapes the workspace, or a workspace that does not exist."""


def _resolve_script(code_or_path: str | Path, workspace: Path) -> Path | None:
    if not isinstance(code_or_path, Path):
        return None
    script = code_or_path if code_or_path.is_absolute() else workspace / code_or_path
    if not script.is_file():
        raise WorkspaceError(f"no such script: {script}")
    return script.resolve()


def run_python(
    code_or_path: str | Path,
    *,
    workspace: Path | Workspace,
    args: Sequence[str] = (),
    stdin: str | None = None,
    limits: SandboxLimits = DEFAULT_LIMITS,
    network: bool = False,
    allow_subprocess: bool = False,
    cancel: threading.Event | None = None,
    confine: confinement.Mode | None = None,
) -> RunResult:
    """Run Python source (a str) or a script (a Path, relative to the workspace or absolute)
    in the sandbox, with `workspace` as its working directory, and wait for it.

    `network=True` turns off the namespace, the kernel's and the hook's network refusals;
    `allow_subprocess=True` lets the program start other programs (which run unhooked, still
    confined by the kernel). `confine` is "kernel" or "in-process" (default: the config's).
    Whatever the program leaves running in its process group is killed when it exits.
    Setting `cancel` kills the run. Never raises for anything the program does."""
    ws = _workspace_dir(workspace)
    script = _resolve_script(code_or_path, ws)
    code = None if script is not None else str(code_or_path)
    return launch(ws, script, code, None, args, stdin, limits, network, allow_subprocess,
                      cancel, confine)  # fmt: skip


def run_command(
    argv: Sequence[str],
    *,
    workspace: Path | Workspace,
    stdin: str | None = None,
    limits: SandboxLimits = DEFAULT_LIMITS,
    network: bool = False,
    confine: confinement.Mode | None = None,
) -> RunResult:
    """Run a program under exactly the confinement model-written code gets (the rlimits, the
    kernel's rules, the process group; the program itself runs without the audit hook, as
    programs that code starts do): `myninja sandbox run`."""
    ws = _workspace_dir(workspace)
    return launch(ws, None, None, list(argv), (), stdin, limits, network, True, None,
                      confine)  # fmt: skip


def _workspace_dir(workspace: Path | Workspace) -> Path:
    ws = Path(workspace).resolve()
    if not ws.is_dir():
        raise WorkspaceError(f"workspace does not exist: {ws}")
    (ws / "tmp").mkdir(exist_ok=True)
    return ws


async def arun_python(
    code_or_path: str | Path,
    *,
    workspace: Path | Workspace,
    args: Sequence[str] = (),
    stdin: str | None = None,
    limits: SandboxLimits = DEFAULT_LIMITS,
    network: bool = False,
    allow_subprocess: bool = False,
    confine: confinement.Mode | None = None,
) -> RunResult:
    """`run_python` in a worker thread. Cancelling the awaiting task kills the program."""
    cancel = threading.Event()
    try:
        return await asyncio.to_thread(
            run_python,
            code_or_path,
            workspace=workspace,
            args=args,
            stdin=stdin,
            limits=limits,
            network=network,
            allow_subprocess=allow_subprocess,
            cancel=cancel,
            confine=confine,
        )
    except asyncio.CancelledError:
        cancel.set()
        raise


@dataclass(frozen=True)
class Workspace:
    """A per-task directory the sandboxed code may write to, with a tmp/ of its own.
    Usable wherever a path is (`os.fspath(ws)`)."""

    root: Path

    @classmethod
    def for_task(cls, task_id: str, root: Path) -> Workspace:
        """`<root>/<task_id>/` (and its tmp/), created if needed."""
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", task_id) or ".." in task_id:
            raise WorkspaceError(f"not a usable task id for a workspace: {task_id!r}")
        workspace = cls(Path(root).resolve() / task_id)
        workspace.tmp.mkdir(parents=True, exist_ok=True)
        return workspace

    def __fspath__(self) -> str:
        return str(self.root)

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    def path(self, relpath: str | Path) -> Path:
        """The absolute path of `relpath`, refused if it (or a symlink on the way) leads out."""
        candidate = Path(relpath)
        if candidate.is_absolute():
            raise WorkspaceError(f"not a path inside the workspace: {relpath}")
        root = self.root.resolve()
        resolved = (root / candidate).resolve()
        if resolved != root and root not in resolved.parents:
            raise WorkspaceError(f"path escapes the workspace: {relpath}")
        return resolved

    def write(self, relpath: str | Path, text: str) -> Path:
        target = self.path(relpath)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        return target

    def read(self, relpath: str | Path) -> str:
        return self.path(relpath).read_text(encoding="utf-8")

    def diff(self, relpath: str | Path, new_text: str) -> str:
        """A unified diff from the file as it is (or nothing, if absent) to `new_text`;
        empty when they are the same."""
        target = self.path(relpath)
        name = Path(relpath).as_posix()
        exists = target.is_file()
        old_text = target.read_text(encoding="utf-8") if exists else ""
        lines = difflib.unified_diff(
            old_text.splitlines(keepends=True),
            new_text.splitlines(keepends=True),
            fromfile=f"a/{name}" if exists else "/dev/null",
            tofile=f"b/{name}",
        )
        # as `diff -u` does for a last line without a newline
        return "".join(
            line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
            for line in lines
        )

    def files(self) -> list[str]:
        """The files in the workspace, as sorted relative POSIX paths, leaving out tmp/ and
        caches."""
        caches = {"__pycache__", ".pytest_cache"}
        found: list[str] = []
        for directory, subdirs, names in os.walk(self.root):
            here = Path(directory)
            subdirs[:] = [
                d for d in subdirs if d not in caches and not (here == self.root and d == "tmp")
            ]
            found.extend((here / name).relative_to(self.root).as_posix() for name in names)
        return sorted(found)

    def run(self, code_or_path: str | Path, **kwargs: object) -> RunResult:
        """`run_python` in this workspace."""
        return run_python(code_or_path, workspace=self, **kwargs)  # type: ignore[arg-type]
