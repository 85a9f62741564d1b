"""Events, branches, questions, citations and feedback."""

from __future__ import annotations

import pytest

from myninja.agent_graph.history import HistoryStore
from myninja.errors import UsageError


@pytest.fixture
def task(store: HistoryStore) -> str:
    store.create_task("t1", "a task")
    return "t1"


def test_append_event_numbers_and_ignores_repeated_keys(store: HistoryStore, task: str) -> None:
    store.create_task("t2", "another task")
    assert store.append_event(task, "start", {"type": "task_started", "seq": 99}) == 1
    assert store.append_event(task, "tok:1", {"type": "token", "text": "Hel"}) == 2
    assert store.append_event("t2", "start", {"type": "task_started"}) == 1  # per task
    assert store.append_event(task, "tok:1", {"type": "token", "text": "again"}) is None
    assert store.append_event(task, "tok:2", {"type": "token", "text": "lo"}) == 3

    events = store.events(task)
    assert [(e["seq"], e["type"]) for e in events] == [
        (1, "task_started"),
        (2, "token"),
        (3, "token"),
    ]
    assert [e.get("text") for e in events] == [None, "Hel", "lo"]  # the repeat was dropped
    assert [e["seq"] for e in store.events(task, after_seq=1)] == [2, 3]
    assert store.has_event(task, "tok:1") and not store.has_event(task, "tok:9")
    assert not store.has_event("t2", "tok:1")
    assert (store.last_seq(task), store.last_seq("t2"), store.last_seq("t_none")) == (3, 1, 0)


def test_event_columns(store: HistoryStore, task: str) -> None:
    store.append_event(task, "a", {"type": "answer", "ts": 12.5, "text": "hi"})
    row = next(store.db["events"].rows)
    assert (row["task_id"], row["seq"], row["key"], row["type"], row["ts"]) == (
        task,
        1,
        "a",
        "answer",
        12.5,
    )


def test_branches_upsert(store: HistoryStore, task: str) -> None:
    common = {"agent": "coder", "temperature": 0.7}
    store.record_branch(task, step=1, round=0, branch_id="b", text="second", **common)
    store.record_branch(task, step=1, round=0, branch_id="a", text="first", **common)
    scored = {**common, "score": 0.9, "reasons": "cites", "kept": True}
    store.record_branch(task, step=1, round=0, branch_id="a", text="first", **scored)
    rows = store.branches(task)
    assert [(r["branch_id"], r["score"], r["kept"]) for r in rows] == [
        ("a", 0.9, True),
        ("b", None, False),
    ]
    assert rows[0]["reasons"] == "cites" and rows[0]["temperature"] == 0.7


def test_questions_lifecycle(store: HistoryStore, task: str) -> None:
    assert store.record_question(task, "q1", "Which city?", choices=["Paris", "Rome"], step=2)
    assert not store.record_question(task, "q1", "Which city?")  # replayed interrupt
    assert store.record_question(task, "q2", "Budget?", key="budget")
    assert [q["id"] for q in store.questions(task)] == ["q1", "q2"]
    assert store.questions(task)[0]["choices"] == ["Paris", "Rome"]

    answered = store.answer_question("q1", "Rome")
    assert answered["status"] == "answered" and answered["answer"] == "Rome"
    assert answered["answered_at"] is not None
    assert [q["id"] for q in store.questions()] == ["q2"]
    assert [q["id"] for q in store.questions(status="answered")] == ["q1"]
    assert [q["id"] for q in store.questions(task, status=None)] == ["q1", "q2"]

    with pytest.raises(UsageError, match="already answered"):
        store.answer_question("q1", "Paris")
    assert store.questions(status="answered")[0]["answer"] == "Rome"
    with pytest.raises(UsageError, match="no question"):
        store.answer_question("q9", "x")


def test_citations_upsert_in_order(store: HistoryStore, task: str) -> None:
    store.record_citation(task, 2, passage_id="p2", title="B", source="b.md", text="bee")
    store.record_citation(task, 1, passage_id="p1", title="A", source="a.md", text="old")
    store.record_citation(task, 1, passage_id="p1", title="A", source="a.md", text="new")
    rows = store.citations(task)
    assert [(c["n"], c["passage_id"], c["text"]) for c in rows] == [
        (1, "p1", "new"),
        (2, "p2", "bee"),
    ]
    assert store.search("old") == [] and [t["id"] for t in store.search("new")] == [task]


def test_feedback(store: HistoryStore, task: str) -> None:
    store.add_feedback(task, "bad", note="wrong year", edited_answer="1969")
    store.add_feedback(task, "good")
    rows = store.feedback(task)
    assert [(f["rating"], f["note"], f["edited_answer"]) for f in rows] == [
        ("bad", "wrong year", "1969"),
        ("good", None, None),
    ]
    with pytest.raises(UsageError, match="rating"):
        store.add_feedback(task, "meh")
    assert len(store.feedback(task)) == 2
