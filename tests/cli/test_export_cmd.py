"""`myninja feedback` and `myninja export sft|orpo|tasks` on a history built by running real
tasks through the graph on a scripted backend (route, plan, three branches, judge), then
rating and editing them as a person would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.agent_graph.scripts import ALTERNATIVE, CAREFUL, DIRECT, judge
from tests.conftest import run_myninja

FILE_STORE = {"MYNINJA_KEYS__STORE": "file"}
API_KEY = "sk-proj-Q7wE9rT2yU4iO6pA8sD0fG1h"
STORE_SECRET = "pl4nted-store-s3cret"

# (key, agent, task text, judge scores of the three branches); the key is a phrase only that
# task contains, so the script can answer each task's branches differently.
TASKS = [
    ("the autumn", "writer", "Write a haiku about the autumn leaves.", (8, 7, 7)),
    ("autumn", "writer", "Write a haiku about autumn leaves", (9, 6, 2)),
    ("adds two", "coder", "Write a Python function that adds two numbers", (9, 8, 8)),
    ("please", "coder", "reverse a string in python, please!", (7, 6, 6)),
    ("Reverse a", "coder", "Reverse a string in Python", (6, 5, 5)),
    ("bob@", "writer", f"Draft a note to bob@example.com with the key {API_KEY}", (8, 8, 8)),
    ("itinerary", "writer", "Plan a trip itinerary for Rome", (9, 5, 1)),
]


def reply(key: str, letter: str) -> str:
    if key == "bob@":  # the answer repeats the e-mail address and the key
        return f"Hi bob@example.com, the key is {API_KEY}, version {letter}"
    return f"{key} answer {letter}"


def script() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = [
        {
            "match": r"Task to plan.*itinerary",
            "json": {
                "steps": [
                    {"title": "Outline", "instruction": "List the stops."},
                    {"title": "Write", "instruction": "Write the day-by-day plan."},
                ]
            },
        },
        {"match": r"Task to plan", "json": {"steps": [{"title": "Do", "instruction": "Do it."}]}},
    ]
    for key, _, _, scores in TASKS:  # judge rules first: the judge's prompt names the task too
        rules += [judge(reply(key, x), s) for x, s in zip("ABC", scores, strict=True)]
    for key, _, _, _ in TASKS:
        rules += [
            {"match": rf"{key}.*Attempt 1\. {style}", "reply": reply(key, x)}
            for style, x in zip((DIRECT, CAREFUL, ALTERNATIVE), "ABC", strict=True)
        ]
    return rules


def setup_home(home: Path) -> None:
    (home / "script.json").write_text(json.dumps({"rules": script()}))
    agents = "".join(
        f'[agents.{a}]\nbackend = "s"\n'
        for a in ("writer", "coder", "judge", "router", "advisor", "researcher")
    )
    (home / "config.toml").write_text(
        f'[keys]\nstore = "file"\n[graph]\nadaptive = false\njudge = "each"\n'
        f'[backends.s]\ntype = "scripted"\n'
        f'script = "{home / "script.json"}"\n{agents}'
        '[backends.embedded]\nmodel = "smollm2-135m"\n'  # its tokenizer counts the tokens
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The history: seven tasks run, then rated and edited."""
    home = tmp_path_factory.mktemp("export-home")
    setup_home(home)
    env = {"MYNINJA_HOME": str(home), **FILE_STORE}
    ids = {}
    for key, agent, text, _ in TASKS:
        done = run_myninja("ask", f"@{agent} {text}", "--json", env=env)
        assert done.returncode == 0, done.stderr
        last = json.loads(done.stdout.splitlines()[-1])
        assert last["type"] == "task_done", last
        ids[key] = last["task_id"]
    edited = home / "edited.md"
    edited.write_text(f"Hello Bob (bob@example.com), the token is {STORE_SECRET}.\n")

    def feedback(key: str, *args: str) -> None:
        done = run_myninja("feedback", ids[key], *args, env=env)
        assert done.returncode == 0, done.stderr

    feedback("autumn", "--good", "--note", "lovely")
    feedback("the autumn", "--good")
    feedback("please", "--good")
    feedback("Reverse a", "--bad", "--note", "wrong language")
    feedback("bob@", "--good")
    feedback("bob@", "--edit", str(edited))
    keys = run_myninja("keys", "set", "s", env=env, input=STORE_SECRET + "\n")
    assert keys.returncode == 0, keys.stderr
    return {"home": home, "env": env, "ids": ids}


def export(built: dict[str, Any], *args: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    out = built["home"] / f"{args[0]}-{abs(hash(args))}.jsonl"
    done = run_myninja("export", *args, "--out", str(out), "--json", env=built["env"])
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    return records, json.loads(done.stdout)


def by_text(text: str) -> str:
    return next(t for _, _, t, _ in TASKS if t == text)


def test_sft_has_one_record_per_good_task_and_none_from_bad_ones(built: dict[str, Any]) -> None:
    records, summary = export(built, "sft")
    users = [next(m["content"] for m in r["messages"] if m["role"] == "user") for r in records]
    assert users == [
        "Write a haiku about autumn leaves",  # rated good; its near-duplicate is left out
        "Write a Python function that adds two numbers",  # unrated, judged 9 >= 8
        "reverse a string in python, please!",  # rated good
        "Draft a note to [email] with the key [REDACTED]",  # rated good, then edited
        "Plan a trip itinerary for Rome",  # unrated, judged 9 at both steps
    ]
    assert "Reverse a string in Python" not in users  # rated bad
    assert summary["near_duplicates_dropped"] == 1
    haiku = records[0]["messages"]
    assert [m["role"] for m in haiku] == ["system", "user", "assistant"]
    assert "You are the writer" in haiku[0]["content"]
    assert haiku[2]["content"] == "autumn answer A"  # the branch the judge kept
    assert "You are the coder" in records[1]["messages"][0]["content"]
    assert records[3]["messages"][2]["content"] == (
        "Hello Bob ([email]), the token is [REDACTED].\n"  # the edit is the target
    )
    assert summary["agents"]["writer"]["records"] == 3
    assert summary["agents"]["coder"]["records"] == 2
    assert summary["total"]["completion_tokens"] > 0


def test_orpo_pairs_come_from_edits_ratings_and_the_judge(built: dict[str, Any]) -> None:
    records, summary = export(built, "orpo", "--format", "text")
    pairs = {(r["prompt"], r["chosen"], r["rejected"]) for r in records}
    masked_key = "Hi [email], the key is [REDACTED]"
    assert pairs == {
        # edit: the person's version over the original
        (
            "Draft a note to [email] with the key [REDACTED]",
            "Hello Bob ([email]), the token is [REDACTED].\n",
            f"{masked_key}, version A",
        ),
        # rating: the good answer over the bad one to the near-duplicate prompt
        ("reverse a string in python, please!", "please answer A", "Reverse a answer A"),
        # judge: best over worst when 9 - 2 >= 3 (the near-duplicate's 8 - 7 is not)
        ("Write a haiku about autumn leaves", "autumn answer A", "autumn answer C"),
        # judge, two steps of one plan: each step is its own prompt
        (
            "Plan a trip itinerary for Rome\n\nStep 1 of 2: Outline. List the stops.",
            "itinerary answer A",
            "itinerary answer C",
        ),
        (
            "Plan a trip itinerary for Rome\n\nStep 2 of 2: Write. Write the day-by-day plan.",
            "itinerary answer A",
            "itinerary answer C",
        ),
    }
    sources = {k: summary["total"].get(f"from_{k}", 0) for k in ("edit", "rating", "judge")}
    assert sources == {"edit": 1, "rating": 1, "judge": 3}


def test_a_smaller_gap_adds_the_closer_branches(built: dict[str, Any]) -> None:
    records, _ = export(built, "orpo", "--format", "text", "--min-gap", "1")
    prompts = [r["prompt"] for r in records]
    assert "Write a Python function that adds two numbers" in prompts  # 9 - 8 = 1
    assert prompts.count("Write a haiku about autumn leaves") == 1  # near-duplicates still once


def test_chat_format_carries_the_persona(built: dict[str, Any]) -> None:
    records, _ = export(built, "orpo", "--agent", "coder")
    assert len(records) == 1  # only the coder's rating pair
    record = records[0]
    assert [m["role"] for m in record["prompt"]] == ["system", "user"]
    assert "You are the coder" in record["prompt"][0]["content"]
    assert record["chosen"] == [{"role": "assistant", "content": "please answer A"}]
    assert record["rejected"] == [{"role": "assistant", "content": "Reverse a answer A"}]


def test_no_secret_ever_leaves_and_emails_only_with_keep_emails(built: dict[str, Any]) -> None:
    texts = []
    for kind in ("sft", "orpo"):
        for extra in ((), ("--keep-emails",)):
            out = built["home"] / f"secret-{kind}-{len(extra)}.jsonl"
            done = run_myninja("export", kind, "--out", str(out), *extra, env=built["env"])
            assert done.returncode == 0, done.stderr
            texts.append((extra, out.read_text() + done.stdout + done.stderr))
    people = run_myninja("export", "tasks", "--format", "json", env=built["env"])
    texts.append(((), people.stdout))
    for extra, text in texts:
        assert API_KEY not in text and STORE_SECRET not in text
        assert ("bob@example.com" in text) == bool(extra)


def test_the_exports_load_with_datasets(built: dict[str, Any]) -> None:
    datasets = pytest.importorskip("datasets")
    sft_out = built["home"] / "ds-sft.jsonl"
    orpo_out = built["home"] / "ds-orpo.jsonl"
    for kind, out in (("sft", sft_out), ("orpo", orpo_out)):
        done = run_myninja("export", kind, "--out", str(out), env=built["env"])
        assert done.returncode == 0, done.stderr
    sft = datasets.load_dataset("json", data_files=str(sft_out), split="train")
    orpo = datasets.load_dataset("json", data_files=str(orpo_out), split="train")
    assert sft.num_rows == 5 and sft.column_names == ["messages"]
    assert orpo.num_rows == 5 and sorted(orpo.column_names) == ["chosen", "prompt", "rejected"]
    assert orpo[0]["prompt"][0]["role"] == "system"


def test_since_and_the_summary_table(built: dict[str, Any]) -> None:
    out = built["home"] / "later.jsonl"
    later = run_myninja(
        "export", "sft", "--out", str(out), "--since", "2999-01-01", env=built["env"]
    )
    assert later.returncode == 0, later.stderr
    assert out.read_text() == ""
    assert "Nothing to export yet" in later.stdout
    table = run_myninja("export", "sft", "--out", str(out), env=built["env"]).stdout
    assert "Wrote 5 records" in table
    assert any(line.split()[:2] == ["writer", "3"] for line in table.splitlines())
    assert "Tokens counted with the smollm2-135m tokenizer" in table


def test_tasks_export_for_people(built: dict[str, Any]) -> None:
    md = run_myninja("export", "tasks", env=built["env"])
    assert md.returncode == 0, md.stderr
    assert md.stdout.startswith("# myninja tasks (7)")
    assert "## Reverse a string in Python" in md.stdout
    assert "rated bad" in md.stdout and "_Note:_ wrong language" in md.stdout
    assert "Answer as edited by you" in md.stdout
    out = built["home"] / "tasks.json"
    done = run_myninja("export", "tasks", "--format", "json", "--out", str(out), env=built["env"])
    tasks = json.loads(out.read_text())
    assert "Wrote 7 tasks" in done.stderr
    assert {t["rating"] for t in tasks} == {"good", "bad", None}
    assert (
        next(t for t in tasks if t["task"].startswith("Write a haiku about autumn"))["judged_score"]
        == 9
    )


def test_mistakes_are_one_line_and_write_nothing(built: dict[str, Any], tmp_path: Path) -> None:
    env = built["env"]
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    cases = [
        (("export", "sft", "--out", str(tmp_path / "no" / "such" / "dir.jsonl")), "does not exist"),
        (("export", "sft", "--out", str(tmp_path)), "it is a folder"),
        (("export", "sft", "--out", "x.jsonl", "--since", "yesterday"), "Invalid value"),
        (("feedback", built["ids"]["autumn"], "--note", "just a note"), "nothing to record"),
        (("feedback", "t_nosuchtask", "--good"), "no task"),
        # A name longer than the file system allows is the person's to shorten, in one line.
        (("export", "sft", "--out", str(tmp_path / ("a" * 5000))), "File name too long"),
        (("export", "tasks", "--out", str(tmp_path / ("a" * 5000))), "give a shorter path"),
    ]
    for args, expected in cases:
        done = run_myninja(*args, env=env)
        assert done.returncode == 2, (args, done.stderr)
        assert expected in done.stderr and "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []
