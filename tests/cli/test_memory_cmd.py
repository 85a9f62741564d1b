"""`myninja memory` as a person uses it, and what agents are shown of it: a real history.db in
MYNINJA_HOME, tasks run through the graph on the scripted backend, and training exports."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from myninja.agent_graph.prompts import MEMORIES_HEADING
from tests.agent_graph.scripts import FENCE_RULES
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


# A scheduler-like task that needs the person's time zone: it asks (no key: the words of the
# question must find the memory), and answers once the tool result holds the zone. Given to
# the writer: the scheduler itself asks for the zone before its branches run (test_time_zone).
ZONE_QUESTION = "Which time zone are you in?"
ASKS_ZONE: list[dict[str, Any]] = [
    {"match": r"Route this task", "json": "scheduler"},
    {"match": r"Task to plan", "json": {"steps": [{"title": "Book", "instruction": "Book it."}]}},
    {"match": r"tool: Europe/Berlin", "reply": "Booked 10:00 Berlin time"},
    {
        "match": r"Attempt 1\.",
        "tool_calls": [{"name": "ask_user", "arguments": {"question": ZONE_QUESTION}}],
    },
]


def events_of(done: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_an_answer_becomes_a_memory_that_stops_the_question(myninja_home: Path) -> None:
    env = {"MYNINJA_HOME": str(myninja_home)}
    scripted_config(myninja_home, ASKS_ZONE, graph=GRAPH)
    # Task 1 asks; the answer is proposed as a memory, which waits for the person's yes.
    asked = run_myninja("ask", "@writer Book a call with anna tomorrow", "--json", env=env)
    assert asked.returncode == 3, asked.stderr
    question = next(e for e in events_of(asked) if e["type"] == "question")
    assert question["text"] == ZONE_QUESTION
    task1 = question["task_id"]
    answered = run_myninja("answer", task1, "Europe/Berlin", "--json", env=env)
    assert answered.returncode == 0, answered.stderr
    proposed = next(e for e in events_of(answered) if e["type"] == "memory_proposed")
    assert proposed["status"] == "proposed" and proposed["question_id"] == question["question_id"]
    assert proposed["text"] == f"{ZONE_QUESTION} — Europe/Berlin"
    assert events_of(answered)[-1]["answer"] == "Booked 10:00 Berlin time"
    memory_id = proposed["memory_id"]
    listed = memory(myninja_home, "list")
    assert f"proposed {ZONE_QUESTION} — Europe/Berlin" in listed
    assert memory(myninja_home, "export").strip() == ""  # not kept yet: never exported
    assert json.loads(memory(myninja_home, "export", "--json")) == []

    # Not confirmed, the next task still asks (a proposal is never shown to agents).
    waiting = run_myninja("ask", "@writer Book a call with ben on Friday", "--json", env=env)
    assert waiting.returncode == 3, waiting.stderr
    assert next(e for e in events_of(waiting) if e["type"] == "plan")["memories"] == []
    run_myninja("cancel", events_of(waiting)[0]["task_id"], env=env)

    kept = json.loads(memory(myninja_home, "confirm", str(memory_id), "--json"))
    assert kept["status"] == "kept" and kept["id"] == memory_id
    assert "proposed" not in memory(myninja_home, "list")

    # Task 2, the same script: the memory answers, the person is not asked.
    done = run_myninja("ask", "@writer Book a call with chika next week", "--json", env=env)
    assert done.returncode == 0, done.stderr
    events = events_of(done)
    assert not [e for e in events if e["type"] == "question"]
    assert next(e for e in events if e["type"] == "plan")["memories"] == [memory_id]
    used = next(e for e in events if e["type"] == "memory_answered")
    assert (used["memory_id"], used["question"]) == (memory_id, ZONE_QUESTION)
    assert events[-1]["answer"] == "Booked 10:00 Berlin time"
    assert memory(myninja_home, "export").splitlines() == [f"{ZONE_QUESTION} — Europe/Berlin"]

    # Training exports leave it out unless asked; asked, task 2's prompt is headed by it.
    rated = run_myninja("feedback", events[-1]["task_id"], "--good", env=env)
    assert rated.returncode == 0, rated.stderr
    fact = f"{ZONE_QUESTION} — Europe/Berlin"
    assert not [u for u in sft_users(myninja_home) if "Europe/Berlin" in u]
    assert f"{MEMORIES_HEADING}\n- {fact}\n\nBook a call with chika next week" in sft_users(
        myninja_home, "--with-memory"
    )

    # Forgotten: gone from the table and the FTS index, and the question is asked again.
    assert memory(myninja_home, "forget", str(memory_id)).strip() == f"forgot {memory_id}"
    with sqlite3.connect(myninja_home / "data" / "history.db") as db:
        assert db.execute("SELECT count(*) FROM memories").fetchone() == (0,)
        hits = db.execute("SELECT rowid FROM memories_fts WHERE memories_fts MATCH 'berlin'")
        assert hits.fetchall() == []
    again = run_myninja("ask", "@writer Book a call with dana next week", "--json", env=env)
    assert again.returncode == 3, again.stderr
    assert not [u for u in sft_users(myninja_home, "--with-memory") if "Europe/Berlin" in u]


def test_a_keyed_answer_is_kept_at_once_when_confirm_is_never(myninja_home: Path) -> None:
    env = {"MYNINJA_HOME": str(myninja_home)}
    scripted_config(myninja_home, FENCE_RULES, graph=GRAPH + '[memory]\nconfirm = "never"\n')
    asked = run_myninja("ask", "Paint the fence", "--json", env=env)
    assert asked.returncode == 3, asked.stderr
    task1 = events_of(asked)[0]["task_id"]
    answered = run_myninja("answer", task1, "blue", "--json", env=env)
    assert answered.returncode == 0, answered.stderr
    proposed = next(e for e in events_of(answered) if e["type"] == "memory_proposed")
    assert (proposed["text"], proposed["status"]) == ("colour: blue", "kept")
    assert memory(myninja_home, "export").splitlines() == ["colour: blue"]
    # The next fence task's question has the same key: the memory answers it.
    done = run_myninja("ask", "Paint the fence again", "--json", env=env)
    assert done.returncode == 0, done.stderr
    events = events_of(done)
    assert not [e for e in events if e["type"] == "question"]
    used = next(e for e in events if e["type"] == "memory_answered")
    assert (used["memory_id"], used["key"]) == (proposed["memory_id"], "colour")
    assert next(e for e in events if e["type"] == "plan")["memories"] == [proposed["memory_id"]]
    assert events[-1]["answer"] == "Painted it blue"
    # confirm and reject are for proposals: one line, exit 2.
    for args, says in [
        (("confirm", str(proposed["memory_id"])), "already kept"),
        (("reject", str(proposed["memory_id"])), "kept, not proposed"),
        (("confirm", "99"), "no memory 99"),
        (("reject", "x"), "not a number"),
    ]:
        bad = run_myninja("memory", *args, env=env)
        assert bad.returncode == 2, (args, bad.stderr)
        assert says in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
