"""Question sets for `myninja eval`: HotpotQA (IRCoT's format) and NQ-open, read into one shape.

Every passage gets an id derived from its title and text (`passage_key`), not from its place in
the file: HotpotQA numbers each question's paragraphs 0..9, so those numbers collide across
questions, while a content key is the same wherever the paragraph appears. Pooled into a corpus
(`write_passages`, then `myninja index add`), a retrieved passage's key is computed the same
way, so recall@k and citation checks work whichever ids the corpus file used.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from myninja.errors import UsageError
from myninja.skills.research.passages import json_objects

DATASETS = ("hotpotqa", "nq-open")


class BadDatasetFile(UsageError):
    """A question file with a line we cannot read."""


@dataclass(frozen=True)
class EvalPassage:
    id: str
    title: str
    text: str


@dataclass(frozen=True)
class EvalQuestion:
    id: str
    question: str
    golds: list[str]
    passages: list[EvalPassage] = field(default_factory=list)  # its own, in file order
    supporting_ids: list[str] = field(default_factory=list)


def passage_key(title: str, text: str) -> str:
    """A stable id for a passage: a hash of its title and text, whitespace collapsed."""
    body = " ".join(title.split()) + "\n" + " ".join(text.split())
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:16]


def _passage(title: Any, text: Any) -> EvalPassage:
    title, text = str(title or "").strip(), str(text or "").strip()
    return EvalPassage(passage_key(title, text), title, text)


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise BadDatasetFile(f"{path}: not UTF-8 text") from None
    yield from json_objects(text, str(path), BadDatasetFile)


def _strings(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _hotpot(row: dict[str, Any], where: str) -> EvalQuestion:
    try:
        qid, question = row["question_id"], row["question_text"]
        golds = _strings(row["answers_objects"][0]["spans"])
        contexts = row.get("contexts", [])
        if not isinstance(question, str) or not golds or not isinstance(contexts, list):
            raise TypeError
        passages, supporting = [], []
        for ctx in contexts:
            passage = _passage(ctx["title"], ctx["paragraph_text"])
            passages.append(passage)
            if ctx.get("is_supporting"):
                supporting.append(passage.id)
    except (KeyError, IndexError, TypeError):
        raise BadDatasetFile(
            f"{where}: not a HotpotQA row",
            hint="expected question_id, question_text, answers_objects[0].spans, "
            "contexts[{title, paragraph_text, is_supporting}]",
        ) from None
    return EvalQuestion(str(qid), question, golds, passages, supporting)


def _nq(row: dict[str, Any], where: str) -> EvalQuestion:
    question = row.get("question")
    golds = _strings(row.get("answers", row.get("answer", row.get("golden_answers"))))
    if not isinstance(question, str) or not golds:
        raise BadDatasetFile(
            f"{where}: not an NQ-open row",
            hint="expected question and answers[] (oracle) or answer[] (plain NQ-open)",
        )
    passages, supporting = [], []
    ctxs = row.get("ctxs") or []
    if not isinstance(ctxs, list) or not all(
        isinstance(c, dict) and isinstance(c.get("text"), str) for c in ctxs
    ):
        raise BadDatasetFile(f"{where}: ctxs must be a list of {{title, text}} objects")
    if ctxs:
        # The oracle file's first passage is the gold one (lost-in-the-middle's layout).
        passages = [_passage(c.get("title"), c["text"]) for c in ctxs]
        supporting = [passages[0].id]
    # NQ-open rows have no id; the question text is unique in each split and stable.
    qid = str(row.get("id") or hashlib.sha256(question.encode("utf-8")).hexdigest()[:16])
    return EvalQuestion(qid, question, golds, passages, supporting)


def load_questions(dataset: str, path: Path | str, limit: int | None = None) -> list[EvalQuestion]:
    """The first `limit` questions (all when None) of a `dataset` file (see DATASETS)."""
    if dataset not in DATASETS:
        raise UsageError(f"unknown dataset {dataset!r}", hint=f"one of: {', '.join(DATASETS)}")
    path = Path(path).expanduser()
    questions: list[EvalQuestion] = []
    seen: set[str] = set()
    for lineno, row in _rows(path):
        if limit is not None and len(questions) >= limit:
            break
        where = f"{path}:{lineno}"
        question = _hotpot(row, where) if dataset == "hotpotqa" else _nq(row, where)
        if question.id in seen:
            raise BadDatasetFile(f"{where}: question id {question.id!r} appears twice")
        seen.add(question.id)
        questions.append(question)
    if not questions:
        raise BadDatasetFile(f"{path}: no questions in it")
    return questions


def pooled_passages(questions: Iterable[EvalQuestion]) -> list[EvalPassage]:
    """Every question's passages, each once, in order of first appearance."""
    pool: dict[str, EvalPassage] = {}
    for question in questions:
        for passage in question.passages:
            pool.setdefault(passage.id, passage)
    return list(pool.values())


def write_passages(questions: Iterable[EvalQuestion], path: Path | str) -> int:
    """Write the pooled passages as a JSONL passage file `myninja index add` reads; how many."""
    pool = pooled_passages(questions)
    with Path(path).open("w", encoding="utf-8") as out:
        for p in pool:
            out.write(json.dumps({"id": p.id, "title": p.title, "text": p.text}) + "\n")
    return len(pool)
