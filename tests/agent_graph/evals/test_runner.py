"""The harness on a scripted backend, so every figure can be worked out by hand."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from myninja.agent_graph.evals.datasets import load_questions, write_passages
from myninja.agent_graph.evals.reader import parse_reply
from myninja.agent_graph.evals.runner import EvalSettings, pool_corpus, run_eval
from myninja.backends.scripted import Rule, ScriptedBackend
from myninja.errors import UsageError
from myninja.skills.research.corpus import Corpus

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
HOTPOT = FIXTURES / "hotpotqa-dev5.jsonl"
NQ = FIXTURES / "nq-open-oracle-dev5.jsonl"

# Each rule matches one NQ question; the fifth falls through to the default ("I don't know").
NQ_RULES = [
    Rule(match="next deadpool movie", reply="Answer: May 18, 2018.\n[1]"),
    Rule(match="south west wind", reply="The wind blows till September every year [1]"),
    Rule(match="greasers live", reply="I don't know."),
    Rule(match="kevins family", reply="Florida [1][7]"),  # [7] names no passage: dropped
    Rule(match="summer of 42", reply="Paris"),
]


def backend(rules: list[Rule]) -> ScriptedBackend:
    return ScriptedBackend("scripted", rules, default="I don't know")


def run(questions, settings, scripted, out, **kw):  # type: ignore[no-untyped-def]
    return asyncio.run(run_eval(questions, settings, scripted, out=out, **kw))


@pytest.mark.parametrize(
    ("reply", "answer", "cited"),
    [
        ("Answer: Paris.\n[1][2]", "Paris", [1, 2]),
        ("**Answer:** 3,677 seated [2, 4] [2]", "3,677 seated", [2, 4]),
        ("\n\nyes\nSources: [9] [3]", "yes", [3]),
        ("", "", []),
        # A reasoned reply: the thought first, then its "Answer:" line.
        (
            "The arena is the Androscoggin Bank Colisée [2]. It seats 3,677.\n"
            "Answer: 3,677 seated\n[2][4]",
            "3,677 seated",
            [2, 4],
        ),
        (
            "Bostic was born in 1961 and Glanville in 1941 [1][3].\nAnswer: Keith Bostic.",
            "Keith Bostic",
            [1, 3],
        ),
    ],
)
def test_parse_reply(reply: str, answer: str, cited: list[int]) -> None:
    assert parse_reply(reply, passages=5) == (answer, cited)


def test_nq_contexts_figures_worked_by_hand(tmp_path: Path) -> None:
    questions = load_questions("nq-open", NQ)
    scripted = backend(NQ_RULES)
    summary = run(questions, EvalSettings("nq-open", "contexts"), scripted, tmp_path)
    assert summary["count"] == 5 and summary["answered"] == 5
    # EM: deadpool, florida = 2/5. Substring adds "...till september..." = 3/5.
    assert summary["em"] == 40.0 and summary["substring_acc"] == 60.0
    # F1: 1 + 1 + the wind sentence (2 shared of 6 predicted, 2 gold: P 1/3, R 1, F1 0.5) = 2.5/5
    assert summary["f1"] == 50.0
    assert summary["abstention_rate"] == 20.0
    assert summary["recall_at_k"] is None  # no retrieval in contexts mode
    # Cited: deadpool, wind, florida; each cites its gold passage, which holds the answer.
    assert summary["citation_precision"] == 100.0
    assert len(scripted.calls) == 5
    prompt = scripted.calls[0].messages[-1]["content"]
    assert prompt.startswith("Passages:\n[1] Deadpool 2: ") and "[2]" not in prompt
    report = (tmp_path / "report.md").read_text()
    assert "| 5 | 40.00 | 60.00 | 50.00 | – | 100.00 | 20.00 |" in report


def test_hotpot_citation_precision_counts_supporting_paragraphs(tmp_path: Path) -> None:
    questions = load_questions("hotpotqa", HOTPOT, limit=1)
    # Paragraph 1 (Andre Norton Award) neither holds "Animorphs" nor supports; 3 and 9 support.
    assert "animorphs" not in questions[0].passages[0].text.lower()
    scripted = backend([Rule(match="science fantasy", reply="Animorphs\n[1][3][9]")])
    summary = run(questions, EvalSettings("hotpotqa", "contexts"), scripted, tmp_path)
    assert summary["em"] == 100.0 and summary["f1"] == 100.0
    assert summary["citation_precision"] == round(100 * 2 / 3, 2)


def test_a_rerun_asks_nothing_new_and_a_longer_one_only_the_rest(tmp_path: Path) -> None:
    questions = load_questions("nq-open", NQ)
    settings = EvalSettings("nq-open", "contexts")
    scripted = backend(NQ_RULES)
    first = run(questions[:3], settings, scripted, tmp_path)
    assert first["answered"] == 3 and len(scripted.calls) == 3
    whole = run(questions, settings, scripted, tmp_path, concurrency=3)
    assert (whole["answered"], whole["skipped"]) == (2, 3) and len(scripted.calls) == 5
    again = run(questions, settings, scripted, tmp_path)
    assert (again["answered"], again["skipped"]) == (0, 5) and len(scripted.calls) == 5
    assert {k: again[k] for k in ("em", "f1", "count")} == {"em": 40.0, "f1": 50.0, "count": 5}
    # Other settings are another run in the same folder, with its own rows.
    closed = run(questions, EvalSettings("nq-open", "closed-book"), scripted, tmp_path)
    assert closed["answered"] == 5 and len(scripted.calls) == 10
    assert closed["citation_precision"] is None
    assert "Other runs in this folder" in (tmp_path / "report.md").read_text()


def test_the_reasoning_reader_thinks_then_answers_in_a_second_turn(tmp_path: Path) -> None:
    questions = load_questions("nq-open", NQ, limit=1)
    scripted = backend(
        [
            Rule(match="So what is the answer", reply="May 18, 2018"),
            Rule(match="Think in one or two", reply="Deadpool 2 comes out on May 18, 2018 [1]."),
        ]
    )
    direct = EvalSettings("nq-open", "contexts")
    reasoned = EvalSettings("nq-open", "contexts", reader="reason", max_tokens=96)
    first = run(questions, reasoned, scripted, tmp_path)
    assert first["em"] == 100.0 and first["citation_precision"] == 100.0  # [1] from the thought
    thought, short = scripted.calls
    assert not thought.messages[-1]["content"].endswith("Answer:")  # the thought comes first
    # The second turn carries the first: the same chat, so its passages are already cached.
    assert short.messages[: len(thought.messages)] == thought.messages
    assert short.messages[-2] == {
        "role": "assistant",
        "content": "Deadpool 2 comes out on May 18, 2018 [1].",
    }
    assert short.max_tokens == 24
    assert direct.run_id() != reasoned.run_id() == first["run_id"]
    with pytest.raises(UsageError, match="unknown reader"):
        EvalSettings("nq-open", "contexts", reader="vote")


def test_closed_book_sends_no_passages(tmp_path: Path) -> None:
    questions = load_questions("nq-open", NQ, limit=1)
    scripted = backend([])
    run(questions, EvalSettings("nq-open", "closed-book"), scripted, tmp_path)
    messages = scripted.calls[0].messages
    assert "Passages" not in json.dumps(messages)
    assert messages[-1]["content"].startswith("Question: when is the next deadpool movie")
    assert "passages read: none (closed book)" in (tmp_path / "report.md").read_text()


def test_corpus_mode_retrieves_from_the_pooled_index(tmp_path: Path) -> None:
    questions = load_questions("nq-open", NQ)
    pool = tmp_path / "pool.jsonl"
    write_passages(questions, pool)
    with Corpus.open("nq5", create=True) as corpus:
        corpus.add([pool])
    scripted = backend(NQ_RULES)
    settings = EvalSettings("nq-open", "corpus", corpus="nq5", k=2, reader_k=3)
    summary = run(questions, settings, scripted, tmp_path)
    assert summary["count"] == 5 and summary["reader_k"] == 3
    # With five passages in all, BM25 puts each gold passage in its question's top 2.
    assert summary["recall_at_k"] == 100.0
    prompts = [call.messages[-1]["content"] for call in scripted.calls]
    assert prompts[0].startswith("Passages:\n[1] Deadpool 2: ")
    assert not any("\n[4] " in prompt for prompt in prompts)  # reader_k caps what is read


def test_contexts_cut_to_reader_k_keep_the_paragraphs_that_match_the_question(
    tmp_path: Path,
) -> None:
    question = load_questions("hotpotqa", HOTPOT, limit=1)[0]
    scripted = backend([])
    run([question], EvalSettings("hotpotqa", "contexts", reader_k=2), scripted, tmp_path)
    prompt = scripted.calls[0].messages[-1]["content"]
    fed = [p for p in question.passages if f"] {p.title}: " in prompt]
    assert len(fed) == 2
    # In file order the first two would be read; ranked, a supporting paragraph is among them.
    first_two = question.passages[:2]
    assert not any(p.id in question.supporting_ids for p in first_two)
    assert any(p.id in question.supporting_ids for p in fed)
    assert "passages read: 2 of its own, the best by BM25" in (tmp_path / "report.md").read_text()


def test_a_new_corpus_name_pools_the_questions_passages_once(tmp_path: Path) -> None:
    questions = load_questions("hotpotqa", HOTPOT)
    count = pool_corpus("hotpot5", questions)
    distinct = {p.id for q in questions for p in q.passages}
    assert count == len(distinct)
    assert pool_corpus("hotpot5", questions) is None  # already there: left as it is
    with Corpus.open("hotpot5") as corpus:
        assert corpus.info().passages == len(distinct)
        hit = corpus.search(questions[0].question, 1)[0].passage
    assert hit.id in distinct  # the file's ids, which are the eval's passage keys


def test_contexts_mode_needs_passages_and_other_retrievers_wait(tmp_path: Path) -> None:
    plain = tmp_path / "plain.jsonl"
    plain.write_text('{"question": "q", "answer": ["a"]}\n')
    with pytest.raises(UsageError, match="no passages of its own"):
        run(
            load_questions("nq-open", plain),
            EvalSettings("nq-open", "contexts"),
            backend([]),
            tmp_path,
        )
    # ColBERT is a retriever eval may name (tests/skills/research/test_colbert.py runs it).
    assert EvalSettings("nq-open", "corpus", corpus="x", retriever="colbert").retriever == "colbert"
    with pytest.raises(UsageError, match="unknown retriever 'splade'"):
        EvalSettings("nq-open", "corpus", corpus="x", retriever="splade")
