"""How a coder branch whose checks failed should try again, on the default model: revising from
the checks' report (`[graph] revise = "feedback"`, with the first branch revising twice before
the others run, as the previous release did) against a fresh sample of its prompt (`revise =
"fresh"`, the first branch not revising: today's default on the embedded backend).

Each mode runs the coder agent on HumanEval dev40 (`myninja eval humaneval --agent`, its own
folder under --out, so a re-run resumes). Then every try of every branch is read back from the
task history (the code each try wrote into its folder) and checked against the problem's
hidden tests in the sandbox. Prints JSON per mode: pass@1, seconds per problem, how many steps
widened, how many branches tried again, and of those how many a later try made right (wrong
first, right later) or made pass their checks.

    python benchmarks/retries.py [--limit N] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.coder import DEFAULT_DATA, myninja  # noqa: E402

MODES = {
    "feedback": {"MYNINJA_GRAPH__REVISE": "feedback", "MYNINJA_GRAPH__FIRST_REVISIONS": "2"},
    "fresh": {"MYNINJA_GRAPH__REVISE": "fresh", "MYNINJA_GRAPH__FIRST_REVISIONS": "0"},
}
# The sandbox's trace names each write of a branch's review "review-AGENT-BRANCH-TRY.N".
REVIEW_CALL = re.compile(r"review-\w+-(s\d+r\d+b\d+)-(\d+)\.")


def run_mode(mode: str, data: Path, out: Path, limit: int | None) -> dict[str, Any]:
    command = [*myninja(), "eval", "humaneval", "--data", str(data), "--agent", "--json"]
    command += ["--out", str(out)] + (["--limit", str(limit)] if limit else [])
    env = {**os.environ, **MODES[mode]}
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}")
    return json.loads(done.stdout)


def history_task(db: sqlite3.Connection, text: str, started: float, ended: float) -> str | None:
    """The task of one eval row: its text, begun within the row's time."""
    row = db.execute(
        "select id from tasks where text = ? and created_at between ? and ? order by created_at",
        (text, started - 1, ended),
    ).fetchone()
    return row[0] if row else None


def tries(db: sqlite3.Connection, task_id: str) -> dict[str, dict[str, Any]]:
    """Per branch: the files each try wrote, and whether its checks passed in the end."""
    branches: dict[str, dict[str, Any]] = {}
    rows = db.execute("select type, data from events where task_id = ? order by seq", (task_id,))
    for kind, data in rows:
        event = json.loads(data)
        if kind == "tool_call" and event["name"] == "write_file":
            found = REVIEW_CALL.match(event["call_id"])
            if found:
                branch = branches.setdefault(found.group(1), {"tries": {}})
                files = branch["tries"].setdefault(int(found.group(2)), {})
                files[event["arguments"]["path"]] = event["arguments"]["content"]
        elif kind == "branch_done":
            checks = event.get("checks") or []
            branch = branches.setdefault(event["branch_id"], {"tries": {}})
            branch["passed_checks"] = bool(checks) and all(c["passed"] is not False for c in checks)
    return branches


def analyse(data: Path, out: Path, limit: int | None, run_id: str) -> dict[str, Any]:
    from myninja import paths
    from myninja.agent_graph.evals import humaneval

    problems = {p.task_id: p for p in humaneval.load_problems(data, limit)}
    runs = sqlite3.connect(out / "eval.db")
    history = sqlite3.connect(paths.data_dir() / "history.db")
    rows = runs.execute(
        "select task_id, passed, seconds, created_at from humaneval_results where run_id = ?"
        " order by created_at",
        (run_id,),
    ).fetchall()
    counts = {"widened": 0, "tried_again": 0, "made_right": 0, "made_to_pass_checks": 0}
    missing = 0
    for problem_id, _, seconds, ended in rows:
        if problem_id not in problems:
            continue
        problem = problems[problem_id]
        text = humaneval.agent_task(problem)
        task_id = history_task(history, text, ended - seconds, ended)
        if task_id is None:
            missing += 1
            continue
        branches = tries(history, task_id)
        counts["widened"] += len(branches) > 1
        for branch in branches.values():
            if len(branch["tries"]) < 2:
                continue
            counts["tried_again"] += 1
            counts["made_to_pass_checks"] += bool(branch.get("passed_checks"))
            right = [
                _right(humaneval, problem, files) for _, files in sorted(branch["tries"].items())
            ]
            counts["made_right"] += not right[0] and any(right[1:])
    return {**counts, "tasks_not_in_history": missing}


def _last_run(out: Path) -> dict[str, Any]:
    """The figures of the newest run in a folder, as `myninja eval --json` gives them."""
    from myninja.agent_graph.evals import humaneval

    runs = sqlite3.connect(out / "eval.db")
    runs.row_factory = sqlite3.Row
    (run_id,) = runs.execute(
        "select run_id from humaneval_runs order by created_at desc limit 1"
    ).fetchone()
    rows = runs.execute(
        "select passed, seconds from humaneval_results where run_id = ?", (run_id,)
    ).fetchall()
    return {"run_id": run_id, **humaneval.figures(rows)}


def _right(humaneval: Any, problem: Any, files: dict[str, str]) -> bool:
    code = next((c for c in files.values() if f"def {problem.entry_point}" in c), None)
    if code is None:
        return False
    program = humaneval.completion_program(problem, f"```python\n{code}\n```")
    return humaneval.check(problem, program)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, help="only the first N problems")
    parser.add_argument("--out", type=Path, help="a folder per mode (default: a temp dir)")
    parser.add_argument(
        "--analyse-only", action="store_true", help="read the runs already in --out, run none"
    )
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-retries-"))
    data = args.data.resolve()
    report: dict[str, Any] = {"data": str(data), "limit": args.limit}
    for mode in MODES:
        summary = (
            _last_run(out / mode)
            if args.analyse_only
            else run_mode(mode, data, out / mode, args.limit)
        )
        report[mode] = {
            **{k: summary[k] for k in ("count", "passed", "pass_at_1", "seconds_per_problem")},
            **analyse(data, out / mode, args.limit, summary["run_id"]),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
