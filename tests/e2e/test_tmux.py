"""The real app in a real terminal: tmux runs `myninja` on the tiny embedded model, a task is
typed, and the answer is read back from the screen with `capture-pane`."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from myninja.agent_graph.history import HistoryStore
from myninja.agent_graph.tasks.client import WorkerClient
from tests.conftest import KNOWN_TIME_ZONE, TINY_MODEL, TINY_THREADS, myninja_cmd

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux (apt install tmux)"),
]

TINY_APP = {
    "MYNINJA_BACKENDS__EMBEDDED__MODEL": TINY_MODEL,
    "MYNINJA_BACKENDS__EMBEDDED__THREADS": str(TINY_THREADS),
    "MYNINJA_GRAPH__BRANCHES": "1",
    "MYNINJA_GRAPH__MAX_STEPS": "1",
    "MYNINJA_GRAPH__MAX_ROUNDS": "1",
    "MYNINJA_GRAPH__MAX_TOKENS": "32",
    "MYNINJA_WORKER_IDLE_S": "20",
    **KNOWN_TIME_ZONE,
}


class Tmux:
    """One tmux server of our own (its own socket), so nothing of the user's is touched."""

    def __init__(self, name: str) -> None:
        self.base = ["tmux", "-L", name]

    def __call__(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(
            [*self.base, *args], capture_output=True, text=True, check=False, timeout=10
        )
        if check and done.returncode:
            raise AssertionError(f"tmux {args[0]} failed: {done.stderr}")
        return done.stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "app")

    def alive(self) -> bool:
        return (
            subprocess.run([*self.base, "has-session", "-t", "app"], capture_output=True).returncode
            == 0
        )

    def wait(self, check: Callable[[str], bool], within_s: float, what: str) -> str:
        deadline = time.monotonic() + within_s
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if check(screen):
                return screen
            time.sleep(0.3)
        raise AssertionError(f"the screen never showed {what}; last screen:\n{screen}")


@pytest.fixture
def tmux(myninja_home: Path) -> Iterator[Tmux]:
    term = Tmux(f"myninja-test-{os.getpid()}")
    yield term
    term("kill-server", check=False)
    client = WorkerClient(myninja_home / "data")
    if asyncio.run(client.alive()):
        asyncio.run(client.request("shutdown"))


def test_the_app_answers_a_typed_task_in_a_real_terminal(tmux: Tmux, myninja_home: Path) -> None:
    env = {"MYNINJA_HOME": str(myninja_home), "TERM": "xterm-256color", **TINY_APP}
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    command = f"env {assignments} {shlex.join(myninja_cmd())}"
    tmux("new-session", "-d", "-s", "app", "-x", "100", "-y", "30", command)
    tmux.wait(lambda s: "Ask myninja" in s, 30, "the input box")
    tmux("send-keys", "-t", "app", "-l", "Name one colour.")
    tmux("send-keys", "-t", "app", "Enter")
    screen = tmux.wait(lambda s: "DONE" in s, 240, "the task done")
    with HistoryStore(myninja_home / "data" / "history.db") as store:
        (task,) = store.list_tasks()
    assert task["status"] == "done" and task["text"] == "Name one colour."
    words = re.findall(r"[A-Za-z]{3,}", task["answer"])
    assert words, task["answer"]
    flat = " ".join(screen.split())
    assert words[0] in flat, f"{words[0]!r} of the answer is not on screen:\n{screen}"
    tmux("send-keys", "-t", "app", "C-q")
    deadline = time.monotonic() + 15
    while tmux.alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not tmux.alive(), "ctrl+q did not close the app"
