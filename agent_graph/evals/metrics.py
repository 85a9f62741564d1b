"""Answer and retrieval metrics, scored as the public references score them.

`normalize_answer` is the SQuAD v1.1 script's, and `hotpot_f1` follows the official HotpotQA
script (`hotpot_evaluate_v1.py`) rule for rule, so a figure from here is comparable with the
published ones (FlashRAG's NQ EM, HotpotQA F1). Everything takes plain strings and ids: a
harness builds one row per question with `score`, and `aggregate` turns rows into a report.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)
# HotpotQA scores an answer of these kinds all or nothing: "yes" must not earn partial credit
# against "no" through shared tokens, nor against a span that merely contains it.
_SPECIAL_ANSWERS = ("yes", "no", "noanswer")


def normalize_answer(s: str) -> str:
    """Lower-case, drop ASCII punctuation, drop the articles a/an/the, collapse whitespace; in
    that order, as the SQuAD v1.1 script does."""
    text = "".join(ch for ch in s.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _as_list(golds: str | Iterable[str]) -> list[str]:
    # A lone string is one gold answer, not a sequence of one-character answers.
    return [golds] if isinstance(golds, str) else list(golds)


def exact_match(prediction: str, golds: str | Iterable[str]) -> bool:
    """Whether the normalised prediction equals any normalised gold answer (NQ-open accuracy)."""
    normalised = normalize_answer(prediction)
    return any(normalised == normalize_answer(gold) for gold in _as_list(golds))


def substring_match(prediction: str, golds: str | Iterable[str]) -> bool:
    """Whether any normalised gold answer occurs in the normalised prediction: the "accuracy"
    of most LLM papers, which lets a sentence-long answer count. A gold that normalises to
    nothing would occur everywhere, so it never matches."""
    normalised = normalize_answer(prediction)
    return any(
        gold and gold in normalised for gold in (normalize_answer(g) for g in _as_list(golds))
    )


def hotpot_f1(prediction: str, gold: str) -> tuple[float, float, float]:
    """Token F1, precision and recall of the normalised answers, with HotpotQA's rule: when
    either side normalises to yes/no/noanswer and the two differ, all three are 0."""
    pred = normalize_answer(prediction)
    truth = normalize_answer(gold)
    if (pred in _SPECIAL_ANSWERS or truth in _SPECIAL_ANSWERS) and pred != truth:
        return 0.0, 0.0, 0.0
    pred_tokens, truth_tokens = pred.split(), truth.split()
    same = sum((Counter(pred_tokens) & Counter(truth_tokens)).values())
    if same == 0:
        return 0.0, 0.0, 0.0
    precision = same / len(pred_tokens)
    recall = same / len(truth_tokens)
    return 2 * precision * recall / (precision + recall), precision, recall


def max_f1(prediction: str, golds: str | Iterable[str]) -> float:
    """The best F1 against any gold answer (0 when there is none)."""
    return max((hotpot_f1(prediction, gold)[0] for gold in _as_list(golds)), default=0.0)


def recall_at_k(
    retrieved_ids: Sequence[str], gold_ids: Iterable[str], k: int, need_all: bool = True
) -> float:
    """1.0 when the top `k` retrieved ids hold every gold id (`need_all`, HotpotQA's two
    supporting paragraphs) or any of them (NQ's gold passage), else 0.0."""
    golds = set(gold_ids)
    if not golds:
        raise ValueError("recall@k needs at least one gold id")
    if k < 1:
        raise ValueError("k must be at least 1")
    top = set(retrieved_ids[:k])
    hit = golds <= top if need_all else bool(golds & top)
    return 1.0 if hit else 0.0


def citation_precision(
    cited_passage_texts: Sequence[str],
    golds: str | Iterable[str],
    supporting_ids: Iterable[str] = (),
    cited_ids: Sequence[str] | None = None,
) -> float | None:
    """The fraction of cited passages that support the answer: the passage holds a gold answer
    (normalised substring) or is a gold supporting passage (`cited_ids[i]` in
    `supporting_ids`). None when nothing was cited: precision of no citations is undefined,
    and counting it as 0 or 1 would reward or punish answering without sources."""
    if cited_ids is not None and len(cited_ids) != len(cited_passage_texts):
        raise ValueError("cited_ids must name the cited passages one for one")
    if not cited_passage_texts:
        return None
    answers = [a for a in (normalize_answer(g) for g in _as_list(golds)) if a]
    supporting = set(supporting_ids)
    good = 0
    for index, text in enumerate(cited_passage_texts):
        normalised = normalize_answer(text)
        holds_answer = any(answer in normalised for answer in answers)
        is_supporting = cited_ids is not None and cited_ids[index] in supporting
        good += holds_answer or is_supporting
    return good / len(cited_passage_texts)


# Phrases that make an answer a refusal to answer, matched as whole words in the lower-cased
# answer with its apostrophes made straight. Kept specific: a bare "unknown" or "none" is also
# a real answer ("The Unknown Soldier").
ABSTAIN_PHRASES: tuple[str, ...] = (
    "i don't know",
    "i do not know",
    "i dont know",
    "i'm not sure",
    "i am not sure",
    "cannot find",
    "can't find",
    "could not find",
    "couldn't find",
    "unable to find",
    "did not find",
    "didn't find",
    "not enough information",
    "not enough context",
    "insufficient information",
    "insufficient context",
    "no information about",
    "no information on",
    "no relevant information",
    "not contain information",
    "not contain any information",
    "not provide information",
    "not provide any information",
    "not mentioned in",
    "cannot answer",
    "can't answer",
    "unable to answer",
    "cannot be answered",
    "cannot determine",
    "cannot be determined",
    "unable to determine",
    "unanswerable",
)
_ABSTAIN = re.compile(r"\b(?:" + "|".join(map(re.escape, ABSTAIN_PHRASES)) + r")\b")


def abstained(prediction: str) -> bool:
    """Whether the answer declines to answer (an empty answer declines too)."""
    text = " ".join(prediction.lower().replace("’", "'").replace("‘", "'").split())
    return not text or bool(_ABSTAIN.search(text))


def score(
    prediction: str,
    golds: str | Iterable[str],
    *,
    retrieved_ids: Sequence[str] | None = None,
    gold_ids: Iterable[str] | None = None,
    k: int = 10,
    need_all: bool = True,
    cited_passage_texts: Sequence[str] | None = None,
    cited_ids: Sequence[str] | None = None,
) -> dict[str, Any]:
    """One question's row for `aggregate`; the retrieval and citation fields are None where
    the run had no retrieval or gave no citations."""
    answers = _as_list(golds)
    row: dict[str, Any] = {
        "em": exact_match(prediction, answers),
        "substring": substring_match(prediction, answers),
        "f1": max_f1(prediction, answers),
        "recall_at_k": None,
        "citation_precision": None,
        "abstained": abstained(prediction),
    }
    gold_list = list(gold_ids or ())
    if retrieved_ids is not None and gold_list:
        row["recall_at_k"] = recall_at_k(retrieved_ids, gold_list, k, need_all=need_all)
    if cited_passage_texts is not None:
        row["citation_precision"] = citation_precision(
            cited_passage_texts, answers, gold_list, cited_ids
        )
    return row


# row key -> report key. Every metric is reported as a mean percentage.
REPORTED: dict[str, str] = {
    "em": "em",
    "substring": "substring_acc",
    "f1": "f1",
    "recall_at_k": "recall_at_k",
    "citation_precision": "citation_precision",
    "abstained": "abstention_rate",
}


def aggregate(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean of each metric over the rows that have it, as a percentage with 2 decimals (None
    when no row has it), and `count`, the number of rows."""
    rows = list(rows)
    report: dict[str, Any] = {"count": len(rows)}
    for key, name in REPORTED.items():
        values = [float(row[key]) for row in rows if row.get(key) is not None]
        report[name] = round(100 * sum(values) / len(values), 2) if values else None
    return report
