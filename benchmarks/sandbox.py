"""What the kernel's confinement costs a sandboxed run, against the in-process guard alone (the
sandbox before it: `unshare --net` and the audit hook), in one process, the two modes taking
turns run by run.

Two workloads: a hello-world (`print('hello')`: all start-up) and one HumanEval check (the
canonical solution of HumanEval dev40's first problem with its tests, as `humaneval.check`
runs it). Target: kernel / in-process <= 1.3 on each. Prints JSON.

    python benchmarks/sandbox.py [--runs 30]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.eval_data import dev_file  # noqa: E402

MODES = ("in-process", "kernel")
TARGET = 1.3


def workloads() -> dict[str, str]:
    from myninja.agent_graph.evals import humaneval

    problem = humaneval.load_problems(dev_file("humaneval-dev40.jsonl"), 1)[0]
    program = problem.prompt + problem.canonical_solution
    check = f"{program}\n\n{problem.test}\n\ncheck({problem.entry_point})\n"
    return {"hello-world": "print('hello')\n", "humaneval-check": check}


def timed(code: str, workspace: Path, mode: str) -> float:
    from myninja.agent_graph.evals.humaneval import CHECK_LIMITS
    from myninja.skills.coder.sandbox import run_python

    (workspace / "program.py").write_text(code, encoding="utf-8")
    started = time.perf_counter()
    result = run_python(Path("program.py"), workspace=workspace, limits=CHECK_LIMITS,
                        confine=mode)  # type: ignore[arg-type]  # fmt: skip
    seconds = time.perf_counter() - started
    if not result.ok or result.confinement != mode:
        raise SystemExit(f"the {mode} run failed: {result.summary()}\n{result.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="runs of each mode per workload")
    args = parser.parse_args()
    from myninja.skills.coder.confinement import offer

    machine = offer()
    if not machine["ok"]:
        raise SystemExit(f"no kernel confinement here: {', '.join(machine['missing'])}")
    out: dict[str, Any] = {"benchmark": "sandbox", "runs": args.runs, "target": TARGET,
                           "landlock_abi": machine["landlock_abi"]}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="sandbox-bench-") as folder:
        workspace = Path(folder)
        for name, code in workloads().items():
            seconds: dict[str, list[float]] = {mode: [] for mode in MODES}
            for mode in MODES:  # warm-up: the probe, the import path, the page cache
                timed(code, workspace, mode)
            for i in range(args.runs):
                order = MODES if i % 2 == 0 else MODES[::-1]
                for mode in order:
                    seconds[mode].append(timed(code, workspace, mode))
            medians = {mode: statistics.median(values) for mode, values in seconds.items()}
            ratios = [k / p for k, p in zip(seconds["kernel"], seconds["in-process"], strict=True)]
            out[name] = {
                "median_s": {mode: round(value, 4) for mode, value in medians.items()},
                "kernel_over_in_process": round(medians["kernel"] / medians["in-process"], 3),
                "median_pair_ratio": round(statistics.median(ratios), 3),
                "met": medians["kernel"] / medians["in-process"] <= TARGET,
            }
    if shutil.which("bwrap"):
        out["mechanisms"] = mechanisms(args.runs)
    print(json.dumps(out, indent=2))


def mechanisms(runs: int) -> dict[str, Any]:
    """Landlock against bubblewrap, the confinement alone: a fresh interpreter that reads a
    JSON argument (as the sandbox's child does) and prints hello, confined by confine.py
    (namespaces, Landlock, seccomp) or by bubblewrap (namespaces and a read-only view of the
    system; no seccomp filter), against the same interpreter unconfined."""
    from myninja.skills.coder import confinement

    with tempfile.TemporaryDirectory(prefix="sandbox-bench-") as folder:
        spec = confinement.spec(Path(folder), network=False)
        python = [sys.executable, "-I", "-S", "-c"]
        system = [arg for path in ("/usr", "/etc", "/lib", "/lib64", "/bin") if Path(path).exists()
                  for arg in (("--symlink", os.readlink(path), path) if Path(path).is_symlink()
                              else ("--ro-bind", path, path))]  # fmt: skip
        pythons = [a for p in confinement.python_paths() for a in ("--ro-bind", p, p)]
        hello = "import json, sys\nspec = json.loads(sys.argv[1])\n"
        argument = json.dumps(spec)
        commands = {
            "unconfined": [*python, hello + "print('hello')", argument],
            "landlock": [*python, confinement.SOURCE + hello + "confine(spec)\nprint('hello')",
                         argument],
            "bubblewrap": ["bwrap", *system, *pythons, "--bind", folder, folder, "--proc", "/proc",
                           "--dev", "/dev", "--unshare-all", "--die-with-parent",
                           "--new-session", "--chdir", folder, *python, hello + "print('hello')",
                           argument],
        }  # fmt: skip
        seconds: dict[str, list[float]] = {name: [] for name in commands}
        for i in range(runs + 1):
            for name, command in commands.items() if i % 2 else reversed(commands.items()):
                started = time.perf_counter()
                done = subprocess.run(command, capture_output=True, text=True, cwd=folder)
                if done.stdout.strip() != "hello":
                    raise SystemExit(f"{name} failed: {done.stderr[-1000:]}")
                if i:  # the first round warms the page cache
                    seconds[name].append(time.perf_counter() - started)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    return {
        "median_s": {name: round(value, 4) for name, value in medians.items()},
        "over_unconfined": {
            name: round(value / medians["unconfined"], 3) for name, value in medians.items()
        },
    }


if __name__ == "__main__":
    main()
