"""`myninja memory` as a person uses it, and what agents are shown of it: a real history.db in
MYNINJA_HOME, tasks run through the graph on the scripted backend, and training exports."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from myninja.agent_graph.prompts import MEMORIES_HEADING
from tests.conftest import run_myninja, scripted_config

ZONE = "my time zone is Europe/Berlin"
PEANUTS = "I am allergic to peanuts"
TASK = "Write a note to my team about the meeting time zone"

# The plan and the branch answer differently when they are shown the time zone, so the run's
# plan steps and answer say whether each prompt held it.
RULES: list[dict[str, Any]] = [
    {
        "match": rf"{MEMORIES_HEADING}\n- {ZONE}.*Task to plan",
        "json": {"steps": [{"title": "Zoned", "instruction": "Write it."}]},
    },
    {"match": r"Task to plan", "json": {"steps": [{"title": "Plain", "instruction": "Write it."}]}},
    {"match": rf"Task: .*{MEMORIES_HEADING}\n- {ZONE}.*Attempt 1\.", "reply": "Berlin noted"},
]
GRAPH = '[graph]\nbranches = 1\njudge = "none"\n'


def memory(home: Path, *args: str) -> Any:
    done = run_myninja("memory", *args, env={"MYNINJA_HOME": str(home)})
    assert done.returncode == 0, done.stderr
    return done.stdout


def ask(home: Path, text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The task's plan event and its last event."""
    done = run_myninja("ask", f"@writer {text}", "--json", env={"MYNINJA_HOME": str(home)})
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    return next(e for e in events if e["type"] == "plan"), events[-1]


def sft_users(home: Path, *extra: str) -> list[str]:
    out = home / f"sft{len(extra)}.jsonl"
    env = {"MYNINJA_HOME": str(home), "MYNINJA_KEYS__STORE": "file"}
    done = run_myninja("export", "sft", "--out", str(out), *extra, env=env)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    return [m["content"] for r in records for m in r["messages"] if m["role"] == "user"]


def test_add_list_forget_and_export(myninja_home: Path) -> None:
    assert "no memories yet" in memory(myninja_home, "list")
    assert memory(myninja_home, "add", ZONE).strip() == "remembered 1"
    added = json.loads(memory(myninja_home, "add", PEANUTS, "--json"))
    assert (added["id"], added["source"], added["task_id"]) == (2, "person", None)
    listed = memory(myninja_home, "list").splitlines()
    assert len(listed) == 2 and listed[0].split()[0] == "1" and listed[0].endswith(ZONE)
    assert " you " in listed[0]
    rows = [json.loads(line) for line in memory(myninja_home, "list", "--json").splitlines()]
    assert [(r["id"], r["text"], r["source"]) for r in rows] == [
        (1, ZONE, "person"),
        (2, PEANUTS, "person"),
    ]
    assert all(isinstance(r["created_at"], float) for r in rows)
    assert memory(myninja_home, "forget", "1").strip() == "forgot 1"
    assert memory(myninja_home, "export").splitlines() == [PEANUTS]
    exported = json.loads(memory(myninja_home, "export", "--json"))
    assert [(r["id"], r["text"]) for r in exported] == [(2, PEANUTS)]
    with sqlite3.connect(myninja_home / "data" / "history.db") as db:
        assert db.execute("SELECT count(*) FROM memories WHERE id = 1").fetchone() == (0,)
        hits = db.execute("SELECT rowid FROM memories_fts WHERE memories_fts MATCH 'berlin'")
        assert hits.fetchall() == []  # gone from the search index too
        left = db.execute("SELECT rowid FROM memories_fts WHERE memories_fts MATCH 'peanuts'")
        assert left.fetchall() == [(2,)]


def test_bad_input_is_one_line_and_exit_2(myninja_home: Path) -> None:
    memory(myninja_home, "add", ZONE)
    for args, says in [
        (("forget", "abc"), "not a number"),
        (("forget", "7"), "no memory 7"),
        (("add", "   "), "empty"),
        (("add", "x" * 600), "at most 500"),
        (("forget",), "Missing argument"),
    ]:
        done = run_myninja("memory", *args, env={"MYNINJA_HOME": str(myninja_home)})
        assert done.returncode == 2, (args, done.stderr)
        assert says in done.stderr
        assert "Traceback" not in done.stderr
        if args[0] != "forget" or len(args) > 1:
            assert len(done.stderr.strip().splitlines()) == 1
    assert memory(myninja_home, "export").splitlines() == [ZONE]  # nothing else changed


def test_agents_are_shown_relevant_memories_and_exports_leave_them_out(
    myninja_home: Path,
) -> None:
    scripted_config(myninja_home, RULES, graph=GRAPH)
    memory(myninja_home, "add", ZONE)
    memory(myninja_home, "add", PEANUTS)
    plan, last = ask(myninja_home, TASK)
    assert plan["memories"] == [1]  # the time zone, not the peanuts
    assert plan["steps"][0]["title"] == "Zoned"  # the planner's prompt held it
    assert last["type"] == "task_done" and last["answer"] == "Berlin noted"  # and the branch's
    done = run_myninja(
        "feedback", last["task_id"], "--good", env={"MYNINJA_HOME": str(myninja_home)}
    )
    assert done.returncode == 0, done.stderr

    assert sft_users(myninja_home) == [TASK]  # memories stay out of training data by default
    with_memory = sft_users(myninja_home, "--with-memory")
    assert with_memory == [f"{MEMORIES_HEADING}\n- {ZONE}\n\n{TASK}"]
    assert PEANUTS not in with_memory[0]

    memory(myninja_home, "forget", "1")  # forgotten: never exported again
    assert sft_users(myninja_home, "--with-memory") == [TASK]


def test_the_token_budget_can_turn_memories_off(myninja_home: Path) -> None:
    scripted_config(myninja_home, RULES, graph=GRAPH + "[memory]\nmax_tokens = 0\n")
    memory(myninja_home, "add", ZONE)
    plan, last = ask(myninja_home, TASK)
    assert plan["memories"] == []
    assert plan["steps"][0]["title"] == "Plain"
    assert last["answer"] != "Berlin noted"


def test_the_fast_path_is_shown_them_too(myninja_home: Path) -> None:
    rules = [
        {"match": r"Route this task", "json": "quick"},
        {"match": rf"user: {MEMORIES_HEADING}\n- {ZONE}\n\n{TASK}", "reply": "Berlin, fast"},
    ]
    scripted_config(myninja_home, rules)
    memory(myninja_home, "add", ZONE)
    memory(myninja_home, "add", PEANUTS)
    done = run_myninja("ask", TASK, "--json", env={"MYNINJA_HOME": str(myninja_home)})
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert next(e for e in events if e["type"] == "routed")["path"] == "fast"
    assert next(e for e in events if e["type"] == "plan")["memories"] == [1]
    assert events[-1]["answer"] == "Berlin, fast"
