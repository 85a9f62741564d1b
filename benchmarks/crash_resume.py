"""Crash and resume: the background worker SIGKILLed at random moments across a mix of tasks.

Tasks go to the real background worker (`myninja run --detach` starts it; the rest of a batch
is handed in over its socket, as the app does), on the scripted backend, whose delays and
token-by-token streaming hold every phase open long enough for a kill to land inside it.
Three kinds of task, in equal numbers per batch:

  limerick  a two-step plan, 3 branches per step streaming their replies, the judge scoring
            each, the final answer composed from both steps (a model call of its own);
  fence     one step; one branch asks the person which colour (ask_user, a LangGraph
            interrupt), and this driver answers with `myninja answer … --detach` after a
            random pause, so some kills land while the task waits;
  notes     one step; two branches call the files skill (read_file in an allowed folder,
            permission granted in the config), the third answers at once.

The worker is killed (SIGKILL) at `--kills` random moments, each drawn uniformly from
[--min-gap, --max-gap] seconds after the tasks were seen progressing again after the last
kill, and only while a task is running. After each kill the worker comes back the way a
person brings it back, chosen at random: `myninja worker` started directly, or the next CLI
call (`myninja answer … --detach` when a question is due, else `myninja tasks resume …
--detach`) starting one. A batch is submitted whenever every task has ended and kills are
left, so the kills spread over several batches.

The reference is the same batch, same script, same answers, run through a worker that is
never killed (`--kills 0`). Each task is compared with the reference task of the same slot:

  lost_events        events the reference recorded that this task lacks (type and every
                     field but volatile ones: ts, seq, ids of questions and tool calls, timings)
  duplicated_events  the same idempotency key twice in history.db, or the same logical
                     event recorded more often than the reference recorded it
  unexpected_events  events the reference does not have at all (neither lost nor duplicated)
  reordered_tasks    the same events in another order, beyond what `interleaved_tasks`
                     counts: parallel branches' events interleaved otherwise, each branch's
                     own order kept (after a kill mid-step the branches that had finished are
                     stored before the one re-run: what really happened, not a fault)
  question_mismatches  tasks whose questions (text, status, answer) differ from the reference's
  killed_tasks       tasks unfinished at one kill or more (running, or waiting for an answer);
  resumed_and_finished  of those, the ones that ended done with the expected answer
  stuck / failed     not ended (no event anywhere for 90 s) / ended failed or cancelled;
                     wrong_answer: done with another answer

At the end the worker is shut down and history.db and checkpoints.db must pass
`PRAGMA integrity_check`. Recovery after a kill: from the kill until a task that was running
at the kill records its next event (`mean_recovery_s`), and until the new worker answers
(`mean_worker_restart_s`); both include starting Python and importing the worker, most of
it on a loaded 2-core machine. The seed fixes the draws (kill gaps, ways back, answer pauses),
not where the kills land: that depends on the machine's speed. Prints one JSON object.

    python benchmarks/crash_resume.py [--kills 20] [--seed 1] [--per-kind 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from myninja.agent_graph.history import HistoryStore  # noqa: E402
from myninja.agent_graph.history.statuses import FINISHED, RESTING  # noqa: E402
from myninja.agent_graph.tasks.client import WorkerClient  # noqa: E402

# Fields that legitimately differ between two runs of the same task (as tests/agent_graph/
# test_crash.py compares them): when, in which order, and the ids minted per run.
VOLATILE = frozenset({"v", "ts", "seq", "task_id", "timings", "question_id", "call_id"})
CLI_TIMEOUT_S = 60.0

# -- the script ---------------------------------------------------------------------------------
DIRECT, CAREFUL, ALTERNATIVE = "Answer directly", "Work it out", "Consider an approach"
STYLES = (DIRECT, CAREFUL, ALTERNATIVE)
TOKEN_S = 0.04  # between streamed words of a branch's reply
JSON_TOKEN_S = 0.015  # between words of the router's, planner's and judge's JSON

KINDS = ("limerick", "fence", "notes")
TEXTS = {
    "limerick": "Write a limerick about the pump in the yard (limerick job {slot})",
    "fence": "Plan painting the garden fence (fence job {slot})",
    "notes": "Summarise my pump notes and to-do list (notes job {slot})",
}
EXPECTED = {
    "limerick": "Final limerick: a pump in the yard that worked very hard, verse B, outline A.",
    "fence": "Fence plan: two coats of blue, starting at the gate on Saturday morning.",
    "notes": "Summary: the pump needs a green valve by Friday, says the notes file.",
}
NOTES = {
    "notes.md": "Pump notes: the valve is worn; order a green valve by Friday.\n",
    "todo.md": "To do: oil the hinge, sweep the yard, call the plumber.\n",
}
ANSWERS = {"colour": "blue"}


def _all(*patterns: str) -> str:
    """A regex matching a request that contains every pattern (the backend searches with
    DOTALL), in whatever order."""
    return "^" + "".join(f"(?=.*{p})" for p in patterns)


def _judge(candidate: str, score: int) -> dict[str, Any]:
    return {
        "match": rf"Candidate:\n{candidate}",
        "json": {"score": score, "reasons": f"{candidate} judged {score}"},
        "delay": 0.25,
        "token_delay": JSON_TOKEN_S,
    }


def _reply(text: str, *patterns: str, **extra: Any) -> dict[str, Any]:
    return {"match": _all(*patterns), "reply": text, "token_delay": TOKEN_S, **extra}


def _tool_call(name: str, arguments: dict[str, Any], *patterns: str) -> dict[str, Any]:
    return {
        "match": _all(*patterns),
        "tool_calls": [{"name": name, "arguments": arguments}],
        "delay": 0.3,
    }


def script_rules() -> list[dict[str, Any]]:
    """Rules for the scripted backend; the first that matches a request answers it."""
    step = {"limerick": "limerick job", "fence": "fence job", "notes": "notes job"}
    return [
        {
            "match": r"Route this task",
            "json": {"agent": "writer", "reason": "it is writing"},
            "delay": 0.1,
            "token_delay": JSON_TOKEN_S,
        },
        {
            "match": _all("Task to plan", step["limerick"]),
            "json": {
                "steps": [
                    {"title": "Outline", "instruction": "List the rhymes."},
                    {"title": "Verse", "instruction": "Write the limerick from the outline."},
                ]
            },
            "delay": 0.2,
            "token_delay": JSON_TOKEN_S,
        },
        {
            "match": r"Task to plan",
            "json": {"steps": [{"title": "Answer", "instruction": "Do what is asked."}]},
            "delay": 0.2,
            "token_delay": JSON_TOKEN_S,
        },
        # The judge (its prompts name the candidate), before any branch rule.
        _judge("Outline A", 8),
        _judge("Outline B", 6),
        _judge("Outline C", 5),
        _judge("Verse A", 5),
        _judge("Verse B", 9),
        _judge("Verse C", 7),
        _judge("Fence plan: two coats of blue", 9),
        _judge("Fence plan: sand", 6),
        _judge("Fence plan: leave", 4),
        _judge("Summary: the pump", 9),
        _judge("Summary: chores", 7),
        _judge("Summary: nothing", 3),
        # limerick: compose, then step 2's branches, then step 1's.
        _reply(EXPECTED["limerick"], "Compose the final answer", step["limerick"], delay=0.3),
        *(
            _reply(
                f"Verse {x}: a pump in the yard that worked very hard, take {x}.",
                step["limerick"],
                "Step 2 of 2",
                rf"Attempt 1\. {style}",
            )
            for x, style in zip("ABC", STYLES, strict=True)
        ),
        *(
            _reply(
                f"Outline {x}: yard, hard, guard, card (rhymes {x}).",
                step["limerick"],
                "Step 1 of 2",
                rf"Attempt 1\. {style}",
            )
            for x, style in zip("ABC", STYLES, strict=True)
        ),
        # fence: the direct branch asks, and answers from the person's reply.
        _reply(EXPECTED["fence"], step["fence"], "tool: blue"),
        _tool_call(
            "ask_user",
            {
                "question": "Which colour should the fence be?",
                "key": "colour",
                "choices": ["red", "blue"],
            },
            step["fence"],
            rf"Attempt 1\. {DIRECT}",
        ),
        _reply(
            "Fence plan: sand it first, then paint it any colour.",
            step["fence"],
            rf"Attempt 1\. {CAREFUL}",
        ),
        _reply("Fence plan: leave it as it is.", step["fence"], rf"Attempt 1\. {ALTERNATIVE}"),
        # notes: two branches read a file each, one answers at once.
        _reply(EXPECTED["notes"], step["notes"], "tool: Pump notes"),
        _reply("Summary: chores are oiling, sweeping, calling.", step["notes"], "tool: To do"),
        _tool_call("read_file", {"path": "notes.md"}, step["notes"], rf"Attempt 1\. {DIRECT}"),
        _tool_call("read_file", {"path": "todo.md"}, step["notes"], rf"Attempt 1\. {CAREFUL}"),
        _reply("Summary: nothing read yet.", step["notes"], rf"Attempt 1\. {ALTERNATIVE}"),
    ]


# -- a home with its own config, history and worker ---------------------------------------------
def myninja_cmd(*args: str) -> list[str]:
    script = Path(sys.executable).parent / "myninja"
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "myninja", *args]


def _proc_state(pid: int) -> str | None:
    """The process's state letter, or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def _dead(pid: int) -> bool:
    return _proc_state(pid) in (None, "Z", "X")


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


@contextlib.contextmanager
def subreaper() -> Iterator[None]:
    """Become the child subreaper (Linux) while the storm runs: workers the CLI starts in their
    own session are orphaned when it exits and come to us, so the killed ones can be reaped
    instead of staying zombies under an init that may never reap them."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        ok = libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        ok = False
    try:
        yield
    finally:
        if ok:
            libc.prctl(36, 0, 0, 0, 0)


def wait_until(check: Callable[[], Any], timeout: float, step: float = 0.03) -> Any:
    """check()'s first true result, or None after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            return None
        time.sleep(step)
    return result


@dataclass
class Home:
    path: Path
    env: dict[str, str] = field(default_factory=dict)
    spawned: list[subprocess.Popen[bytes]] = field(default_factory=list)
    pids: set[int] = field(default_factory=set)  # every worker seen
    _store: HistoryStore | None = None

    def __post_init__(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        files = self.path / "files"
        files.mkdir(exist_ok=True)
        for name, text in NOTES.items():
            (files / name).write_text(text)
        script = self.path / "script.json"
        script.write_text(json.dumps({"rules": script_rules()}))
        # Past tasks are not shown to the planner: which ones are done when a task plans
        # depends on timing, and the comparison with the reference must not.
        (self.path / "config.toml").write_text(
            "worker_idle_s = 120\n"
            "[graph]\nbranches = 3\nuse_past_tasks = false\n"
            f"[skills]\nallowed_dirs = [{json.dumps(str(files))}]\n"
            '[skills.grants]\nfiles = ["read_files"]\n'
            f'[backends.embedded]\ntype = "scripted"\nscript = {json.dumps(str(script))}\n'
        )
        clean = {k: v for k, v in os.environ.items() if not k.startswith("MYNINJA_")}
        self.env = {**clean, "MYNINJA_HOME": str(self.path), "OMP_WAIT_POLICY": "PASSIVE"}

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
            timeout=CLI_TIMEOUT_S,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"myninja {' '.join(args)}: exit {done.returncode}\n{done.stderr}{self.log()}"
            )
        return done

    def log(self) -> str:
        log = self.data / "worker.log"
        return f"\nworker.log:\n{log.read_text()[-3000:]}" if log.exists() else ""

    def start_worker(self) -> None:
        """`myninja worker`, as `run --detach` starts it (it resumes orphaned tasks)."""
        self.data.mkdir(parents=True, exist_ok=True)
        with (self.data / "worker.log").open("ab") as log:
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

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        return asyncio.run(WorkerClient(self.data).request(op, **fields))

    def worker_pid(self) -> int | None:
        try:
            pid = int(self.request("ping")["pid"])
        except Exception:  # no socket, a dead worker's socket, a worker starting up
            return None
        self.pids.add(pid)
        return pid

    def kill_worker(self, pid: int) -> None:
        os.kill(pid, signal.SIGKILL)
        if wait_until(lambda: _dead(pid), 10) is None:
            raise RuntimeError(f"worker {pid} did not die")
        _reap(pid)

    def close(self) -> None:
        """Stop the worker and every process this home started; reap them."""
        pid = self.worker_pid()
        if pid is not None:
            with contextlib.suppress(Exception):
                self.request("shutdown")
            if wait_until(lambda: _dead(pid), 15) is None:
                os.kill(pid, signal.SIGKILL)
                wait_until(lambda: _dead(pid), 10)
        for proc in self.spawned:
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
        for pid in self.pids:
            if not _dead(pid) and _is_worker_of(pid, self.path):
                os.kill(pid, signal.SIGKILL)
                wait_until(lambda p=pid: _dead(p), 10)
            _reap(pid)
        if self._store is not None:
            self._store.close()
            self._store = None


def _is_worker_of(pid: int, home: Path) -> bool:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"MYNINJA_HOME={home}".encode() in environ


# -- where a task is ----------------------------------------------------------------------------
def phase(events: list[dict[str, Any]], status: str) -> str:
    """The phase a task is in, from its stored events: what a kill now cuts short."""
    if status == "waiting":
        return "waiting_for_answer"
    kinds = [e["type"] for e in events]
    if "answer" in kinds:
        return "finishing"
    if "routed" not in kinds:
        return "routing"
    plans = [e for e in events if e["type"] == "plan"]
    if not plans:
        return "planning"
    started, done = kinds.count("branch_started"), kinds.count("branch_done")
    if done < started:
        return "branches"  # streaming, calling tools, or resuming after an answer
    if kinds.count("evaluation") < done:
        return "judging"
    if kinds.count("selected") >= len(plans[-1]["steps"]):
        return "composing" if len(plans[-1]["steps"]) > 1 else "finishing"
    return "branches"


# -- counting -----------------------------------------------------------------------------------
def logical(event: dict[str, Any]) -> str:
    """An event without what differs between two runs of the same task, as one string."""
    kept = {k: v for k, v in event.items() if k not in VOLATILE}
    return json.dumps(kept, sort_keys=True, ensure_ascii=False, default=str)


# What the branches of one step record while they run in parallel (one LangGraph superstep).
BRANCH_WORK = frozenset(
    {"tool_call", "tool_result", "branch_done", "question", "question_answered", "retrieved"}
)


def canonical(events: list[dict[str, Any]]) -> list[str]:
    """The logical events with each run of parallel branches' work put in branch order (stable,
    so each branch keeps its own order). Which branch's events come first is not fixed: after
    a kill mid-step, the branches that had finished are stored before the one re-run."""
    lane_of = {e.get("question_id"): e.get("branch_id") for e in events if e["type"] == "question"}

    def lane(event: dict[str, Any]) -> str:
        return event.get("branch_id") or lane_of.get(event.get("question_id")) or ""

    out: list[str] = []
    block: list[dict[str, Any]] = []
    for event in [*events, None]:
        if event is not None and event["type"] in BRANCH_WORK:
            block.append(event)
            continue
        out += [logical(e) for e in sorted(block, key=lane)]
        block = []
        if event is not None:
            out.append(logical(event))
    return out


def compare(reference: list[dict[str, Any]], events: list[dict[str, Any]]) -> dict[str, int]:
    """One task against its never-killed twin: events lost, duplicated, unexpected (neither);
    and, when it has the same events, whether their order differs beyond the interleaving of
    parallel branches (`reordered`, a fault) or only in it (`interleaved`)."""
    want, got = Counter(map(logical, reference)), Counter(map(logical, events))
    lost = want - got
    extra = got - want
    # An extra copy of an event the reference has is a duplicate; of one it lacks, every
    # copy but the first (which is unexpected).
    duplicated = sum(n if ev in want else n - 1 for ev, n in extra.items())
    same = not lost and not extra
    in_order = canonical(reference) == canonical(events)
    return {
        "lost": lost.total(),
        "duplicated": duplicated,
        "unexpected": extra.total() - duplicated,
        "reordered": int(same and not in_order),
        "interleaved": int(
            same and in_order and list(map(logical, reference)) != list(map(logical, events))
        ),
    }


def duplicate_keys(db: Path) -> dict[str, int]:
    """Per task, idempotency keys stored more than once (the unique index forbids it; counted
    anyway, from the file, so a schema change cannot hide it)."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute(
            "SELECT task_id, SUM(n - 1) FROM (SELECT task_id, key, COUNT(*) AS n FROM events"
            " GROUP BY task_id, key HAVING n > 1) GROUP BY task_id"
        ).fetchall()
    return {task_id: int(n) for task_id, n in rows}


def seq_gaps(events: list[dict[str, Any]]) -> bool:
    return [e["seq"] for e in events] != list(range(1, len(events) + 1))


def integrity(db: Path) -> str:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    return "; ".join(str(r[0]) for r in rows)


# -- the storm ----------------------------------------------------------------------------------
@dataclass
class Task:
    slot: str  # "limerick/0": the kind and its place in the batch
    task_id: str
    batch: int
    kills: int = 0  # kills that came while it was unfinished
    waiting_since: float | None = None
    answer_at: float | None = None


@dataclass
class Kill:
    at: float  # monotonic
    phases: dict[str, str]  # task id -> phase, of the tasks unfinished at the kill
    restart: str
    running: int  # tasks running at the kill (not waiting)
    worker_up_s: float | None = None
    recovery_s: float | None = None  # until a task running at the kill stored an event
    all_recovered_s: float | None = None  # until every task running at the kill did


@dataclass
class Storm:
    home: Home
    tasks: list[Task]
    kills: list[Kill]
    wall_s: float
    stuck: list[str]


def slots(per_kind: int) -> list[str]:
    return [f"{kind}/{i}" for i in range(per_kind) for kind in KINDS]


def text_of(slot: str) -> str:
    kind, i = slot.split("/")
    return TEXTS[kind].format(slot=i)


def run_storm(
    path: Path,
    *,
    kills: int,
    seed: int,
    per_kind: int = 2,
    min_gap: float = 0.2,
    max_gap: float = 2.5,
    answer_within: float = 2.0,
    settle_s: float = 90.0,
    log: Callable[[str], None] = lambda _: None,
) -> Storm:
    """Batches of tasks through a worker killed `kills` times; returns what happened. With
    kills=0 it is the reference: one batch, never killed."""
    rng = random.Random(seed)
    home = Home(path)
    tasks: list[Task] = []
    done_kills: list[Kill] = []
    started = time.monotonic()
    kill_at: float | None = None
    last_progress = (time.monotonic(), -1)
    try:
        while True:
            now = time.monotonic()
            states = {t.task_id: home.store.get_task(t.task_id) or {} for t in tasks}
            unfinished = [t for t in tasks if states[t.task_id].get("status") not in FINISHED]
            if not unfinished:
                if tasks and len(done_kills) >= kills:
                    break
                tasks += submit_batch(home, per_kind, batch=len({t.batch for t in tasks}))
                log(f"batch submitted; {len(tasks)} tasks, {len(done_kills)} kills")
                kill_at = time.monotonic() + rng.uniform(min_gap, max_gap) if kills else None
                continue
            answer_due(home, unfinished, states, rng, answer_within)
            running = [t for t in unfinished if states[t.task_id].get("status") == "running"]
            if kill_at is not None and now >= kill_at and running:
                kill = kill_and_restart(home, unfinished, rng)
                if kill is not None:
                    done_kills.append(kill)
                    for task in unfinished:
                        task.kills += 1
                    log(
                        f"kill {len(done_kills)}: {sorted(kill.phases.values())} "
                        f"restart {kill.restart}, recovered {kill.recovery_s}"
                    )
                more = len(done_kills) < kills
                kill_at = time.monotonic() + rng.uniform(min_gap, max_gap) if more else None
            # A watchdog: no event anywhere for settle_s means what is left is stuck.
            total = sum(_event_count(home, t.task_id) for t in unfinished)
            if total != last_progress[1]:
                last_progress = (time.monotonic(), total)
            elif time.monotonic() - last_progress[0] > settle_s:
                log(f"stuck: no progress for {settle_s:g}s")
                break
            time.sleep(0.03)
        wall = time.monotonic() - started
        stuck = [
            t.task_id
            for t in tasks
            if (home.store.get_task(t.task_id) or {}).get("status") not in FINISHED
        ]
        return Storm(home, tasks, done_kills, wall, stuck)
    finally:
        home.close()


def _event_count(home: Home, task_id: str) -> int:
    events = home.store.events(task_id)
    return events[-1]["seq"] if events else 0


def submit_batch(home: Home, per_kind: int, batch: int) -> list[Task]:
    """The first task by `myninja run --detach` (it starts a worker when none runs), the rest
    over the worker's socket, as the app hands tasks in."""
    out = []
    for i, slot in enumerate(slots(per_kind)):
        if i == 0:
            task_id = json.loads(home.cli("run", text_of(slot), "--detach", "--json").stdout)[
                "task_id"
            ]
        else:
            task_id = home.request("submit", text=text_of(slot))["task_id"]
        out.append(Task(slot, task_id, batch))
    return out


def answer_due(
    home: Home,
    unfinished: list[Task],
    states: dict[str, dict[str, Any]],
    rng: random.Random,
    within: float,
) -> None:
    """Answer a waiting task's questions a random while after it began to wait."""
    now = time.monotonic()
    for task in unfinished:
        if states[task.task_id].get("status") != "waiting":
            task.waiting_since = task.answer_at = None
            continue
        if task.answer_at is None:
            task.waiting_since = now
            task.answer_at = now + rng.uniform(0, within)
        if now >= task.answer_at:
            answer(home, task)
            task.answer_at = now + 5.0  # if it still waits then, answer again


def answer(home: Home, task: Task) -> bool:
    """`myninja answer TASK QID TEXT --detach` for each open question (it starts a worker when
    none runs). False when there was none."""
    questions = home.store.questions(task.task_id)
    for question in questions:
        home.cli("answer", task.task_id, question["id"], ANSWERS[question["key"]], "--detach")
    return bool(questions)


def kill_and_restart(home: Home, unfinished: list[Task], rng: random.Random) -> Kill | None:
    """SIGKILL the worker, bring one back (a worker, or a CLI call that starts one), and time
    how long the tasks it was running took to move again."""
    pid = home.worker_pid()
    if pid is None:
        return None
    # Read as close to the kill as can be: what it cuts short.
    events = {t.task_id: home.store.events(t.task_id) for t in unfinished}
    status = {t.task_id: (home.store.get_task(t.task_id) or {}).get("status") for t in unfinished}
    phases = {task_id: phase(events[task_id], status[task_id] or "") for task_id in events}
    seqs = {task_id: e[-1]["seq"] if e else 0 for task_id, e in events.items()}
    running = [task_id for task_id, s in status.items() if s == "running"]
    killed_at = time.monotonic()
    home.kill_worker(pid)
    waiting = [t for t in unfinished if home.store.questions(t.task_id)]
    # `tasks resume` refuses a task that ended meanwhile.
    left = [
        t
        for t in unfinished
        if (home.store.get_task(t.task_id) or {}).get("status") not in FINISHED
    ]
    restart = rng.choice(("worker", "cli"))
    if restart == "worker" or not (waiting or left):
        restart = "worker"
        home.start_worker()
    elif waiting and rng.random() < 0.5:
        restart = "cli answer"
        task = rng.choice(waiting)
        answer(home, task)
        task.answer_at = time.monotonic() + 5.0
    else:
        restart = "cli tasks resume"
        home.cli("tasks", "resume", rng.choice(left).task_id, "--detach")
    kill = Kill(killed_at, phases, restart, len(running))
    if wait_until(lambda: (p := home.worker_pid()) is not None and p != pid, 60):
        kill.worker_up_s = round(time.monotonic() - killed_at, 3)

    def progressed() -> list[str]:
        """Running tasks that stored an event since the kill, or paused or ended (a kill
        after a step's events were stored but before the task was marked leaves nothing
        new to store)."""
        return [
            t
            for t in running
            if _event_count(home, t) > seqs[t]
            or (home.store.get_task(t) or {}).get("status") in RESTING
        ]

    if running and wait_until(progressed, 60):
        kill.recovery_s = round(time.monotonic() - killed_at, 3)
        if wait_until(lambda: len(progressed()) == len(running), 60):
            kill.all_recovered_s = round(time.monotonic() - killed_at, 3)
    return kill


# -- the figures --------------------------------------------------------------------------------
@dataclass
class Tally:
    tasks: int
    killed_tasks: int
    resumed_and_finished: int
    finished_ok: int
    lost_events: int
    duplicated_events: int
    unexpected_events: int
    reordered_tasks: int
    interleaved_tasks: int
    question_mismatches: int
    seq_gaps: int
    stuck: int
    failed: int
    wrong_answer: int
    problems: list[str]


@dataclass(frozen=True)
class Twin:
    """What the never-killed run recorded for one slot."""

    events: list[dict[str, Any]]
    questions: list[tuple[str, str, str | None]]  # text, status, answer


def twins(reference: Storm) -> dict[str, Twin]:
    store = reference.home.store
    return {
        t.slot: Twin(store.events(t.task_id), _questions(store, t.task_id)) for t in reference.tasks
    }


def _questions(store: HistoryStore, task_id: str) -> list[tuple[str, str, str | None]]:
    return sorted(
        (q["text"], q["status"], q["answer"]) for q in store.questions(task_id, status=None)
    )


def tally(storm: Storm, reference: Storm) -> Tally:
    """Every task of `storm` against the reference task of its slot."""
    return tally_store(
        storm.home.store, storm.home.data / "history.db", storm.tasks, twins(reference)
    )


def tally_store(
    store: HistoryStore, db: Path, tasks: list[Task], reference: dict[str, Twin]
) -> Tally:
    """Count what went wrong in the history `store` (its file `db`) of `tasks`."""
    keys = duplicate_keys(db)
    out = Tally(len(tasks), *[0] * 13, [])
    for task in tasks:
        row = store.get_task(task.task_id) or {}
        events = store.events(task.task_id)
        kind = task.slot.split("/")[0]
        twin = reference[task.slot]
        counts = compare(twin.events, events)
        # A key stored twice is also the same logical event twice: counted once.
        counts["duplicated"] = max(counts["duplicated"], keys.get(task.task_id, 0))
        questions = _questions(store, task.task_id)
        counts["questions"] = int(questions != twin.questions)
        out.lost_events += counts["lost"]
        out.duplicated_events += counts["duplicated"]
        out.unexpected_events += counts["unexpected"]
        out.reordered_tasks += counts["reordered"]
        out.question_mismatches += counts["questions"]
        out.seq_gaps += seq_gaps(events)
        status = row.get("status")
        ok = status == "done" and row.get("answer") == EXPECTED[kind]
        out.killed_tasks += task.kills > 0
        out.finished_ok += ok
        out.resumed_and_finished += ok and task.kills > 0
        if status not in FINISHED:
            out.stuck += 1
        elif status != "done":
            out.failed += 1
        elif not ok:
            out.wrong_answer += 1
        out.interleaved_tasks += counts["interleaved"]
        bad = {k: v for k, v in counts.items() if v and k != "interleaved"}
        bad |= {"status": status} if not ok else {}
        if bad or seq_gaps(events):
            out.problems.append(
                f"{task.task_id} ({task.slot}, {task.kills} kills): {bad}"
                f"{' seq gaps' if seq_gaps(events) else ''} {row.get('error') or ''}".strip()
            )
    return out


def check_reference(reference: Storm) -> None:
    """The never-killed run must itself be right, or nothing can be compared with it."""
    for task in reference.tasks:
        row = reference.home.store.get_task(task.task_id) or {}
        kind = task.slot.split("/")[0]
        if row.get("status") != "done" or row.get("answer") != EXPECTED[kind]:
            kinds = [e["type"] for e in reference.home.store.events(task.task_id)]
            raise RuntimeError(
                f"the reference {task.slot} ended {row.get('status')}: {row.get('answer')!r} "
                f"{row.get('error') or ''} {kinds}{reference.home.log()}"
            )


def _mean(values: list[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return round(statistics.mean(got), 3) if got else None


def figures(storm: Storm, reference: Storm, counts: Tally) -> dict[str, Any]:
    data = storm.home.data
    checks = {name: integrity(data / name) for name in ("history.db", "checkpoints.db")}
    phases = Counter(p for kill in storm.kills for p in kill.phases.values())
    return {
        "kills": len(storm.kills),
        "tasks": counts.tasks,
        "batches": len({t.batch for t in storm.tasks}),
        "killed_tasks": counts.killed_tasks,
        "resumed_and_finished": counts.resumed_and_finished,
        "finished_ok": counts.finished_ok,
        "lost_events": counts.lost_events,
        "duplicated_events": counts.duplicated_events,
        "unexpected_events": counts.unexpected_events,
        "reordered_tasks": counts.reordered_tasks,
        # Same events, same order within each branch; parallel branches interleaved otherwise.
        "interleaved_tasks": counts.interleaved_tasks,
        "question_mismatches": counts.question_mismatches,
        "seq_gaps": counts.seq_gaps,
        "stuck": counts.stuck,
        "failed": counts.failed,
        "wrong_answer": counts.wrong_answer,
        "integrity": checks,
        "integrity_ok": all(v == "ok" for v in checks.values()),
        "wall_s": round(storm.wall_s, 1),
        "reference_wall_s": round(reference.wall_s, 1),
        "mean_recovery_s": _mean([k.recovery_s for k in storm.kills]),
        "max_recovery_s": max((k.recovery_s or 0 for k in storm.kills), default=None),
        "mean_all_recovered_s": _mean([k.all_recovered_s for k in storm.kills]),
        "mean_worker_restart_s": _mean([k.worker_up_s for k in storm.kills]),
        # Kills after which a task that was running never moved again within a minute.
        "kills_without_recovery": sum(
            k.running > 0 and k.all_recovered_s is None for k in storm.kills
        ),
        "kill_phases": dict(sorted(phases.items())),
        "restarts": dict(Counter(k.restart for k in storm.kills)),
        "problems": counts.problems[:20],
    }


def storm_and_reference(
    workdir: Path,
    *,
    kills: int,
    seed: int,
    per_kind: int = 2,
    log: Callable[[str], None] = lambda _: None,
    **storm_options: Any,
) -> tuple[Storm, Storm]:
    """The never-killed reference run (checked), then the storm, in `workdir`. Their workers
    are shut down; their history stores stay readable until `home.close()`."""
    with subreaper():
        reference = run_storm(workdir / "reference", kills=0, seed=seed, per_kind=per_kind)
        try:
            check_reference(reference)
        except RuntimeError:
            reference.home.close()
            raise
        log(f"reference done in {reference.wall_s:.1f}s")
        storm = run_storm(
            workdir / "storm", kills=kills, seed=seed, per_kind=per_kind, log=log, **storm_options
        )
    return storm, reference


def crash_resume(
    workdir: Path,
    *,
    kills: int,
    seed: int,
    per_kind: int = 2,
    log: Callable[[str], None] = lambda _: None,
    **storm_options: Any,
) -> dict[str, Any]:
    """The whole benchmark in `workdir`: the reference run, the storm, the figures."""
    started = time.monotonic()
    storm, reference = storm_and_reference(
        workdir, kills=kills, seed=seed, per_kind=per_kind, log=log, **storm_options
    )
    try:
        counts = tally(storm, reference)
    finally:
        storm.home.close()
        reference.home.close()
    result = {
        "machine": {"cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)},
        "seed": seed,
        **figures(storm, reference, counts),
    }
    result["bench_wall_s"] = round(time.monotonic() - started, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs of the worker")
    parser.add_argument("--seed", type=int, default=1, help="seeds kill moments and restarts")
    parser.add_argument("--per-kind", type=int, default=2, help="tasks of each kind per batch")
    parser.add_argument("--min-gap", type=float, default=0.2, help="least s between kills")
    parser.add_argument("--max-gap", type=float, default=2.5, help="most s between kills")
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it")
    parser.add_argument("--verbose", "-v", action="store_true", help="progress on stderr")
    args = parser.parse_args()
    log = (
        (lambda line: print(line, file=sys.stderr, flush=True))
        if args.verbose
        else (lambda _: None)
    )
    with contextlib.ExitStack() as stack:
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            workdir = args.keep
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="crash-")))
        result = crash_resume(
            workdir,
            kills=args.kills,
            seed=args.seed,
            per_kind=args.per_kind,
            min_gap=args.min_gap,
            max_gap=args.max_gap,
            log=log,
        )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
