"""What a branch's reply says besides its answer: a label it echoed from the prompt, an opening
reply to the checks' note, a question for the person, and whether that question need be asked
at all (small models ask the task back, or a fact that is theirs to know)."""

from __future__ import annotations

import re

from myninja.agent_graph.prompts import ASK_PREFIX

# How a revision tends to open when it answers the checks' note rather than the person.
_REPLY_OPENERS = re.compile(
    r"(certainly|sure|of course|absolutely|apologies|my apologies|i apologi[sz]e|sorry|"
    r"you'?re right|thank you|thanks|understood|got it|okay|ok)\b",
    re.IGNORECASE,
)
_HERE_IS = re.compile(r"here(?:'s| is| are)\b", re.IGNORECASE)


# The prompt's own labels ("Attempt 1.", "Step 2 of 3") on a line of their own.
_LABEL_LINE = re.compile(r"[*#\s]*(attempt \d+|step \d+( of \d+)?)[.:]?[*\s]*", re.IGNORECASE)


def drop_echoed_label(text: str) -> str:
    """An answer without a first line that only echoes the prompt's label ("Attempt 1:"),
    which a small model copies and the person has no use for."""
    first, newline, rest = text.partition("\n")
    if newline and rest.strip() and _LABEL_LINE.fullmatch(first):
        return rest.strip()
    return text


def drop_reply_to_note(text: str) -> str:
    """A revision without its opening reply to the checks' feedback ("Certainly! Here is the
    full advice again:"), which the person, who never saw that feedback, should not read."""
    first, newline, rest = text.partition("\n")
    line = first.strip().strip("*#").strip()
    if not newline or not rest.strip() or len(line) > 160:
        return text
    if _REPLY_OPENERS.match(line) or (_HERE_IS.match(line) and line.endswith(":")):
        return rest.strip()
    return text


def _words(text: str) -> set[str]:
    """Content words, crudely stemmed ("paying" and "pay" are one word)."""
    return {_stem(w) for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 2}


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


# Words of asking itself, not of what is asked for ("Can you please provide the draft?",
# "What are the pros and cons of…"), as `_words` stems them.
_ASKING_WORDS = frozenset(
    {"can", "could", "would", "will", "you", "your", "please", "provide", "give", "share",
     "tell", "send", "the", "and", "for", "with", "any", "some", "what", "are", "how",
     "which", "there", "pro", "con"}
)  # fmt: skip


def repeats(question: str, task: str) -> bool:
    """Whether a question mostly restates the task (small models do that)."""
    asked, given = _words(question) - _ASKING_WORDS, _words(task)
    return bool(asked) and len(asked & given) >= 0.6 * len(asked)


# How questions about the world begin; one that also says "you"/"my"… is about the person.
FACT_OPENERS = re.compile(
    r"^(what|which|who|when|where|how) (is|are|was|were|does|do|did)\b|^why\b", re.IGNORECASE
)
PERSONAL = re.compile(r"\b(you|your|yours|you're|i|me|my|mine|we|us|our)\b", re.IGNORECASE)


# "How do I…", "How can we…": asking how to do the task, which is the agent's to know.
HOW_TO = re.compile(r"^how (do|can|should|would|could) (i|we)\b", re.IGNORECASE)


def asks_a_fact(question: str) -> bool:
    """Whether a question asks about the world rather than the person ("What is tmux?"), or
    how to do the task: small models ask those though told not to; the answer is theirs."""
    asked = question.strip()
    if HOW_TO.search(asked):
        return True
    return bool(FACT_OPENERS.search(asked)) and not PERSONAL.search(question)


def asked_in_text(text: str) -> str | None:
    first = text.strip().splitlines()[0] if text.strip() else ""
    if first.upper().startswith(ASK_PREFIX):
        question = first[len(ASK_PREFIX) :].strip()
        return question or None
    return None
