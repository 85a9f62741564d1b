"""`[budget]` as a user meets it: a three-step writer task on a real OpenAI-compatible server on
127.0.0.1 (every call priced the same) stops mid-plan when its budget is spent, `ask` says so in
one line and exits 4, and `tasks resume` finishes it once the budget is raised or the day has
turned, with every event kept once and the usage table summing the calls the server served;
also with three branches a step running side by side, and on an unpriced gateway (never
stopped, one warning line)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

import pytest

from myninja import paths
from myninja.agent_graph.tasks.client import WorkerClient
from tests.conftest import run_myninja
from tests.local_http import serving
from tests.openai_stub import send_json, send_reply

# Every call reports these tokens; at these prices each costs 0.001 + 0.001 = 0.002.
PROMPT_TOKENS, COMPLETION_TOKENS = 1000, 100
INPUT_PER_MTOK, OUTPUT_PER_MTOK = 1.0, 10.0
CALL_COST = 0.002
STEPS = [
    {"title": "Outline", "instruction": "List the points of the note."},
    {"title": "Draft", "instruction": "Write the note from the outline."},
    {"title": "Polish", "instruction": "Tighten the note's wording."},
]


class Planner(BaseHTTPRequestHandler):
    """A model for the writer's calls: a three-step plan for "Task to plan", a note for each
    step's branch, the whole note for anything else (the final answer). It logs the kind of
    each chat call it answered."""

    served: ClassVar[list[str]] = []
    lock = threading.Lock()

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._json({"object": "list", "data": [{"id": "house", "object": "model"}]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        text = "\n".join(str(m.get("content") or "") for m in body.get("messages") or [])
        with self.lock:
            n = len(self.served) + 1
        if "Task to plan" in text:
            kind, content = "plan", json.dumps({"steps": STEPS})
        elif "Candidate:" in text:
            kind, content = "judge", json.dumps({"score": 8, "reasons": "clear enough"})
        elif "Attempt 1." in text:
            # No two alike: branches of a step do not agree, so the judge scores each.
            kind, content = "branch", f"A step of the note (call {n}): tmux keeps sessions."
        else:
            kind, content = "other", "The whole note: tmux keeps sessions alive."
        with self.lock:
            self.served.append(kind)
        usage = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS}
        send_reply(self, body, content, {**usage}, reply_id=f"c{n}")

    def _json(self, body: dict[str, Any]) -> None:
        send_json(self, body)


# One branch per step and no judge: each step is one call, so the calls are countable.
ONE_BRANCH = 'branches = 1\njudge = "none"'
# Three branches a step, all at once, each judged: calls run side by side.
THREE_BRANCHES = 'branches = 3\nadaptive = false\njudge = "each"'


def write_config(home: Path, url: str, budget: str, graph: str = ONE_BRANCH) -> None:
    (home / "config.toml").write_text(
        "worker_idle_s = 30\n"
        f'[backends.gw]\ntype = "openai"\nurl = "{url}/v1"\nmodel = "house"\nmax_retries = 0\n'
        '[agents.writer]\nbackend = "gw"\n[agents.judge]\nbackend = "gw"\n'
        f"[graph]\n{graph}\nuse_past_tasks = false\n"
        f"[prices.house]\ninput_per_mtok = {INPUT_PER_MTOK}\noutput_per_mtok = {OUTPUT_PER_MTOK}\n"
        f"[budget]\n{budget}\n"
    )


@pytest.fixture
def server_url(myninja_home: Path) -> Iterator[str]:
    Planner.served = []
    with serving(Planner) as url:
        yield url
    stop_worker()


def stop_worker() -> None:
    client = WorkerClient(paths.data_dir())
    if asyncio.run(client.alive()):
        asyncio.run(client.request("shutdown"))


def task_json(task_id: str) -> dict[str, Any]:
    shown = run_myninja("tasks", "show", task_id, "--json")
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


def usage_rows() -> list[dict[str, Any]]:
    with sqlite3.connect(paths.data_dir() / "history.db") as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM usage ORDER BY id")]


def ask_stopped(
    budget_line: str, url: str, home: Path, graph: str = ONE_BRANCH
) -> tuple[str, list[dict[str, Any]]]:
    """Ask the three-step task under `budget_line`; it must stop mid-plan, exit 4, one line."""
    write_config(home, url, budget_line, graph)
    asked = run_myninja("ask", "--agent", "writer", "Write a note about tmux")
    assert asked.returncode == 4, (asked.stdout, asked.stderr)
    assert asked.stdout == ""
    (line,) = asked.stderr.strip().splitlines()
    assert line.startswith("myninja: error: budget spent:") and "Traceback" not in line
    task_id = json.loads(run_myninja("tasks", "list", "--json").stdout)[0]["id"]
    assert f"myninja tasks resume {task_id}" in line
    task = task_json(task_id)
    assert task["status"] == "failed" and task["error"] in line
    events = task["events"]
    assert [e["type"] for e in events if e["type"] == "plan"] == ["plan"]
    selected = [e for e in events if e["type"] == "selected"]
    assert 0 < len(selected) < len(STEPS)  # mid-plan: a step was finished, not all
    (stopped,) = [e for e in events if e["type"] == "task_failed"]
    assert stopped["error_type"] == "BudgetSpent" and stopped["exit_code"] == 4
    assert events[-1] == stopped
    return task_id, events


def resumed_and_whole(task_id: str, before: list[dict[str, Any]]) -> list[dict[str, Any]]:
    resumed = run_myninja("tasks", "resume", task_id)
    assert resumed.returncode == 0, resumed.stderr
    assert "tmux keeps sessions" in resumed.stdout
    assert "budget" not in resumed.stderr  # the old stop is not shown again as news
    task = task_json(task_id)
    assert task["status"] == "done"
    events = task["events"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))  # no gap, no double
    assert events[: len(before)] == before  # everything stored before the stop is kept
    assert events[-1]["type"] == "task_done"
    keys = [json.dumps({k: v for k, v in e.items() if k != "seq"}, sort_keys=True) for e in events]
    assert len(set(keys)) == len(keys)
    # Each step was finished once, each branch once; the plan was made once.
    selected = [e for e in events if e["type"] == "selected"]
    assert sorted(e["step"] for e in selected) == list(range(len(STEPS)))
    done = [e["branch_id"] for e in events if e["type"] == "branch_done"]
    assert len(done) == len(set(done)) >= len(STEPS)
    assert [e["type"] for e in events].count("plan") == 1
    # The usage table holds one row per call the server answered, and their tokens.
    rows = usage_rows()
    assert len(rows) == len(Planner.served)
    assert all(
        (r["prompt_tokens"], r["completion_tokens"]) == (PROMPT_TOKENS, COMPLETION_TOKENS)
        for r in rows
    )
    assert {r["task_id"] for r in rows} == {task_id}
    return events


def test_a_per_task_budget_stops_mid_plan_and_resume_after_raising_it_finishes(
    server_url: str, myninja_home: Path
) -> None:
    # The plan and the first step cost 0.004: the second step's call may not start.
    task_id, before = ask_stopped("per_task = 0.003", server_url, myninja_home)
    assert Planner.served == ["plan", "branch"]
    assert "of its [budget] per_task = 0.003" in before[-1]["error"]
    assert "raise per_task in" in before[-1]["error"]

    # Resumed while still spent: stopped again at once, with its own event; nothing is run.
    again = run_myninja("tasks", "resume", task_id)
    assert again.returncode == 4, again.stderr
    (line,) = again.stderr.strip().splitlines()
    assert line.startswith("myninja: error: budget spent:")
    assert Planner.served == ["plan", "branch"]
    stopped_twice = task_json(task_id)["events"]
    assert [e["type"] for e in stopped_twice].count("task_failed") == 2
    assert stopped_twice[: len(before)] == before

    # Raised while the worker still runs: the resume picks the new config up.
    write_config(myninja_home, server_url, "per_task = 1.0")
    events = resumed_and_whole(task_id, stopped_twice)
    assert Planner.served.count("plan") == 1 and Planner.served.count("branch") == len(STEPS)
    assert sum(CALL_COST for _ in usage_rows()) == pytest.approx(CALL_COST * len(Planner.served))
    assert [e["type"] for e in events].count("task_failed") == 2


def test_a_daily_budget_stops_the_task_until_the_next_day(
    server_url: str, myninja_home: Path
) -> None:
    task_id, before = ask_stopped("daily = 0.005", server_url, myninja_home)
    # plan + step 1 + step 2 = 0.006 reach 0.005: the third step's call may not start.
    assert Planner.served == ["plan", "branch", "branch"]
    assert "today's model calls have cost 0.0060 of [budget] daily = 0.005" in before[-1]["error"]
    assert "wait until tomorrow" in before[-1]["error"]

    # The day turns: what was spent is yesterday's (the calls' times moved back a day).
    with sqlite3.connect(paths.data_dir() / "history.db") as db:
        db.execute("UPDATE usage SET ts = ts - 86400")
    resumed_and_whole(task_id, before)


def test_a_budget_spent_between_parallel_branches_loses_and_repeats_nothing(
    server_url: str, myninja_home: Path
) -> None:
    # The plan, step 1's three branches and their three judges: 0.014. Step 2's branches,
    # starting together at 0.014 of 0.015, all run; their judges may not.
    task_id, before = ask_stopped("per_task = 0.015", server_url, myninja_home, THREE_BRANCHES)
    assert Planner.served == ["plan", *["branch"] * 3, *["judge"] * 3, *["branch"] * 3]
    assert [e["type"] for e in before[-4:]] == ["branch_done"] * 3 + ["task_failed"]
    write_config(myninja_home, server_url, "per_task = 1.0", THREE_BRANCHES)
    events = resumed_and_whole(task_id, before)
    assert Planner.served.count("plan") == 1
    assert Planner.served.count("branch") == 3 * len(STEPS)  # no branch ran twice
    assert len([e for e in events if e["type"] == "branch_done"]) == 3 * len(STEPS)


def test_an_unpriced_gateway_is_not_stopped_and_says_so_once(
    server_url: str, myninja_home: Path
) -> None:
    write_config(myninja_home, server_url, "daily = 0\nper_task = 0")
    config = myninja_home / "config.toml"
    config.write_text(config.read_text().replace("[prices.house]", "[prices.other]"))
    asked = run_myninja("ask", "--agent", "writer", "Write a note about tmux")
    assert asked.returncode == 0, asked.stderr
    assert "tmux keeps sessions" in asked.stdout
    assert Planner.served.count("branch") == len(STEPS)
    warning = (
        "myninja: warning: no price for gw/house: its calls do not count against [budget] "
        '(add [prices."house"] to the config)'
    )
    assert asked.stderr.splitlines() == [warning]
