"""`myninja feedback TASK --edit FILE` proposes the facts the person added to the answer as
memories, as answers are (`[memory] confirm`): a real history.db in MYNINJA_HOME, tasks run
through the graph on the scripted backend, and training exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from myninja.agent_graph.prompts import MEMORIES_HEADING
from tests.cli.test_memory_cmd import GRAPH, ask, memory, sft_users
from tests.conftest import run_myninja, scripted_config

TEAM = "The team is anna, ben and chika."
ANSWER = "Meeting on Monday at 10:00."
RULES: list[dict[str, Any]] = [
    {"match": r"Task to plan", "json": {"steps": [{"title": "Write", "instruction": "Write."}]}},
    # A branch shown the team names it; one that is not answers the first task's way.
    {"match": rf"{MEMORIES_HEADING}\n- {re.escape(TEAM)}.*Attempt 1\.", "reply": "Hi anna"},
    {"match": r"Attempt 1\.", "reply": ANSWER},
]


def edit(home: Path, task_id: str, text: str, *extra: str) -> Any:
    path = home / "edited.md"
    path.write_text(text)
    done = run_myninja(
        "feedback", task_id, "--edit", str(path), *extra, env={"MYNINJA_HOME": str(home)}
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def events(home: Path, task_id: str) -> list[dict[str, Any]]:
    shown = run_myninja("tasks", "show", task_id, "--json", env={"MYNINJA_HOME": str(home)})
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)["events"]


def test_an_added_fact_is_proposed_confirmed_and_shown_to_a_later_task(
    myninja_home: Path,
) -> None:
    scripted_config(myninja_home, RULES, graph=GRAPH)
    _, last = ask(myninja_home, "Plan the meeting")
    assert last["answer"] == ANSWER
    task1 = last["task_id"]

    edited = f"Meeting on Monday at 10:00 Berlin time. {TEAM}\n"
    record = json.loads(edit(myninja_home, task1, edited, "--json"))
    assert record["edited"] is True
    (proposed,) = record["memories"]  # the team, not the corrected meeting time
    assert (proposed["text"], proposed["status"], proposed["new"]) == (TEAM, "proposed", True)
    memory_id = proposed["memory_id"]
    # The finished task's events go on with the proposal, named by its memory.
    stored = events(myninja_home, task1)
    assert [e["type"] for e in stored][-2:] == ["task_done", "memory_proposed"]
    assert stored[-1]["memory_id"] == memory_id and stored[-1]["question_id"] is None
    assert stored[-1]["text"] == TEAM and stored[-1]["status"] == "proposed"
    rows = [json.loads(line) for line in memory(myninja_home, "list", "--json").splitlines()]
    assert [(r["id"], r["text"], r["status"], r["task_id"]) for r in rows] == [
        (memory_id, TEAM, "proposed", task1)
    ]

    # An edit of the edit proposes only what it adds: the team was proposed before.
    again = edit(myninja_home, task1, edited + "\nSee you there.", "--good")
    assert again.strip() == f"recorded feedback for {task1}"
    assert len([e for e in events(myninja_home, task1) if e["type"] == "memory_proposed"]) == 1

    # Proposed, it is neither shown to agents nor exported.
    assert memory(myninja_home, "export").strip() == ""
    assert not [u for u in sft_users(myninja_home, "--with-memory") if "chika" in u]
    plan, last = ask(myninja_home, "Write a note to the team about Monday")
    assert plan["memories"] == [] and last["answer"] == ANSWER

    kept = json.loads(memory(myninja_home, "confirm", str(memory_id), "--json"))
    assert kept["status"] == "kept"
    plan, last = ask(myninja_home, "Write a note to the team about Friday")
    assert plan["memories"] == [memory_id]  # a task about the team is shown it
    assert last["answer"] == "Hi anna"
    plan, _ = ask(myninja_home, "Summarise the quarterly report")
    assert plan["memories"] == []  # one not about it is not
    run_myninja("feedback", last["task_id"], "--good", env={"MYNINJA_HOME": str(myninja_home)})
    assert not [u for u in sft_users(myninja_home) if MEMORIES_HEADING in u]
    assert f"{MEMORIES_HEADING}\n- {TEAM}\n\nWrite a note to the team about Friday" in sft_users(
        myninja_home, "--with-memory"
    )


def test_an_edit_that_adds_no_fact_about_the_person_proposes_nothing(myninja_home: Path) -> None:
    scripted_config(myninja_home, RULES, graph=GRAPH)
    _, last = ask(myninja_home, "Plan the meeting")
    task1 = last["task_id"]
    for edited in [
        "The meeting is on Monday, at 10:00.",  # rephrased
        "Meeting on Monday at 10:00.\n\nBring the slides. I'll send the agenda tomorrow.",
    ]:
        record = json.loads(edit(myninja_home, task1, edited, "--json"))
        assert record["memories"] == []
        assert edit(myninja_home, task1, edited).strip() == f"recorded feedback for {task1}"
    assert not [e for e in events(myninja_home, task1) if e["type"] == "memory_proposed"]
    assert memory(myninja_home, "list", "--json").strip() == ""


def test_confirm_never_keeps_an_edits_fact_at_once(myninja_home: Path) -> None:
    scripted_config(myninja_home, RULES, graph=GRAPH + '[memory]\nconfirm = "never"\n')
    _, last = ask(myninja_home, "Plan the meeting")
    printed = edit(myninja_home, last["task_id"], f"{ANSWER}\n- {TEAM}")
    (line,) = [x for x in printed.splitlines() if "remember" in x]
    assert line.startswith("remembered ") and line.endswith(f": {TEAM}")
    assert memory(myninja_home, "export").splitlines() == [TEAM]
    plan, last = ask(myninja_home, "Write a note to the team about Friday")
    assert last["answer"] == "Hi anna" and len(plan["memories"]) == 1
