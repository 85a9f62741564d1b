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
SYSTEM_CLOSED_BOOK = (
    "You answer questions from what you know. Reply with the short answer alone: a few words "
    "(a name, a date, a number, yes or no), not a sentence. If you do not know, reply: "
    "I don't know."
)

_CITATION = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_LABEL = re.compile(r"^\s*(?:\**\s*)?(?:short\s+)?answer\s*\**\s*[:\-]\s*\**", re.IGNORECASE)


@dataclass
class Reading:
    answer: str  # the short answer, parsed
    cited: list[int] = field(default_factory=list)  # 1-based passage numbers, in order, once
    raw: str = ""  # the model's whole reply
    usage: Usage = field(default_factory=Usage)


def build_messages(question: str, passages: Sequence[EvalPassage] | None) -> list[dict[str, str]]:
    """The chat for one question; `passages` None (or empty) is closed book."""
    if not passages:
        return [
            {"role": "system", "content": SYSTEM_CLOSED_BOOK},
            {"role": "user", "content": f"Question: {question}\nAnswer:"},
        ]
    numbered = "\n\n".join(
        f"[{n}] {p.title + ': ' if p.title else ''}{clip(p.text, PASSAGE_WORDS)}"
        for n, p in enumerate(passages, 1)
    )
    return [
        {"role": "system", "content": SYSTEM_WITH_PASSAGES},
        {"role": "user", "content": f"Passages:\n{numbered}\n\nQuestion: {question}\nAnswer:"},
    ]


def parse_reply(text: str, passages: int) -> tuple[str, list[int]]:
    """(short answer, cited passage numbers) from a reply. The answer is the first non-empty
    line with any "Answer:" label, citations and trailing full stop removed; citations are every
    [n] (or [n, m]) in the reply that names one of the `passages`, each once."""
    cited: list[int] = []
    for match in _CITATION.finditer(text):
        for number in re.split(r"\s*[,;]\s*", match.group(1)):
            n = int(number)
            if 1 <= n <= passages and n not in cited:
                cited.append(n)
    first = next((line for line in text.splitlines() if line.strip()), "")
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
) -> Reading:
    """Answer `question` from `passages` (closed book when None) with one backend call."""
    request = ChatRequest(
        messages=build_messages(question, passages),
        model=model,
        temperature=temperature,
        max_tokens=max_tokens,
        seed=0,
    )
    result = await backend.chat(request)
    answer, cited = parse_reply(result.text, len(passages or ()))
    return Reading(answer, cited, result.text, result.usage)
