"""The sandbox on real subprocesses: limits that stop a program, writes outside the workspace
and network use refused with a clear message, output kept small, nothing of our environment
passed on; and the Workspace helper."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import threading
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from myninja.skills.coder.sandbox import (
    SandboxLimits,
    Workspace,
    WorkspaceError,
    arun_python,
    network_isolation_available,
    run_python,
)

pytestmark = pytest.mark.slow

# generous wall time: the machine that runs these may be busy; the tests that are about a
# limit set that limit themselves
LIMITS = SandboxLimits(wall_s=30)
WRITE_REFUSED = "sandbox: writing outside the workspace is not allowed"
NETWORK_REFUSED = "sandbox: network access is not allowed"
PROCESS_REFUSED = "sandbox: starting processes is not allowed"


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.for_task("task-1", tmp_path / "workspaces")


@pytest.fixture
def outside() -> Iterator[Path]:
    path = Path(f"/tmp/outside-{uuid.uuid4().hex}")
    yield path
    for leftover in (path, *path.parent.glob(path.name + "*")):
        if leftover.is_dir() and not leftover.is_symlink():
            leftover.rmdir()
        else:
            leftover.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return not _alive(pid)


# -- running and exiting ---------------------------------------------------------------------


def test_hello_world_prints_and_exits_zero(ws: Workspace) -> None:
    result = run_python("print('hello, world')", workspace=ws, limits=LIMITS)
    assert result.stdout == "hello, world\n"
    assert result.exit_code == 0 and result.ok
    assert result.killed_reason is None and not result.timed_out and not result.truncated
    assert result.summary().startswith("exit 0;")


def test_the_exit_code_of_sys_exit_comes_back(ws: Workspace) -> None:
    result = run_python("import sys\nsys.exit(3)", workspace=ws, limits=LIMITS)
    assert result.exit_code == 3
    assert result.killed_reason is None
    assert result.summary().startswith("exit 3;")


def test_args_and_stdin_reach_the_program(ws: Workspace) -> None:
    code = "import sys\nprint(sys.argv[1:])\nprint(input().upper())"
    result = run_python(code, workspace=ws, args=["a b", "c"], stdin="quiet\n", limits=LIMITS)
    assert result.stdout == "['a b', 'c']\nQUIET\n"


def test_a_script_runs_with_its_directory_on_sys_path(ws: Workspace) -> None:
    ws.write("helper.py", "ANSWER = 42\n")
    ws.write("main.py", "import helper\nprint(helper.ANSWER)\n")
    result = run_python(Path("main.py"), workspace=ws, limits=LIMITS)
    assert (result.exit_code, result.stdout) == (0, "42\n")


def test_tests_the_model_wrote_run_under_pytest(ws: Workspace) -> None:
    ws.write("solution.py", "def add(a, b):\n    return a + b\n")
    ws.write(
        "test_solution.py",
        "from solution import add\n\n"
        "def test_add():\n    assert add(2, 3) == 5\n\n"
        "def test_wrong():\n    assert add(2, 2) == 5\n",
    )
    code = "import sys, pytest\nsys.exit(pytest.main(['-q', 'test_solution.py']))"
    result = run_python(code, workspace=ws, limits=LIMITS)
    assert result.exit_code == 1, result.stderr
    assert "1 failed, 1 passed" in result.stdout
    assert "sandbox:" not in result.stdout + result.stderr


# -- limits ------------------------------------------------------------------------------------


def test_an_endless_loop_is_stopped_by_wall_time_with_its_whole_process_group(
    ws: Workspace,
) -> None:
    code = (
        "import os, time\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    while True: time.sleep(0.05)\n"
        "open('grandchild.pid', 'w').write(str(pid))\n"
        "while True: time.sleep(0.05)\n"
    )
    result = run_python(code, workspace=ws, limits=SandboxLimits(wall_s=1))
    assert result.timed_out and result.killed_reason == "wall time"
    assert "timed out after 1 s (wall time)" in result.summary()
    assert "timed out after 1 s (wall time)" in result.stderr
    assert result.duration_s < 6
    grandchild = int(ws.read("grandchild.pid"))
    assert _gone_within(grandchild, 3), "the forked child outlived the time-out"


def test_a_cpu_bound_loop_is_killed_by_the_cpu_limit(ws: Workspace) -> None:
    result = run_python("while True: pass", workspace=ws, limits=SandboxLimits(cpu_s=1, wall_s=30))
    assert result.killed_reason == "cpu time"
    assert not result.timed_out
    assert result.exit_code < 0  # SIGXCPU, or SIGKILL at the hard limit
    assert "killed: cpu time limit 1 s" in result.summary()
    assert "killed: cpu time limit 1 s" in result.stderr


@pytest.mark.parametrize(
    "code",
    [
        "block = bytearray(2 * 1024**3)",
        "blocks = [bytearray(64 * 1024**2) for _ in range(32)]",
    ],
    ids=["at-once", "step-by-step"],
)
def test_a_memory_blow_up_is_reported_as_memory(ws: Workspace, code: str) -> None:
    result = run_python(code, workspace=ws, limits=SandboxLimits(wall_s=30, memory_mb=256))
    assert result.killed_reason == "memory", result.stderr
    assert result.exit_code != 0
    assert "killed: memory limit 256 MB" in result.summary()
    assert "killed: memory limit 256 MB" in result.stderr


def test_a_file_past_the_size_limit_is_stopped(ws: Workspace) -> None:
    code = "open('big.bin', 'wb').write(b'x' * (3 * 1024 * 1024))"
    result = run_python(code, workspace=ws, limits=SandboxLimits(wall_s=30, file_mb=1))
    assert result.killed_reason == "file size", result.stderr
    assert "file size limit 1 MB" in result.summary()
    assert (ws.root / "big.bin").stat().st_size <= 1024 * 1024


def test_huge_output_is_truncated_and_our_memory_stays_small(ws: Workspace) -> None:
    code = "import sys\nfor _ in range(200):\n    sys.stdout.write('x' * 1_000_000)\n"
    limits = SandboxLimits(wall_s=30, output_bytes=64_000)
    tracemalloc.start()
    try:
        result = run_python(code, workspace=ws, limits=limits)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.truncated
    assert result.killed_reason == "output"  # killed long before 200 MB
    assert len(result.stdout) < 64_000 + 200
    assert "bytes of output dropped" in result.stdout
    assert peak < 8_000_000, f"reading the output peaked at {peak} bytes"


def test_output_past_the_cap_keeps_its_head_and_tail(ws: Workspace) -> None:
    code = "print('FIRST')\nfor i in range(5000):\n    print('filler line', i)\nprint('LAST')"
    result = run_python(code, workspace=ws, limits=SandboxLimits(wall_s=30, output_bytes=8_000))
    assert result.exit_code == 0 and result.killed_reason is None
    assert result.truncated and "output truncated" in result.summary()
    assert result.stdout.startswith("FIRST\n")
    assert result.stdout.endswith("LAST\n")
    assert len(result.stdout) < 8_000 + 200


# -- the file system ----------------------------------------------------------------------------


def test_writing_outside_the_workspace_is_refused(ws: Workspace, outside: Path) -> None:
    result = run_python(f"open({str(outside)!r}, 'w').write('x')", workspace=ws, limits=LIMITS)
    assert result.exit_code == 1
    assert f"{WRITE_REFUSED}: {outside}" in result.stderr
    assert f"{WRITE_REFUSED}: {outside}" in result.summary()
    assert not outside.exists()


def test_every_way_of_writing_outside_is_refused(ws: Workspace, outside: Path) -> None:
    ws.write("inside.txt", "inside")
    victim = outside.with_name(outside.name + "-victim")
    victim.write_text("outside")
    attempts = {
        "open-w": f"open({str(outside)!r}, 'w')",
        "open-a": f"open({str(victim)!r}, 'a')",
        "open-r+": f"open({str(victim)!r}, 'r+')",
        "pathlib": f"pathlib.Path({str(outside)!r}).write_text('x')",
        "os.open": f"os.open({str(outside)!r}, os.O_WRONLY | os.O_CREAT)",
        "relative": "open('../../escaped.txt', 'w')",
        "mkdir": f"os.mkdir({str(outside)!r})",
        "copyfile": f"shutil.copyfile('inside.txt', {str(outside)!r})",
        "rename-out": f"os.rename('inside.txt', {str(outside)!r})",
        "symlink-then-write": f"os.symlink({str(outside)!r}, 'link'); open('link', 'w')",
        "hard-link-in": f"os.link({str(victim)!r}, 'hard')",
        "sqlite": f"sqlite3.connect({str(outside)!r})",
    }
    code = "import os, pathlib, shutil, sqlite3\n" + "".join(
        f"try:\n    {stmt}\n    print({name!r}, 'ALLOWED')\n"
        f"except PermissionError as e:\n    print({name!r}, 'REFUSED' if str(e).startswith("
        f"{WRITE_REFUSED!r}) else e)\n"
        for name, stmt in attempts.items()
    )
    result = run_python(code, workspace=ws, limits=LIMITS)
    assert result.exit_code == 0, result.stderr
    outcomes = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert outcomes == dict.fromkeys(attempts, "REFUSED")
    assert not outside.exists()
    assert not (ws.root.parent.parent / "escaped.txt").exists()
    assert victim.read_text() == "outside"
    assert (ws.root / "inside.txt").exists()


def test_changing_or_removing_files_outside_is_refused(ws: Workspace, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    victim.chmod(0o600)
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    attempts = {
        "os.remove": f"os.remove({str(victim)!r})",
        "Path.unlink": f"pathlib.Path({str(victim)!r}).unlink()",
        "rmtree": f"shutil.rmtree({str(folder)!r})",
        "rmdir": f"os.rmdir({str(folder / 'sub')!r})",
        "chmod": f"os.chmod({str(victim)!r}, 0o777)",
        "rename-in": f"os.rename({str(victim)!r}, 'stolen.txt')",
        "truncate": f"os.truncate({str(victim)!r}, 0)",
        "utime": f"os.utime({str(victim)!r}, (0, 0))",
    }
    code = "import os, pathlib, shutil\n" + "".join(
        f"try:\n    {stmt}\n    print({name!r}, 'ALLOWED')\n"
        f"except PermissionError as e:\n    print({name!r}, 'REFUSED' if str(e).startswith("
        f"{WRITE_REFUSED!r}) else e)\n"
        for name, stmt in attempts.items()
    )
    mtime = victim.stat().st_mtime
    result = run_python(code, workspace=ws, limits=LIMITS)
    assert result.exit_code == 0, result.stderr
    outcomes = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert outcomes == dict.fromkeys(attempts, "REFUSED")
    assert victim.read_text() == "keep me"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o600
    assert victim.stat().st_mtime == mtime
    assert (folder / "sub").is_dir()


def test_writing_inside_the_workspace_works(ws: Workspace) -> None:
    code = (
        "import os, shutil, sqlite3, tempfile\n"
        "open('out.txt', 'w').write('written')\n"
        "os.makedirs('pkg/sub')\n"
        "open('pkg/sub/mod.py', 'w').write('X = 1')\n"
        "os.rename('out.txt', 'pkg/moved.txt')\n"
        "os.chmod('pkg/moved.txt', 0o644)\n"
        "os.symlink('pkg/moved.txt', 'alias.txt')\n"
        "sqlite3.connect('data.db').execute('create table t (x)')\n"
        "fd, path = tempfile.mkstemp()\n"
        "os.close(fd)\n"
        "print(path)\n"
        "os.makedirs('scratch/deep'); shutil.rmtree('scratch')\n"
        "open('gone.txt', 'w').close(); os.remove('gone.txt')\n"
        "open('/dev/null', 'w').write('discarded')\n"
    )
    result = run_python(code, workspace=ws, limits=LIMITS)
    assert result.exit_code == 0, result.stderr
    assert Path(result.stdout.strip()).parent == ws.tmp
    assert ws.read("alias.txt") == "written"
    assert ws.files() == ["alias.txt", "data.db", "pkg/moved.txt", "pkg/sub/mod.py"]


# -- the network --------------------------------------------------------------------------------


@pytest.fixture
def listener() -> Iterator[tuple[int, list[bytes]]]:
    """A TCP server on 127.0.0.1 that records what each connection sends."""
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
                conn.settimeout(5)
                received.append(conn.recv(100))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], received
    stop.set()
    thread.join(2)
    server.close()


@pytest.mark.parametrize(
    "statement",
    [
        "socket.create_connection(('127.0.0.1', PORT), timeout=5).sendall(b'hi')",
        "socket.getaddrinfo('localhost', PORT)",
        "socket.socket().bind(('127.0.0.1', 0))",
        "urllib.request.urlopen(f'http://127.0.0.1:{PORT}/', timeout=5)",
    ],
    ids=["connect", "resolve", "bind", "urllib"],
)
def test_network_use_is_refused(
    ws: Workspace, listener: tuple[int, list[bytes]], statement: str
) -> None:
    port, received = listener
    code = f"import socket, urllib.request\nPORT = {port}\n{statement}\n"
    result = run_python(code, workspace=ws, limits=LIMITS)
    assert result.exit_code == 1
    assert NETWORK_REFUSED in result.stderr
    assert NETWORK_REFUSED in result.summary()
    assert result.network_isolation == network_isolation_available()
    time.sleep(0.3)
    assert received == []


def test_network_true_lets_the_program_connect(
    ws: Workspace, listener: tuple[int, list[bytes]]
) -> None:
    port, received = listener
    code = (
        f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=5).sendall(b'hi')"
    )
    result = run_python(code, workspace=ws, limits=LIMITS, network=True)
    assert result.exit_code == 0, result.stderr
    assert result.network_isolation == "none"
    deadline = time.monotonic() + 5
    while not received and time.monotonic() < deadline:
        time.sleep(0.05)
    assert received == [b"hi"]


# Connects through libc with ctypes, under the audit hook: only the OS can stop this one.
# libc's socket() and connect(), which raise no audit event
CTYPES_CONNECT = """
import ctypes, os, socket, struct
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
address = struct.pack("=HH4s8x", socket.AF_INET, socket.htons(PORT), socket.inet_aton("127.0.0.1"))
rc = libc.connect(fd, address, len(address)) if fd >= 0 else -1
print(rc, ctypes.get_errno())
if rc == 0:
    os.write(fd, b"ctypes")
"""


def test_the_network_namespace_stops_what_the_hook_cannot_see(
    ws: Workspace, listener: tuple[int, list[bytes]]
) -> None:
    if network_isolation_available() != "namespace":
        pytest.skip("no user namespaces here: only the audit hook guards the network")
    port, received = listener
    code = f"PORT = {port}\n{CTYPES_CONNECT}"
    # the control: with the network on, the same code does connect
    allowed = run_python(code, workspace=ws, limits=LIMITS, network=True)
    assert allowed.stdout.startswith("0 "), allowed.stderr
    blocked = run_python(code, workspace=ws, limits=LIMITS)
    assert blocked.network_isolation == "namespace"
    rc, errno_ = blocked.stdout.split()
    assert rc == "-1" and int(errno_) != 0, blocked.stderr
    time.sleep(0.3)
    assert received == [b"ctypes"]  # only the control got through


# -- processes and environment ----------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "import subprocess; subprocess.run(['true'])",
        "import os; os.system('true')",
        "import os; os.execv('/bin/true', ['true'])",
        "import os; os.posix_spawn('/bin/true', ['true'], {})",
        "import multiprocessing as mp; mp.get_context('spawn').Process(target=print).start()",
    ],
    ids=["subprocess", "system", "exec", "posix_spawn", "multiprocessing-spawn"],
)
def test_starting_programs_is_refused(ws: Workspace, statement: str) -> None:
    code = f"if __name__ == '__main__':\n    {statement}\n    print('started')"
    result = run_python(code, workspace=ws, limits=LIMITS)
    assert result.exit_code == 1
    assert "started" not in result.stdout
    assert PROCESS_REFUSED in result.stderr
    assert PROCESS_REFUSED in result.summary()


def test_allow_subprocess_lets_the_program_start_programs(ws: Workspace) -> None:
    code = "import subprocess\nprint(subprocess.run(['echo', 'child'], capture_output=True).stdout)"
    result = run_python(code, workspace=ws, limits=LIMITS, allow_subprocess=True)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "b'child\\n'\n"


def test_the_child_environment_carries_none_of_ours(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MYNINJA_GATEWAY_TOKEN", "secret-token-1")
    monkeypatch.setenv("OPENAI_API_KEY", "secret-token-2")
    monkeypatch.setenv("SOME_SERVICE_KEY", "secret-token-3")
    result = run_python("import json, os\nprint(json.dumps(dict(os.environ)))", workspace=ws)
    env = json.loads(result.stdout)
    assert not [name for name in env if name.startswith("MYNINJA_") or name.endswith("_KEY")]
    assert "secret-token" not in result.stdout
    assert env["HOME"] == str(ws.root)
    assert env["TMPDIR"] == str(ws.tmp)


# -- async ----------------------------------------------------------------------------------------


async def test_arun_python_runs_and_cancelling_it_kills_the_program(ws: Workspace) -> None:
    result = await arun_python("print(6 * 7)", workspace=ws, limits=LIMITS)
    assert result.stdout == "42\n"

    code = "import os, time\nopen('child.pid', 'w').write(str(os.getpid()))\ntime.sleep(60)"
    task = asyncio.create_task(arun_python(code, workspace=ws, limits=SandboxLimits(wall_s=60)))
    pid_file = ws.root / "child.pid"
    for _ in range(200):
        if pid_file.exists() and pid_file.read_text():
            break
        await asyncio.sleep(0.05)
    pid = int(pid_file.read_text())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _gone_within(pid, 3), "cancelling did not kill the program"


# -- the workspace ---------------------------------------------------------------------------------


def test_workspace_for_task_makes_its_directories(tmp_path: Path) -> None:
    ws = Workspace.for_task("task-7", tmp_path)
    assert ws.root == tmp_path.resolve() / "task-7"
    assert ws.tmp.is_dir()
    assert os.fspath(ws) == str(ws.root)
    for bad in ("", "..", "../x", "a/b", "/abs"):
        with pytest.raises(WorkspaceError):
            Workspace.for_task(bad, tmp_path)


def test_workspace_refuses_paths_that_escape(ws: Workspace, tmp_path: Path) -> None:
    os.symlink(tmp_path, ws.root / "way-out")
    for bad in ("../x.txt", "sub/../../x.txt", "/etc/x.txt", "way-out/x.txt"):
        with pytest.raises(WorkspaceError):
            ws.write(bad, "x")
    assert not (tmp_path / "x.txt").exists()
    assert not (tmp_path / "workspaces" / "x.txt").exists()
    assert ws.write("sub/ok.txt", "fine") == ws.root.resolve() / "sub" / "ok.txt"


def test_workspace_diff_shows_changes_as_a_unified_diff(ws: Workspace) -> None:
    assert ws.diff("app.py", "print(1)\n") == (
        "--- /dev/null\n+++ b/app.py\n@@ -0,0 +1 @@\n+print(1)\n"
    )
    ws.write("app.py", "a = 1\nb = 2\n")
    assert ws.diff("app.py", "a = 1\nb = 3\n") == (
        "--- a/app.py\n+++ b/app.py\n@@ -1,2 +1,2 @@\n a = 1\n-b = 2\n+b = 3\n"
    )
    assert ws.diff("app.py", "a = 1\nb = 2\n") == ""
    assert ws.diff("app.py", "a = 1\nb = 2").endswith("+b = 2\n\\ No newline at end of file\n")


def test_workspace_files_leave_out_tmp_and_caches(ws: Workspace) -> None:
    ws.write("b.py", "")
    ws.write("pkg/a.py", "")
    ws.write("pkg/__pycache__/a.cpython-311.pyc", "")
    (ws.tmp / "scratch.txt").write_text("")
    assert ws.files() == ["b.py", "pkg/a.py"]
