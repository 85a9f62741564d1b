"""Everyday tasks: `myninja ask` with its default config vs one plain chat call on the same model.

For each task of benchmarks/data/everyday.jsonl (facts, arithmetic, conversions, definitions,
snippets, short e-mails, quick tips, date questions), in alternation:

- ours: `myninja ask TEXT --json` in a fresh process, default config but for MYNINJA_HOME (one
  temp dir for the whole run, so the model is assembled once), --model and --threads; stdin
  is /dev/null. Taken from its events: exit code, the `task_done` answer, wall time, time to
  the first `token` event, `replan` and `question` events, the `routed` event, and whether the
  answer has a `[n]` mark while no `citations` event listed a source (a dangling citation).
- plain: one `llama_cpp.Llama.create_chat_completion` call (stream, temperature 0.2, 1024
  tokens, seed 0) on the same GGUF, threads and prompt, in a fresh process.

Both answers are scored with the task's check (`check(answer, spec)` in everyday_checks.py;
the python check runs the answer's code in a `python -I` subprocess). Wall and first-token
times count from the process's launch. Prints JSON: correct counts, median/p90 wall, median
first token, ours' replans, questions, exit codes, dangling citations and routing, the median
wall ratio and the targets (ours at least as correct as plain, at most 2x its median wall, no
questions, no exit 3, no dangling citations). `--out DIR` also writes every per-task row to
DIR/everyday.json.

    python benchmarks/everyday.py [--model qwen2.5-coder-1.5b] [--threads N] [--limit N]
        [--only fact,code,...] [--data PATH] [--timeout 1200] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data" / "everyday.jsonl"
sys.path.insert(0, str(ROOT))
from benchmarks.everyday_checks import check  # noqa: E402


def load_tasks(
    path: Path, only: set[str] | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    tasks = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if only:
        tasks = [t for t in tasks if t["kind"] in only]
    return tasks[:limit] if limit else tasks


# ---------------------------------------------------------------------------------------------
# Runs

PLAIN = textwrap.dedent(
    """
    import json, os, sys, time
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import llama_cpp
    path, threads, prompt = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    llm = llama_cpp.Llama(model_path=path, n_ctx=4096, n_threads=threads,
                          n_threads_batch=threads, seed=0, verbose=False)
    first = None
    parts = []
    for chunk in llm.create_chat_completion([{"role": "user", "content": prompt}], stream=True,
                                            temperature=0.2, max_tokens=1024, seed=0):
        piece = chunk["choices"][0]["delta"].get("content")
        if piece:
            first = first or time.time()
            parts.append(piece)
    print(json.dumps({"text": "".join(parts), "first_token_ts": first}))
    """
)


def _clean_env() -> dict[str, str]:
    """This environment without MYNINJA_* settings, so ours runs the default config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYNINJA_")}
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    return env


def _run(cmd: list[str], env: dict[str, str], timeout: float) -> tuple[int | str, str, str, float]:
    start = time.time()
    try:
        out = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
        )
        code: int | str = out.returncode
        stdout, stderr = out.stdout, out.stderr
    except subprocess.TimeoutExpired as exc:
        code = "timeout"
        raw = exc.stdout or b""
        stdout = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        stderr = f"timed out after {timeout:g}s"
    return code, stdout, stderr, start


def _error(code: int | str, event_error: str | None, stderr: str) -> str | None:
    """Why a run did not finish well: the failure event's error, else stderr's last line."""
    if code == 0:
        return None
    lines = [line for line in stderr.splitlines() if line.strip()]
    return event_error or (lines[-1][:300] if lines else None)


def run_ours(text: str, home: str, model: str, threads: int, timeout: float) -> dict[str, Any]:
    env = {
        **_clean_env(),
        "MYNINJA_HOME": home,
        "MYNINJA_BACKENDS__EMBEDDED__MODEL": model,
        "MYNINJA_BACKENDS__EMBEDDED__THREADS": str(threads),
    }
    myninja = Path(sys.executable).parent / "myninja"
    code, stdout, stderr, start = _run([str(myninja), "ask", text, "--json"], env, timeout)
    wall = time.time() - start
    events = []
    for line in stdout.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    done = next((e for e in events if e.get("type") == "task_done"), None)
    answer = (done or {}).get("answer") or ""
    first = next((e["ts"] for e in events if e.get("type") == "token"), None)
    routed_event = next((e for e in events if e.get("type") == "routed"), None)
    routed = (
        {k: routed_event[k] for k in ("agent", "path", "reason") if k in routed_event}
        if routed_event
        else None
    )
    cited = any(e.get("sources") for e in events if e.get("type") == "citations")
    failed = next((e for e in events if e.get("type") == "task_failed"), None)
    asked = next((e for e in events if e.get("type") == "question"), None)
    why = (failed or {}).get("error") or (asked and f"asked: {asked.get('text')}")
    return {
        "answer": answer,
        "exit_code": code,
        "wall_s": wall,
        "first_token_s": first - start if first is not None else None,
        "replans": sum(e.get("type") == "replan" for e in events),
        "questions": sum(e.get("type") == "question" for e in events),
        "routed": routed,
        "dangling_citation": bool(re.search(r"\[\d+\]", answer)) and not cited,
        "error": _error(code, why, stderr),
    }


def run_plain(text: str, path: Path, threads: int, timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, "-c", PLAIN, str(path), str(threads), text]
    code, stdout, stderr, start = _run(cmd, _clean_env(), timeout)
    wall = time.time() - start
    try:
        result = json.loads(stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        result = {"text": "", "first_token_ts": None}
    first = result.get("first_token_ts")
    return {
        "answer": result.get("text") or "",
        "exit_code": code,
        "wall_s": wall,
        "first_token_s": first - start if first is not None else None,
        "error": _error(code, None, stderr),
    }


# ---------------------------------------------------------------------------------------------
# Report


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _median(values: list[float]) -> float | None:
    return _r(statistics.median(values)) if values else None


def _p90(values: list[float]) -> float | None:
    if len(values) < 2:
        return _r(values[0]) if values else None
    return _r(statistics.quantiles(values, n=10, method="inclusive")[8])


def _route_key(routed: dict[str, Any] | None) -> str:
    """`fast/assistant`, `agent/coder`; just the agent where the event has no path."""
    if not routed:
        return "none"
    agent = routed.get("agent") or "none"
    return f"{routed['path']}/{agent}" if routed.get("path") else agent


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    walls = [r["wall_s"] for r in rows]
    firsts = [r["first_token_s"] for r in rows if r["first_token_s"] is not None]
    return {
        "correct": sum(r["correct"] for r in rows),
        "tasks": len(rows),
        "median_wall_s": _median(walls),
        "p90_wall_s": _p90(walls),
        "median_first_token_s": _median(firsts),
    }


def report(rows: list[dict[str, Any]], model: str, threads: int, data: Path) -> dict[str, Any]:
    ours_rows = [r for r in rows if r["mode"] == "ours"]
    plain_rows = [r for r in rows if r["mode"] == "plain"]
    ours = summarise(ours_rows)
    plain = summarise(plain_rows)
    paths = Counter(_route_key(r["routed"]) for r in ours_rows)
    ours.update(
        replans=sum(r["replans"] for r in ours_rows),
        questions=sum(r["questions"] for r in ours_rows),
        exit_codes=dict(Counter(str(r["exit_code"]) for r in ours_rows)),
        dangling_citations=sum(r["dangling_citation"] for r in ours_rows),
        paths=dict(paths),
    )
    ratio = (
        round(ours["median_wall_s"] / plain["median_wall_s"], 3)
        if ours["median_wall_s"] and plain["median_wall_s"]
        else None
    )
    per_kind: dict[str, dict[str, int]] = {}
    for r in rows:
        entry = per_kind.setdefault(r["kind"], {"tasks": 0, "ours": 0, "plain": 0})
        entry[r["mode"]] += int(r["correct"])
        if r["mode"] == "ours":
            entry["tasks"] += 1
    return {
        "benchmark": "everyday",
        "model": model,
        "threads": threads,
        "data": str(data),
        "ours": ours,
        "plain": plain,
        "ratios": {"median_wall": ratio},
        "targets": {
            "correct_at_least_plain": ours["correct"] >= plain["correct"],
            "median_wall_at_most_2x": ratio is not None and ratio <= 2.0,
            "no_questions": ours["questions"] == 0,
            "no_exit_3": ours["exit_codes"].get("3", 0) == 0,
            "no_dangling_citations": ours["dangling_citations"] == 0,
        },
        "per_kind": per_kind,
        "per_path": per_path(ours_rows, plain_rows),
    }


def per_path(ours_rows: list[dict[str, Any]], plain_rows: list[dict[str, Any]]) -> dict:
    """What each path costs: its tasks' median wall time beside the plain call's on the same
    tasks, and how many each got right."""
    plain_by_id = {r["id"]: r for r in plain_rows}
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in ours_rows:
        groups.setdefault(_route_key(r["routed"]), []).append(r)
    found = {}
    for key, group in sorted(groups.items()):
        plain = [plain_by_id[r["id"]] for r in group if r["id"] in plain_by_id]
        found[key] = {
            "tasks": len(group),
            "ours_correct": sum(r["correct"] for r in group),
            "plain_correct": sum(r["correct"] for r in plain),
            "ours_median_wall_s": _median([r["wall_s"] for r in group]),
            "plain_median_wall_s": _median([r["wall_s"] for r in plain]),
        }
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="named model or GGUF (default: config's)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--limit", type=int, default=None, help="first N tasks only")
    parser.add_argument("--only", default=None, help="comma-separated kinds, e.g. fact,code")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds per run")
    parser.add_argument("--out", type=Path, default=None, help="folder for everyday.json")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from myninja.backends.models import resolve_model
    from myninja.config import DEFAULT_MODEL

    model = args.model or DEFAULT_MODEL
    only = {k.strip() for k in args.only.split(",") if k.strip()} if args.only else None
    tasks = load_tasks(args.data, only, args.limit)
    if not tasks:
        parser.error("no tasks selected")

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="everyday-") as home:
        path = resolve_model(model, Path(home) / "data" / "models")
        for i, task in enumerate(tasks):
            modes = ["ours", "plain"] if i % 2 == 0 else ["plain", "ours"]  # drift hits both
            for mode in modes:
                if mode == "ours":
                    result = run_ours(task["text"], home, model, args.threads, args.timeout)
                else:
                    result = run_plain(task["text"], path, args.threads, args.timeout)
                result["correct"] = check(result["answer"], task["check"])
                rows.append(
                    {"id": task["id"], "kind": task["kind"], "text": task["text"], "mode": mode}
                    | result
                )
                print(
                    f"[{i + 1}/{len(tasks)}] {task['id']} {mode}: "
                    f"{'ok' if result['correct'] else 'wrong'} in {result['wall_s']:.1f}s "
                    f"(exit {result['exit_code']})"
                    + (f": {result['error']}" if result["error"] else ""),
                    file=sys.stderr,
                    flush=True,
                )

    summary = report(rows, model, args.threads, args.data)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        for r in rows:
            for key in ("wall_s", "first_token_s"):
                r[key] = _r(r[key])
        (args.out / "everyday.json").write_text(
            json.dumps({"summary": summary, "rows": rows}, indent=2, ensure_ascii=False) + "\n"
        )
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
