"""Memories: facts about the person that agents are shown (a time zone, a name, a preference).

Each is kept in history.db's `memories` table with its text, where it came from (`person`:
typed by the person; `task`: from an answer in a task) and when. An FTS5 index (triggers keep
it in step) ranks them against a task's text with bm25; `relevant` picks the best that fit a
token budget. Forgetting one deletes the row, and the trigger deletes its index entry.

An answer the person gave to an agent's question is `propose`d as a memory that keeps the
question, its key and the bare answer. Its `status` is `proposed` until the person confirms it
(`kept`) or rejects it (deleted), as `[memory] confirm` says. Only kept memories are shown to
agents, exported, or answer a question: `answering` finds the kept memory that answers a
question the same way (same key, or the same content words), so it is not asked again.
"""

from __future__ import annotations

import time
from typing import Any

from myninja.errors import UsageError

from . import search as fts
from .connection import fetch
from .search import _WORD
from .store import HistoryStore

SOURCES = ("person", "task")
STATUSES = ("kept", "proposed")
CONFIRM_MODES = ("always", "first", "never")
MAX_CHARS = 500  # a memory is a fact, not a document: longer text is a mistake
CHARS_PER_TOKEN = 4  # the backend's tokenizer is not at hand here; English averages about 4


def estimate_tokens(text: str) -> int:
    return max(1, -(-len(text) // CHARS_PER_TOKEN))


def add(
    store: HistoryStore, text: str, *, source: str = "person", task_id: str | None = None
) -> dict[str, Any]:
    """Store one memory and return it."""
    text = " ".join(text.split())
    if not text:
        raise UsageError("the memory is empty", hint='give its text: myninja memory add "…"')
    if len(text) > MAX_CHARS:
        raise UsageError(
            f"the memory is {len(text)} characters long; at most {MAX_CHARS}",
            hint="keep one short fact per memory",
        )
    if source not in SOURCES:
        raise UsageError(f"unknown memory source {source!r}", hint=f"one of: {', '.join(SOURCES)}")
    if source == "task" and not task_id:
        raise UsageError("a memory from a task needs the task's id")
    now = time.time()
    with store.batch():
        cursor = store.db.conn.execute(
            "INSERT INTO memories (text, source, task_id, created_at) VALUES (?, ?, ?, ?)",
            (text, source, task_id, now),
        )
        memory_id = cursor.lastrowid
    return {"id": memory_id, "text": text, "source": source, "task_id": task_id, "created_at": now}


def all_memories(store: HistoryStore, *, status: str | None = None) -> list[dict[str, Any]]:
    """Every memory (or those of one status), oldest first."""
    if status is None:
        return fetch(store.db, "SELECT * FROM memories ORDER BY created_at, id")
    return fetch(
        store.db, "SELECT * FROM memories WHERE status = ? ORDER BY created_at, id", (status,)
    )


def by_ids(store: HistoryStore, ids: list[int]) -> list[dict[str, Any]]:
    """The memories with these ids that are still kept (forgotten ones are gone, proposed ones
    were never shown), in id order."""
    if not ids:
        return []
    marks = ", ".join("?" for _ in ids)
    return fetch(
        store.db,
        f"SELECT * FROM memories WHERE id IN ({marks}) AND status = 'kept' ORDER BY id",
        ids,
    )


def _number(memory_id: str | int) -> int:
    try:
        return int(memory_id)
    except (TypeError, ValueError):
        raise UsageError(
            f"memory id {memory_id!r} is not a number", hint="see `myninja memory list`"
        ) from None


def _one(store: HistoryStore, number: int) -> dict[str, Any]:
    rows = fetch(store.db, "SELECT * FROM memories WHERE id = ?", (number,))
    if not rows:
        raise UsageError(f"no memory {number}", hint="see `myninja memory list`")
    return rows[0]


def forget(store: HistoryStore, memory_id: str | int) -> dict[str, Any]:
    """Delete one memory (and, by trigger, its index entry); return what was deleted."""
    number = _number(memory_id)
    with store.batch():
        row = _one(store, number)
        store.db.conn.execute("DELETE FROM memories WHERE id = ?", (number,))
    return row


def confirm(store: HistoryStore, memory_id: str | int) -> dict[str, Any]:
    """The person's yes to a proposed memory: it is kept (shown to agents) from now on."""
    number = _number(memory_id)
    now = time.time()
    with store.batch():
        row = _one(store, number)
        if row["status"] != "proposed":
            raise UsageError(f"memory {number} is already kept", hint="see `myninja memory list`")
        store.db.conn.execute(
            "UPDATE memories SET status = 'kept', confirmed_at = ? WHERE id = ?", (now, number)
        )
    return {**row, "status": "kept", "confirmed_at": now}


def reject(store: HistoryStore, memory_id: str | int) -> dict[str, Any]:
    """The person's no to a proposed memory: it is deleted (its index entry too)."""
    number = _number(memory_id)
    with store.batch():
        row = _one(store, number)
        if row["status"] != "proposed":
            raise UsageError(
                f"memory {number} is kept, not proposed",
                hint=f"to delete it: myninja memory forget {number}",
            )
        store.db.conn.execute("DELETE FROM memories WHERE id = ?", (number,))
    return row


# Answers that carry no fact: a yes, a no, a shrug. They are never proposed.
_NO_FACT = frozenset(
    """y yes n no ok okay sure fine thanks thank you yep nope maybe skip none nothing idk
    dunno whatever go ahead do it please continue right correct""".split()
)
MAX_ANSWER_CHARS = 300  # a longer answer is instructions for this task, not a fact to keep
MAX_QUESTION_CHARS = 180


def fact_text(question: str, answer: str, key: str | None = None) -> str | None:
    """The memory an answer makes: "time zone: Europe/Berlin" where the question has a key,
    else "Which time zone are you in? — Europe/Berlin". None where the answer holds no fact
    (empty, a yes or no, longer than a fact) or the question asked for a permission."""
    answer = " ".join(answer.split())
    question = " ".join(question.split())
    if key and key.startswith("permission:"):
        return None
    words = [w for w in _WORD.findall(answer.lower())]
    if not words or all(w in _NO_FACT for w in words) or len(answer) > MAX_ANSWER_CHARS:
        return None
    if key:
        label = " ".join(key.replace("_", " ").replace("-", " ").split())
        if label:
            return f"{label}: {answer}"
    if len(question) > MAX_QUESTION_CHARS:
        question = question[: MAX_QUESTION_CHARS - 1].rstrip() + "…"
    return f"{question} — {answer}"


def confirm_needed(store: HistoryStore, mode: str) -> bool:
    """Whether a new proposal waits for the person. `always`: yes; `never`: no; `first`: until
    the person has confirmed a proposal that is still kept (forgetting every confirmed one
    makes the next proposal wait again)."""
    if mode == "never":
        return False
    if mode == "first":
        rows = fetch(
            store.db,
            "SELECT 1 FROM memories WHERE status = 'kept' AND confirmed_at IS NOT NULL LIMIT 1",
        )
        return not rows
    return True


def propose(
    store: HistoryStore,
    *,
    task_id: str,
    question: str,
    answer: str,
    key: str | None = None,
    agent: str | None = None,
    confirm_mode: str = "always",
) -> dict[str, Any] | None:
    """The memory made of the person's answer to an agent's question: proposed (or kept at
    once, as `confirm_mode` says), `new` True. Where the same memory exists already (kept or
    proposed: the copies of one question, or the same answer in another task, make one
    memory), that one, `new` False. None where the answer holds no fact."""
    text = fact_text(question, answer, key)
    if text is None:
        return None
    return propose_text(
        store,
        text,
        task_id=task_id,
        question=question,
        key=key,
        answer=" ".join(answer.split()),
        agent=agent,
        confirm_mode=confirm_mode,
    )


def propose_text(
    store: HistoryStore,
    text: str,
    *,
    task_id: str,
    question: str | None = None,
    key: str | None = None,
    answer: str | None = None,
    agent: str | None = None,
    confirm_mode: str = "always",
) -> dict[str, Any]:
    """Propose `text` as a memory from task `task_id` (an answer's fact, or a fact the person
    added to an edited answer: agent_graph/history/edit_facts.py): proposed or kept at once as
    `confirm_mode` says, `new` True; the memory with the same text where there is one (kept or
    proposed), `new` False."""
    text = " ".join(text.split())
    now = time.time()
    with store.batch():
        same = fetch(
            store.db,
            "SELECT id, text, status, task_id FROM memories WHERE text = ? ORDER BY id LIMIT 1",
            (text,),
        )
        if same:
            return {**same[0], "new": False}
        status = "proposed" if confirm_needed(store, confirm_mode) else "kept"
        cursor = store.db.conn.execute(
            """INSERT INTO memories (text, source, task_id, created_at, status, question, key,
            answer, agent) VALUES (?, 'task', ?, ?, ?, ?, ?, ?, ?)""",
            (text, task_id, now, status, question, key or None, answer, agent),
        )
        memory_id = cursor.lastrowid
    return {"id": memory_id, "text": text, "status": status, "task_id": task_id, "new": True}


def relevant(
    store: HistoryStore, text: str, *, max_tokens: int, agent: str | None = None
) -> list[dict[str, Any]]:
    """The kept memories that share a telling word with `text`, best (bm25) first, then those
    made from answers to questions `agent` asked before (newest first: a scheduler's task may
    share no word with the time zone it asked for), as many as fit in `max_tokens`: a memory
    that does not fit is skipped, and a shorter one after it may."""
    if max_tokens <= 0:
        return []
    rows: list[dict[str, Any]] = []
    match = fts.any_term_query(text)
    if match:
        rows += fetch(
            store.db,
            """
            SELECT memories.* FROM memories_fts
            JOIN memories ON memories.id = memories_fts.rowid
            WHERE memories_fts MATCH :match AND memories.status = 'kept'
            ORDER BY bm25(memories_fts), memories.id DESC
            LIMIT 50
            """,
            {"match": match},
        )
    if agent:
        rows += fetch(
            store.db,
            """
            SELECT * FROM memories WHERE status = 'kept' AND agent = ? AND question IS NOT NULL
            ORDER BY created_at DESC, id DESC LIMIT 50
            """,
            (agent,),
        )
    chosen, seen, left = [], set(), max_tokens
    for row in rows:
        cost = estimate_tokens(row["text"])
        if row["id"] not in seen and cost <= left:
            chosen.append(row)
            seen.add(row["id"])
            left -= cost
    return chosen


# Words that say how a question is asked, not what about.
_ASKING_WORDS = fts.STOP_WORDS | frozenset(
    """tell know like want need use prefer shall may might mean ok okay exactly currently
    usually kind sort""".split()
)
_COMPOUNDS = {"timezone": ("time", "zone"), "tz": ("time", "zone"), "email": ("mail",)}
# A question is answered by a memory made from an earlier question when COVERED of that
# question's content words are in it, and they are ASKED_SHARE of its own; a memory the person
# typed needs two of the question's words and TYPED_SHARE of them. The cases, both ways, are in
# tests/agent_graph/history/test_memories.py.
COVERED = 0.6
ASKED_SHARE = 0.5
TYPED_SHARE = 0.6


def _stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 5 and word.endswith("ing"):
        return word[:-3]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def content_terms(text: str) -> set[str]:
    """The words of `text` that say what it is about: no asking words, crudely stemmed."""
    terms: set[str] = set()
    for word in _WORD.findall(text.lower()):
        if word in _ASKING_WORDS or len(word) < 2:
            continue
        terms.update(_stem(w) for w in _COMPOUNDS.get(word, (word,)))
    return terms


def answering(
    memories: list[dict[str, Any]], question: str, key: str | None = None
) -> dict[str, Any] | None:
    """The memory among `memories` (kept ones, as shown to the agent) that answers `question`,
    or None. A memory made from an answer answers a question with its key, or one asking about
    the same things ("Which time zone are you in?" and "What is your time zone?"); a memory the
    person typed answers one whose words it mostly holds ("my time zone is Europe/Berlin"
    answers "What is your time zone?"). Permission questions are never answered from memory."""
    if key and key.startswith("permission:"):
        return None
    asked = content_terms(question)
    best, best_score = None, 0.0
    for memory in memories:
        if memory.get("status", "kept") != "kept":
            continue
        if key and memory.get("key") == key:
            return memory
        if not asked:
            continue
        if memory.get("question"):
            theirs = content_terms(memory["question"])
            shared = len(asked & theirs)
            if not theirs or shared / len(theirs) < COVERED or shared / len(asked) < ASKED_SHARE:
                continue
        else:
            shared = len(asked & content_terms(memory["text"]))
            if shared < 2 or shared / len(asked) < TYPED_SHARE:
                continue
        score = shared / len(asked)
        if score > best_score:
            best, best_score = memory, score
    return best


def answer_of(memory: dict[str, Any]) -> str:
    """What a memory says as the answer to its question: the bare answer where it was made
    from one, else its text."""
    return memory.get("answer") or memory["text"]
