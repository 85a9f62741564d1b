"""A real background worker running a multi-step task is killed with SIGKILL at five points
(planning, mid-branch, waiting for input, evaluation, just before finishing). Each time a
restarted worker resumes and completes the task, and the task's events in history equal those
of an uninterrupted run of the same script: nothing lost, nothing duplicated.

The worker is driven as a user drives it: `myninja run --detach` starts it, `myninja worker`
(or `myninja answer --detach`) starts another after the kill, and history.db is read from this
process to see which phase the task is in. The scripted backend's delays hold each phase open
long enough to kill the worker inside it; after the kill the test checks that it really was
inside (a kill that came too late says so instead of passing vacuously).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from myninja.agent_graph.history import HistoryStore
from myninja.agent_graph.history.statuses import FINISHED
from myninja.agent_graph.tasks.client import WorkerClient
from tests.agent_graph.scripts import CAREFUL, DIRECT, PLAN_TWO_STEPS, ROUTE, judge
from tests.conftest import REPO, myninja_cmd

pytestmark = pytest.mark.slow

PHASE_S = 1.5  # how long each phase the test kills in is held open by the scripted backend
TIMEOUT_S = 45.0  # for any one wait below; a healthy run needs a few seconds
TEXT = "Write a memo about painting the fence"
ANSWERS = {"colour": "blue"}
# Fields that legitimately differ between two runs of the same task.
VOLATILE = frozenset({"v", "ts", "seq", "task_id", "timings", "question_id", "call_id"})

RULES: list[dict[str, Any]] = [
    ROUTE,
    {**PLAN_TWO_STEPS, "delay": PHASE_S},  # planning
    {"match": r"Compose the final answer", "reply": "Final memo, in blue.", "delay": PHASE_S},
    judge("Outline A", 8),
    judge("Outline B", 6),
    {**judge("Memo in blue", 9), "delay": PHASE_S},  # evaluation of step 2
    judge("Memo plain", 5),
    {"match": r"tool: blue", "reply": "Memo in blue"},
    {
        "match": rf"Step 2 of 2.*Attempt 1\. {DIRECT}",
        "tool_calls": [
            {
                "name": "ask_user",
                "arguments": {
                    "question": "Which colour?",
                    "key": "colour",
                    "choices": ["red", "blue"],
                },
            }
        ],
    },
    {"match": rf"Step 2 of 2.*Attempt 1\. {CAREFUL}", "reply": "Memo plain"},
    {"match": rf"Step 1 of 2.*Attempt 1\. {DIRECT}", "reply": "Outline A"},
    {"match": rf"Step 1 of 2.*Attempt 1\. {CAREFUL}", "reply": "Outline B", "delay": PHASE_S},
]

EXPECTED_TYPES = [
    "task_started", "routed", "plan",
    "branch_started", "branch_started", "branch_done", "branch_done",
    "evaluation", "evaluation", "selected",
    # Step 2: the branch that did not ask is stored when the step pauses for the question.
    "branch_started", "branch_started", "branch_done", "question", "question_answered",
    "memory_proposed",  # the answer, proposed as a memory
    "tool_call", "tool_result", "branch_done",
    "evaluation", "evaluation", "selected",
    "answer", "task_done",
]  # fmt: skip


# A home with its own config, history and worker ------------------------------------------------
def _proc_state(pid: int) -> str | None:
    """The process's state letter, or None when it is gone. A zombie ("Z") is dead: it was
    killed but nobody reaped it (an init that never reaps, or a parent that has not yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def _running(pid: int) -> bool:
    return _proc_state(pid) not in (None, "Z", "X")


@dataclass
class Home:
    path: Path
    env: dict[str, str] = field(default_factory=dict)
    spawned: list[subprocess.Popen[bytes]] = field(default_factory=list)
    owners: set[str] = field(default_factory=set)  # "pid:PID:START" of every worker seen
    _store: HistoryStore | None = None

    def __post_init__(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        script = self.path / "script.json"
        script.write_text(json.dumps({"rules": RULES}))
        (self.path / "config.toml").write_text(
            "worker_idle_s = 5\n"
            '[graph]\nbranches = 2\nmax_steps = 4\nadaptive = false\njudge = "each"\n'
            f'[backends.embedded]\ntype = "scripted"\nscript = "{script}"\n'
        )
        clean = {k: v for k, v in os.environ.items() if not k.startswith("MYNINJA_")}
        self.env = {**clean, "MYNINJA_HOME": str(self.path)}

    @property
    def data(self) -> Path:
        return self.path / "data"

    @property
    def store(self) -> HistoryStore:
        if self._store is None:
            self._store = HistoryStore(self.data / "history.db")
        return self._store

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            myninja_cmd(*args),
            capture_output=True,
            text=True,
            env=self.env,
            cwd=REPO,
            timeout=TIMEOUT_S,
        )
        assert done.returncode == 0, f"myninja {' '.join(args)}: exit {done.returncode}\n" + (
            done.stderr + self.worker_log()
        )
        return done

    def worker_log(self) -> str:
        log = self.data / "worker.log"
        return f"\nworker.log:\n{log.read_text()[-3000:]}" if log.exists() else ""

    def submit(self, text: str) -> str:
        """`myninja run TEXT --detach`: it starts the worker and hands it the task."""
        return json.loads(self.cli("run", text, "--detach", "--json").stdout)["task_id"]

    def start_worker(self) -> None:
        """`myninja worker`, as `run --detach` would start it: on start it resumes unfinished
        tasks whose owner is gone."""
        self.data.mkdir(parents=True, exist_ok=True)
        log = (self.data / "worker.log").open("ab")
        with log:
            self.spawned.append(
                subprocess.Popen(
                    myninja_cmd("worker"),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    env=self.env,
                    cwd=REPO,
                    start_new_session=True,
                )
            )

    def answer_open_questions(self, task_id: str) -> None:
        """`myninja answer TASK QID TEXT --detach` for each open question (it starts a worker
        when none is running)."""
        for question in self.store.questions(task_id):
            self.cli("answer", task_id, question["id"], ANSWERS[question["key"]], "--detach")

    def task(self, task_id: str) -> dict[str, Any]:
        task = self.store.get_task(task_id)
        assert task is not None, f"no task {task_id} in history"
        if task["owner"]:
            self.owners.add(task["owner"])
        return task

    def events(self, task_id: str) -> list[dict[str, Any]]:
        return self.store.events(task_id)

    def describe(self, task_id: str) -> str:
        task = self.task(task_id)
        kinds = [e["type"] for e in self.events(task_id)]
        return f"status {task['status']!r}, owner {task['owner']}, events {kinds}"

    def kill_worker(self, task_id: str) -> str:
        """SIGKILL the worker that owns the task; returns its owner string."""
        owner = self.task(task_id)["owner"]
        _, pid_text, _ = owner.split(":", 2)
        pid = int(pid_text)
        ping = asyncio.run(WorkerClient(self.data).request("ping"))
        assert ping["pid"] == pid, f"the task's owner {owner} is not the worker {ping['pid']}"
        os.kill(pid, signal.SIGKILL)
        wait_until(f"worker {pid} to die", lambda: not _running(pid), timeout=10)
        return owner

    def close(self) -> None:
        """Stop every worker this home started, whatever state the test left them in."""
        for proc in self.spawned:
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
        with contextlib.suppress(Exception):
            pid = asyncio.run(WorkerClient(self.data).request("ping"))["pid"]
            self.owners.add(f"pid:{pid}:")
            asyncio.run(WorkerClient(self.data).request("shutdown"))
            wait_until("the worker to shut down", lambda: not _running(pid), timeout=10)
        for owner in self.owners:  # workers `myninja` started: ours, and found by their owner
            pid = int(owner.split(":")[1])
            if _running(pid) and _is_our_worker(pid, self.path):
                os.kill(pid, signal.SIGKILL)
        if self._store is not None:
            self._store.close()


def _is_our_worker(pid: int, home: Path) -> bool:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"MYNINJA_HOME={home}".encode() in environ


def wait_until(what: str, check: Callable[[], Any], timeout: float = TIMEOUT_S) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.03)
    return result


@contextlib.contextmanager
def scripted_home(path: Path) -> Iterator[Home]:
    home = Home(path)
    try:
        yield home
    finally:
        home.close()


def run_to_end(home: Home, task_id: str) -> dict[str, Any]:
    """Answer questions as they come until the task ends."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        task = home.task(task_id)
        if task["status"] in FINISHED:
            return task
        if task["status"] == "waiting":
            home.answer_open_questions(task_id)
        if time.monotonic() > deadline:
            state = home.describe(task_id) + home.worker_log()
            raise AssertionError(f"task did not finish in {TIMEOUT_S:g}s: {state}")
        time.sleep(0.05)


def normalized(events: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (e["type"], {k: v for k, v in e.items() if k not in VOLATILE and k != "type"})
        for e in events
    ]


def check_history(events: list[dict[str, Any]], task: dict[str, Any]) -> None:
    kinds = [e["type"] for e in events]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), kinds
    assert task["status"] == "done", (task["status"], task.get("error"), kinds)
    assert kinds.count("task_done") == 1 and kinds[-1] == "task_done", kinds
    assert "task_failed" not in kinds, kinds
    done = [e["branch_id"] for e in events if e["type"] == "branch_done"]
    assert sorted(done) == sorted(set(done)), f"a branch finished twice: {done}"
    started = [e["branch_id"] for e in events if e["type"] == "branch_started"]
    assert sorted(started) == sorted(done), (started, done)


@dataclass(frozen=True)
class Reference:
    events: list[dict[str, Any]]
    task: dict[str, Any]
    questions: list[dict[str, Any]]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reference]:
    """The same task, same script, same answers, run without a kill."""
    with scripted_home(tmp_path_factory.mktemp("reference") / "home") as home:
        task_id = home.submit(TEXT)
        task = run_to_end(home, task_id)
        events = home.events(task_id)
        check_history(events, task)
        assert [e["type"] for e in events] == EXPECTED_TYPES
        assert task["answer"] == "Final memo, in blue."
        yield Reference(events, task, home.store.questions(task_id, status=None))


# Where to kill --------------------------------------------------------------------------------
Events = list[dict[str, Any]]


def _of(events: Events, kind: str, **fields: Any) -> list[dict[str, Any]]:
    return [
        e for e in events if e["type"] == kind and all(e.get(k) == v for k, v in fields.items())
    ]


@dataclass(frozen=True)
class KillPoint:
    name: str
    # True while the task is inside the phase: checked to find it, and again after the kill
    # to prove the kill landed inside it.
    inside: Callable[[Events, dict[str, Any]], bool]
    settle_s: float = 0.0  # time to let pass inside the phase before the kill
    # The test starts the first worker itself and does not reap it after the kill, so the
    # killed worker stays a zombie while the next one starts (as under an init or a parent
    # that reaps late): its tasks must still count as orphaned. Otherwise `run` starts it.
    zombie: bool = False


KILL_POINTS = [
    KillPoint(
        "planning",
        lambda ev, _: bool(_of(ev, "routed")) and not _of(ev, "plan"),
        zombie=True,
    ),
    # The fast branch of step 1 is done (its writes saved), the slow one is still working.
    KillPoint(
        "mid_branch",
        lambda ev, _: len(_of(ev, "branch_started", step=0)) == 2 and not _of(ev, "branch_done"),
        settle_s=0.4,
    ),
    KillPoint(
        "waiting_for_input",
        lambda ev, task: (
            task["status"] == "waiting"
            and bool(_of(ev, "question"))
            and not _of(ev, "question_answered")
        ),
    ),
    # Step 2's branches are done (after the answer), its judge is still at work.
    KillPoint(
        "evaluation",
        lambda ev, _: (
            len(_of(ev, "branch_done", step=1)) == 2 and not _of(ev, "evaluation", step=1)
        ),
        zombie=True,
    ),
    # The last step is selected; the answer is being composed.
    KillPoint(
        "before_finishing",
        lambda ev, _: bool(_of(ev, "selected", step=1)) and not _of(ev, "answer"),
    ),
]


@pytest.mark.parametrize("point", KILL_POINTS, ids=[p.name for p in KILL_POINTS])
def test_a_killed_worker_resumes_and_history_is_as_if_never_killed(
    point: KillPoint, reference: Reference, tmp_path: Path
) -> None:
    with scripted_home(tmp_path / "crash-home") as home:
        if point.zombie:
            home.start_worker()
            wait_until("the first worker", lambda: asyncio.run(WorkerClient(home.data).alive()))
        task_id = home.submit(TEXT)

        def inside() -> bool:
            task = home.task(task_id)
            if task["status"] in FINISHED:
                state = home.describe(task_id)
                raise AssertionError(f"the task ended before {point.name}: {state}")
            if task["status"] == "waiting" and point.name != "waiting_for_input":
                home.answer_open_questions(task_id)
                return False
            return point.inside(home.events(task_id), task)

        try:
            wait_until(f"the task to reach {point.name}", inside)
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {home.describe(task_id)}{home.worker_log()}") from None
        time.sleep(point.settle_s)
        killed_at = time.time()
        killed = home.kill_worker(task_id)
        at_kill = home.events(task_id)
        assert point.inside(at_kill, home.task(task_id)), (
            f"the kill came too late, after {point.name}: {home.describe(task_id)}"
        )
        assert home.task(task_id)["status"] != "done"

        if point.name == "waiting_for_input":
            home.answer_open_questions(task_id)  # no worker: `answer --detach` starts one
        else:
            home.start_worker()  # it must find the dead worker's task and resume it
        task = run_to_end(home, task_id)
        events = home.events(task_id)

        assert task["owner"] != killed, "the killed worker cannot have finished the task"
        if point.zombie:  # it was a zombie all along, yet its task was taken over
            assert _proc_state(int(killed.split(":")[1])) == "Z"
        assert events[: len(at_kill)] == at_kill, "events stored before the kill were changed"
        check_history(events, task)
        assert normalized(events) == normalized(reference.events)
        assert task["answer"] == reference.task["answer"]
        questions = home.store.questions(task_id, status=None)
        assert [(q["text"], q["status"], q["answer"]) for q in questions] == [
            (q["text"], q["status"], q["answer"]) for q in reference.questions
        ]
        if point.name == "mid_branch":
            # The branch that had finished is not redone; the one cut short is.
            ts = {e["branch_id"]: e["ts"] for e in _of(events, "branch_done", step=0)}
            assert ts["s1r1b1"] < killed_at < ts["s1r1b2"], (ts, killed_at)
