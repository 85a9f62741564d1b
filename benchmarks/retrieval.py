"""Retrieval quality and speed on a pooled corpus of the dev evaluation files.

The corpus pools every context paragraph of the HotpotQA distractor dev100 file (each one a
passage with its title), the gold passage of each NQ-open oracle dev200 question (`ctxs[0]`),
and the 1,000 DPR Wikipedia passages, indexed through `Corpus.add` from passage files in a
temporary data dir, as a user's `myninja index add` would. Paragraphs that occur under several
questions (same title and text) are one passage, so a question's gold may be found under
another question's copy.

For every question it reports recall@2/5/10: for HotpotQA, both supporting paragraphs in the
top k; for NQ, the gold passage in the top k. Also passages indexed per second (reading,
hashing, parsing, inserting, FTS5) and the query time p50/p95 over all questions.
With the dense extra installed, the same figures for MiniLM vectors ("dense") and for BM25 and
dense fused by reciprocal rank ("hybrid"), and passages embedded per second (vectors cached in
the corpus, so a retriever's first query embeds nothing).
Only dev files: the reserved ones are for the final measurement (eval-data README).

Prints one JSON object. Targets: HotpotQA recall@10 >= 0.85 (both supporting), p50 <= 10 ms
(BM25); hybrid recall@10 >= BM25's on both sets.

    python benchmarks/retrieval.py [--eval-data ../shared/eval-data] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from myninja.skills.research import dense
from myninja.skills.research.corpus import Corpus
from myninja.skills.research.retrievers import BM25Retriever, Retriever, make_retriever

KS = (2, 5, 10)
TARGETS = {"hotpotqa_recall_at_10": 0.85, "query_ms_p50": 10.0}
DEFAULT_EVAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "eval-data"

# Retrievers measured, by name; every retriever gets the same questions and the same figures.
RETRIEVERS: dict[str, Callable[[Corpus], Retriever]] = {"bm25": BM25Retriever}
if dense.dense_available():
    RETRIEVERS["dense"] = lambda corpus: make_retriever(corpus, "dense")
    RETRIEVERS["hybrid"] = lambda corpus: make_retriever(corpus, "hybrid")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def build_passage_file(dev: Path, out: Path) -> list[dict[str, Any]]:
    """Write the HotpotQA and NQ passages to `out` (JSONL, title/text shape) and return the
    questions: {"set", "question", "gold": [passage ids]}."""
    ids: dict[tuple[str, str], str] = {}  # (title, text) -> passage id: one passage per text
    rows: list[dict[str, str]] = []
    questions: list[dict[str, Any]] = []

    def passage_id(pid: str, title: str, text: str) -> str:
        key = (title, text)
        if key not in ids:
            ids[key] = pid
            rows.append({"id": pid, "title": title, "text": text})
        return ids[key]

    for q in read_jsonl(dev / "hotpotqa-distractor-dev100.jsonl"):
        gold = [
            passage_id(f"hotpot:{q['question_id']}:{c['id']}", c["title"], c["paragraph_text"])
            for c in q["contexts"]
            if c["is_supporting"]
        ]
        for c in q["contexts"]:
            passage_id(f"hotpot:{q['question_id']}:{c['id']}", c["title"], c["paragraph_text"])
        questions.append({"set": "hotpotqa", "question": q["question_text"], "gold": gold})
    for i, q in enumerate(read_jsonl(dev / "nq-open-oracle-dev200.jsonl")):
        ctx = q["ctxs"][0]
        gold = [passage_id(f"nq:{i}", ctx["title"], ctx["text"])]
        questions.append({"set": "nq", "question": q["question"], "gold": gold})
    with out.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return questions


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(retriever: Retriever, questions: list[dict[str, Any]], repeat: int) -> dict[str, Any]:
    found: dict[str, dict[int, int]] = {
        "hotpotqa": dict.fromkeys(KS, 0),
        "nq": dict.fromkeys(KS, 0),
    }
    counts = {"hotpotqa": 0, "nq": 0}
    times_ms: list[float] = []
    for q in questions:
        retriever.search(q["question"], max(KS))  # warm: the first query pays page-ins
    for round_ in range(repeat):
        for q in questions:
            start = time.perf_counter()
            hits = retriever.search(q["question"], max(KS))
            times_ms.append((time.perf_counter() - start) * 1000)
            if round_:
                continue
            ranked = [hit.passage.id for hit in hits]
            counts[q["set"]] += 1
            for k in KS:
                if all(g in ranked[:k] for g in q["gold"]):
                    found[q["set"]][k] += 1
    result: dict[str, Any] = {}
    for name in ("hotpotqa", "nq"):
        for k in KS:
            result[f"{name}_recall_at_{k}"] = round(found[name][k] / counts[name], 3)
    result["query_ms_p50"] = round(statistics.median(times_ms), 2)
    result["query_ms_p95"] = round(percentile(times_ms, 0.95), 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--eval-data", type=Path, default=DEFAULT_EVAL_DATA)
    parser.add_argument("--repeat", type=int, default=3, help="timed passes over the questions")
    args = parser.parse_args()
    dev = args.eval_data / "dev"
    with tempfile.TemporaryDirectory(prefix="myninja-retrieval-") as tmp:
        os.environ["MYNINJA_HOME"] = tmp  # the corpus lives in a throwaway data dir
        files = Path(tmp) / "passages"
        files.mkdir()
        questions = build_passage_file(dev, files / "hotpotqa-nq.jsonl")
        dpr = files / "wiki-dpr-passages-sample1000.jsonl"
        dpr.write_bytes((dev / dpr.name).read_bytes())  # as is: the `contents` shape
        with Corpus.open("bench", create=True) as corpus:
            start = time.perf_counter()
            report = corpus.add([files])
            index_s = time.perf_counter() - start
            result: dict[str, Any] = {
                "benchmark": "retrieval",
                "passages": report.passages,
                "questions": {
                    name: sum(q["set"] == name for q in questions) for name in ("hotpotqa", "nq")
                },
                "index_s": round(index_s, 3),
                "index_passages_per_s": round(report.passages / index_s),
            }
            if "dense" in RETRIEVERS:
                encoder = dense.shared_encoder()
                encoder.encode(["warm up"])  # loading the model is not embedding
                start = time.perf_counter()
                embedded = dense.embed_missing(corpus, encoder)
                embed_s = time.perf_counter() - start
                result["embed_s"] = round(embed_s, 3)
                result["embed_passages_per_s"] = round(embedded / embed_s, 1)
            for name, make in RETRIEVERS.items():
                result[name] = measure(make(corpus), questions, args.repeat)
    bm25 = result["bm25"]
    result["targets"] = TARGETS
    result["met"] = {
        "hotpotqa_recall_at_10": bm25["hotpotqa_recall_at_10"] >= TARGETS["hotpotqa_recall_at_10"],
        "query_ms_p50": bm25["query_ms_p50"] <= TARGETS["query_ms_p50"],
    }
    if "hybrid" in result:
        hybrid = result["hybrid"]
        for name in ("hotpotqa", "nq"):
            key = f"{name}_recall_at_10"
            result["met"][f"hybrid_{key}_ge_bm25"] = hybrid[key] >= bm25[key]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
