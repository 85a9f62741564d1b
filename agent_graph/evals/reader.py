"""The reader: one question, k numbered passages, one model call, a short answer and citations.

This is the researcher's answer step stripped to what an evaluation of hundreds of questions
can afford on two cores: no planning, no branches, no judge. The answer comes first and short
(the metrics compare a few words with a few words), then the passages it rests on as [n].
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from myninja.agent_graph.research import clip
from myninja.backends.base import Backend, ChatRequest, Usage

from .datasets import EvalPassage

# Passages are cut to this many words so k of them fit a 4k-token context with room to answer.
PASSAGE_WORDS = 160

SYSTEM_WITH_PASSAGES = (
    "You answer questions from the numbered passages you are given. "
    "Reply with the short answer alone on the first line: a few words (a name, a date, a "
    "number, yes or no), not a sentence. On the second line, cite the passages that support "
    "it as [n], for example [1][3]. If the passages do not hold the answer, reply: I don't know."
)
# "reason": a short thought first, then the answer asked for in a second turn of the same chat
# (its passages are already in the model's cache: the turn costs a few tokens). Multi-hop
# questions name one thing and ask about another that the passages link to it; a small model
# answering at once often gives the linking entity instead (the battle, not what it secured).
# Asked for both in one reply, the default model wrote only the sentence.
SYSTEM_REASONING = (
    "You answer questions from the numbered passages you are given. Think in one or two short "
    "sentences: where the question describes something without naming it (the arena where a "
    "team played, the university whose campus is in a town), name it from the passages, then "
    "find what is asked about it; for a comparison, state the two facts compared. Cite the "
    "passages you use as [n]."
)
SHORT_ANSWER = (
    "So what is the answer to the question? Reply with the short answer alone: a few words (a "
    "name, a date, a number, yes or no), not a sentence."
)
SHORT_ANSWER_TOKENS = 24
READERS = ("direct", "reason")
REASONING_MAX_TOKENS = 96  # the thought's cap
SYSTEM_CLOSED_BOOK = (
    "You answer questions from what you know. Reply with the short answer alone: a few words "
    "(a name, a date, a number, yes or no), not a sentence. If you do not know, reply: "
    "I don't know."
)

_CITATION = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_ANSWER_LINE = re.compile(r"^\W*answer\W*:\**\s*(?P<rest>.*)$", re.IGNORECASE | re.MULTILINE)
_LABEL = re.compile(r"^\s*(?:\**\s*)?(?:short\s+)?answer\s*\**\s*[:\-]\s*\**", re.IGNORECASE)


@dataclass
class Reading:
    answer: str  # the short answer, parsed
    cited: list[int] = field(default_factory=list)  # 1-based passage numbers, in order, once
    raw: str = ""  # the model's whole reply
    usage: Usage = field(default_factory=Usage)


def build_messages(
    question: str, passages: Sequence[EvalPassage] | None, style: str = "direct"
) -> list[dict[str, str]]:
    """The chat for one question; `passages` None (or empty) is closed book; `style` one of
    READERS."""
    if not passages:
        return [
            {"role": "system", "content": SYSTEM_CLOSED_BOOK},
            {"role": "user", "content": f"Question: {question}\nAnswer:"},
        ]
    numbered = "\n\n".join(
        f"[{n}] {p.title + ': ' if p.title else ''}{clip(p.text, PASSAGE_WORDS)}"
        for n, p in enumerate(passages, 1)
    )
    if style == "reason":
        system, cue = SYSTEM_REASONING, ""  # not "Answer:": the thought comes first
    else:
        system, cue = SYSTEM_WITH_PASSAGES, "\nAnswer:"
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": f"Passages:\n{numbered}\n\nQuestion: {question}{cue}"},
    ]


def parse_reply(text: str, passages: int) -> tuple[str, list[int]]:
    """(short answer, cited passage numbers) from a reply. The answer is the last "Answer:"
    line's text, else the first non-empty line, citations and trailing full stop removed;
    citations are every [n] (or [n, m]) in the reply that names one of the `passages`, each
    once."""
    cited: list[int] = []
    for match in _CITATION.finditer(text):
        for number in re.split(r"\s*[,;]\s*", match.group(1)):
            n = int(number)
            if 1 <= n <= passages and n not in cited:
                cited.append(n)
    labelled = [m["rest"] for m in _ANSWER_LINE.finditer(text) if m["rest"].strip()]
    # A reasoned reply's answer is on its (last) "Answer:" line; a direct one's comes first.
    first = labelled[-1] if labelled else next((ln for ln in text.splitlines() if ln.strip()), "")
    answer = _CITATION.sub("", _LABEL.sub("", first))
    answer = answer.strip().strip("*").strip()
    if answer.endswith(".") and not answer.endswith(".."):
        answer = answer[:-1].rstrip()
    return answer, cited


async def read(
    backend: Backend,
    question: str,
    passages: Sequence[EvalPassage] | None,
    *,
    model: str | None = None,
    max_tokens: int = 64,
    temperature: float = 0.0,
    style: str = "direct",
) -> Reading:
    """Answer `question` from `passages` (closed book when None): one backend call, or two
    turns of one chat for the "reason" style."""
    messages = build_messages(question, passages, style)
    request = ChatRequest(
        messages=messages, model=model, temperature=temperature, max_tokens=max_tokens, seed=0
    )
    result = await backend.chat(request)
    if style != "reason" or not passages:
        answer, cited = parse_reply(result.text, len(passages or ()))
        return Reading(answer, cited, result.text, result.usage)
    thought = result.text.strip()
    followed = ChatRequest(
        messages=[
            *messages,
            {"role": "assistant", "content": thought},
            {"role": "user", "content": SHORT_ANSWER},
        ],
        model=model,
        temperature=temperature,
        max_tokens=SHORT_ANSWER_TOKENS,
        seed=0,
    )
    short = await backend.chat(followed)
    answer, cited = parse_reply(short.text, len(passages))
    _, thought_cited = parse_reply(thought, len(passages))
    usage = Usage(
        prompt_tokens=result.usage.prompt_tokens + short.usage.prompt_tokens,
        completion_tokens=result.usage.completion_tokens + short.usage.completion_tokens,
    )
    cited += [n for n in thought_cited if n not in cited]
    return Reading(answer, cited, f"{thought}\n---\n{short.text}", usage)
