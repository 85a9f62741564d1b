"""A worker started from other code than the CLI's is replaced, as a person meets it after
updating myninja (or editing a source checkout) while a worker still runs.

The "other code" is a real copy of the packages, with another version, run through PYTHONPATH:
its worker and its CLI are real processes on the same data dir. An idle one is replaced at
once; a busy one finishes its task and exits while the new worker takes the new task, and one
line says so; a task it still runs can be cancelled through the new worker. A client older
than the worker (an app left open across an update) uses it and cannot retire it. Then where
the socket lives: a private directory (0700), never a name anyone could guess or take first."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from myninja import paths
from myninja.agent_graph.code_identity import PACKAGES, code_identity, same_code
from myninja.agent_graph.tasks.client import WorkerClient
from myninja.agent_graph.tasks.wire import socket_path
from myninja.errors import MyninjaError
from tests.agent_graph.scripts import FENCE_RULES, judge
from tests.cli.test_task_commands import task_json, wait_for_status
from tests.conftest import REPO, myninja_cmd, run_myninja, scripted_config

OTHER_VERSION = "0.0.9"
RULES = [
    {"match": r"Long job.*Attempt", "reply": "Long job done", "delay": 15},
    judge("Long job done", 7),
    *FENCE_RULES,
]
BUSY_LINE = re.compile(
    rf"^myninja: the background worker \(pid (\d+)\) runs myninja {OTHER_VERSION}, not "
    r"[\w.]+: it finishes its 1 running task, then exits; a new worker takes new tasks$"
)


@pytest.fixture(scope="module")
def other_code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the packages whose version says 0.0.9: code other than this checkout's."""
    root = tmp_path_factory.mktemp("other-code")
    folders = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    for name in PACKAGES:  # laid out as installed: myninja/, myninja/backends/, …
        shutil.copytree(
            REPO / folders["package-dir"][name],
            root / name.replace(".", "/"),
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    init = root / "myninja" / "__init__.py"
    version = f'__version__ = "{OTHER_VERSION}"'
    init.write_text(re.sub(r'__version__ = ".*"', version, init.read_text()))
    return root


class OtherCode:
    """The copy's CLI and worker, on this test's data dir."""

    def __init__(self, root: Path, home: Path) -> None:
        # Not the checkout as working dir: `python -m` puts it first on sys.path.
        self.cwd = home
        self.env = {**os.environ, "PYTHONPATH": str(root), "MYNINJA_HOME": str(home)}
        self.worker: subprocess.Popen[bytes] | None = None

    def start_worker(self) -> int:
        """`myninja worker` of the copy; returns its pid once it answers."""
        with open(self.cwd / "other-worker.log", "ab") as log:
            self.worker = subprocess.Popen(
                [sys.executable, "-m", "myninja", "worker"],
                cwd=self.cwd, env=self.env, stdout=log, stderr=log, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            reply = ping(self.cwd / "data")
            if reply and reply["identity"]["version"] == OTHER_VERSION:
                assert reply["pid"] == self.worker.pid
                return reply["pid"]
            assert self.worker.poll() is None, (self.cwd / "other-worker.log").read_text()
            time.sleep(0.2)
        raise AssertionError("the other code's worker never answered")

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            myninja_cmd(*args), capture_output=True, text=True, env=self.env, cwd=self.cwd,
            timeout=120,
        )  # fmt: skip

    def exited_within(self, seconds: float) -> bool:
        assert self.worker is not None
        try:
            self.worker.wait(seconds)
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self) -> None:
        if self.worker is not None and not self.exited_within(10):
            self.worker.kill()
            self.worker.wait(10)


@pytest.fixture
def other(other_code: Path, myninja_home: Path) -> Iterator[OtherCode]:
    scripted_config(myninja_home, RULES, idle_s=30)  # the new worker stays to be asked
    copy = OtherCode(other_code, myninja_home)
    try:
        yield copy
    finally:
        stop_worker(myninja_home / "data")  # the one answering; it cleans up after itself
        copy.stop()


def ping(data: Path) -> dict[str, Any] | None:
    try:
        return asyncio.run(WorkerClient(data).request("ping"))
    except (OSError, MyninjaError):
        return None


def stop_worker(data: Path) -> None:
    """Nothing of ours outlives the test."""
    if ping(data) is not None:
        asyncio.run(WorkerClient(data).request("shutdown"))


def worker_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "background worker" in line]


def assert_replaced(other: OtherCode, home: Path, old_pid: int, why: str) -> None:
    """The old worker has exited, and the one listening now runs this code."""
    assert other.exited_within(15), why
    now = ping(home / "data")
    assert now is not None and now["pid"] != old_pid
    assert same_code(now["identity"], code_identity())


def test_an_idle_worker_of_other_code_is_replaced(other: OtherCode, myninja_home: Path) -> None:
    old_pid = other.start_worker()
    done = run_myninja("run", "Paint the gate")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Fence painted"
    assert worker_lines(done.stderr) == []  # nothing went on elsewhere: nothing to say
    assert_replaced(other, myninja_home, old_pid, "the idle worker of other code is still running")


def test_a_busy_worker_of_other_code_finishes_its_task_exits_and_one_line_says_so(
    other: OtherCode, myninja_home: Path
) -> None:
    old_pid = other.start_worker()
    started = other.cli("run", "Long job", "--detach")
    assert started.returncode == 0, started.stderr
    long_id = started.stdout.strip()
    wait_for_status(long_id, "running")

    done = run_myninja("run", "Paint the gate")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Fence painted"  # the new request, served meanwhile
    (line,) = worker_lines(done.stderr)
    assert (found := BUSY_LINE.match(line)), line
    assert int(found[1]) == old_pid
    listed = json.loads(run_myninja("tasks", "list", "--json").stdout)
    (gate,) = [task_json(t["id"]) for t in listed if t["text"] == "Paint the gate"]
    assert gate["status"] == "done" and not gate["owner"].startswith(f"pid:{old_pid}:")

    long = wait_for_status(long_id, "done", "failed")
    assert long["status"] == "done" and long["answer"] == "Long job done"
    assert long["owner"].startswith(f"pid:{old_pid}:")  # it finished where it started
    assert_replaced(other, myninja_home, old_pid, "the retired worker did not exit after its task")


def test_a_task_still_running_in_a_retired_worker_is_cancelled_there(
    other: OtherCode, myninja_home: Path
) -> None:
    other.start_worker()
    slow_id = other.cli("run", "Slow task", "--detach").stdout.strip()  # a 60 s model call
    wait_for_status(slow_id, "running")
    handed = run_myninja("run", "Paint the gate", "--detach")
    assert handed.returncode == 0, handed.stderr
    assert len(worker_lines(handed.stderr)) == 1
    # The new worker takes the request, and the retired one, which runs the task, stops it:
    # the task is cancelled, not merely marked so while its runner goes on.
    cancelled = run_myninja("tasks", "cancel", slow_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert wait_for_status(slow_id, "cancelled", timeout=15)["status"] == "cancelled"
    assert other.exited_within(15), "the retired worker still runs the cancelled task"


def test_a_client_older_than_the_worker_uses_it_and_cannot_retire_it(
    other: OtherCode, myninja_home: Path
) -> None:
    # An app left open across an update: this process read its code before the copy's worker.
    client = WorkerClient(myninja_home / "data")
    old_pid = other.start_worker()
    notice = asyncio.run(client.ensure())
    assert notice is not None and notice.startswith(f"the background worker (pid {old_pid}) runs")
    assert "this myninja started before it: start it again" in notice
    assert asyncio.run(client.ensure()) is None  # said once
    # The worker checks too: asked to retire by an older client, it stays.
    refused = asyncio.run(client.request("retire"))
    assert refused["retired"] is False
    task_id = asyncio.run(client.request("submit", text="Paint the gate"))["task_id"]
    assert wait_for_status(task_id, "done")["owner"].startswith(f"pid:{old_pid}:")
    assert ping(myninja_home / "data")["pid"] == old_pid


# Where the socket lives ---------------------------------------------------------------------
def private_dir(path: Path) -> None:
    info = path.lstat()
    assert stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid()
    assert stat.S_IMODE(info.st_mode) == 0o700, oct(info.st_mode)


@pytest.fixture
def own_runtime_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A login session's runtime dir of this test's own (it changes its mode)."""
    runtime = Path(tempfile.mkdtemp(prefix="rt-")) / "run"  # below a private dir, not /tmp
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    yield runtime
    shutil.rmtree(runtime.parent)


@pytest.fixture
def no_session_runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One too long for a socket path, as good as none: the private fallback is used."""
    runtime = tmp_path / ("r" * 70)
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))


async def test_each_data_dir_has_its_own_worker_and_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, session_runtime_dir: Path
) -> None:
    clients = []
    try:
        for name in ("a", "b"):
            home = tmp_path / name
            home.mkdir()
            scripted_config(home, FENCE_RULES, idle_s=30)
            monkeypatch.setenv("MYNINJA_HOME", str(home))  # the worker it starts inherits it
            clients.append(WorkerClient(paths.data_dir()))
            await clients[-1].ensure()
        pids = {(await client.request("ping"))["pid"] for client in clients}
        first, second = (client.path for client in clients)
        assert first != second
        assert first.parent == second.parent == session_runtime_dir / "myninja"
        private_dir(first.parent)
        assert stat.S_IMODE(first.stat().st_mode) == stat.S_IMODE(second.stat().st_mode) == 0o600
    finally:
        for client in clients:
            with contextlib.suppress(OSError, MyninjaError):
                await client.request("shutdown")
    assert len(pids) == 2


def test_without_a_session_runtime_dir_the_socket_dir_is_private_and_random(
    no_session_runtime_dir: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = []
    for name in ("a", "b"):
        monkeypatch.setenv("MYNINJA_HOME", str(tmp_path / name))
        made.append(socket_path(paths.data_dir()).parent)
        assert socket_path(paths.data_dir()).parent == made[-1]  # found again through its note
    try:
        for folder in made:
            private_dir(folder)
            # Not platformdirs' fallback /tmp/runtime-UID, nor a name made from the data dir
            # (anyone could create those first): mkdtemp's random one.
            assert folder.parent == Path(tempfile.gettempdir())
            assert re.fullmatch(r"myninja-[a-z0-9_]{8}", folder.name), folder
        assert made[0] != made[1]
    finally:
        for folder in made:
            folder.rmdir()


def test_a_noted_directory_that_is_not_ours_is_not_used(
    no_session_runtime_dir: None, tmp_path: Path
) -> None:
    data = paths.data_dir()
    first = socket_path(data).parent
    note = data / "worker.rundir"
    assert note.read_text() == str(first)
    # The noted name taken over by a link to somewhere else (or by another user's directory,
    # below): a new private directory is made and noted instead.
    first.rmdir()
    first.symlink_to(tmp_path, target_is_directory=True)
    try:
        second = socket_path(data).parent
    finally:
        first.unlink()
    assert second != first
    private_dir(second)
    assert note.read_text() == str(second)
    if os.geteuid() != 0:
        second.rmdir()
        return
    os.chown(second, 12345, 12345)
    try:
        third = socket_path(data).parent
        assert third not in (first, second)
        private_dir(third)
        third.rmdir()
    finally:
        second.rmdir()


def test_a_session_runtime_dir_others_may_enter_is_not_used(own_runtime_dir: Path) -> None:
    assert socket_path(paths.data_dir()).parent == own_runtime_dir / "myninja"
    own_runtime_dir.chmod(0o755)
    sock = socket_path(paths.data_dir())
    private_dir(sock.parent)
    assert not sock.is_relative_to(own_runtime_dir)
    with contextlib.suppress(OSError):  # /run/user/UID/myninja on a machine that has one
        sock.parent.rmdir()
