"""Question types, for figures per type: HotpotQA's bridge and comparison questions, and NQ-open's
questions by the kind of answer (a number, a date, anything else).

IRCoT's HotpotQA files do not keep the official `type` field, so it is read from the question
the way HotpotQA defines the two: a comparison question is answered yes/no or by one of the
things it names and compares; a bridge question reaches its answer, which it does not name,
through the entity that links its two paragraphs. NQ-open has no type at all: its gold answers say
what kind of thing was asked for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from myninja.agent_graph.evals.datasets import EvalQuestion
from myninja.agent_graph.evals.metrics import aggregate, normalize_answer

TYPES: dict[str, tuple[str, ...]] = {
    "hotpotqa": ("bridge", "comparison"),
    "nq-open": ("number", "date", "other"),
}
# What the per-type chart compares: the metrics each dataset's published work leads with.
HEADLINE: dict[str, tuple[str, ...]] = {
    "hotpotqa": ("em", "f1"),
    "nq-open": ("em", "substring_acc"),
}

_MONTHS = (
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec"
).split()
_DATE = re.compile(
    rf"\b(?:{'|'.join(_MONTHS)})\b|^\d{{3,4}}s?$|^\d{{4}}\s*(?:-|–|to)\s*\d{{2,4}}$"
    r"|\b\d{1,2}(?:st|nd|rd|th) century\b|\b(?:bc|ad|bce|ce)\b",
    re.IGNORECASE,
)
_NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy "
    "eighty ninety hundred thousand million billion trillion dozen half".split()
)


def question_type(dataset: str, question: EvalQuestion) -> str:
    if dataset == "hotpotqa":
        return _hotpot_type(question)
    return _answer_type(question.golds)


def _hotpot_type(question: EvalQuestion) -> str:
    """Comparison where the answer is yes/no or one of the things the question names and
    compares ("who is younger, A or B?"); a bridge question's answer is not in the question."""
    gold = normalize_answer(question.golds[0])
    if gold in ("yes", "no"):
        return "comparison"
    asked = f" {normalize_answer(question.question)} "
    return "comparison" if gold and f" {gold} " in asked else "bridge"


def _bare_title(title: str) -> str:
    """ "Ed Wood (film)" → "ed wood": the subject as a question would name it."""
    return normalize_answer(re.sub(r"\s*\([^)]*\)\s*$", "", title))


def _answer_type(golds: Sequence[str]) -> str:
    """ "date" where a gold answer is one, "number" where the first is a count or amount, else
    "other" (people, places, things, phrases)."""
    if any(_DATE.search(g) for gold in golds for g in (gold.strip(), normalize_answer(gold))):
        return "date"
    words = normalize_answer(golds[0]).split()
    if words and len(words) <= 4 and any(_numeric(w) for w in words):
        return "number"
    return "other"


def _numeric(word: str) -> bool:
    return bool(re.fullmatch(r"\d[\d,.]*", word)) or word in _NUMBER_WORDS


def by_type(
    dataset: str, rows: Iterable[Mapping[str, Any]], types: Mapping[str, str]
) -> dict[str, dict[str, Any]]:
    """`aggregate` per question type, in TYPES' order; rows whose id has no type are left out,
    and a type no row has is left out too."""
    grouped: dict[str, list[Mapping[str, Any]]] = {t: [] for t in TYPES.get(dataset, ())}
    for row in rows:
        kind = types.get(str(row.get("question_id")))
        if kind is not None:
            grouped.setdefault(kind, []).append(row)
    return {kind: aggregate(found) for kind, found in grouped.items() if found}


def chart_figures(dataset: str, figures_by_type: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """One run's headline figures per type, as the chart's groups: {"f1 · bridge": 51.2, …}."""
    return {
        f"{metric} · {kind}": figures.get(metric)
        for metric in HEADLINE.get(dataset, ())
        for kind, figures in figures_by_type.items()
    }
