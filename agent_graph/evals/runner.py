"""The evaluation harness: read every question, score it, keep each row, write a report.

A run is named by the settings that change its answers (dataset, mode, corpus, retriever, k,
backend, model, reply cap and the reader's prompts), hashed into `run_id`. Each answered
question is committed to `<out>/eval.db` at once, keyed by (run_id, question id), so an
interrupted run picks up where it stopped and a re-run with the same settings asks nothing
new; a run with other settings in the same folder keeps its own rows beside it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from myninja import paths
from myninja.backends.base import Backend
from myninja.config import Config
from myninja.errors import UsageError
from myninja.skills.research.fts import rank_texts
from myninja.skills.research.retrievers import RETRIEVER_NAMES

from . import reader
from .datasets import EvalPassage, EvalQuestion, passage_key, write_passages
from .metrics import aggregate, score
from .report import other_runs, write_chart_of, write_report
from .types import by_type, question_type

MODES = ("contexts", "corpus", "closed-book")
# The corpus retrievers (myninja.skills.research.retrievers), named explicitly.
RETRIEVERS = tuple(name for name in RETRIEVER_NAMES if name != "auto")
Progress = Callable[[int, int], None]  # (questions done, questions in all)

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    settings TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    question_id TEXT NOT NULL,
    question TEXT NOT NULL,
    golds TEXT NOT NULL,
    prediction TEXT NOT NULL,
    raw TEXT NOT NULL,
    cited TEXT NOT NULL,
    retrieved TEXT,
    em INTEGER NOT NULL,
    substring INTEGER NOT NULL,
    f1 REAL NOT NULL,
    recall_at_k REAL,
    citation_precision REAL,
    abstained INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    seconds REAL NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (run_id, question_id)
);
"""


@dataclass
class EvalSettings:
    dataset: str  # "hotpotqa" | "nq-open"
    mode: str  # one of MODES
    corpus: str | None = None  # the corpus searched in "corpus" mode
    retriever: str = "bm25"
    k: int = 10  # passages retrieved (recall@k is measured on these)
    reader_k: int | None = None  # passages the reader sees; None: 5 retrieved, or all contexts
    backend: str = "embedded"
    model: str | None = None  # the backend's own when None
    model_label: str = ""  # the model actually used, named (part of the run's identity)
    max_tokens: int = 64
    temperature: float = 0.0
    reader: str = "direct"  # one of reader.READERS

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise UsageError(f"unknown mode {self.mode!r}", hint=f"one of: {', '.join(MODES)}")
        if self.mode == "corpus" and not self.corpus:
            raise UsageError("corpus mode needs a corpus name")
        if self.retriever not in RETRIEVERS:
            raise UsageError(f"unknown retriever {self.retriever!r}")
        if self.reader not in reader.READERS:
            raise UsageError(f"unknown reader {self.reader!r}")

    @property
    def label(self) -> str:
        """The folder name for this dataset and mode."""
        mode = f"corpus-{self.corpus}" if self.mode == "corpus" else self.mode
        return f"{self.dataset}-{mode}"

    @property
    def fed(self) -> int | None:
        """How many passages the reader sees (None: all of a question's own)."""
        if self.reader_k is not None:
            return self.reader_k
        return 5 if self.mode == "corpus" else None

    def run_id(self) -> str:
        key = asdict(self)
        key["prompts"] = [reader.SYSTEM_WITH_PASSAGES, reader.SYSTEM_CLOSED_BOOK]
        if self.reader == "direct":
            del key["reader"]  # runs made before readers had styles keep their ids
        else:
            key["prompts"] += [reader.SYSTEM_REASONING, reader.SHORT_ANSWER]
        key["passage_words"] = reader.PASSAGE_WORDS
        key["contexts_order"] = "bm25"  # how a question's own paragraphs are cut to reader_k
        text = json.dumps(key, sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def default_out(settings: EvalSettings) -> Path:
    return paths.data_dir() / "evals" / settings.label


def model_name(config: Config, settings: EvalSettings) -> str:
    """The model a run uses, as a person would name it."""
    if settings.model:
        return settings.model
    backend = config.backends.get(settings.backend)
    return str(getattr(backend, "model", None) or getattr(backend, "type", settings.backend))


class EvalStore:
    """`<out>/eval.db`: the runs and one row per answered item, in tables named by the kind of
    evaluation (QA questions by default; HumanEval problems keep tables of their own)."""

    def __init__(
        self,
        path: Path,
        *,
        schema: str = SCHEMA,
        runs_table: str = "runs",
        results_table: str = "results",
        key: str = "question_id",
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.runs_table, self.results_table, self.key = runs_table, results_table, key
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(schema)

    def close(self) -> None:
        self.db.close()

    def start(self, run_id: str, settings: Any) -> None:
        self.db.execute(
            f"INSERT OR IGNORE INTO {self.runs_table}(run_id, settings, created_at)"
            " VALUES (?, ?, ?)",
            (run_id, json.dumps(asdict(settings)), time.time()),
        )

    def done_ids(self, run_id: str) -> set[str]:
        rows = self.db.execute(
            f"SELECT {self.key} FROM {self.results_table} WHERE run_id = ?", (run_id,)
        )
        return {row[0] for row in rows}

    def add(self, run_id: str, row: dict[str, Any]) -> None:
        columns = ["run_id", *row]
        self.db.execute(
            f"INSERT OR REPLACE INTO {self.results_table}({', '.join(columns)})"
            f" VALUES ({', '.join('?' for _ in columns)})",
            [run_id, *row.values()],
        )

    def rows(self, run_id: str, ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """A run's rows, in the order of `ids` when given (only those), else as answered."""
        found = [
            dict(row)
            for row in self.db.execute(
                f"SELECT * FROM {self.results_table} WHERE run_id = ? ORDER BY rowid", (run_id,)
            )
        ]
        if ids is not None:
            order = {item: n for n, item in enumerate(ids)}
            found = sorted(
                (r for r in found if r[self.key] in order), key=lambda r: order[r[self.key]]
            )
        return found

    def runs(self) -> list[dict[str, Any]]:
        return [
            {"run_id": row["run_id"], "settings": json.loads(row["settings"])}
            for row in self.db.execute(
                f"SELECT run_id, settings FROM {self.runs_table} ORDER BY created_at"
            )
        ]


def _passages_for(
    question: EvalQuestion, settings: EvalSettings, search: Callable[[str, int], list[EvalPassage]]
) -> tuple[list[EvalPassage] | None, list[str] | None]:
    """(passages the reader sees, ids retrieved) for one question; ids None without retrieval."""
    if settings.mode == "closed-book":
        return None, None
    if settings.mode == "contexts":
        own = question.passages
        if settings.fed is None or settings.fed >= len(own):
            return list(own), None
        # Fewer than all: the question's own paragraphs ranked against it, not the file's order
        # (HotpotQA lists the supporting ones anywhere among ten).
        order = rank_texts(question.question, [(p.title, p.text) for p in own])
        return [own[i] for i in order[: settings.fed]], None
    hits = search(question.question, max(settings.k, settings.fed or 0))
    return hits[: settings.fed], [p.id for p in hits[: settings.k]]


async def _answer(
    question: EvalQuestion,
    settings: EvalSettings,
    backend: Backend,
    search: Callable[[str, int], list[EvalPassage]],
) -> dict[str, Any]:
    started = time.monotonic()
    passages, retrieved = _passages_for(question, settings, search)
    reading = await reader.read(
        backend,
        question.question,
        passages,
        model=settings.model,
        max_tokens=settings.max_tokens,
        temperature=settings.temperature,
        style=settings.reader,
    )
    cited = [passages[n - 1] for n in reading.cited] if passages else []
    metrics = score(
        reading.answer,
        question.golds,
        retrieved_ids=retrieved,
        gold_ids=question.supporting_ids,
        k=settings.k,
        need_all=settings.dataset == "hotpotqa",
        cited_passage_texts=[p.text for p in cited] if passages else None,
        cited_ids=[p.id for p in cited] if passages else None,
    )
    return {
        "question_id": question.id,
        "question": question.question,
        "golds": json.dumps(question.golds, ensure_ascii=False),
        "prediction": reading.answer,
        "raw": reading.raw,
        "cited": json.dumps([p.id for p in cited]),
        "retrieved": None if retrieved is None else json.dumps(retrieved),
        **metrics,
        "prompt_tokens": reading.usage.prompt_tokens,
        "completion_tokens": reading.usage.completion_tokens,
        "seconds": round(time.monotonic() - started, 3),
        "created_at": time.time(),
    }


def pool_corpus(name: str, questions: Sequence[EvalQuestion]) -> int | None:
    """Make corpus `name` from the passages of `questions` (each once) when no corpus has that
    name yet; how many passages went in, or None when it already existed. The pooled file is
    kept beside the index, so the corpus can be re-indexed like any other."""
    from myninja.skills.research.corpus import Corpus, corpus_file

    index = corpus_file(name)
    if index.exists():
        return None
    pool = index.with_suffix(".pooled.jsonl")
    pool.parent.mkdir(parents=True, exist_ok=True)
    partial = pool.with_suffix(".tmp")
    count = write_passages(questions, partial)
    if not count:
        partial.unlink()
        raise UsageError(
            "these questions carry no passages to pool into a corpus",
            hint="index your own with `myninja index add`, or use --closed-book",
        )
    partial.replace(pool)
    with Corpus.open(name, create=True) as corpus:
        corpus.add([pool])
    return count


def _corpus_search(settings: EvalSettings) -> tuple[Callable[[str, int], list[EvalPassage]], Any]:
    """A search function over the settings' corpus (keys as `passage_key`), and the corpus."""
    if settings.mode != "corpus":
        return (lambda query, k: []), None
    from myninja.skills.research.corpus import Corpus
    from myninja.skills.research.retrievers import make_retriever

    corpus: Any
    if settings.retriever == "colbert":
        # ColBERT searches its own index (a server or a colbert-ai index), never a local corpus;
        # the corpus name only labels the run.
        from myninja.config_file import load_config
        from myninja.skills.research.colbert import make_colbert_retriever

        corpus = retriever = make_colbert_retriever(load_config().research.colbert)
    else:
        corpus = Corpus.open(str(settings.corpus))
        retriever = make_retriever(corpus, settings.retriever)

    def search(query: str, k: int) -> list[EvalPassage]:
        passages = [hit.passage for hit in retriever.search(query, k)]
        return [EvalPassage(passage_key(p.title, p.text), p.title, p.text) for p in passages]

    return search, corpus


async def run_eval(
    questions: Sequence[EvalQuestion],
    settings: EvalSettings,
    backend: Backend,
    *,
    out: Path,
    concurrency: int = 1,
    progress: Progress | None = None,
    command: str = "",
) -> dict[str, Any]:
    """Answer and score the questions not yet done under these settings, then report on all
    of `questions`: the summary (aggregate metrics and the run's facts), also in report.md."""
    if concurrency < 1:
        raise UsageError("concurrency must be at least 1")
    if settings.mode == "contexts":
        bare = next((q for q in questions if not q.passages), None)
        if bare is not None:
            raise UsageError(
                f"question {bare.id!r} has no passages of its own",
                hint="use --closed-book, or --corpus NAME to retrieve passages",
            )
    run_id = settings.run_id()
    store = EvalStore(out / "eval.db")
    search, corpus = _corpus_search(settings)
    started = time.monotonic()
    try:
        store.start(run_id, settings)
        done = store.done_ids(run_id)
        todo = [q for q in questions if q.id not in done]
        finished = len(questions) - len(todo)
        if progress:
            progress(finished, len(questions))
        gate = asyncio.Semaphore(concurrency)

        async def one(question: EvalQuestion) -> None:
            nonlocal finished
            async with gate:
                row = await _answer(question, settings, backend, search)
            store.add(run_id, row)
            finished += 1
            if progress:
                progress(finished, len(questions))

        tasks = [asyncio.create_task(one(q)) for q in todo]
        try:
            for next_done in asyncio.as_completed(tasks):
                await next_done
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        rows = store.rows(run_id, [q.id for q in questions])
        summary = {
            **aggregate(rows),
            "dataset": settings.dataset,
            "mode": settings.mode,
            "corpus": settings.corpus,
            "retriever": settings.retriever if settings.mode == "corpus" else None,
            "k": settings.k,
            "reader_k": settings.fed,
            "backend": settings.backend,
            "model": settings.model_label or settings.model,
            "run_id": run_id,
            "answered": len(todo),
            "skipped": len(questions) - len(todo),
            "seconds": round(time.monotonic() - started, 2),
            "out": str(out),
            "db": str(store.path),
            "report": str(out / "report.md"),
        }
        types = {q.id: question_type(settings.dataset, q) for q in questions}
        summary["by_type"] = by_type(settings.dataset, rows, types)
        others = other_runs(summary, store, types)
        chart = write_chart_of(summary, others, out / "chart.png")
        summary["chart"] = str(chart) if chart else None
        typed = write_chart_of(summary, others, out / "chart-types.png", per_type=True)
        summary["chart_types"] = str(typed) if typed else None
        write_report(out / "report.md", summary, command, others)
        return summary
    finally:
        store.close()
        if corpus is not None:
            corpus.close()
