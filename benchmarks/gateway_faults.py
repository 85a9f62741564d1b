"""Gateway faults while 20 tasks run: what the runtime makes of 429 storms (with and without
Retry-After), 5xx replies, hangs, streams cut mid-way, malformed SSE and a model answering
garbage where JSON is required.

One fault-injecting OpenAI-compatible server (tests/reliability/fault_server.py) serves every
scenario under its own URL prefix, and one background worker (the process `myninja run
--detach` hands its tasks to) runs them, through a gateway backend per scenario
(`gw_<scenario>`: short read timeout and few retries where the scenario needs them). For each
scenario, 20 tasks are submitted at once: one by the real `myninja run` command (its exit code,
stdout and stderr are checked), the others over the worker's socket as `run --detach` does;
each is followed to its end the way `myninja run` follows it. Then history.db is read back and
every task checked:

- it ended `done` or `failed`, with exactly one terminal event, the last of its gap-free events,
  and the follow stream showed the same events and status;
- a failure has one line naming the fault (no traceback, no "internal error") and the exit
  code docs/architecture.md gives it (4 unreachable, 1 failed); tasks the faults must fail did fail;
- nothing is half-written: a done task's answer is one of the complete notes the server sent
  for it (not empty, not a prefix, not missing a chunk), and the same in the task row and its
  task_done event; no question is left open;
- from the server's log: every retryable fault (429/502/503) was retried until the client's
  max_retries ran out, nothing else was retried, and Retry-After was waited out.

Prints one JSON object: per scenario, tasks, done, failed and the distinct failure reasons
with counts, exit codes, retries the server saw, p50/max task wall time, half_written (must be
0) and malformed (must be 0); then the integrity of history.db and checkpoints.db.

    python benchmarks/gateway_faults.py [--tasks 20] [--scenario NAME ...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: the fault server lives under tests/
    sys.path.insert(0, str(REPO))

from myninja.agent_graph.events import TERMINAL  # noqa: E402
from myninja.agent_graph.history import HistoryStore  # noqa: E402
from myninja.agent_graph.tasks.client import WorkerClient, lock_free  # noqa: E402
from myninja.agent_graph.tasks.wire import lock_path  # noqa: E402
from tests.reliability.fault_server import (  # noqa: E402
    RETRYABLE,
    BadJson,
    Call,
    Cut,
    FaultServer,
    Garbage,
    Hang,
    NoDataPrefix,
    Policy,
    Served,
    Stall,
    Status,
    fault_name,
)

TASKS = 20
SCENARIO_TIMEOUT_S = 150.0


# Scenarios ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scenario:
    name: str
    about: str
    policy: Policy
    # What a failure's reason must match, and the exit code that failure must carry.
    failures: dict[str, int] = field(default_factory=dict)
    doomed: Callable[[int], bool] = lambda n: False  # tasks the faults must fail
    min_done_share: float = 1.0  # of the tasks not doomed, at least this share ends done
    cli_task: int = 0  # the task run by the `myninja run` command
    read_timeout: float = 30.0
    max_retries: int = 4
    max_concurrency: int = 8

    @property
    def backend(self) -> str:
        return f"gw_{self.name}"

    def min_done(self, tasks: int) -> int:
        spared = sum(1 for n in range(tasks) if not self.doomed(n))
        return math.ceil(spared * self.min_done_share - 1e-9)


def _storm(seconds: float, retry_after: str | None) -> Policy:
    """Every chat request gets 429 from the first until `seconds` after the last task came in.
    (The model list, asked for once before the first chat, is served.)"""

    def policy(call: Call) -> Status | None:
        if call.kind != "models" and call.elapsed < seconds:
            return Status(429, retry_after, "rate limit exceeded: too many requests")
        return None

    return policy


def _server_errors(call: Call) -> Status | None:
    n = call.task
    if n is None:
        return None
    if n % 5 == 1 and call.attempt == 0:
        return Status(502, None, "bad gateway: the upstream is restarting")
    if n % 5 == 2 and call.attempt == 0:
        return Status(503, "0", "service unavailable")
    if n % 5 == 3 and call.kind == "plan":
        return Status(500, None, "the model crashed: CUDA error: an illegal memory access")
    if n % 5 == 4 and call.kind == "branch":
        return Status(503, None, "no healthy upstream")
    return None


def _hangs(call: Call) -> Hang | Stall | None:
    n = call.task
    if n is None:
        return None
    if n % 4 == 0 and call.kind == "route":
        return Hang()  # routing falls back to the default agent
    if n % 4 == 0 and call.kind == "judge" and "(careful draft" in call.candidate:
        return Stall()  # half a reply, then silence: that branch goes unjudged
    if n % 4 == 1 and call.kind == "plan":
        return Hang()
    if n % 4 == 2 and call.kind == "branch" and call.style == "direct":
        return Stall(after=3)  # a few tokens, then silence
    if n % 4 == 3 and call.kind == "branch":
        return Hang()
    return None


def _cuts(call: Call) -> Cut | None:
    n = call.task
    if n is None:
        return None
    if n % 3 == 0 and call.kind == "branch" and call.style == "careful":
        return Cut(after=3, chunked=False)  # ends cleanly at close: no finish, no [DONE]
    if n % 3 == 0 and call.kind == "judge" and "(direct draft" in call.candidate:
        return Cut()  # a non-streamed reply cut halfway through its body
    if n % 3 == 1 and call.kind == "branch" and call.style == "direct":
        return Cut(after=3)
    if n % 3 == 2 and call.kind == "branch":
        return Cut(after=3)
    return None


def _malformed(call: Call) -> BadJson | NoDataPrefix | None:
    n = call.task
    if n is None or call.kind != "branch":
        return None
    if n % 3 == 0 and call.style == "direct":
        return BadJson(after=3)
    if n % 3 == 1:
        return BadJson(after=3)
    if n % 3 == 2 and call.style == "direct":
        return NoDataPrefix(after=3)
    return None


def _garbage(call: Call) -> Garbage | None:
    n = call.task
    if n is None:
        return None
    if n % 4 == 0 and call.kind == "judge":
        return Garbage("I would give it a solid eight out of ten, it reads well.")
    if n % 4 == 1 and call.kind == "route":
        return Garbage("The writer, clearly.")
    if n % 4 == 2 and call.kind == "plan" and not call.repair:
        return Garbage('{"steps": []}')  # JSON, but not the schema: repaired once
    if n % 4 == 3 and call.kind == "plan":
        return Garbage("Step one: think. Step two: write. Step three: done!")
    return None


UNREACHABLE = 4
FAILED = 1

SCENARIOS: list[Scenario] = [
    Scenario("healthy", "no faults: the baseline", lambda call: None),
    Scenario(
        "storm_retry_after",
        "429 with Retry-After: 1 on every chat request until 2.5 s after the last task came in",
        _storm(2.5, "1"),
        failures={"HTTP 429": FAILED},
        max_concurrency=32,  # every task's calls meet the storm, not only 8 at a time
    ),
    Scenario(
        "storm_no_retry_after",
        "429 without Retry-After on every chat request until 1.5 s after the last task came "
        "in (jittered back-off)",
        _storm(1.5, None),
        failures={"HTTP 429": FAILED},
        min_done_share=0.8,
        max_concurrency=32,
    ),
    Scenario(
        "server_errors",
        "502 and 503 once (retried), 500 on the plan, 503 on every branch try",
        _server_errors,
        failures={"HTTP 500": FAILED, "every branch failed: .*HTTP 503": UNREACHABLE},
        doomed=lambda n: n % 5 in (3, 4),
        cli_task=3,
        max_retries=2,
    ),
    Scenario(
        "hangs",
        "no bytes until the read timeout (route, plan, all branches); a branch and a judge "
        "stall mid-reply",
        _hangs,
        failures={r"no reply within 2s": UNREACHABLE},
        doomed=lambda n: n % 4 in (1, 3),
        cli_task=1,
        read_timeout=2.0,
    ),
    Scenario(
        "cut_streams",
        "streams closed before [DONE] (broken and clean framing), a judge reply cut",
        _cuts,
        failures={r"every branch failed: .*the stream was cut": FAILED},
        doomed=lambda n: n % 3 == 2,
        cli_task=2,
    ),
    Scenario(
        "malformed_sse",
        "a data line of bad JSON, a chunk without its data: prefix",
        _malformed,
        failures={r"every branch failed: .*malformed stream": FAILED},
        doomed=lambda n: n % 3 == 1,
        cli_task=1,
    ),
    Scenario(
        "garbage_json",
        "prose where route, plan or judge must answer JSON; a plan repaired once",
        _garbage,
        failures={r"the planner gave no usable plan": FAILED},
        doomed=lambda n: n % 4 == 3,
        cli_task=3,
    ),
]


# Setting up -----------------------------------------------------------------------------------
def task_text(n: int, scenario: Scenario) -> str:
    return f"Write note #{n} about tmux for the {scenario.name} run"


def write_config(home: Path, server: FaultServer, scenarios: list[Scenario]) -> None:
    # Every branch runs and each is judged: the faults above aim at named branches and judges.
    # A route that fails falls back to the writer, whose notes the server knows how to check.
    lines = ["worker_idle_s = 60", 'default_agent = "writer"', "", "[keys]", 'store = "file"', ""]
    lines += ["[graph]", "adaptive = false", 'judge = "each"', ""]
    for scenario in scenarios:
        lines += [
            f"[backends.{scenario.backend}]",
            'type = "openai"',
            f'url = "{server.url(scenario.name)}"',
            f"read_timeout = {scenario.read_timeout}",
            f"max_retries = {scenario.max_retries}",
            f"max_concurrency = {scenario.max_concurrency}",
            "connect_timeout = 5.0",
            "",
        ]
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text("\n".join(lines))


def myninja_cmd(*args: str) -> list[str]:
    script = Path(sys.executable).parent / "myninja"
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "myninja", *args]


# Running one scenario -------------------------------------------------------------------------
async def _follow(client: WorkerClient, task_id: str) -> dict[str, Any]:
    """What `myninja run` sees of a task: its durable events and the end status."""
    events, end = [], None
    async for reply in client.follow(task_id):
        if "event" in reply and reply["event"].get("seq"):
            events.append(reply["event"])
        elif "end" in reply:
            end = reply["end"]
    return {"events": events, "end": end}


async def _cli_run(scenario: Scenario, text: str) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        *myninja_cmd("run", "--backend", scenario.backend, text),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
    )
    out, err = await proc.communicate()
    return {"rc": proc.returncode, "stdout": out.decode(), "stderr": err.decode()}


async def _task_id_of(
    store: HistoryStore, text: str, within_s: float, cli: asyncio.Task[dict[str, Any]]
) -> str:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if cli.done() and cli.result()["rc"] not in (0, 1, 4):
            raise RuntimeError(f"`myninja run` failed: {cli.result()}")
        found = [t["id"] for t in store.list_tasks(limit=200) if t["text"] == text]
        if found:
            return found[0]
        await asyncio.sleep(0.1)
    raise TimeoutError(f"`myninja run` did not submit {text!r} within {within_s:g}s")


async def run_scenario(
    client: WorkerClient, server: FaultServer, scenario: Scenario, tasks: int = TASKS
) -> dict[str, Any]:
    """Submit `tasks` tasks at once (one through `myninja run`), follow them to their end, and
    return the raw outcome: task ids by note number, followed streams, the CLI's result."""
    store = HistoryStore(client.data_dir / "history.db")
    try:
        texts = {n: task_text(n, scenario) for n in range(tasks)}
        cli_n = scenario.cli_task if scenario.cli_task < tasks else 0
        started = time.monotonic()
        # The command first, so its task meets the faults when the others do.
        cli = asyncio.create_task(_cli_run(scenario, texts[cli_n]))
        ids = {cli_n: await _task_id_of(store, texts[cli_n], 60, cli)}
        for n, text in texts.items():
            if n != cli_n:
                reply = await client.request("submit", text=text, backend=scenario.backend)
                ids[n] = reply["task_id"]
        server.start_clock(scenario.name)
        followed = await asyncio.gather(*(_follow(client, ids[n]) for n in sorted(ids)))
        cli_result = await cli
        wall = time.monotonic() - started
    finally:
        store.close()
    return {
        "ids": ids,
        "followed": dict(zip(sorted(ids), followed, strict=True)),
        "cli": {**cli_result, "task": cli_n},
        "wall_s": wall,
    }


# Checking -------------------------------------------------------------------------------------
def task_problems(
    task: dict[str, Any],
    events: list[dict[str, Any]],
    open_questions: list[dict[str, Any]],
    followed: dict[str, Any],
) -> list[str]:
    """What is wrong with how a task ended (empty when nothing is)."""
    problems = []
    seqs = [e["seq"] for e in events]
    if seqs != list(range(1, len(seqs) + 1)):
        problems.append(f"event seqs not 1..n: {seqs}")
    if not events or events[0]["type"] != "task_started":
        problems.append("does not start with task_started")
    terminal = [e for e in events if e["type"] in TERMINAL]
    if len(terminal) != 1:
        problems.append(f"{len(terminal)} terminal events: {[e['type'] for e in terminal]}")
    elif terminal[0] is not events[-1]:
        problems.append(f"events after {terminal[0]['type']}")
    wanted = {"done": "task_done", "failed": "task_failed"}.get(task["status"])
    if wanted is None:
        problems.append(f"ended {task['status']}")
    elif terminal and terminal[-1]["type"] != wanted:
        problems.append(f"status {task['status']} but the last terminal event is {wanted}")
    if open_questions:
        problems.append(f"{len(open_questions)} open questions")
    if task["status"] == "failed":
        error = task.get("error") or ""
        if not error or "\n" in error or "\r" in error:
            problems.append(f"error is not one line: {error!r}")
        if "Traceback" in error or error.startswith("internal error"):
            problems.append(f"error is a crash, not a reason: {error!r}")
        if terminal and terminal[-1].get("error") != error:
            problems.append("the task row and its task_failed event disagree on the error")
    if [e["seq"] for e in followed["events"]] != seqs:
        problems.append("the follow stream did not show the stored events")
    if followed["end"] != task["status"]:
        problems.append(f"the follow stream ended {followed['end']}, the task {task['status']}")
    return problems


def half_written(task: dict[str, Any], events: list[dict[str, Any]], complete: set[str]) -> bool:
    """A done task whose answer is not one whole note the server sent for it."""
    if task["status"] != "done":
        return False
    answer = (task.get("answer") or "").strip()
    done = [e for e in events if e["type"] == "task_done"]
    said = (done[-1].get("answer") or "").strip() if done else ""
    return not answer or answer != said or answer not in complete


def exit_code_of(task: dict[str, Any], events: list[dict[str, Any]]) -> int:
    if task["status"] == "done":
        return 0
    failed = [e for e in events if e["type"] == "task_failed"]
    return int(failed[-1].get("exit_code", FAILED)) if failed else FAILED


def retry_figures(served: list[Served], max_retries: int) -> dict[str, Any]:
    """From the server's log: retries seen, retryable faults not retried, others retried, and
    retries sooner than Retry-After allowed."""
    chat = [s for s in served if s.call.kind != "models"]  # /models requests are all alike
    by_digest: dict[str, dict[int, Served]] = {}
    for s in chat:
        by_digest.setdefault(s.digest, {})[s.call.attempt] = s
    missing = unexpected = early = 0
    for s in chat:
        then = by_digest[s.digest].get(s.call.attempt + 1)
        retryable = isinstance(s.fault, Status) and s.fault.code in RETRYABLE
        if retryable and s.call.attempt < max_retries and then is None:
            missing += 1
        if not retryable and then is not None:
            unexpected += 1
        if retryable and then is not None and s.fault.retry_after:  # type: ignore[union-attr]
            wait = float(s.fault.retry_after)  # type: ignore[union-attr]
            if then.at - s.at < wait - 0.05:
                early += 1
    return {
        "requests": len(served),
        "retries": sum(1 for s in chat if s.call.attempt > 0),
        "repairs": sum(1 for s in chat if s.call.repair),
        "faults": dict(Counter(n for s in served if (n := fault_name(s.fault)))),
        "retryable_not_retried": missing,
        "retried_though_not_retryable": unexpected,
        "retried_before_retry_after": early,
    }


def _cli_problems(cli: dict[str, Any], task: dict[str, Any], code: int) -> list[str]:
    problems = []
    if cli["rc"] != code:
        problems.append(f"`myninja run` exited {cli['rc']}, the task says {code}")
    if "Traceback" in cli["stderr"]:
        problems.append("`myninja run` printed a traceback")
    if task["status"] == "failed":
        if cli["stderr"].splitlines() != [f"myninja: error: {task.get('error')}"]:
            problems.append(f"`myninja run` stderr is not the one error line: {cli['stderr']!r}")
    elif cli["stdout"].strip() != (task.get("answer") or "").strip():
        problems.append("`myninja run` printed another answer than the task's")
    return problems


def scenario_figures(
    scenario: Scenario, outcome: dict[str, Any], store: HistoryStore, server: FaultServer
) -> dict[str, Any]:
    replies = server.replies(scenario.name)
    statuses: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    branch_errors: Counter[str] = Counter()
    codes: Counter[str] = Counter()
    walls: list[float] = []
    problems: list[str] = []
    unexpected: list[str] = []
    half = malformed = 0
    for n, task_id in sorted(outcome["ids"].items()):
        task = store.get_task(task_id)
        assert task is not None
        events = store.events(task_id)
        branch_errors.update(
            e["error"] for e in events if e["type"] == "branch_done" and e.get("error")
        )
        found = task_problems(
            task, events, store.questions(task_id, status="open"), outcome["followed"][n]
        )
        code = exit_code_of(task, events)
        if n == outcome["cli"]["task"]:
            found += _cli_problems(outcome["cli"], task, code)
        if found:
            malformed += 1
            problems += [f"note #{n}: {p}" for p in found]
        if half_written(task, events, replies.get(n, set())):
            half += 1
            problems.append(f"note #{n}: half-written answer {task.get('answer')!r}")
        statuses[task["status"]] += 1
        codes[str(code)] += 1
        if task.get("finished_at"):
            walls.append(task["finished_at"] - task["created_at"])
        if task["status"] == "failed":
            error = task.get("error") or ""
            reasons[error] += 1
            pattern = next((p for p in scenario.failures if re.search(p, error)), None)
            if pattern is None:
                unexpected.append(f"note #{n}: failed for an unexpected reason: {error}")
            elif scenario.failures[pattern] != code:
                unexpected.append(f"note #{n}: exit code {code} for {error!r}")
        elif scenario.doomed(n):
            unexpected.append(f"note #{n}: {task['status']}, but its faults should fail it")
    tasks = len(outcome["ids"])
    return {
        "about": scenario.about,
        "tasks": tasks,
        "done": statuses["done"],
        "failed": statuses["failed"],
        "other": tasks - statuses["done"] - statuses["failed"],
        "min_done": scenario.min_done(tasks),
        "doomed": sum(1 for n in range(tasks) if scenario.doomed(n)),
        "failure_reasons": dict(reasons.most_common()),
        "exit_codes": dict(sorted(codes.items())),
        # Branches that failed in tasks of either outcome, by their one-line reason.
        "branch_errors": dict(branch_errors.most_common()),
        **retry_figures(server.served(scenario.name), scenario.max_retries),
        "task_wall_s": {
            "p50": round(statistics.median(walls), 3) if walls else None,
            "max": round(max(walls), 3) if walls else None,
        },
        "scenario_wall_s": round(outcome["wall_s"], 3),
        "cli": {"task": outcome["cli"]["task"], "exit_code": outcome["cli"]["rc"]},
        "half_written": half,
        "malformed": malformed,
        "unexpected": unexpected,
        "problems": problems[:20],
    }


def integrity(path: Path) -> str:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return "; ".join(row[0] for row in conn.execute("PRAGMA integrity_check"))


# The whole run --------------------------------------------------------------------------------
async def _stop_worker(client: WorkerClient, within_s: float = 30) -> bool:
    """Ask the worker to exit; True once it has really gone."""
    with contextlib.suppress(Exception):
        await client.request("shutdown")
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if lock_free(lock_path(client.data_dir)):
            return True
        await asyncio.sleep(0.1)
    return False


async def run_benchmark(
    home: Path, scenarios: list[Scenario] | None = None, tasks: int = TASKS
) -> dict[str, Any]:
    """Every scenario in turn against one fault server and one worker under `home` (it becomes
    MYNINJA_HOME for this process and the ones it starts). Returns the figures."""
    scenarios = scenarios or SCENARIOS
    saved = {k: v for k, v in os.environ.items() if k.startswith("MYNINJA_")}
    for name in saved:  # none of the caller's settings: the run is the same everywhere
        del os.environ[name]
    os.environ["MYNINJA_HOME"] = str(home)
    try:
        return await _run_all(home, scenarios, tasks)
    finally:
        os.environ.pop("MYNINJA_HOME", None)
        os.environ.update(saved)


async def _run_all(home: Path, scenarios: list[Scenario], tasks: int) -> dict[str, Any]:
    data_dir = home / "data"
    figures: dict[str, Any] = {"tasks_per_scenario": tasks, "scenarios": {}}
    with FaultServer() as server:
        for scenario in scenarios:
            server.add(scenario.name, scenario.policy)
        write_config(home, server, scenarios)
        client = WorkerClient(data_dir)
        await client.ensure(wait_s=60)
        try:
            for scenario in scenarios:
                outcome = await asyncio.wait_for(
                    run_scenario(client, server, scenario, tasks), SCENARIO_TIMEOUT_S
                )
                with HistoryStore(data_dir / "history.db") as store:
                    figures["scenarios"][scenario.name] = scenario_figures(
                        scenario, outcome, store, server
                    )
                figures["scenarios"][scenario.name]["worker_alive"] = await client.alive()
        finally:
            figures["worker_stopped"] = await _stop_worker(client)
        figures["server_errors"] = server.errors
    with HistoryStore(data_dir / "history.db") as store:
        figures["open_questions"] = len(store.questions(None, status="open"))
        figures["unfinished_tasks"] = len(store.unfinished_tasks())
    figures["history_integrity"] = integrity(data_dir / "history.db")
    figures["checkpoints_integrity"] = integrity(data_dir / "checkpoints.db")
    log = data_dir / "worker.log"
    figures["worker_log_tracebacks"] = log.read_text().count("Traceback") if log.exists() else 0
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=TASKS)
    parser.add_argument(
        "--scenario",
        action="append",
        choices=[s.name for s in SCENARIOS],
        help="run only these (repeatable); default: all",
    )
    args = parser.parse_args()
    chosen = [s for s in SCENARIOS if not args.scenario or s.name in args.scenario]
    with tempfile.TemporaryDirectory(prefix="myninja-faults-") as tmp:
        figures = asyncio.run(run_benchmark(Path(tmp) / "home", chosen, args.tasks))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
