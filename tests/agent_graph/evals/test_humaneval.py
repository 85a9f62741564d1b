"""HumanEval: code cut out of crafted chat replies, completions checked in the sandbox, and the
single-shot evaluation end to end on a scripted backend (resumable) and through the CLI."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from myninja.agent_graph.evals.humaneval import (
    HumanEvalSettings,
    Problem,
    check,
    completion_program,
    extract_code,
    load_problems,
    run_humaneval,
)
from myninja.backends.scripted import Rule, ScriptedBackend
from myninja.errors import UsageError
from tests.conftest import TINY_MODEL, TINY_THREADS, run_myninja, scripted_config

DATA = "tests/fixtures/humaneval-dev3.jsonl"
FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "humaneval-dev3.jsonl"


@pytest.fixture(scope="module")
def problems() -> list[Problem]:
    return load_problems(FIXTURE)


def by_entry(problems: list[Problem], name: str) -> Problem:
    return next(p for p in problems if p.entry_point == name)


def whole_function(problem: Problem) -> str:
    return problem.prompt.lstrip() + problem.canonical_solution


def canonical_rules(problems: list[Problem]) -> list[dict[str, object]]:
    """The canonical solution for the first two problems, garbage for the third."""
    rules: list[dict[str, object]] = [
        {"match": rf"def {p.entry_point}\(", "reply": f"```python\n{whole_function(p)}```"}
        for p in problems[:2]
    ]
    rules.append({"match": rf"def {problems[2].entry_point}\(", "reply": "I cannot do this."})
    return rules


# -- loading ---------------------------------------------------------------------------------


def test_load_problems_reads_the_fields_in_order(problems: list[Problem]) -> None:
    assert [p.task_id for p in problems] == ["HumanEval/0", "HumanEval/2", "HumanEval/53"]
    assert problems[0].entry_point == "has_close_elements"
    assert "def check(candidate)" in problems[0].test
    assert len(load_problems(FIXTURE, limit=2)) == 2


def test_a_file_that_is_not_humaneval_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "qa.jsonl"
    bad.write_text(json.dumps({"question": "who?", "answers": ["me"]}) + "\n")
    with pytest.raises(UsageError, match=r"qa\.jsonl:1: not a HumanEval row \(missing task_id"):
        load_problems(bad)


# -- extracting code -------------------------------------------------------------------------

FUNCTION = "def add(x: int, y: int) -> int:\n    return x + y\n"


def test_extracts_a_fenced_block_among_prose() -> None:
    reply = f"Sure! Here is the function:\n\n```python\n{FUNCTION}```\n\nIt adds the numbers."
    assert extract_code(reply, "add") == FUNCTION


def test_extracts_an_unfenced_function_between_prose() -> None:
    reply = f"Here is my solution.\n\n{FUNCTION}\nThis returns the sum of x and y."
    assert extract_code(reply, "add") == FUNCTION


def test_a_reply_that_is_only_code_is_kept_whole() -> None:
    reply = f"import math\n\n\n{FUNCTION}"
    assert extract_code(reply, "add") == reply


def test_picks_the_block_that_defines_the_entry_point_after_helper_blocks() -> None:
    reply = (
        "First a helper:\n```python\ndef double(v):\n    return 2 * v\n\nprint(double(4))\n```\n"
        "Example output:\n```\n8\n```\n"
        "Then the function:\n```py\ndef add(x, y):\n    return double(x) // 2 + y\n```\n"
    )
    code = extract_code(reply, "add")
    # The helper's definition comes along, its example call does not.
    assert (
        code
        == "def double(v):\n    return 2 * v\n\ndef add(x, y):\n    return double(x) // 2 + y\n"
    )


def test_a_usage_block_importing_the_models_own_file_is_left_out() -> None:
    # The coder saves its answer as solution.py and shows how to use it: that import has
    # nothing to import where the answer is checked. Imports that exist stay.
    reply = (
        "```python\nimport math\n\ndef add(x, y):\n    return math.floor(x) + y\n```\n"
        "To use it:\n```python\nimport json\nfrom solution import add\nimport solution\n"
        "print(add(1, 2))\n```\n"
    )
    code = extract_code(reply, "add")
    assert "solution" not in code
    assert code.startswith("import json\n\nimport math\n")


def test_an_unclosed_fence_runs_to_the_end_of_the_reply() -> None:
    reply = "```python\ndef add(x, y):\n    return x + y"
    assert extract_code(reply, "add") == "def add(x, y):\n    return x + y"


def test_a_reply_cut_mid_line_keeps_the_lines_that_parse() -> None:
    reply = "```python\ndef add(x, y):\n    return x + y\n\nprint(add(1, 2), 'the su"
    assert extract_code(reply, "add") == "def add(x, y):\n    return x + y\n"


def test_the_program_keeps_the_prompts_imports_and_drops_examples(
    problems: list[Problem],
) -> None:
    problem = by_entry(problems, "has_close_elements")
    reply = (
        "```python\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
        "    return any(abs(a - b) < threshold for i, a in enumerate(numbers)"
        " for b in numbers[i + 1:])\n\n"
        "assert has_close_elements([1.0], 0.5) is True  # a wrong example of the model's\n"
        "if __name__ == '__main__':\n    print(has_close_elements([1.0, 2.0], 0.5))\n```"
    )
    program = completion_program(problem, reply)
    assert program.startswith("from typing import List\n")  # from the prompt: List resolves
    assert "assert has_close_elements([1.0]" not in program and "__main__" not in program
    assert check(problem, program) == (True, "passed")


def test_a_body_only_completion_is_appended_to_the_prompt(problems: list[Problem]) -> None:
    problem = by_entry(problems, "add")
    assert (
        completion_program(problem, "    return x + y\n") == problem.prompt + "    return x + y\n"
    )
    # Written flush left, it is indented into the function.
    assert completion_program(problem, "return x + y") == problem.prompt + "    return x + y\n"


# -- checking in the sandbox -----------------------------------------------------------------


@pytest.mark.slow
def test_the_canonical_solutions_pass(problems: list[Problem]) -> None:
    for problem in problems:
        program = completion_program(problem, f"```python\n{whole_function(problem)}```")
        assert check(problem, program) == (True, "passed"), problem.task_id
        assert check(problem, problem.prompt + problem.canonical_solution) == (True, "passed")


@pytest.mark.slow
def test_a_wrong_solution_fails_naming_the_assertion(problems: list[Problem]) -> None:
    problem = by_entry(problems, "truncate_number")
    passed, detail = check(problem, problem.prompt + "    return number\n")
    assert not passed
    assert "assert candidate(3.5) == 0.5" in detail
    assert detail.endswith("AssertionError")


@pytest.mark.slow
def test_an_endless_loop_fails_by_wall_time(problems: list[Problem]) -> None:
    problem = by_entry(problems, "add")
    assert check(problem, problem.prompt + "    while True:\n        pass\n") == (
        False,
        "timed out after 10 s (wall time)",
    )


# -- the evaluation --------------------------------------------------------------------------


@pytest.mark.slow
async def test_single_shot_scores_and_resumes_without_asking_again(
    problems: list[Problem], tmp_path: Path
) -> None:
    backend = ScriptedBackend("embedded", [Rule(**r) for r in canonical_rules(problems)])  # type: ignore[arg-type]
    settings = HumanEvalSettings(mode="single-shot", model_label="scripted")
    out = tmp_path / "out"
    summary = await run_humaneval(problems, settings, out=out, backend=backend)
    assert summary["count"] == 3 and summary["passed"] == 2 and summary["pass_at_1"] == 66.67
    assert summary["answered"] == 3 and summary["skipped"] == 0
    assert summary["seconds_per_problem"] > 0
    (request, *_) = backend.calls
    assert request.temperature == 0.0 and request.max_tokens == 512
    assert request.messages[0]["content"].startswith("Complete the Python function.")
    assert "def has_close_elements(" in request.messages[1]["content"]

    with sqlite3.connect(out / "eval.db") as db:
        rows = db.execute("SELECT task_id, passed FROM humaneval_results ORDER BY task_id")
        assert rows.fetchall() == [("HumanEval/0", 1), ("HumanEval/2", 1), ("HumanEval/53", 0)]
    report = (out / "report.md").read_text()
    assert "| single-shot | 3 | 2 | 66.67 |" in report
    assert "| HumanEval/53 | no |" in report

    again = ScriptedBackend("embedded", [])
    resumed = await run_humaneval(problems, settings, out=out, backend=again)
    assert again.calls == []
    assert resumed["answered"] == 0 and resumed["skipped"] == 3
    assert resumed["pass_at_1"] == 66.67 and resumed["run_id"] == summary["run_id"]


@pytest.mark.slow
async def test_agent_mode_checks_what_submit_answers(
    problems: list[Problem], tmp_path: Path
) -> None:
    asked: list[str] = []

    async def submit(text: str) -> str:
        asked.append(text)
        problem = next(p for p in problems if f"def {p.entry_point}(" in text)
        return f"Tested it.\n```python\n{whole_function(problem)}```"

    settings = HumanEvalSettings(mode="agent", model_label="scripted")
    summary = await run_humaneval(problems[:2], settings, out=tmp_path, submit=submit)
    assert summary["pass_at_1"] == 100.0 and summary["mode"] == "agent"
    assert asked[0].startswith(
        "Complete this function; test it; reply with the whole function in a python block."
    )
    assert settings.run_id() != HumanEvalSettings(model_label="scripted").run_id()


def test_new_branch_prompts_make_a_new_agent_run(monkeypatch: pytest.MonkeyPatch) -> None:
    from myninja.agent_graph.evals import humaneval as module

    agent = HumanEvalSettings(mode="agent", model_label="m")
    single = HumanEvalSettings(model_label="m")
    before = agent.run_id(), single.run_id()
    restyled = (("direct", 0.2, "Answer in one word."), *module.BRANCH_STYLES[1:])
    monkeypatch.setattr(module, "BRANCH_STYLES", restyled)
    assert agent.run_id() != before[0]
    assert single.run_id() == before[1]  # one greedy call: the branches play no part


# -- the CLI ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_cli_prints_pass_at_1(myninja_home: Path, problems: list[Problem]) -> None:
    scripted_config(myninja_home, canonical_rules(problems))
    done = run_myninja("eval", "humaneval", "--data", DATA, "--single-shot")
    assert done.returncode == 0, done.stderr
    assert "humaneval (single-shot), scripted: 3 problems" in done.stdout
    assert "pass@1                66.67" in done.stdout
    again = run_myninja("eval", "humaneval", "--data", DATA, "--limit", "2", "--json")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["count"] == 2 and summary["pass_at_1"] == 100.0 and summary["answered"] == 0
    assert summary["out"] == str(myninja_home / "data" / "evals" / "humaneval")


@pytest.mark.slow
def test_single_shot_on_the_tiny_model(myninja_home: Path) -> None:
    # The real embedded backend once: whatever a 135M model writes is cut out, checked and
    # kept. Its pass@1 is not the point; 48 tokens keep it short on two cores.
    tiny = {
        "MYNINJA_BACKENDS__EMBEDDED__MODEL": TINY_MODEL,
        "MYNINJA_BACKENDS__EMBEDDED__THREADS": str(TINY_THREADS),
    }
    args = ("eval", "humaneval", "--data", DATA, "--limit", "1", "--max-tokens", "48", "--json")
    done = run_myninja(*args, env=tiny)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["model"] == TINY_MODEL and summary["count"] == 1
    assert summary["pass_at_1"] in (0.0, 100.0)
    with sqlite3.connect(Path(summary["db"])) as db:
        ((reply, program, detail),) = db.execute(
            "SELECT reply, program, detail FROM humaneval_results"
        ).fetchall()
    assert reply and program.startswith("from typing import List") and detail


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("humaneval", "--contexts"), "--contexts does not apply to humaneval"),
        (("humaneval", "--k", "5"), "--k does not apply to humaneval"),
        (("humaneval", "--agent", "--single-shot"), "choose one of --single-shot, --agent"),
        (("nq-open", "--agent", "--contexts"), "--agent does not apply to nq-open"),
    ],
)
def test_options_of_the_other_kind_of_eval_are_usage_errors(
    myninja_home: Path, args: tuple[str, ...], message: str
) -> None:
    scripted_config(myninja_home, [])
    done = run_myninja("eval", args[0], "--data", DATA, *args[1:])
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
