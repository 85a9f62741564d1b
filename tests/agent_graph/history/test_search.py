from __future__ import annotations

import pytest

from myninja.agent_graph.history import HistoryStore

HOSTILE = ['"', "NEAR(", "*", "AND OR", "(((", "", "   ", "col:term", "NOT", "a:", "-", "^", "'"]


@pytest.fixture
def filled(store: HistoryStore) -> HistoryStore:
    store.create_task("t1", "Why is the websocket test flaky?", agent="coder", created_at=1.0)
    store.update_task("t1", status="done", answer="The reconnect timer races the teardown.")
    store.create_task("t2", "Book dinner for Friday", agent="scheduler", created_at=2.0)
    store.update_task("t2", status="failed", error="no calendar")
    store.create_task("t3", "Summarise the attention paper", agent="researcher", created_at=3.0)
    store.update_task("t3", status="done", answer="It replaces recurrence with attention [1].")
    store.record_citation(
        "t3",
        1,
        passage_id="p1",
        title="Attention Is All You Need",
        source="https://arxiv.org/abs/1706.03762",
        text="The Transformer dispenses with recurrence and convolutions entirely.",
    )
    return store


def ids(rows: list[dict]) -> list[str]:
    return [row["id"] for row in rows]


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_queries_never_raise(filled: HistoryStore, query: str) -> None:
    assert filled.search(query) == []  # no task holds these words, and none is read as syntax


@pytest.mark.parametrize("query", ['"flaky', "flaky*", "(((flaky", "flaky)", "-flaky", '"flaky"'])
def test_punctuation_around_a_word_still_finds_it(filled: HistoryStore, query: str) -> None:
    assert ids(filled.search(query)) == ["t1"]


def test_finds_by_text_answer_and_citation(filled: HistoryStore) -> None:
    assert ids(filled.search("websocket")) == ["t1"]
    assert ids(filled.search("teardown")) == ["t1"]  # a word only in the answer
    assert ids(filled.search("convolutions")) == ["t3"]  # only in the cited passage
    assert ids(filled.search("arxiv")) == ["t3"]  # only in the citation's source
    assert ids(filled.search("races")) == ids(filled.search("race")) == ["t1"]  # stemmed


def test_every_word_must_match(filled: HistoryStore) -> None:
    assert ids(filled.search("websocket reconnect")) == ["t1"]
    assert filled.search("websocket dinner") == []


def test_snippet_shows_the_answer_with_hits_marked(filled: HistoryStore) -> None:
    (hit,) = filled.search("teardown")
    assert "«teardown»" in hit["snippet"]
    assert set(hit) == {"id", "text", "status", "agent", "created_at", "snippet"}
    assert filled.search("convolutions")[0]["snippet"].startswith("It replaces recurrence")


def test_own_text_outranks_a_cited_passage(filled: HistoryStore) -> None:
    filled.create_task("t4", "Explain convolutions to me", created_at=4.0)
    assert ids(filled.search("convolutions")) == ["t4", "t3"]


def test_filters_and_limit(filled: HistoryStore) -> None:
    filled.create_task("t5", "Is the websocket server up?", agent="advisor", created_at=5.0)
    assert sorted(ids(filled.search("websocket"))) == ["t1", "t5"]
    assert ids(filled.search("websocket", status="done")) == ["t1"]
    assert ids(filled.search("websocket", agent="advisor")) == ["t5"]
    assert len(filled.search("websocket", limit=1)) == 1


def test_since_keeps_tasks_created_at_or_after_it(filled: HistoryStore) -> None:
    filled.create_task("t6", "Is the websocket server down?", agent="coder", created_at=6.0)
    assert sorted(ids(filled.search("websocket", since=1.0))) == ["t1", "t6"]  # inclusive
    assert ids(filled.search("websocket", since=1.5)) == ["t6"]
    assert filled.search("websocket", since=6.5) == []
    assert ids(filled.search("websocket", since=1.5, agent="coder", status="queued")) == ["t6"]


def test_answers_written_later_are_searchable(filled: HistoryStore) -> None:
    assert filled.search("calendar") == []
    filled.update_task("t2", answer="Added to your calendar")
    assert ids(filled.search("calendar")) == ["t2"]


def test_similar_successful_skips_failed_and_badly_rated(store: HistoryStore) -> None:
    def task(task_id: str, text: str, status: str) -> None:
        store.create_task(task_id, text, agent="coder")
        store.update_task(task_id, status=status, answer=f"answer {task_id}", plan={"n": task_id})

    task("good", "fix the flaky websocket test in CI", "done")
    task("failed", "flaky websocket test keeps failing", "failed")
    task("bad", "websocket test is flaky again", "done")
    task("other", "bake a lemon cake", "done")
    task("partial", "websocket handshake timeout", "done")
    store.add_feedback("bad", "bad")
    store.add_feedback("good", "good")

    rows = store.similar_successful("Why is the websocket test flaky?")
    assert ids(rows) == ["good", "partial"]
    assert rows[0] == {
        "id": "good",
        "text": "fix the flaky websocket test in CI",
        "agent": "coder",
        "plan": {"n": "good"},
        "answer": "answer good",
    }
    assert ids(store.similar_successful("websocket flaky", limit=1)) == ["good"]
    assert ids(store.similar_successful("websocket flaky", exclude_id="good")) == ["partial"]
    assert store.similar_successful("what is it?") == []  # stop words only
    assert store.similar_successful('" NEAR( *') == []


def test_similar_successful_matches_the_request_not_the_answer(store: HistoryStore) -> None:
    store.create_task("t1", "plan a trip", status="done")
    store.update_task("t1", answer="take the websocket train")
    assert store.similar_successful("websocket") == []


def test_route_examples_most_similar_first(store: HistoryStore) -> None:
    store.add_route_correction("write a python script to rename files", "coder")
    store.add_route_correction("book a table for dinner on friday", "scheduler")
    store.add_route_correction("summarise this paper on transformers", "researcher")
    store.add_route_correction("write a poem about python snakes", "writer")

    rows = store.route_examples("write a python script that renames photos")
    assert rows[0] == {"text": "write a python script to rename files", "agent": "coder"}
    assert [r["agent"] for r in rows] == ["coder", "writer"]
    assert [r["agent"] for r in store.route_examples("dinner friday", limit=1)] == ["scheduler"]


def test_route_examples_fall_back_to_the_latest(store: HistoryStore) -> None:
    assert store.route_examples("anything") == []
    store.create_task("t1", "x")
    store.add_route_correction("first", "coder", task_id="t1")
    store.add_route_correction("second", "writer")
    store.add_route_correction("third", "advisor")
    assert [r["text"] for r in store.route_examples("zebra quantum")] == [
        "third",
        "second",
        "first",
    ]
    assert [r["text"] for r in store.route_examples('"(((', limit=2)] == ["third", "second"]
