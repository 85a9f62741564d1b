"""The kernel's confinement of model-written code, attacked one technique at a time.

A secret is planted where the person keeps one (HOME/.ssh/id_rsa) and an API key sits in the
environment of the process that runs the sandbox. Each technique runs three ways:
- `run_python`, as the coder's code runs (the audit hook and the kernel);
- `run_command` with `python -I -c`, the kernel's layers alone (no audit hook: what is refused
  there, the kernel refused);
- through the coder's review of an answer that holds the code, on one task.
The secret must never come back, and the kernel-alone run must end in the kernel's refusal.
"""

from __future__ import annotations

import asyncio
import errno
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from myninja.skills.api import Draft, Permission, ToolContext
from myninja.skills.coder import process_cgroup
from myninja.skills.coder import skill as coder
from myninja.skills.coder.confinement import offer
from myninja.skills.coder.process_cgroup import ProcessCgroup
from myninja.skills.coder.review import review
from myninja.skills.coder.sandbox import (
    RunResult,
    SandboxLimits,
    Workspace,
    run_command,
    run_python,
)

pytestmark = [
    pytest.mark.slow,  # real subprocesses
    pytest.mark.skipif(not offer()["ok"], reason="this machine offers no kernel confinement"),
]

SECRET = "planted-secret-5f3a9c"
API_KEY = "sk-planted-env-81b2"
OPENAT = {"x86_64": 257, "aarch64": 56}[os.uname().machine]
REFUSED_ERRNOS = {errno.EACCES, errno.EPERM, errno.EXDEV}

# Each prints what it read, or REFUSED and the errno. KEY is the planted file's path.
PRELUDE = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
def show(data):
    print(data.decode() if isinstance(data, bytes) else data)
def refused(number):
    print("REFUSED", number)
def read_fd(fd):
    if fd < 0:
        refused(ctypes.get_errno())
    else:
        show(os.read(fd, 4096))
try:
"""
TECHNIQUES = {
    "open": "show(open(KEY).read())",
    "os.open": "read_fd(os.open(KEY, os.O_RDONLY))",
    "libc-open": "read_fd(libc.open(KEY.encode(), 0))",
    "libc-openat": "read_fd(libc.openat(-100, KEY.encode(), 0))",
    "raw-syscall": f"read_fd(libc.syscall({OPENAT}, -100, KEY.encode(), 0))",
    # O_PATH opens without reading; mapping it or reopening it through /proc must not read
    "mmap-of-a-descriptor": (
        "import mmap\n    fd = os.open(KEY, os.O_PATH)\n"
        "    try:\n        show(mmap.mmap(fd, 0, prot=mmap.PROT_READ)[:])\n"
        "    except OSError:\n        read_fd(libc.open(f'/proc/self/fd/{fd}'.encode(), 0))"
    ),
    "proc-self-root": "read_fd(libc.open(('/proc/self/root' + KEY).encode(), 0))",
    "proc-parent-root": "read_fd(libc.open(f'/proc/{os.getppid()}/root{KEY}'.encode(), 0))",
    "proc-parent-environ": "read_fd(libc.open(f'/proc/{os.getppid()}/environ'.encode(), 0))",
    "symlink-planted": "read_fd(libc.open(b'planted-link', 0))",
    "symlink-made": (
        "libc.symlink(KEY.encode(), b'made-link')\n    read_fd(libc.open(b'made-link', 0))"
    ),
    "hardlink-made": (
        "rc = libc.link(KEY.encode(), b'hard')\n"
        "    refused(ctypes.get_errno()) if rc else read_fd(libc.open(b'hard', 0))"
    ),
    "subprocess-cat": (
        "import subprocess\n    done = subprocess.run(['cat', KEY], capture_output=True)\n"
        "    show(done.stdout or done.stderr)\n"
        "    refused(errno.EACCES) if done.returncode else None"
    ),
}
EPILOGUE = """
except PermissionError as exc:
    refused(exc.errno or 1)
except OSError as exc:
    refused(exc.errno)
"""


def attack(technique: str, key: Path) -> str:
    body = TECHNIQUES[technique]
    return f"KEY = {str(key)!r}\nimport errno\n" + PRELUDE + f"    {body}\n" + EPILOGUE


@pytest.fixture
def key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "person"
    (home / ".ssh").mkdir(parents=True)
    secret = home / ".ssh" / "id_rsa"
    secret.write_text(SECRET)
    secret.chmod(0o600)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)  # in the environ of the sandbox's parent
    return secret


@pytest.fixture
def ws(tmp_path: Path, key: Path) -> Workspace:
    workspace = Workspace.for_task("t_kernel", tmp_path / "data" / "workspaces")
    (workspace.root / "planted-link").symlink_to(key)
    return workspace


def leaked(text: str) -> bool:
    """The key's words, the API key, or an environ block (NUL-separated: nothing else here
    prints a NUL)."""
    return SECRET in text or API_KEY in text or "\x00" in text


def kernel_refusal(result: RunResult) -> int:
    """The errno the kernel-alone run ended with."""
    words = result.stdout.split()
    assert "REFUSED" in words, (result.stdout, result.stderr)
    return int(words[words.index("REFUSED") + 1])


def kernel_alone(code: str, ws: Workspace, **kwargs: Any) -> RunResult:
    return run_command([sys.executable, "-I", "-c", code], workspace=ws, confine="kernel",
                       **kwargs)  # fmt: skip


@pytest.mark.parametrize("technique", list(TECHNIQUES))
def test_the_secret_stays_unreadable(technique: str, ws: Workspace, key: Path) -> None:
    code = attack(technique, key)
    # the control: the same code, not sandboxed at all, does read the secret
    control = subprocess.run([sys.executable, "-I", "-c", code], cwd=ws.root, text=True,
                             capture_output=True, timeout=30, check=False)  # fmt: skip
    assert leaked(control.stdout), (control.stdout, control.stderr)
    for name in ("made-link", "hard"):
        (ws.root / name).unlink(missing_ok=True)
    alone = kernel_alone(code, ws)
    assert alone.confinement == "kernel"
    assert not leaked(alone.stdout + alone.stderr), alone.stdout
    assert kernel_refusal(alone) in REFUSED_ERRNOS | {errno.EBADF, errno.ENOENT}
    hooked = run_python(code, workspace=ws, allow_subprocess=technique == "subprocess-cat")
    assert hooked.confinement == "kernel"
    assert not leaked(hooked.stdout + hooked.stderr), hooked.stdout


class Tools:
    """A Draft's `use`: the coder skill's real tools on the branch's folder."""

    def __init__(self, folder: Path) -> None:
        self.context = ToolContext("t1", workspace_dir=folder, granted=frozenset(Permission))
        self.results: list[str] = []

    async def use(self, name: str, arguments: dict[str, Any]) -> str:
        result = await coder.skill.tool(name).call(arguments, self.context)
        self.results.append(result)
        return result


@pytest.mark.parametrize("technique", list(TECHNIQUES))
async def test_an_answer_that_tries_it_leaks_nothing_through_its_review(
    technique: str, ws: Workspace, key: Path
) -> None:
    folder = ws.root / "branches" / "b1"
    folder.mkdir(parents=True)
    (folder / "planted-link").symlink_to(key)
    answer = f"This shows it:\n\n```python\n{attack(technique, key)}```\n"
    tools = Tools(folder)
    draft = Draft(task="show my key", agent="coder", task_id="t1", use=tools.use,
                  workspace=folder, text=answer, branch_id="b1", revision=0)  # fmt: skip
    checked = await review(draft)
    report = "\n".join(tools.results)
    assert tools.results, "the review ran nothing"
    assert "sandbox: confined by the kernel" in report
    assert not leaked(report)
    if checked is not None:
        assert not leaked((checked.feedback or "") + checked.verdict)


# Beyond reading: what else an answer's code may try, each through the review as well. The
# markers are put together at run time, so that the code echoed in the report cannot hold them.
OTHER_ATTEMPTS = {
    "write-outside": (
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "fd = libc.open(OUTSIDE.encode(), os.O_CREAT | os.O_WRONLY, 0o644)\n"
        "print('OPE' + 'NED' if fd >= 0 else 'REF' + 'USED')\n"
    ),
    "sockets": (
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "print('OPE' + 'NED' if any(libc.socket(f, 2, 0) >= 0 for f in (1, 2, 10, 16, 17, 38, 40))"
        " else 'REF' + 'USED')\n"
    ),
    "fork-bomb": (
        "import ctypes, os, time\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "open('group', 'w').write(str(os.getpgrp()))\n"
        "for _ in range(300):\n    libc.fork()\n    time.sleep(0.01)\n"
    ),
}


@pytest.mark.parametrize("attempt", list(OTHER_ATTEMPTS))
async def test_an_answer_that_writes_out_opens_sockets_or_forks_is_held_in_its_review(
    attempt: str, ws: Workspace, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.txt"
    folder = ws.root / "branches" / "b1"
    folder.mkdir(parents=True)
    code = f"OUTSIDE = {str(outside)!r}\n" + OTHER_ATTEMPTS[attempt]
    tools = Tools(folder)
    draft = Draft(task="try it", agent="coder", task_id="t1", use=tools.use, workspace=folder,
                  text=f"```python\n{code}```\n", branch_id="b1", revision=0)  # fmt: skip
    await review(draft)
    report = "\n".join(tools.results)
    assert "sandbox: confined by the kernel" in report
    assert "OPENED" not in report and not outside.exists()
    if attempt == "fork-bomb":
        assert "process limit" in report, report
        await asyncio.to_thread(_assert_gone, int((folder / "group").read_text()))
    else:
        assert "REFUSED" in report, report


# -- writing, sockets, syscalls, processes -------------------------------------------------


def test_writes_outside_the_workspace_are_refused(ws: Workspace, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    code = (
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        f"fd = libc.open({str(outside).encode()!r}, os.O_CREAT | os.O_WRONLY, 0o644)\n"
        "print('REFUSED', ctypes.get_errno()) if fd < 0 else os.write(fd, b'x')\n"
        "open('inside.txt', 'w').write('ok')\n"
    )
    result = kernel_alone(code, ws)
    assert kernel_refusal(result) == errno.EACCES
    assert not outside.exists()
    assert (ws.root / "inside.txt").read_text() == "ok"  # the workspace itself is writable


FAMILIES = {"unix": 1, "inet": 2, "inet6": 10, "netlink": 16, "packet": 17, "alg": 38,
            "vsock": 40}  # fmt: skip


@pytest.mark.parametrize("family", list(FAMILIES))
def test_sockets_of_every_family_are_refused(family: str, ws: Workspace) -> None:
    code = (
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        f"fd = libc.socket({FAMILIES[family]}, 2, 0)\n"  # SOCK_DGRAM: every family has one
        "print('REFUSED', ctypes.get_errno()) if fd < 0 else print('OPEN', fd)\n"
    )
    assert kernel_refusal(kernel_alone(code, ws)) == errno.EPERM
    # with the network left open, the filter lets an Internet socket be made
    if family == "inet":
        opened = kernel_alone(code, ws, network=True)
        assert opened.stdout.startswith("OPEN"), opened.stdout + opened.stderr


SYSCALLS = {
    "ptrace": "libc.ptrace(16, os.getppid(), 0, 0)",  # PTRACE_ATTACH
    "mount": "libc.mount(b'none', b'.', b'tmpfs', 0, None)",
    "unshare": "libc.unshare(0x10000000)",  # CLONE_NEWUSER
    "keyctl": "libc.syscall(250 if X86 else 219, 0, 0, 0, 0, 0)",
    "bpf": "libc.syscall(321 if X86 else 280, 0, 0, 0)",
    "io_uring": "libc.syscall(425, 1, 0)",
    "setsid": "libc.setsid()",  # would leave the process group the wall time kills
}


@pytest.mark.parametrize("name", list(SYSCALLS))
def test_dangerous_syscalls_are_refused(name: str, ws: Workspace) -> None:
    code = (
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "X86 = os.uname().machine == 'x86_64'\n"
        f"rc = {SYSCALLS[name]}\nprint('REFUSED' if rc == -1 else 'DONE', ctypes.get_errno())\n"
    )
    assert kernel_refusal(kernel_alone(code, ws)) == errno.EPERM


def test_no_new_privileges_is_set(ws: Workspace) -> None:
    result = kernel_alone("print(open('/proc/self/status').read())", ws)
    assert "NoNewPrivs:\t1" in result.stdout, result.stdout + result.stderr
    assert "Seccomp:\t2" in result.stdout  # a filter is in place


FORK_BOMB = (
    "import ctypes, os, time\nlibc = ctypes.CDLL(None, use_errno=True)\n"
    "open('group', 'w').write(str(os.getpgrp()))\n"
    "while True:\n"
    "    with open('pids', 'a') as out:\n        out.write(f'{os.getpid():>8}\\n')\n"
    "    if os.path.getsize('pids') > 9 * 300:\n        time.sleep(60)\n"  # a net for the machine
    "    libc.fork()\n"
)
KERNEL_COUNTS = os.getuid() != 0 or process_cgroup.available()


@pytest.mark.heavy  # loads the machine on purpose, if briefly
@pytest.mark.skipif(not KERNEL_COUNTS, reason="root without a pids cgroup: no kernel count binds")
def test_a_fork_bomb_through_libc_stops_at_the_process_limit(ws: Workspace) -> None:
    # libc's fork raises no audit event: the kernel counts (a pids cgroup, or RLIMIT_NPROC in
    # the run's user namespace) and the run is killed at the first fork it refuses.
    result = run_python(FORK_BOMB, workspace=ws, limits=SandboxLimits(wall_s=10, processes=16))
    assert result.killed_reason == "processes", result.stderr[-500:]
    assert len(set(ws.read("pids").split())) <= 16
    _assert_gone(int(ws.read("group")))
    if process_cgroup.available():
        parent = process_cgroup.ProcessCgroup.create(1)
        assert parent is not None
        parent.remove()
        assert not list(parent.path.parent.glob("myninja-run-*")), "a run's cgroup was left"


def test_without_a_kernel_count_the_tree_is_counted_from_outside(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As root without a pids cgroup, only the count from outside binds. One process forks
    # every 20 ms: past twice the limit the group is killed, long before the net of 300.
    monkeypatch.setattr(ProcessCgroup, "create", classmethod(lambda cls, limit: None))
    code = FORK_BOMB.replace(
        "    libc.fork()\n",
        "    if libc.fork() == 0:\n        time.sleep(60)\n    time.sleep(0.02)\n",
    )
    result = run_python(code, workspace=ws, limits=SandboxLimits(wall_s=10, processes=16))
    assert result.killed_reason == "processes", result.stderr[-500:]
    _assert_gone(int(ws.read("group")))


def _assert_gone(group: int) -> None:
    deadline = time.monotonic() + 5
    while _members(group) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _members(group), "part of the bomb outlived the run"


def _members(pgid: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                fields = Path(f"/proc/{name}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(int(name))
    return found
