"""Facts the person added in an edited answer: which sentences count (difflib on sentences, a
small rule for facts about the person), and their proposals as memories with events."""

from __future__ import annotations

import pytest

from myninja.agent_graph.history import HistoryStore, edit_facts, memories

TEAM = "The team is anna, ben and chika."


def test_sentences_split_paragraphs_and_list_lines() -> None:
    text = "# Plan\nMeeting on Monday\nat 10:00. Bring notes!\n\n- my time zone is Berlin\n2. Two"
    assert edit_facts.sentences(text) == [
        "Plan",
        "Meeting on Monday at 10:00.",
        "Bring notes!",
        "my time zone is Berlin",
        "Two",
    ]


def test_an_added_team_sentence_is_the_one_fact() -> None:
    added = edit_facts.facts_added(
        "Meeting on Monday at 10:00.", f"Meeting on Monday at 10:00 Berlin time. {TEAM}"
    )
    # The corrected sentence is about this task's answer, not the person: only the team.
    assert added == [TEAM]


@pytest.mark.parametrize(
    "sentence",
    [
        "My time zone is Europe/Berlin.",
        "Also, our office is in Lisbon.",
        TEAM,
        "The team meets every Monday",
        "I live in Lisbon.",
        "We use Python 3.12 everywhere.",
        "I'm allergic to peanuts.",
        "I am vegetarian.",
        "I have two kids.",
        "Anna is my manager.",
        "Chika is on our team.",
        "Ben is in the team.",
    ],
)
def test_facts_about_the_person(sentence: str) -> None:
    assert edit_facts.is_fact(sentence)


@pytest.mark.parametrize(
    "sentence",
    [
        "I'll send the agenda tomorrow.",
        "I hope this helps.",
        "Let me know if anything changes.",
        "Thanks, Anna",
        "Hi team,",
        "Does our team meet on Monday?",
        "I'm happy to help.",
        "I am sending the notes now.",
        "I have attached the file.",
        "My apologies for the delay.",
        "The team should review the pull request.",
        "The meeting moves to Tuesday.",
        "Anna is the organiser.",
        "My team.",
        "My time zone is Europe/Berlin and " + "I also like long sentences " * 8 + ".",
    ],
)
def test_not_facts(sentence: str) -> None:
    assert not edit_facts.is_fact(sentence)


def test_a_rephrased_answer_proposes_nothing() -> None:
    answer = "Our meeting is on Monday at 10:00. We meet in room 4."
    assert (
        edit_facts.facts_added(answer, "On Monday at 10:00 is our meeting. We meet in room 4.")
        == []
    )
    assert edit_facts.facts_added(answer, "Our meeting is Monday, 10:00.\nWe meet in room 4.") == []
    assert (
        edit_facts.facts_added(answer, "our meeting is on monday at 10:00; we meet in room 4") == []
    )
    # Moved, not added; a word changed in a sentence is a rewrite, not a fact.
    assert (
        edit_facts.facts_added(answer, "We meet in room 4. Our meeting is on Monday at 10:00.")
        == []
    )
    assert (
        edit_facts.facts_added(answer, "Our meeting is on Tuesday at 10:00. We meet in room 4.")
        == []
    )


def test_an_edit_without_first_person_facts_proposes_nothing() -> None:
    answer = "The report is due on Friday."
    edited = "The report is due on Friday at noon. Send it to Dana. I'll review it on Monday."
    assert edit_facts.facts_added(answer, edited) == []


def test_earlier_edits_are_not_proposed_again() -> None:
    answer = "Meeting on Monday at 10:00."
    first = f"{answer} {TEAM}"
    assert edit_facts.facts_added(answer, first) == [TEAM]
    second = f"{first} My time zone is Europe/Berlin."
    assert edit_facts.facts_added(answer, second, [first]) == ["My time zone is Europe/Berlin."]


def test_propose_stores_memories_and_events_once(store: HistoryStore) -> None:
    store.create_task("t1", "plan the meeting")
    store.update_task("t1", status="done", answer="Meeting on Monday at 10:00.")
    edited = f"Meeting on Monday at 10:00. {TEAM}"
    (memory,) = edit_facts.propose(store, "t1", edited)
    assert (memory["text"], memory["status"], memory["new"]) == (TEAM, "proposed", True)
    row = memories.all_memories(store)[0]
    assert (row["source"], row["task_id"], row["question"]) == ("task", "t1", None)
    (event,) = [e for e in store.events("t1") if e["type"] == "memory_proposed"]
    assert (event["memory_id"], event["text"], event["status"]) == (memory["id"], TEAM, "proposed")
    assert event["question_id"] is None and event["task_id"] == "t1"
    # The same edit again: the same memory is named, no second memory nor event.
    (again,) = edit_facts.propose(store, "t1", edited)
    assert (again["id"], again["new"]) == (memory["id"], False)
    assert len(memories.all_memories(store)) == 1
    assert len([e for e in store.events("t1") if e["type"] == "memory_proposed"]) == 1
    # Not kept: never shown to agents.
    assert memories.relevant(store, "a note to the team", max_tokens=200) == []


def test_propose_keeps_at_once_when_confirm_is_never(store: HistoryStore) -> None:
    store.create_task("t1", "plan the meeting")
    store.update_task("t1", status="done", answer="Meeting on Monday.")
    (memory,) = edit_facts.propose(store, "t1", f"Meeting on Monday. {TEAM}", confirm_mode="never")
    assert memory["status"] == "kept"
    assert [m["id"] for m in memories.relevant(store, "a note to the team", max_tokens=200)] == [
        memory["id"]
    ]
