"""The task commands as a user runs them, on a scripted backend: ask → exit 3 → answer, run
--detach and the background worker, tasks list/show/search/cancel, feedback."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path
from typing import Any

import pytest

from tests.agent_graph.scripts import FENCE_RULES as RULES
from tests.conftest import run_myninja, scripted_config


@pytest.fixture
def scripted_home(myninja_home: Path) -> Path:
    return scripted_config(myninja_home, RULES)


def task_json(task_id: str) -> dict[str, Any]:
    shown = run_myninja("tasks", "show", task_id, "--json")
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


def wait_for_status(task_id: str, *statuses: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = task_json(task_id)
        if task["status"] in statuses:
            return task
        time.sleep(0.2)
    raise AssertionError(f"task {task_id} never reached {statuses}: {task['status']}")


def test_ask_waits_with_the_question_and_the_printed_command_resumes(scripted_home: Path) -> None:
    asked = run_myninja("ask", "Paint the fence")
    assert asked.returncode == 3, asked.stderr
    (question,) = [json.loads(line) for line in asked.stdout.splitlines()]
    assert question["question"] == "Which colour?" and question["key"] == "colour"
    command = shlex.split(question["answer_command"].replace("YOUR ANSWER", "blue"))
    assert command[:2] == ["myninja", "answer"]
    answered = run_myninja(*command[1:])
    assert answered.returncode == 0, answered.stderr
    assert answered.stdout.strip() == "Painted it blue"
    task = task_json(question["task_id"])
    assert task["status"] == "done" and task["questions"][0]["answer"] == "blue"


def test_ask_json_waiting_ends_with_a_task_waiting_line(scripted_home: Path) -> None:
    asked = run_myninja("ask", "Paint the fence", "--json")
    assert asked.returncode == 3
    lines = [json.loads(line) for line in asked.stdout.splitlines()]
    assert lines[-1]["type"] == "task_waiting"
    assert lines[-1]["questions"][0]["question"] == "Which colour?"
    assert any(e["type"] == "question" for e in lines)


def test_answers_file_lets_a_script_run_to_the_end(scripted_home: Path) -> None:
    answers = scripted_home / "answers.json"
    answers.write_text('{"colour": "blue"}')
    done = run_myninja("ask", "Paint the fence", "--answers", str(answers))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Painted it blue"


def test_run_detach_hands_the_task_to_the_worker(scripted_home: Path) -> None:
    started = run_myninja("run", "Paint the gate", "--detach", "--json")
    assert started.returncode == 0, started.stderr
    task_id = json.loads(started.stdout)["task_id"]
    task = wait_for_status(task_id, "done")
    assert task["answer"] == "Fence painted"
    assert task["owner"] is not None and task["owner"].startswith("pid:")
    listed = json.loads(run_myninja("tasks", "list", "--status", "done", "--json").stdout)
    assert [t["id"] for t in listed] == [task_id]
    found = json.loads(run_myninja("tasks", "search", "gate", "--json").stdout)
    assert [t["id"] for t in found] == [task_id]
    rated = run_myninja("feedback", task_id[:8], "--good", "--note", "tidy", "--agent", "writer")
    assert rated.returncode == 0, rated.stderr
    assert task_json(task_id)["feedback"][0]["rating"] == "good"


def test_run_follows_the_task_and_exits_3_when_it_asks(scripted_home: Path) -> None:
    followed = run_myninja("run", "Paint the fence")
    assert followed.returncode == 3, followed.stderr
    question = json.loads(followed.stdout.splitlines()[-1])
    resumed = run_myninja("answer", question["task_id"], "blue")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == "Painted it blue"


def test_the_worker_uses_a_changed_config_for_new_tasks(scripted_home: Path) -> None:
    first = run_myninja("run", "Paint the gate")
    assert first.returncode == 0 and first.stdout.strip() == "Fence painted", first.stderr
    # The same worker (still idle-waiting) gets a config whose backend answers otherwise.
    other = scripted_home / "other.json"
    rules = [r for r in RULES if r.get("reply") != "Fence painted"]
    rules.append({"match": r"Attempt 1\.", "reply": "Gate varnished"})
    rules.append({"match": "Candidate:\nGate varnished", "json": {"score": 8, "reasons": "ok"}})
    other.write_text(json.dumps({"rules": rules}))
    config = scripted_home / "config.toml"
    config.write_text(config.read_text().replace("script.json", "other.json"))
    second = run_myninja("run", "Paint the gate")
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "Gate varnished"
    # A config broken meanwhile refuses the next task with one line, and loses nothing.
    config.write_text(config.read_text() + "\n[graph]\nbranches = 99\n")
    refused = run_myninja("run", "Paint the gate")
    assert refused.returncode == 2
    assert "graph.branches" in refused.stderr and "Traceback" not in refused.stderr


def test_the_worker_exits_when_idle(scripted_home: Path) -> None:
    from myninja.agent_graph.tasks.wire import socket_path

    started = run_myninja("run", "Paint the shed", "--detach")
    task_id = started.stdout.strip()
    wait_for_status(task_id, "done")
    sock = socket_path(scripted_home / "data")
    deadline = time.monotonic() + 15
    while sock.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not sock.exists(), "the worker is still running after its idle time"


def test_cancel_stops_a_background_task(scripted_home: Path) -> None:
    task_id = run_myninja("run", "Slow task", "--detach").stdout.strip()
    wait_for_status(task_id, "running")
    cancelled = run_myninja("tasks", "cancel", task_id)
    assert cancelled.returncode == 0, cancelled.stderr
    task = wait_for_status(task_id, "cancelled", timeout=10)
    assert task["events"][-1]["type"] == "task_cancelled"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["answer", "t_nope", "blue"], "no task 't_nope'"),
        (["tasks", "show", "t_nope"], "no task 't_nope'"),
        (["tasks", "cancel", "t_nope"], "no task 't_nope'"),
        (["feedback", "t_nope", "--good"], "no task 't_nope'"),
        (["ask", "hi", "--answers", "/nonexistent.json"], "--answers"),
    ],
)
def test_mistakes_are_one_line_exit_2(scripted_home: Path, args: list[str], expected: str) -> None:
    done = run_myninja(*args)
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_feedback_needs_a_rating_or_an_agent(scripted_home: Path) -> None:
    answers = scripted_home / "answers.json"
    answers.write_text('["blue"]')
    run_myninja("ask", "Paint the fence", "--answers", str(answers))
    task_id = json.loads(run_myninja("tasks", "list", "--json").stdout)[0]["id"]
    done = run_myninja("feedback", task_id)
    assert done.returncode == 2 and "nothing to record" in done.stderr


def test_resume_of_a_task_the_worker_ended_meanwhile_is_not_an_error(scripted_home: Path) -> None:
    import asyncio

    from myninja.ninja_tui.cli.tasks_cmd import _resume

    started = run_myninja("run", "Paint the gate", "--detach", "--json")
    task_id = json.loads(started.stdout)["task_id"]
    wait_for_status(task_id, "done")
    # Asked while it was still running (a worker's own recovery finished it first): no error.
    assert asyncio.run(_resume(task_id, "running", as_json=False, detach=True)) == 0
    # Asked of a task that had already ended: the person's mistake, one line, exit 2.
    again = run_myninja("tasks", "resume", task_id)
    assert again.returncode == 2 and "already ended (done)" in again.stderr
