"""HumanEval pass@1 of the coder: single shot (one greedy model call per problem) against the
coder agent (plan, branches, its own tests in the sandbox, judge), on the same problems, with
the same backend and model, in the same run.

Each mode runs as `myninja eval humaneval ... --json` in its own process, both writing to one
folder (so its report.md lists both). Re-running with the same --out resumes and asks nothing
already answered. The agent's tasks land in the task history of MYNINJA_HOME (or the default
data dir): `myninja tasks show ID` has each transcript. Prints JSON.

Reference: Qwen2.5-Coder-1.5B-Instruct, unquantised, single shot: about 70 pass@1 (arXiv
2409.12186). The agent should beat its own single-shot figure.

    python benchmarks/coder.py [--data FILE] [--limit 10] [--backend NAME] [--model NAME]
                               [--out DIR] [--only single-shot|agent]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = (
    Path(os.environ.get("EVAL_DATA") or REPO.parent / "shared" / "eval-data")
    / "dev"
    / "humaneval-dev40.jsonl"
)
MODES = ("single-shot", "agent")


def myninja() -> list[str]:
    script = Path(sys.executable).parent / "myninja"
    return [str(script)] if script.exists() else [sys.executable, "-m", "myninja"]


def run_mode(mode: str, args: argparse.Namespace, out: Path) -> dict:
    command = [
        *myninja(),
        "eval",
        "humaneval",
        "--data",
        str(args.data),
        f"--{mode}",
        "--json",
        "--out",
        str(out),
    ]
    if args.limit:
        command += ["--limit", str(args.limit)]
    if args.backend:
        command += ["--backend", args.backend]
    if args.model:
        command += ["--model", args.model]
    # stderr passes through: warnings and errors show as they come.
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}")
    summary = json.loads(done.stdout)
    return {
        key: summary[key]
        for key in ("count", "passed", "pass_at_1", "seconds_per_problem", "model", "run_id")
    }


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, help="only the first N problems")
    parser.add_argument("--backend", help="a configured backend (default: the coder's)")
    parser.add_argument("--model", help="a model name (default: the coder's)")
    parser.add_argument("--out", type=Path, help="eval.db and report.md (default: a temp dir)")
    parser.add_argument("--only", choices=MODES, help="run one mode")
    args = parser.parse_args()
    args.data = args.data.resolve()  # the runs work in the repo root
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-coder-"))
    results = {mode: run_mode(mode, args, out) for mode in MODES if args.only in (None, mode)}
    single, agent = results.get("single-shot"), results.get("agent")
    report = {
        "data": str(args.data),
        "limit": args.limit,
        **results,
        "out": str(out),
        "report": str(out / "report.md"),
    }
    if single and agent:
        report["agent_over_single_shot"] = {
            "pass_at_1": ratio(agent["pass_at_1"], single["pass_at_1"]),
            "seconds_per_problem": ratio(
                agent["seconds_per_problem"], single["seconds_per_problem"]
            ),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
