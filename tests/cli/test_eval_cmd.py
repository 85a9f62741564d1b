"""`myninja eval` end to end: on the tiny model, and its usage errors on a scripted backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from myninja.agent_graph.evals.datasets import load_questions, write_passages
from tests.conftest import TINY_MODEL, TINY_THREADS, run_myninja, scripted_config

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
HOTPOT = "tests/fixtures/hotpotqa-dev5.jsonl"
NQ = "tests/fixtures/nq-open-oracle-dev5.jsonl"
TINY = {
    "MYNINJA_BACKENDS__EMBEDDED__MODEL": TINY_MODEL,
    "MYNINJA_BACKENDS__EMBEDDED__THREADS": str(TINY_THREADS),
    "MYNINJA_AGENTS__RESEARCHER__MAX_TOKENS": "12",
}
METRICS = ("em", "substring_acc", "f1", "citation_precision", "abstention_rate")


def check_figures(summary: dict[str, object], *names: str) -> None:
    for name in names:
        value = summary[name]
        assert value is None or 0.0 <= float(value) <= 100.0, (name, value)  # type: ignore[arg-type]


@pytest.mark.slow
def test_eval_hotpotqa_contexts_on_the_tiny_model_then_resumes(myninja_home: Path) -> None:
    # Two paragraphs a question keep the prompt short enough for CI on two cores.
    args = ("eval", "hotpotqa", "--data", HOTPOT, "--contexts", "--limit", "5", "--reader-k", "2")
    done = run_myninja(*args, "--json", env=TINY)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["count"] == 5 and summary["answered"] == 5
    assert summary["model"] == TINY_MODEL and summary["recall_at_k"] is None
    check_figures(summary, *METRICS)
    out = Path(summary["out"])
    assert out == myninja_home / "data" / "evals" / "hotpotqa-contexts"
    assert "| count | em |" in (out / "report.md").read_text()
    again = run_myninja(*args, "--json", env=TINY)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["answered"] == 0
    assert {k: json.loads(again.stdout)[k] for k in METRICS} == {k: summary[k] for k in METRICS}


@pytest.mark.slow
def test_eval_nq_open_from_an_indexed_corpus(tmp_path: Path) -> None:
    pool = tmp_path / "nq5-passages.jsonl"
    write_passages(load_questions("nq-open", FIXTURES / "nq-open-oracle-dev5.jsonl"), pool)
    indexed = run_myninja("index", "add", "nq5", str(pool))
    assert indexed.returncode == 0, indexed.stderr
    out = tmp_path / "out"
    done = run_myninja(
        "eval", "nq-open", "--data", NQ, "--corpus", "nq5", "--reader-k", "2",
        "--json", "--out", str(out), env=TINY,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["count"] == 5 and summary["mode"] == "corpus"
    assert summary["recall_at_k"] is not None
    check_figures(summary, *METRICS, "recall_at_k")
    assert (out / "eval.db").exists() and (out / "report.md").exists()


def test_eval_plain_output_on_a_scripted_backend(myninja_home: Path) -> None:
    scripted_config(myninja_home, [{"match": "deadpool", "reply": "May 18, 2018 [1]"}])
    done = run_myninja("eval", "nq-open", "--data", NQ, "--contexts", "--concurrency", "2")
    assert done.returncode == 0, done.stderr
    assert "nq-open (contexts), scripted: 5 questions" in done.stdout
    assert "em" in done.stdout and "20.00" in done.stdout


def test_eval_with_a_new_corpus_name_pools_the_files_passages(myninja_home: Path) -> None:
    scripted_config(myninja_home, [{"match": "deadpool", "reply": "May 18, 2018 [1]"}])
    args = ("eval", "nq-open", "--data", NQ, "--corpus", "nq5", "--limit", "2", "--json")
    done = run_myninja(*args)
    assert done.returncode == 0, done.stderr
    # All five questions' passages are pooled, though only two questions are asked.
    assert f"pooled 5 passages of {NQ} into corpus 'nq5'" in done.stderr
    summary = json.loads(done.stdout)
    assert summary["count"] == 2 and summary["em"] == 50.0 and summary["recall_at_k"] == 100.0
    listed = json.loads(run_myninja("index", "list", "--json").stdout)
    assert [(c["name"], c["passages"]) for c in listed] == [("nq5", 5)]
    again = run_myninja(*args)
    assert again.returncode == 0 and "pooled" not in again.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--data", NQ), "choose one of --contexts, --corpus NAME, --closed-book"),
        (("--data", NQ, "--contexts", "--closed-book"), "(got --contexts and --closed-book)"),
        (("--data", NQ, "--corpus", "../up"), "corpus name"),
        (("--data", NQ, "--corpus", "x", "--retriever", "colbert"), "colbert retriever is not"),
        (("--data", HOTPOT, "--contexts"), "not an NQ-open row"),
    ],
)
def test_eval_usage_errors_are_one_line_exit_2(
    myninja_home: Path, args: tuple[str, ...], message: str
) -> None:
    scripted_config(myninja_home, [])
    done = run_myninja("eval", "nq-open", *args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
