"""The researcher from the command line, as the README shows it: index a folder, ask, get an
answer with its sources; on a scripted backend and once on the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import TINY_MODEL, TINY_THREADS, run_myninja, scripted_config

FACT = "The Vellmar bridge over the Kessa river opened in 1911 and is 212 metres long."
OTHER = "Kessa is a slow river; its delta is a bird reserve."


@pytest.fixture
def papers(tmp_path: Path) -> Path:
    folder = tmp_path / "papers"
    folder.mkdir()
    (folder / "bridge.md").write_text(f"# Vellmar bridge\n\n{FACT}\n")
    (folder / "river.txt").write_text(OTHER + "\n")
    indexed = run_myninja("index", "add", "papers", str(folder))
    assert indexed.returncode == 0, indexed.stderr
    return folder


def test_ask_the_researcher_prints_the_answer_with_its_sources(
    myninja_home: Path, papers: Path
) -> None:
    scripted_config(
        myninja_home,
        [
            {"match": "SEARCH: <a short", "reply": "SEARCH: NONE"},
            {"match": "Candidate:", "json": {"score": 8, "reasons": "cited"}},
            {"match": "Attempt 1", "reply": 'It opened in 1911 [1], "212 metres long" [1].'},
        ],
    )
    env = {"MYNINJA_RESEARCH__RETRIEVER": "bm25", "MYNINJA_GRAPH__BRANCHES": "1"}
    done = run_myninja("ask", "@researcher When did the Vellmar bridge open?", env=env)
    assert done.returncode == 0, done.stderr
    answer, sources = done.stdout.split("**Sources**")
    assert answer.strip() == 'It opened in 1911 [1], "212 metres long" [1].'
    assert sources.strip().startswith(f"[1] Vellmar bridge — {papers / 'bridge.md'}")
    listed = run_myninja("tasks", "search", "Kessa", "--json")  # a cited passage's words
    assert listed.returncode == 0 and len(json.loads(listed.stdout)) == 1


@pytest.mark.slow
def test_the_researcher_on_the_tiny_model_cites_only_what_was_retrieved(papers: Path) -> None:
    env = {
        "MYNINJA_BACKENDS__EMBEDDED__MODEL": TINY_MODEL,
        "MYNINJA_BACKENDS__EMBEDDED__THREADS": str(TINY_THREADS),
        "MYNINJA_GRAPH__BRANCHES": "2",
        "MYNINJA_GRAPH__MAX_STEPS": "1",
        "MYNINJA_AGENTS__RESEARCHER__MAX_TOKENS": "48",
        "MYNINJA_RESEARCH__RETRIEVER": "bm25",
    }
    done = run_myninja("ask", "@researcher How long is the Vellmar bridge?", "--json", env=env)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    retrieved = [e for e in events if e["type"] == "retrieved"]
    assert retrieved[0]["hop"] == 1 and FACT in retrieved[0]["passages"][0]["text"]
    (checked,) = [e for e in events if e["type"] == "citations"]
    answer = events[-1]["answer"]
    # Whatever the small model wrote, what is left cites only passages this task retrieved,
    # numbered from 1 in the list under the answer.
    found = {p["text"] for e in retrieved for p in e["passages"]}
    assert all(source["text"] in found for source in checked["sources"])
    assert [s["n"] for s in checked["sources"]] == list(range(1, len(checked["sources"]) + 1))
    for source in checked["sources"]:
        assert f"[{source['n']}] " in answer
