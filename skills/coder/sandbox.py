"""Run untrusted Python (model-written code, its tests, benchmark completions) in a sandboxed
subprocess, never in our own process.

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
- **An audit hook** (`sys.addaudithook`), installed by the bootstrap before the user's code,
  refuses with a PermissionError whose message starts with "sandbox:":
  writes outside the workspace (`open` for writing, remove, rename, mkdir, rmdir, chmod, chown,
  utime, truncate, symlink, link, xattrs, shutil's copy/move/rmtree/archives, sqlite3 files),
  network use (connect, bind, sendto, sendmsg, name resolution; Unix sockets only inside the
  workspace), and starting programs (subprocess, os.system, os.exec*, os.posix_spawn, and
  `_posixsubprocess.fork_exec`, which multiprocessing's "spawn" uses) unless allowed.
  It also refuses *reading* what is private to the person: files under the real HOME (the one
  of the process calling `run_python`) other than the workspace and the Python installation
  (its prefixes and `sys.path`, which holds what .pth files add: editable installs), anything
  under myninja's config and data folders (the key store file, history, other tasks'
  workspaces) but the task's own workspace, and another process's environ, mem, cmdline, auxv
  and descriptors under /proc (`open`, `os.listdir`/`os.scandir`, sqlite3 files). Elsewhere
  (/etc, /usr, /tmp) reading is up to the OS's permissions. (A program that runs pytest itself
  below a HOME holding a pytest.ini, pyproject.toml, tox.ini or setup.cfg is refused when pytest
  reads it on its way up: run_tests passes `-c` and `--rootdir`, and is not.)
  Paths are resolved (symlinks followed) before they are checked; hard links to files outside
  are refused, since writing through one would change the outside file.

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
import functools
import inspect
import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from myninja.skills.coder import confinement
from myninja.skills.coder.process_cgroup import ProcessCgroup

from myninja.errors import MyninjaError

NetworkIsolation = Literal["namespace", "audit-hook", "none"]

# Past this many times `output_bytes` of output (both streams together) the program is killed:
# everything beyond the cap is dropped anyway, and a print loop should not run to the wall limit.
OUTPUT_KILL_FACTOR = 16
# After the main process exits, how long we keep reading pipes that something else still holds
# open (a daemonised grandchild that left the process group).
_DRAIN_GRACE_S = 1.0
# How often the run's process tree is counted from here (kernel mode): a walk of a few /proc
# files for a usual run.
_COUNT_EVERY_S = 0.05
# A run the kernel has refused a fork is given this long to handle it (Python's hook raises a
# clear error, a pool makes do with fewer workers) before it is stopped as a fork bomb.
_REFUSED_GRACE_S = 1.0
# Code longer than this goes to a file in the workspace's tmp/ rather than on the command line
# (Linux caps one argument at 128 KiB).
_MAX_INLINE_CODE = 100_000
_CODE_FILENAME = "<main>"


class WorkspaceError(MyninjaError):
    """A workspace path that escapes the workspace, or a workspace that does not exist."""


@dataclass(frozen=True)
class SandboxLimits:
    """Limits for one run. `cpu_s` and `memory_mb` are rlimits (RLIMIT_CPU, RLIMIT_AS);
    `output_bytes` is what we keep of each of stdout and stderr; `processes` is RLIMIT_NPROC
    (which the kernel does not apply to root); `file_mb` is RLIMIT_FSIZE."""

    wall_s: float = 10.0
    cpu_s: int = 10
    memory_mb: int = 512
    output_bytes: int = 64_000
    processes: int = 64
    file_mb: int = 16


DEFAULT_LIMITS = SandboxLimits()


@dataclass
class RunResult:
    """What one sandboxed run did. `exit_code` is negative for a signal, as in subprocess.
    `killed_reason` is set when a limit stopped the program: "wall time", "cpu time", "memory",
    "output", "file size", "processes", "cancelled" or "signal SIGNAME"."""

    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool
    killed_reason: str | None
    duration_s: float
    truncated: bool
    network_isolation: NetworkIsolation
    limits: SandboxLimits = field(default=DEFAULT_LIMITS, repr=False)
    cpu_time_s: float = 0.0
    confinement: str = "in-process"  # "kernel" (confine.py) or the audit hook alone

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.killed_reason is None

    @property
    def refusal(self) -> str | None:
        """The last "sandbox: … not allowed" message the program ran into, if any."""
        found = re.findall(r"PermissionError: (sandbox: [^\n]+)", self.stderr)
        return found[-1] if found else None

    def limit_message(self) -> str | None:
        """The killed_reason as a sentence with its number, e.g. "killed: memory limit 512 MB"."""
        reason, limits = self.killed_reason, self.limits
        if reason is None:
            return None
        if reason == "wall time":
            return f"timed out after {limits.wall_s:g} s (wall time)"
        if reason == "cpu time":
            return f"killed: cpu time limit {limits.cpu_s} s"
        if reason == "memory":
            return f"killed: memory limit {limits.memory_mb} MB"
        if reason == "output":
            return f"killed: output limit ({OUTPUT_KILL_FACTOR} x {limits.output_bytes} bytes)"
        if reason == "file size":
            return f"stopped: file size limit {limits.file_mb} MB"
        if reason == "processes":
            return f"stopped: process limit {limits.processes}"
        if reason == "not confined":
            return "not run: no kernel confinement"
        return f"killed: {reason}"

    def summary(self) -> str:
        """One line: what stopped the program (or its exit code), any sandbox refusal,
        truncation and the time taken."""
        limit = self.limit_message()
        parts = [limit, f"exit {self.exit_code}"] if limit else [f"exit {self.exit_code}"]
        if self.refusal and not (limit and self.refusal.startswith("sandbox: process limit")):
            parts.append(self.refusal)
        if self.truncated:
            parts.append("output truncated")
        parts.append(f"{self.duration_s:.2f} s")
        return "; ".join(parts)


def _sandbox_child_main(confine: object = None) -> None:  # pragma: no cover - in the child
    """The child's bootstrap: set the rlimits, confine the process (kernel mode: `confine` is
    confine.py's function), install the audit hook, then run the user's code as __main__.
    Self-contained (its source is passed to `python -c`), so every import is here.
    """
    import json
    import os
    import resource
    import sys
    import types

    config = json.loads(sys.argv[1])
    user_args = sys.argv[2:]

    def lower(limit: int, soft: int, hard: int | None = None) -> None:
        hard = soft if hard is None else hard
        _, current_hard = resource.getrlimit(limit)
        if current_hard != resource.RLIM_INFINITY:
            hard = min(hard, current_hard)
        resource.setrlimit(limit, (min(soft, hard), hard))

    def tasks_of_this_user() -> int:
        # Without a user namespace RLIMIT_NPROC counts every task of the real uid on the machine,
        # so "64 processes" must be on top of what the user already runs.
        uid, count = os.getuid(), 0
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    if entry.stat().st_uid == uid:
                        count += len(os.listdir(f"/proc/{entry.name}/task"))
                except OSError:
                    pass
        return count

    # SIGXCPU at the soft limit, SIGKILL one second later if the program catches SIGXCPU.
    lower(resource.RLIMIT_CPU, config["cpu_s"], config["cpu_s"] + 1)
    lower(resource.RLIMIT_AS, config["memory_bytes"])
    lower(resource.RLIMIT_FSIZE, config["file_bytes"])
    lower(resource.RLIMIT_CORE, 0)
    nproc = config["processes"]
    if not config["user_namespace"] and os.path.isdir("/proc"):
        nproc += tasks_of_this_user()
    if config["cgroup_procs"]:
        try:
            with open(config["cgroup_procs"], "w") as procs:  # the kernel counts us from here on
                procs.write(str(os.getpid()))
        except OSError as exc:
            sys.stderr.write(f"sandbox: cannot join the run's pids cgroup, code not run: {exc}\n")
            os._exit(126)
    if callable(confine):
        try:
            confine(config["confine"])
        except OSError as exc:
            why = exc.strerror or exc
            sys.stderr.write(f"sandbox: the kernel confinement failed, code not run: {why}\n")
            os._exit(126)
    # Once the user namespace exists: lowered before it, RLIMIT_NPROC would also be held
    # against every process the user runs elsewhere on the machine.
    lower(resource.RLIMIT_NPROC, nproc)
    if config["exec"]:
        try:
            os.execvp(config["exec"][0], config["exec"])
        except OSError as exc:
            sys.stderr.write(f"sandbox: cannot run {config['exec'][0]}: {exc.strerror}\n")
            os._exit(127)

    workspace = config["workspace"]
    workspace_prefix = workspace.rstrip(os.sep) + os.sep
    devices = frozenset({"/dev/null", "/dev/stdout", "/dev/stderr"})
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    af_unix = 1  # socket.AF_UNIX on Linux and macOS; importing socket here would cost startup
    network_message = "sandbox: network access is not allowed"
    realpath, normpath, isabs, split, join = (
        os.path.realpath,
        os.path.normpath,
        os.path.isabs,
        os.path.split,
        os.path.join,
    )
    readlink, getcwd, fspath, fsdecode = os.readlink, os.getcwd, os.fspath, os.fsdecode
    getpid, getpgrp, listdir = os.getpid, os.getpgrp, os.listdir
    os_open, os_read, os_close, read_only = os.open, os.read, os.close, os.O_RDONLY

    def under(path: str, root: str) -> bool:
        return path == root or path.startswith(root.rstrip(os.sep) + os.sep)

    def inside(path: str) -> bool:
        return path == workspace or path.startswith(workspace_prefix)

    # Reading: the real user's HOME (but the Python installation in it) and myninja's own config
    # and data folders (keys, history, other tasks' workspaces) are private; so are another
    # process's environment, memory, command line and descriptors under /proc.
    home = config["home"]
    private = tuple(config["private"])
    task_root = config["task_root"]  # a branch's code may read its task's workspace
    protect_home = home not in ("", os.sep)

    def exposes_private(root: str) -> bool:
        # a root that is HOME, or holds HOME or one of our folders, would open them all
        return any(under(secret, root) for secret in (home, *private) if secret != os.sep)

    readable_roots = tuple(
        dict.fromkeys(
            root
            for root in (
                realpath(entry)
                for entry in (
                    sys.prefix,
                    sys.base_prefix,
                    sys.exec_prefix,
                    sys.base_exec_prefix,
                    *sys.path,
                    config["path0"],
                )
                if entry and isabs(entry)
            )
            if not exposes_private(root) and not any(under(root, p) for p in private)
        )
    )
    proc_private = frozenset({"environ", "mem", "cmdline", "auxv", "fd", "fdinfo", "map_files"})

    def fd_target(fd: int) -> str | None:
        try:
            return readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return None

    def resolve(path: object, dir_fd: object, follow: bool) -> str | None:
        """The absolute, symlink-free path an operation would touch; None when it touches no
        named file (an fd of a pipe or socket, an allowed device)."""
        if path is None:
            path = "."
        if isinstance(path, int):
            target = fd_target(path)
            return realpath(target) if target and target.startswith("/") else None
        text = fsdecode(fspath(path))  # type: ignore[arg-type]
        if not isabs(text):
            if isinstance(dir_fd, int) and dir_fd >= 0:
                base = fd_target(dir_fd)
                if base is None or not base.startswith("/"):
                    return f"(directory fd {dir_fd})/{text}"  # unknown: refuse
            else:
                base = getcwd()
            text = join(base, text)
        text = normpath(text)
        if text in devices:
            return None
        head, tail = split(text)
        # remove, rename, rmdir and friends act on the link itself, not on what it points to
        if follow or tail in ("", ".", ".."):
            return realpath(text)
        return join(realpath(head), tail)

    def read_refusal(target: str) -> str | None:
        for folder in private:
            if under(target, folder):
                return f"sandbox: reading myninja's own files is not allowed: {target}"
        if target.startswith("/proc/"):
            parts = target.split(os.sep)[2:]  # pid, entry… or pid, "task", tid, entry…
            if parts[0].isdigit() and int(parts[0]) != getpid():
                entry = parts[3:4] if parts[1:2] == ["task"] else parts[1:2]
                if entry and entry[0] in proc_private:
                    return f"sandbox: reading another process's {entry[0]} is not allowed"
        if protect_home and under(target, home):
            if not any(under(target, root) for root in readable_roots):
                return f"sandbox: reading the user's files is not allowed: {target}"
        return None

    def check_read(path: object, dir_fd: object = None) -> None:
        if isinstance(path, str) and isabs(path):
            # imports read hundreds of files of the Python installation: no realpath for those
            quick = normpath(path)
            if any(under(quick, root) for root in readable_roots) and not any(
                under(quick, folder) for folder in private
            ):
                return
        target = resolve(path, dir_fd, True)
        if target is None or inside(target) or (task_root and under(target, task_root)):
            return
        refusal = read_refusal(target)
        if refusal is not None:
            raise PermissionError(refusal)

    # Processes: RLIMIT_NPROC does not bind root (nor, without a user namespace, count per run),
    # so each fork or program start also counts the members of the run's process group.
    process_limit = config["processes"]
    have_proc = os.path.isdir("/proc")
    counting: set[int] = set()  # threads counting, whose own audit events pass unchecked
    from _thread import get_ident

    # Confined by the kernel, /proc is closed to the run: its Python processes sign in to a
    # folder of the workspace instead (at start and after each fork), and the live ones count.
    registry = config["registry"]

    def sign_in() -> None:
        os_close(os_open(join(registry, str(getpid())), os.O_CREAT | os.O_WRONLY, 0o600))

    def registered() -> int:
        count = 0
        for name in listdir(registry):
            try:
                os.kill(int(name), 0)
                count += 1
            except ProcessLookupError:
                continue  # exited
            except (PermissionError, ValueError):
                count += 1
        return count

    if registry:
        os.makedirs(registry, exist_ok=True)
        sign_in()
        os.register_at_fork(after_in_child=sign_in)

    def group_size() -> int:
        if registry:
            return registered()
        group, count = str(getpgrp()).encode(), 0
        for name in listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                fd = os_open(f"/proc/{name}/stat", read_only)
                try:
                    stat = os_read(fd, 1024)
                finally:
                    os_close(fd)
            except OSError:
                continue  # it exited meanwhile
            fields = stat.rpartition(b")")[2].split()  # state, ppid, pgrp, …
            if len(fields) > 2 and fields[2] == group:
                count += 1
        return count

    def check_processes() -> None:
        if not have_proc:
            return
        me = get_ident()
        counting.add(me)
        try:
            size = group_size()
        finally:
            counting.discard(me)
        if size >= process_limit:
            raise PermissionError(f"sandbox: process limit reached ({process_limit} processes)")

    def check_write(path: object, dir_fd: object = None, follow: bool = True) -> None:
        target = resolve(path, dir_fd, follow)
        if target is not None and not inside(target) and target not in devices:
            raise PermissionError(
                f"sandbox: writing outside the workspace is not allowed: {target}"
            )

    # event -> (index of the path argument, index of its dir_fd or None, follow symlinks)
    path_events: dict[str, tuple[tuple[int, int | None, bool], ...]] = {
        "os.remove": ((0, 1, False),),
        "os.rmdir": ((0, 1, False),),
        "os.mkdir": ((0, 2, False),),
        "os.rename": ((0, 2, False), (1, 3, False)),
        "os.symlink": ((1, 2, False),),
        "os.link": ((0, 2, True), (1, 3, False)),
        "os.chmod": ((0, 2, True),),
        "os.chown": ((0, 3, True),),
        "os.utime": ((0, 3, True),),
        "os.truncate": ((0, None, True),),
        "os.chflags": ((0, None, True),),
        "os.lchflags": ((0, None, False),),
        "os.setxattr": ((0, None, True),),
        "os.removexattr": ((0, None, True),),
        "shutil.rmtree": ((0, 1, False),),
        "shutil.copyfile": ((1, None, True),),
        "shutil.copymode": ((1, None, True),),
        "shutil.copystat": ((1, None, True),),
        "shutil.copytree": ((1, None, True),),
        "shutil.move": ((0, None, False), (1, None, True)),
        "shutil.chown": ((0, None, True),),
        "shutil.make_archive": ((0, None, True),),
        "shutil.unpack_archive": ((1, None, True),),
    }
    address_events = frozenset({"socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg"})
    lookup_events = frozenset(
        {
            "socket.getaddrinfo",
            "socket.gethostbyname",
            "socket.gethostbyname_ex",
            "socket.gethostbyaddr",
            "socket.getnameinfo",
        }
    )
    process_events = frozenset(
        {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.startfile"}
    )
    listing_events = frozenset({"os.listdir", "os.scandir"})
    fork_events = frozenset({"os.fork", "os.forkpty"})
    guard_network = config["guard_network"]
    guard_processes = config["guard_processes"]
    watched = frozenset(path_events) | {"open", "sqlite3.connect"} | listing_events | fork_events
    if guard_network:
        watched |= address_events | lookup_events | {"socket.__new__"}
    watched |= process_events  # refused, or (allowed) counted

    def check_open(args: tuple) -> None:
        path, mode, flags = args[0], args[1], args[2]
        if isinstance(path, int):
            return  # wrapping a descriptor that was checked when it was opened
        writing = (isinstance(flags, int) and flags & write_flags) or (
            isinstance(mode, str) and any(c in mode for c in "wax+")
        )
        if writing:
            check_write(path)
        else:
            check_read(path)

    def check_sqlite(args: tuple) -> None:
        database = fsdecode(fspath(args[0]))
        if database in ("", ":memory:"):
            return
        if database.startswith("file:"):
            location, _, query = database[5:].partition("?")
            if location == ":memory:" or "mode=memory" in query:
                return
            if location.startswith("//"):  # file://host/path
                location = "/" + location[2:].partition("/")[2]
            if "mode=ro" in query:
                return check_read(location)
            database = location
        check_read(database)
        check_write(database)

    def check_address(sock: object, address: object) -> None:
        if address is None:
            return  # sendmsg on a connected socket: checked at connect
        if getattr(sock, "family", None) == af_unix and isinstance(address, str | bytes):
            name = fsdecode(address)
            if name and not name.startswith("\0"):
                target = resolve(name, None, True)
                if target is None or inside(target):
                    return
        raise PermissionError(network_message)

    def audit(event: str, args: tuple) -> None:
        if event not in watched or (counting and get_ident() in counting):
            return
        try:
            if event == "open":
                check_open(args)
            elif event in listing_events:
                check_read(args[0] if args else None)
            elif event in fork_events:
                check_processes()
            elif event == "sqlite3.connect":
                check_sqlite(args)
            elif event in path_events:
                for index, dir_fd_index, follow in path_events[event]:
                    if index < len(args):
                        has_dir_fd = dir_fd_index is not None and dir_fd_index < len(args)
                        dir_fd = args[dir_fd_index] if has_dir_fd else None  # type: ignore[index]
                        check_write(args[index], dir_fd, follow)
            elif event in address_events:
                check_address(args[0], args[1])
            elif event in lookup_events:
                raise PermissionError(network_message)
            elif event == "socket.__new__":
                # Unix sockets pass here (socketpair wraps its ends in new socket objects); the
                # kernel's filter refuses a new one where it confines the run.
                if len(args) > 1 and args[1] != af_unix:
                    raise PermissionError(network_message)
            elif event in process_events:
                if guard_processes:
                    raise PermissionError(f"sandbox: starting processes is not allowed ({event})")
                if event != "os.exec":  # exec replaces this process: no new one
                    check_processes()
        except PermissionError:
            raise
        except Exception as exc:  # a path we cannot make sense of: refuse rather than allow
            raise PermissionError(f"sandbox: could not check {event}: {exc!r}") from None

    if guard_processes:
        import _posixsubprocess

        def refuse_fork_exec(*args: object, **kwargs: object) -> None:
            raise PermissionError("sandbox: starting processes is not allowed (fork_exec)")

        # multiprocessing's "spawn" and "forkserver" start a fresh interpreter this way, with no
        # audit event and without our hook; subprocess raises its own event first.
        _posixsubprocess.fork_exec = refuse_fork_exec

    hook_code = {f.__code__ for f in (audit, check_open, check_sqlite, check_address, check_write)}
    hook_code |= {resolve.__code__, fd_target.__code__, inside.__code__, under.__code__}
    hook_code |= {check_read.__code__, read_refusal.__code__, check_processes.__code__}
    hook_code |= {group_size.__code__, registered.__code__, sign_in.__code__}
    if guard_processes:
        hook_code.add(refuse_fork_exec.__code__)
    sys.addaudithook(audit)

    if config["code"] is not None:
        import linecache

        filename, source = config["filename"], config["code"]
        # tracebacks and inspect find the source of code that has no file
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    else:
        filename = config["script"]
        with open(filename, "rb") as script:
            source = script.read()
    sys.path.insert(0, config["path0"])  # -I leaves out the script's directory
    sys.argv = [filename, *user_args]
    main = types.ModuleType("__main__")
    main.__file__ = filename
    sys.modules["__main__"] = main
    try:
        exec(compile(source, filename, "exec"), main.__dict__)
    except SystemExit:
        raise
    except BaseException as exc:
        # The traceback the program's author reads leaves out this bootstrap's frame at the top
        # and the audit hook's frames at the bottom (where a refusal was raised).
        traceback = exc.__traceback__.tb_next if exc.__traceback__ else None
        last_own, node = None, traceback
        while node is not None:
            if node.tb_frame.f_code not in hook_code:
                last_own = node
            node = node.tb_next
        if last_own is not None:
            last_own.tb_next = None
        sys.excepthook(type(exc), exc.with_traceback(traceback), traceback)
        sys.exit(1)


_BOOTSTRAP = textwrap.dedent(inspect.getsource(_sandbox_child_main))
_CHILD_SOURCE = _BOOTSTRAP + "\n_sandbox_child_main()\n"
# Kernel mode: confine.py's source first (its own imports, `confine`), then the bootstrap.
_CONFINED_SOURCE = confinement.SOURCE + "\n" + _BOOTSTRAP + "\n_sandbox_child_main(confine)\n"


@functools.cache
def _unshare_prefix() -> tuple[str, ...] | None:
    """`unshare --net --map-root-user` if this machine lets an unprivileged process make a
    network namespace (user namespaces enabled), else None. Probed once per process."""
    exe = shutil.which("unshare")
    if sys.platform != "linux" or exe is None:
        return None
    prefix = (exe, "--net", "--map-root-user")
    try:
        probe = subprocess.run(
            [*prefix, sys.executable, "-I", "-S", "-c", ""],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=_base_env(),
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return prefix if probe.returncode == 0 else None


def network_isolation_available() -> NetworkIsolation:
    """What `network=False` gets on this machine: "namespace" or "audit-hook"."""
    return "namespace" if _unshare_prefix() else "audit-hook"


def _private_dirs() -> list[str]:
    """myninja's own folders (config, data: the key store, history, other tasks' workspaces),
    which sandboxed code may not read."""
    from myninja import paths

    return sorted({os.path.realpath(paths.config_dir()), os.path.realpath(paths.data_dir())})


def _task_root(workspace: Path) -> str | None:
    """The task's workspace (<data dir>/workspaces/<task id>) when `workspace` is in one, such
    as a branch's folder inside it: readable, unlike the rest of the data dir."""
    from myninja import paths

    root = Path(os.path.realpath(paths.data_dir() / "workspaces"))
    if workspace == root or root not in workspace.parents:
        return None
    return str(root / workspace.relative_to(root).parts[0])


def _base_env() -> dict[str, str]:
    path = os.pathsep.join(
        dict.fromkeys([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"])
    )
    return {"PATH": path, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


def _child_env(workspace: Path) -> dict[str, str]:
    """Built from nothing, never copied from os.environ: our keys stay with us."""
    return {
        **_base_env(),
        "HOME": str(workspace),
        "TMPDIR": str(workspace / "tmp"),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONIOENCODING": "utf-8",
        # glibc reserves 64 MB of address space per malloc arena and BLAS/OpenMP start a thread
        # per core: with RLIMIT_AS both would turn small programs into MemoryErrors.
        "MALLOC_ARENA_MAX": "2",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


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
    return _sandboxed(ws, script, code, None, args, stdin, limits, network, allow_subprocess,
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
    return _sandboxed(ws, None, None, list(argv), (), stdin, limits, network, True, None,
                      confine)  # fmt: skip


def _workspace_dir(workspace: Path | Workspace) -> Path:
    ws = Path(workspace).resolve()
    if not ws.is_dir():
        raise WorkspaceError(f"workspace does not exist: {ws}")
    (ws / "tmp").mkdir(exist_ok=True)
    return ws


def _sandboxed(
    ws: Path,
    script: Path | None,
    code: str | None,
    exec_argv: list[str] | None,
    args: Sequence[str],
    stdin: str | None,
    limits: SandboxLimits,
    network: bool,
    allow_subprocess: bool,
    cancel: threading.Event | None,
    confine: confinement.Mode | None,
) -> RunResult:
    kernel = (confine or confinement.mode()) == "kernel"
    if kernel and sys.platform != "linux":
        return _not_run(confinement.not_run_message(f"{sys.platform} is not Linux"), limits)
    prefix = None if network or kernel else _unshare_prefix()
    isolation: NetworkIsolation = (
        "none" if network else ("namespace" if prefix or kernel else "audit-hook")
    )
    task_root = _task_root(ws)
    rules = None
    if kernel:
        readable = [p for p in (task_root, script) if p is not None]
        rules = confinement.spec(ws, network=network, read=readable)
    code_file: Path | None = None
    if code is not None and len(code.encode()) > _MAX_INLINE_CODE:
        code_file = ws / "tmp" / f"_sandbox_main_{os.getpid()}_{threading.get_ident()}.py"
        code_file.write_text(code, encoding="utf-8")
        script, code = code_file, None
    cgroup = ProcessCgroup.create(limits.processes)
    config = {
        "workspace": str(ws),
        "cpu_s": max(1, int(limits.cpu_s)),
        "memory_bytes": limits.memory_mb * 1024 * 1024,
        "file_bytes": limits.file_mb * 1024 * 1024,
        "processes": limits.processes,
        "home": os.path.realpath(os.path.expanduser("~")),
        "private": _private_dirs(),
        "task_root": task_root,
        "user_namespace": prefix is not None or (kernel and not network),
        "confine": rules,
        "registry": str(ws / "tmp" / f".processes-{os.getpid()}-{threading.get_ident()}")
        if kernel
        else None,
        "guard_network": not network,
        "guard_processes": not allow_subprocess,
        "code": code,
        "filename": _CODE_FILENAME,
        "script": str(script) if script is not None else None,
        "path0": str(script.parent if script is not None and code_file is None else ws),
        "exec": exec_argv,
        "cgroup_procs": cgroup.procs_file if cgroup is not None else None,
    }
    command = [
        *(prefix or ()),
        sys.executable,
        "-I",
        "-B",
        "-c",
        _CONFINED_SOURCE if kernel else _CHILD_SOURCE,
        json.dumps(config, ensure_ascii=False),
        *map(str, args),
    ]
    try:
        result = _run(command, ws, stdin, limits, isolation, cancel, kernel, cgroup)
        if kernel:
            result.confinement = "kernel"
            _confinement_failed(result)
        return result
    finally:
        if code_file is not None:
            code_file.unlink(missing_ok=True)
        if config["registry"]:
            shutil.rmtree(config["registry"], ignore_errors=True)
        if cgroup is not None:
            cgroup.remove()


_CONFINE_FAILED = "sandbox: the kernel confinement failed, code not run: "


def _confinement_failed(result: RunResult) -> None:
    """A child that could not confine itself ran nothing: say why and how to opt out."""
    if result.exit_code != confinement.NOT_RUN_EXIT or _CONFINE_FAILED not in result.stderr:
        return
    why = result.stderr.split(_CONFINE_FAILED, 1)[1].strip().splitlines()[0]
    result.stderr = confinement.not_run_message(why) + "\n"
    result.killed_reason = "not confined"
    result.confinement = "none"


def _not_run(message: str, limits: SandboxLimits) -> RunResult:
    return RunResult(exit_code=confinement.NOT_RUN_EXIT, stdout="", stderr=message + "\n",
                     timed_out=False, killed_reason="not confined", duration_s=0.0,
                     truncated=False, network_isolation="none", limits=limits,
                     confinement="none")  # fmt: skip


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


def _run(
    command: list[str],
    workspace: Path,
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
        env=_child_env(workspace),
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
