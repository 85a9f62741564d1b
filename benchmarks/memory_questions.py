"""Memory on the default model: a scheduler task asked twice asks for the time zone only once.

In a fresh MYNINJA_HOME (default config but for the model path, threads and `--branches`), with
TZ=UTC (`--tz`: a machine on UTC does not tell the scheduler the person's zone, so the first run
must ask for it, before its branches; agent_graph/needs.py), the
same scheduler task runs `--runs` times through `myninja ask --json`, one after another. Every
question a run asks is answered through `myninja answer` (a time-zone question with
"Europe/Berlin", any other with `--other-answer`), and after each run every proposed memory is
confirmed (`myninja memory confirm`), as a person saying yes would. Counted per run: questions,
time-zone questions, `memory_answered` events, the `plan` event's memory ids, exit code and
wall time, the "ASK: …" lines the model wrote (a branch drops some before they reach the
person: asking the task or its own instructions back, or a fact), and whether the answer names
the person's zone (Berlin, CET/CEST) or another one (an invented "Eastern Time"). Prints JSON;
the target: the first run asks for the time zone exactly once, every later run never.

    python benchmarks/memory_questions.py [--model PATH.gguf] [--threads 2] [--runs 2]
        [--branches N] [--task TEXT] [--tz UTC] [--timeout 1200] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TASK = "@scheduler Set up the weekly team meeting on Mondays at 10:00 and send the invite."
ZONE = re.compile(r"time ?zone|timezone|where are you|located|which city|your location", re.I)
# The person's zone as an answer names it, and zones a model invents in its place.
BERLIN = re.compile(r"Berlin|\bCES?T\b|Central European", re.I)
OTHER_ZONE = re.compile(
    r"Eastern|Pacific|Mountain|Central (?:Standard|Daylight|Time)|\b[ECMP][SD]T\b|\bUTC\b|GMT", re.I
)
EXTRA_ENV = {"TZ": "UTC"}  # the machine's zone as the runs see it (--tz)
DEFAULT_MODEL = Path.home() / ".local/share/myninja/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"


def myninja(home: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MYNINJA_HOME": str(home), "OMP_WAIT_POLICY": "PASSIVE", **EXTRA_ENV}
    return subprocess.run(
        [sys.executable, "-m", "myninja", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )


def events(done: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    out = []
    for line in done.stdout.splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def one_run(home: Path, args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    done = myninja(home, "ask", args.task, "--json", timeout=args.timeout)
    seen = events(done)
    task_id = next((e["task_id"] for e in seen if "task_id" in e), None)
    asked: list[str] = []
    for _ in range(6):  # a run that keeps asking is cut off
        if done.returncode != 3 or task_id is None:
            break
        questions = [e for e in events(done) if e["type"] == "question"]
        answered = {e["question_id"] for e in seen if e["type"] == "question_answered"}
        question = next((q for q in questions if q["question_id"] not in answered), None)
        if question is None:
            break
        asked.append(question["text"])
        reply = "Europe/Berlin" if ZONE.search(question["text"]) else args.other_answer
        done = myninja(
            home, "answer", task_id, question["question_id"], reply, "--json", timeout=args.timeout
        )
        seen += events(done)
    proposed = [
        json.loads(line)
        for line in myninja(home, "memory", "list", "--json", timeout=60).stdout.splitlines()
    ]
    for memory in proposed:
        if memory["status"] == "proposed":
            myninja(home, "memory", "confirm", str(memory["id"]), timeout=60)
    plan = next((e for e in seen if e["type"] == "plan"), {})
    # What the model wrote, questions the branch dropped before they reached the person included
    # (asking its own instructions back, a fact, the task back): "ASK: …" lines in its tokens.
    streamed = "".join(e.get("text", "") for e in seen if e["type"] == "token")
    written = re.findall(r"ASK:\s*([^\n?]*\??)", streamed)
    last = seen[-1] if seen else {}
    answer = last.get("answer") or ""
    return {
        "task_id": task_id,
        "exit_code": done.returncode,
        "wall_s": round(time.monotonic() - started, 1),
        "questions": asked,
        "zone_questions": sum(bool(ZONE.search(q)) for q in asked),
        "asks_written": written,
        "zone_asks_written": sum(bool(ZONE.search(q)) for q in written),
        "answered_from_memory": [
            {"memory_id": e["memory_id"], "question": e["question"]}
            for e in seen
            if e["type"] == "memory_answered"
        ],
        "plan_memories": plan.get("memories"),
        "memories_after": [m["text"] for m in proposed],
        "answer_names_berlin": bool(BERLIN.search(answer)),
        "answer_names_other_zone": bool(OTHER_ZONE.search(answer)),
        "answer": (answer or last.get("error") or "")[:300],
        "stderr_tail": done.stderr.strip().splitlines()[-1:]
        if done.returncode not in (0, 3)
        else [],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--task", default=TASK)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--branches", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=1200)
    parser.add_argument("--tz", default="UTC", help="the machine's TZ the runs see (default UTC)")
    parser.add_argument("--other-answer", default="Use your best judgement.")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    EXTRA_ENV["TZ"] = args.tz
    with tempfile.TemporaryDirectory(prefix="memory-questions-") as tmp:
        home = Path(tmp)
        config = (
            f'[backends.embedded]\ntype = "embedded"\nmodel = "{args.model}"\n'
            f"threads = {args.threads}\n"
        )
        if args.branches:
            config += f"[graph]\nbranches = {args.branches}\n"
        (home / "config.toml").write_text(config)
        runs = []
        for n in range(args.runs):
            runs.append(one_run(home, args))
            print(f"run {n + 1}: {json.dumps(runs[-1])[:400]}", file=sys.stderr)
    zone = [r["zone_questions"] for r in runs]
    result = {
        "task": args.task,
        "model": str(args.model),
        "runs": runs,
        "tz": args.tz,
        "zone_questions_per_run": zone,
        "target_met": bool(zone) and zone[0] == 1 and all(z == 0 for z in zone[1:]),
        "inconclusive": not zone or zone[0] == 0,  # the first run never asked for the zone
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "memory_questions.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
