"""Memories in history.db: kept with where they came from, ranked against a task's text within
a token budget, and forgotten everywhere (the FTS index too)."""

from __future__ import annotations

from pathlib import Path

import pytest

from myninja.agent_graph.history import HistoryStore, memories
from myninja.agent_graph.history.connection import open_database
from myninja.agent_graph.history.migrations import MIGRATIONS, migrate
from myninja.errors import UsageError


def _fts_hits(store: HistoryStore, word: str) -> list[int]:
    rows = store.db.conn.execute(
        "SELECT rowid FROM memories_fts WHERE memories_fts MATCH ?", (word,)
    )
    return [row[0] for row in rows]


def test_a_memory_keeps_its_text_origin_and_time(store: HistoryStore) -> None:
    typed = memories.add(store, "  my time zone is\n Europe/Berlin ")
    store.create_task("t1", "plan my week")
    learned = memories.add(store, "I work four days a week", source="task", task_id="t1")
    rows = memories.all_memories(store)
    assert [r["id"] for r in rows] == [typed["id"], learned["id"]]
    assert rows[0]["text"] == "my time zone is Europe/Berlin"  # whitespace folded
    assert (rows[0]["source"], rows[0]["task_id"]) == ("person", None)
    assert (rows[1]["source"], rows[1]["task_id"]) == ("task", "t1")
    assert rows[0]["created_at"] <= rows[1]["created_at"]


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        ("   ", {}, "empty"),
        ("x" * 501, {}, "at most 500"),
        ("a fact", {"source": "dream"}, "unknown memory source"),
        ("a fact", {"source": "task"}, "needs the task"),
    ],
)
def test_bad_memories_are_refused(
    store: HistoryStore, text: str, kwargs: dict[str, str], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        memories.add(store, text, **kwargs)
    assert memories.all_memories(store) == []


def test_forget_removes_the_row_and_its_index_entry(store: HistoryStore) -> None:
    kept = memories.add(store, "my dentist is Dr Weber")
    gone = memories.add(store, "my time zone is Europe/Berlin")
    assert _fts_hits(store, "berlin") == [gone["id"]]
    assert memories.forget(store, str(gone["id"]))["text"] == "my time zone is Europe/Berlin"
    assert [r["id"] for r in memories.all_memories(store)] == [kept["id"]]
    assert _fts_hits(store, "berlin") == []
    assert _fts_hits(store, "dentist") == [kept["id"]]
    assert memories.relevant(store, "meeting time in Berlin", max_tokens=200) == []
    with pytest.raises(UsageError, match=f"no memory {gone['id']}"):
        memories.forget(store, gone["id"])
    with pytest.raises(UsageError, match="not a number"):
        memories.forget(store, "abc")


def test_relevant_ranks_by_the_task_and_keeps_to_the_budget(store: HistoryStore) -> None:
    zone = memories.add(store, "my time zone is Europe/Berlin")
    memories.add(store, "I am allergic to peanuts")
    long_one = memories.add(store, "for meetings " + "always leave a buffer; " * 10)
    short = memories.add(store, "meetings: never on Fridays")
    hits = memories.relevant(store, "Find a time for meetings next week", max_tokens=200)
    assert {h["id"] for h in hits} == {zone["id"], long_one["id"], short["id"]}  # not peanuts
    assert memories.relevant(store, "What is 2+2?", max_tokens=200) == []
    # A budget too small for the long memory skips it and still takes the short ones.
    small = memories.relevant(store, "Find a time for meetings next week", max_tokens=20)
    assert long_one["id"] not in {h["id"] for h in small}
    assert short["id"] in {h["id"] for h in small}
    assert sum(memories.estimate_tokens(h["text"]) for h in small) <= 20
    assert memories.relevant(store, "meetings", max_tokens=0) == []


def test_an_older_history_gains_the_memories_table(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    db = open_database(path)
    migrate(db, MIGRATIONS[:1])  # as written before memories existed
    db.close()
    with HistoryStore(path) as store:
        assert "m002_memories" in store.migrated
        memories.add(store, "my name is Ada")
        assert _fts_hits(store, "ada") == [1]


def _propose(store: HistoryStore, question: str, answer: str, **kwargs: str | None) -> dict | None:
    if store.get_task("t1") is None:
        store.create_task("t1", "book a call")
    return memories.propose(store, task_id="t1", question=question, answer=answer, **kwargs)


def test_an_answer_is_proposed_as_a_short_fact(store: HistoryStore) -> None:
    keyed = _propose(store, "Which colour?", "  blue ", key="colour", agent="writer")
    assert keyed is not None and (keyed["text"], keyed["status"]) == ("colour: blue", "proposed")
    plain = _propose(store, "Which time zone are you in?", "Europe/Berlin", agent="scheduler")
    assert plain is not None and plain["text"] == "Which time zone are you in? — Europe/Berlin"
    row = memories.all_memories(store)[1]
    assert (row["source"], row["task_id"], row["question"], row["answer"], row["agent"]) == (
        "task",
        "t1",
        "Which time zone are you in?",
        "Europe/Berlin",
        "scheduler",
    )
    assert keyed["new"] and plain["new"]
    # The copies of one question (branches ask alike) make one memory: that one is named.
    again = _propose(store, "Which colour?", "blue", key="colour")
    assert again is not None and (again["id"], again["new"]) == (keyed["id"], False)
    assert again["status"] == "proposed"
    # No fact: a yes, a no, nothing, an essay, a permission.
    for answer in ("yes", "No.", "ok, thanks", "  ", "x " * 200):
        assert _propose(store, "Shall I go on?", answer) is None
    assert _propose(store, "Allow the files skill?", "always", key="permission:files:read") is None
    assert len(memories.all_memories(store)) == 2


def test_proposals_are_not_shown_until_confirmed_and_reject_deletes(store: HistoryStore) -> None:
    first = _propose(store, "Which time zone are you in?", "Europe/Berlin", agent="scheduler")
    second = _propose(store, "Who is on the team?", "anna, ben and chika", agent="scheduler")
    assert first is not None and second is not None
    assert memories.relevant(store, "time zone of the team", max_tokens=200) == []
    assert memories.relevant(store, "x", max_tokens=200, agent="scheduler") == []
    assert memories.by_ids(store, [first["id"]]) == []
    kept = memories.confirm(store, first["id"])
    assert kept["status"] == "kept" and kept["confirmed_at"]
    assert [m["id"] for m in memories.relevant(store, "time zone", max_tokens=200)] == [first["id"]]
    with pytest.raises(UsageError, match="already kept"):
        memories.confirm(store, first["id"])
    with pytest.raises(UsageError, match="kept, not proposed"):
        memories.reject(store, first["id"])
    assert memories.reject(store, second["id"])["text"].endswith("anna, ben and chika")
    assert _fts_hits(store, "chika") == []
    assert [m["id"] for m in memories.all_memories(store)] == [first["id"]]
    with pytest.raises(UsageError, match="no memory 99"):
        memories.confirm(store, 99)
    with pytest.raises(UsageError, match="not a number"):
        memories.reject(store, "x")


@pytest.mark.parametrize(
    ("mode", "statuses"),
    [
        ("always", ["proposed", "proposed", "proposed"]),
        # The first waits; once the person confirmed it, the next are kept at once.
        ("first", ["proposed", "kept", "kept"]),
        ("never", ["kept", "kept", "kept"]),
    ],
)
def test_confirm_modes(store: HistoryStore, mode: str, statuses: list[str]) -> None:
    got = []
    for n, answer in enumerate(("Europe/Berlin", "anna and ben", "Fridays off")):
        made = _propose(store, f"Question {n}?", answer, confirm_mode=mode)
        assert made is not None
        got.append(made["status"])
        if n == 0 and made["status"] == "proposed":
            memories.confirm(store, made["id"])
    assert got == statuses


def test_first_mode_asks_again_once_every_confirmed_memory_is_forgotten(
    store: HistoryStore,
) -> None:
    made = _propose(store, "Question 1?", "Europe/Berlin", confirm_mode="first")
    assert made is not None
    memories.confirm(store, made["id"])
    memories.forget(store, made["id"])
    again = _propose(store, "Question 2?", "anna and ben", confirm_mode="first")
    assert again is not None and again["status"] == "proposed"


def test_relevant_adds_what_the_same_agent_asked_before(store: HistoryStore) -> None:
    zone = _propose(
        store,
        "Which time zone are you in?",
        "Europe/Berlin",
        agent="scheduler",
        confirm_mode="never",
    )
    typed = memories.add(store, "I am allergic to peanuts")
    assert zone is not None
    # A scheduler's task shares no word with the time zone; the scheduler asked for it before.
    task = "Book a call with anna tomorrow"
    assert memories.relevant(store, task, max_tokens=200) == []
    shown = memories.relevant(store, task, max_tokens=200, agent="scheduler")
    assert [m["id"] for m in shown] == [zone["id"]]  # not the typed peanuts
    assert memories.relevant(store, task, max_tokens=200, agent="writer") == []
    assert memories.relevant(store, task, max_tokens=5, agent="scheduler") == []  # the cap holds
    both = memories.relevant(store, "peanuts at the call", max_tokens=200, agent="scheduler")
    assert [m["id"] for m in both] == [typed["id"], zone["id"]]  # the task's words first


ZONE_MEMORY = {
    "id": 1,
    "text": "Which time zone are you in? — Europe/Berlin",
    "question": "Which time zone are you in?",
    "answer": "Europe/Berlin",
}
COLOUR_MEMORY = {
    "id": 2,
    "text": "colour: blue",
    "question": "Which colour?",
    "key": "colour",
    "answer": "blue",
}
TYPED_TEAM = {"id": 3, "text": "the team is anna, ben and chika"}


@pytest.mark.parametrize(
    ("question", "key", "expected"),
    [
        ("Which time zone are you in?", None, 1),
        ("What is your time zone?", None, 1),
        ("What timezone are you in?", None, 1),
        ("In which time zone should I book the meeting?", None, 1),
        ("Which colour?", "colour", 2),
        ("What colour should the fence be?", None, 2),
        ("Pick one", "colour", 2),  # the key alone
        ("Who is on your team?", None, None),  # one word of a typed memory is not enough
        ("Which members are on the team, anna and ben?", None, 3),
        # Not the same question, though they share words.
        ("What time should the meeting start?", None, None),
        ("Which zone of the building?", None, None),
        ("What colour and size is the sofa in the living room?", None, None),
        ("How long should the call be?", None, None),
        ("Which time zone are you in?", "permission:calendar:read", None),
        ("?", None, None),
    ],
)
def test_answering_finds_the_memory_that_answers_a_question(
    question: str, key: str | None, expected: int | None
) -> None:
    found = memories.answering([ZONE_MEMORY, COLOUR_MEMORY, TYPED_TEAM], question, key)
    assert (found["id"] if found else None) == expected


def test_a_memory_answers_with_its_bare_answer() -> None:
    assert memories.answer_of(ZONE_MEMORY) == "Europe/Berlin"
    assert memories.answer_of(TYPED_TEAM) == TYPED_TEAM["text"]
    proposed = {**ZONE_MEMORY, "status": "proposed"}
    assert memories.answering([proposed], "Which time zone are you in?") is None
