"""Facts the person gave in an edited answer, proposed as memories.

When the person corrects a task's answer (`myninja feedback TASK --edit FILE`, or `e` in the
app), the sentences (or list lines) of the edit that the agent's answer lacks are compared with
difflib; of those, the ones that state a fact about the person or their world are proposed as
memories through `memories.propose_text`, the same way (and under the same `[memory] confirm`)
as answers to questions, and the task gets a `memory_proposed` event for each.

A sentence is such a fact (`is_fact`, the rule is deliberately small and conservative) when:

- it is new: not in the answer nor an earlier edit of it (words compared, not case or marks),
  not a rewrite of one of their sentences (half its words in the same order), and not only the
  answer's own content words said again (a rephrase adds nothing);
- it is short (at most `MAX_FACT_CHARS`, at least three words) and a statement (no question,
  no salutation ending in a comma or colon);
- its subject is the person or their world: it starts with "my"/"our" ("My time zone is
  Europe/Berlin."), with "the team" ("The team is anna, ben and chika."), with "I"/"we" and a
  verb of state ("I live in Lisbon", "We use Python 3.12", "I'm allergic to peanuts"), or says
  what something is to them ("Anna is my manager", "Chika is on our team").

So "I'll send the agenda tomorrow", "I hope this helps", "Let me know", "Thanks, Anna" and a
corrected sentence of the answer ("Meeting on Monday at 10:00 Berlin time." for "Meeting on
Monday at 10:00.") are not proposed: they belong to this task's answer, not to the person.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any

from myninja.agent_graph.events import make_event

from . import memories
from .store import HistoryStore

MAX_FACT_CHARS = 200
MIN_FACT_WORDS = 3
REWRITE_RATIO = 0.5  # word-sequence similarity from which a sentence is a rewrite of another

_LIST_MARK = re.compile(r"^\s*(?:[-*•+]|\d{1,3}[.)])\s+")
_HEADING = re.compile(r"^\s*#{1,6}\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")
_TOKEN = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")

# Words that may come before a fact's subject ("Also, my time zone is …").
_LEADS = frozenset("also and but btw fyi ps note oh so".split())
_POSSESSIVES = frozenset({"my", "our"})
_PERSONS = frozenset({"i", "we"})
_PERSONS_BE = frozenset({"i'm", "we're", "i’m", "we’re"})
_STATE_VERBS = frozenset(
    """am are was were live lived work worked prefer like love hate use speak own eat drink
    don't don’t do never always usually only come grew study teach commute""".split()
)
_HAVE = frozenset({"have", "i've", "we've", "i’ve", "we’ve"})
# After "I am"/"I'm": how the writer feels or what they do now, not a fact about them.
_NOT_STATES = frozenset(
    """happy glad sorry afraid sure excited looking writing sending attaching going trying
    pleased delighted grateful thankful available""".split()
)
_NOT_FACTS_AFTER_MY = frozenset(
    "apologies apology pleasure thanks best regards bad mistake suggestion advice".split()
)
_TEAM_VERBS = frozenset(
    "has have includes include consists works work meets meet uses use sits lives".split()
)
_COPULAS = frozenset({"is", "are", "was", "were", "'s", "’s"})
_RELATIONS = frozenset({"on", "in", "of", "from"})


def sentences(text: str) -> list[str]:
    """The sentences of `text`: paragraphs (hard-wrapped lines joined) and list lines, split
    after . ! ?, with list marks and heading marks taken off."""
    blocks: list[list[str]] = []
    current: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
            current = []
            continue
        if _HEADING.match(line):  # a heading is a block of its own
            if current:
                blocks.append(current)
            blocks.append([_HEADING.sub("", line, count=1)])
            current = []
            continue
        if _LIST_MARK.match(line):
            if current:
                blocks.append(current)
            current = [_LIST_MARK.sub("", line, count=1)]
        else:
            current.append(line)
    if current:
        blocks.append(current)
    out: list[str] = []
    for block in blocks:
        joined = " ".join(" ".join(block).split())
        out += [s.strip() for s in _SENTENCE_END.split(joined) if s.strip()]
    return out


def _words(sentence: str) -> list[str]:
    return _TOKEN.findall(sentence.lower())


def _key(sentence: str) -> str:
    return " ".join(_words(sentence))


def _about_the_person(words: list[str]) -> bool:
    """Whether a sentence's words (lower case) have the person or their world as subject."""
    while words and words[0] in _LEADS:
        words = words[1:]
    if len(words) < 2:
        return False
    first, second = words[0], words[1]
    if first in _POSSESSIVES:
        return second not in _NOT_FACTS_AFTER_MY
    if words[:2] == ["the", "team"]:  # "The team is …", not "The team should review it"
        return len(words) > 2 and (words[2] in _COPULAS or words[2] in _TEAM_VERBS)
    if first in _PERSONS_BE or (first in _PERSONS and second in ("am", "are")):
        state = words[1] if first in _PERSONS_BE else words[2] if len(words) > 2 else ""
        return bool(state) and state not in _NOT_STATES and not state.endswith("ing")
    if first in _PERSONS and second in _STATE_VERBS:
        return True
    if first in _HAVE or (first in _PERSONS and second in _HAVE):
        # "I have two kids", not "I have attached the file" (an action, not a state)
        after = words[1] if first in _HAVE else words[2] if len(words) > 2 else ""
        return bool(after) and not after.endswith(("ed", "en")) and after not in ("sent", "made")
    # "Anna is my manager", "Chika is on our team", "Ben is in the team"
    for i, word in enumerate(words[1:], start=1):
        if word in _COPULAS and "i" not in words[:i] and "we" not in words[:i]:
            rest = words[i + 1 :]
            if rest and rest[0] in _RELATIONS:
                rest = rest[1:]
            if rest[:1] and rest[0] in _POSSESSIVES:
                return True
            return rest[:2] == ["the", "team"]
    return False


def is_fact(sentence: str) -> bool:
    """Whether one new sentence of an edit states a fact about the person (module docstring)."""
    sentence = sentence.strip()
    words = _words(sentence)
    if len(sentence) > MAX_FACT_CHARS or len(words) < MIN_FACT_WORDS:
        return False
    if sentence.endswith(("?", ",", ":", ";")):
        return False
    return _about_the_person(words)


def _rewrites(words: list[str], before: list[list[str]]) -> bool:
    """Whether a sentence's words are mostly those of one earlier sentence, in order."""
    for other in before:
        if difflib.SequenceMatcher(None, other, words, autojunk=False).ratio() >= REWRITE_RATIO:
            return True
    return False


def facts_added(answer: str, edited: str, earlier: Iterable[str] = ()) -> list[str]:
    """The facts the person added in `edited` to the agent's `answer` (and to `earlier` edits
    of it): new sentences that pass `is_fact`, in the edit's order, each once."""
    before = sentences(answer or "")
    for text in earlier:
        before += sentences(text or "")
    after = sentences(edited)
    before_keys, after_keys = [_key(s) for s in before], [_key(s) for s in after]
    known, before_words = set(before_keys), [_words(s) for s in before]
    said = memories.content_terms(" ".join(before))
    matcher = difflib.SequenceMatcher(None, before_keys, after_keys, autojunk=False)
    facts: list[str] = []
    for tag, _i1, _i2, j1, j2 in matcher.get_opcodes():
        if tag not in ("insert", "replace"):
            continue
        for sentence, key in zip(after[j1:j2], after_keys[j1:j2], strict=True):
            if not key or key in known or sentence in facts:
                continue  # moved, not added; or said twice
            words = _words(sentence)
            if not is_fact(sentence) or _rewrites(words, before_words):
                continue
            if memories.content_terms(sentence) <= said:
                continue  # the answer's own words, said again
            facts.append(sentence)
    return facts


def propose(
    store: HistoryStore, task_id: str, edited: str, *, confirm_mode: str = "always"
) -> list[dict[str, Any]]:
    """Propose the facts the person added in `edited` (an edit of task `task_id`'s answer, not
    stored yet) as memories of that task, each with a `memory_proposed` event on the task (a
    finished task's events go on after its end; once per memory and task), in one transaction.
    Returns each memory (`id`, `text`, `status`, `task_id`, `new`: False where the same memory
    was there already)."""
    task = store.get_task(task_id)
    if task is None:
        return []
    earlier = [f["edited_answer"] for f in store.feedback(task_id) if f.get("edited_answer")]
    facts = facts_added(task.get("answer") or "", edited, earlier)
    proposed: list[dict[str, Any]] = []
    with store.batch():
        for fact in facts:
            memory = memories.propose_text(store, fact, task_id=task_id, confirm_mode=confirm_mode)
            event = make_event(
                "memory_proposed",
                memory_id=memory["id"],
                text=memory["text"],
                status=memory["status"],
                question_id=None,
            )
            store.append_event(task_id, f"m:{memory['id']}", {"v": 1, **event, "task_id": task_id})
            proposed.append(memory)
    return proposed
