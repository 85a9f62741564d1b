"""HumanEval: complete a Python function, then run the problem's own `check` on it in the
sandbox. pass@1 is the share of problems whose first completion passes.

Two ways to get a completion: single shot (one chat call, greedy) and agent (the coder agent
works the problem as a task, writing and running its own tests; the CLI supplies `submit`).
Either way the reply is only text: the code is cut out of it (`completion_program`) and run
with the tests in a sandboxed subprocess (`check`), never in this process.

Each problem's result is committed to `<out>/eval.db` (tables of its own beside the QA
runner's) keyed by (run_id, task_id), so an interrupted run resumes and a re-run with the same
settings asks nothing.
"""

from __future__ import annotations

import ast
import asyncio
import hashlib
import importlib.util
import json
import re
import tempfile
import textwrap
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from myninja import paths
from myninja.agent_graph.prompts import BRANCH_STYLES
from myninja.backends.base import Backend, ChatRequest, Usage
from myninja.config import Config
from myninja.errors import UsageError
from myninja.skills.coder.sandbox import SandboxLimits, run_python

from .runner import EvalStore

DATASET = "humaneval"
MODES = ("single-shot", "agent")
SYSTEM = "Complete the Python function. Reply with the whole function in one ```python block."
AGENT_TASK = (
    "Complete this function; test it; reply with the whole function in a python block.\n\n"
    "```python\n{prompt}```"
)
MAX_TOKENS = 512  # single shot's reply cap: a whole function, with room for its docstring
# The tests of one problem take milliseconds; a completion that loops forever is cut here.
# The CPU limit is a backstop above the wall limit, so an endless loop is reported as what it
# is (out of time) however busy the machine is.
CHECK_LIMITS = SandboxLimits(wall_s=10.0, cpu_s=20)
FIELDS = ("task_id", "prompt", "entry_point", "canonical_solution", "test")

Progress = Callable[[int, int], None]  # (problems done, problems in all)
Submit = Callable[[str], Awaitable[str]]  # task text -> the agent's answer


@dataclass(frozen=True)
class Problem:
    task_id: str
    prompt: str  # imports, maybe helpers, and the signature and docstring to complete
    entry_point: str  # the function `check` is given
    canonical_solution: str  # the reference body
    test: str  # defines check(candidate)


def load_problems(path: Path | str, limit: int | None = None) -> list[Problem]:
    """The first `limit` problems (all when None) of a HumanEval JSONL file."""
    path = Path(path).expanduser()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    problems: list[Problem] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}:{number}: not JSON: {exc.msg}") from None
        missing = [name for name in FIELDS if not isinstance(row, dict) or name not in row]
        if missing:
            raise UsageError(
                f"{path}:{number}: not a HumanEval row (missing {', '.join(missing)})",
                hint="expected task_id, prompt, entry_point, canonical_solution, test",
            )
        problem = Problem(**{name: str(row[name]) for name in FIELDS})
        if problem.task_id in seen:
            raise UsageError(f"{path}:{number}: task_id {problem.task_id!r} appears twice")
        seen.add(problem.task_id)
        problems.append(problem)
        if limit is not None and len(problems) >= limit:
            break
    if not problems:
        raise UsageError(f"{path} holds no problems")
    return problems


# -- from a reply to a program -----------------------------------------------------------------

# A fence and its body; an unclosed fence (a reply cut at max_tokens) runs to the end.
_FENCE = re.compile(r"```[ \t]*([\w+.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_PYTHON_TAGS = {"", "python", "py", "python3", "py3"}
# Where code starts in an unfenced reply: a line a Python file could start with.
_CODE_START = re.compile(
    r"^(?:(?:async\s+)?def\s+\w+\s*\(|class\s+\w+|@\w|from\s+[\w.]+\s+import\s|import\s+[\w.]+"
    r"(?:\s+as\s+\w+)?\s*(?:,\s*[\w.]+(?:\s+as\s+\w+)?\s*)*$)"
)


def _parse(code: str) -> ast.Module | None:
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError):
        return None


def _defines(code: str, name: str) -> bool:
    """Whether `code` parses and defines function `name` at its top level."""
    tree = _parse(code)
    return tree is not None and any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name
        for node in tree.body
    )


def _parsing_prefix(lines: list[str]) -> str | None:
    """The most leading lines that parse (trailing blank lines dropped), or None."""
    for end in range(len(lines), 0, -1):
        chunk = "\n".join(lines[:end]).rstrip()
        if chunk and _parse(chunk) is not None:
            return chunk + "\n"
    return None


def _code_in_prose(reply: str, entry_point: str) -> str:
    """The longest stretch of lines that parses, from the first line that starts code (or the
    entry point's def) to wherever the prose after it begins."""
    lines = reply.splitlines()
    starts = [i for i, line in enumerate(lines) if _CODE_START.match(line)]
    entry = [
        i for i in starts if re.match(rf"(?:async\s+)?def\s+{re.escape(entry_point)}\b", lines[i])
    ]
    for start in dict.fromkeys(starts[:1] + entry[:1]):
        found = _parsing_prefix(lines[start:])
        if found is not None:
            return found
    return reply


def _whole(block: str) -> str:
    """A block as Python: as it is if it parses or is an indented body; else, as a reply cut
    at max_tokens ends mid-line, the most leading lines that parse."""
    if _parse(block) is not None or block[:1].isspace():
        return block
    return _parsing_prefix(block.splitlines()) or block


def extract_code(reply: str, entry_point: str) -> str:
    """The code in a chat reply: the fenced Python block that defines `entry_point`, after the
    definitions in the other blocks (else the first block that parses, else the first block);
    without fences, the code among the prose; a reply that is only code, as it is."""
    blocks = [
        _whole(body)
        for tag, body in _FENCE.findall(reply)
        if tag.lower() in _PYTHON_TAGS and body.strip()
    ]
    parsing = [block for block in blocks if _parse(block) is not None]
    for block in blocks:
        if _defines(block, entry_point):
            # Helpers the model wrote in blocks of their own come first, so the function can
            # call them; this block comes last, so its own definitions win.
            others = [
                _definitions_only(b, found_imports_only=True) for b in parsing if b is not block
            ]
            return "\n\n".join([*filter(None, others), block])
    if parsing or blocks:
        return (parsing or blocks)[0]
    if _parse(reply) is not None:
        return reply
    return _code_in_prose(reply, entry_point)


_KEPT = (
    ast.Import,
    ast.ImportFrom,
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.Assign,
    ast.AnnAssign,
    ast.Try,  # try: import x / except ImportError: ...
    ast.If,  # but not the __main__ guard, below
)


def _main_guard(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "__name__" in ast.unparse(node.test)


def _found(node: ast.stmt) -> bool:
    """Whether an import names modules this Python has (not the model's own `solution.py`)."""
    if isinstance(node, ast.ImportFrom):
        names = [node.module or ""] if node.level == 0 else [""]
    elif isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        return True
    return all(name and importlib.util.find_spec(name.split(".")[0]) for name in names)


def _definitions_only(code: str, found_imports_only: bool = False) -> str:
    """Imports, functions, classes and constants of `code`; its examples, prints, asserts and
    `if __name__ == "__main__":` blocks dropped: they would run before the tests do, and a
    wrong example must not fail a right function. With `found_imports_only`, imports of
    modules that do not exist are dropped too (a usage block's `from solution import f`)."""
    tree = _parse(code)
    if tree is None:
        return code
    lines = code.splitlines()
    kept: list[str] = []
    for node in tree.body:
        if not isinstance(node, _KEPT) or _main_guard(node):
            continue
        if found_imports_only and not _found(node):
            continue
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        kept.append("\n".join(lines[first - 1 : node.end_lineno]))
    return "\n\n".join(kept)


def completion_program(problem: Problem, completion: str) -> str:
    """The program a completion stands for. A reply that writes the whole function is put after
    the prompt, whose imports and helpers it may use (its own definition replaces the prompt's
    docstring-only one); a reply that is only the body is appended to the prompt."""
    code = extract_code(completion, problem.entry_point)
    if _defines(code, problem.entry_point):
        return f"{problem.prompt.rstrip()}\n\n\n{_definitions_only(code)}\n"
    body = code.strip("\n")
    first = next((line for line in body.splitlines() if line.strip()), "")
    if first and not first[0].isspace():
        body = textwrap.indent(body, "    ")  # "return x" written flush left
    return f"{problem.prompt}{body}\n"


# -- checking ---------------------------------------------------------------------------------


def _failure_detail(stderr: str, folder: str) -> str:
    """From the last frame of a traceback to the error: which assert failed, and why."""
    lines = stderr.replace(folder + "/", "").rstrip().splitlines()
    # Python's ^^^ markers under the failing expression say nothing the line does not.
    lines = [line for line in lines if not line.startswith("[sandbox]") and line.strip(" ^~")]
    frames = [i for i, line in enumerate(lines) if line.lstrip().startswith("File ")]
    shown = lines[frames[-1] :] if frames else lines[-5:]
    detail = "\n".join(line.rstrip() for line in shown if line.strip())
    return detail[-600:] or "failed with no message"


def check(problem: Problem, program: str, limits: SandboxLimits = CHECK_LIMITS) -> tuple[bool, str]:
    """Run `program`, the problem's tests and `check(entry_point)` in the sandbox: (passed,
    detail), the detail being "passed", the limit that stopped it, or the failing line."""
    source = f"{program}\n\n{problem.test}\n\ncheck({problem.entry_point})\n"
    with tempfile.TemporaryDirectory(prefix="humaneval-") as folder:
        # A file, not `-c`: the traceback then shows the failing assert's source line.
        (Path(folder) / "program.py").write_text(source, encoding="utf-8")
        result = run_python(Path("program.py"), workspace=Path(folder), limits=limits)
        if result.ok:
            return True, "passed"
        message = result.limit_message()
        if message:
            return False, message
        return False, _failure_detail(result.stderr, str(Path(folder).resolve()))


# -- solving ----------------------------------------------------------------------------------


def build_messages(problem: Problem) -> list[dict[str, str]]:
    prompt = problem.prompt if problem.prompt.endswith("\n") else problem.prompt + "\n"
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"```python\n{prompt}```"},
    ]


def agent_task(problem: Problem) -> str:
    """The task the coder agent is given (the CLI submits it as `@coder`)."""
    prompt = problem.prompt if problem.prompt.endswith("\n") else problem.prompt + "\n"
    return AGENT_TASK.format(prompt=prompt)


async def agent_solve(problem: Problem, submit: Submit) -> str:
    """The coder agent's answer to a problem; `submit(text)` runs one task to its end."""
    return await submit(agent_task(problem))


@dataclass
class HumanEvalSettings:
    mode: str = "single-shot"  # one of MODES
    backend: str = "embedded"
    model: str | None = None  # the backend's own when None
    model_label: str = ""  # the model actually used, named (part of the run's identity)
    max_tokens: int | None = MAX_TOKENS  # single shot's reply cap; the agent uses its own config
    temperature: float = 0.0
    # Agent mode: the graph's and the coder's settings (JSON), which decide how it works.
    agent_config: str = ""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise UsageError(f"unknown mode {self.mode!r}", hint=f"one of: {', '.join(MODES)}")

    def run_id(self) -> str:
        key: dict[str, Any] = asdict(self)
        if self.mode == "agent":
            # The agent's replies depend on its own config, not on these two.
            key.pop("max_tokens")
            key.pop("temperature")
        if not self.agent_config:
            key.pop("agent_config")  # so the runs made before it was kept keep their ids
        key["prompt"] = AGENT_TASK if self.mode == "agent" else SYSTEM
        if self.mode == "agent":
            key["branch_styles"] = BRANCH_STYLES  # the agent's branch prompts are part of it
        key["check_wall_s"] = CHECK_LIMITS.wall_s
        text = json.dumps(key, sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def model_label(config: Config, backend: str, model: str | None) -> str:
    """The model a run uses, as a person would name it."""
    if model:
        return model
    found = config.backends.get(backend)
    return str(getattr(found, "model", None) or getattr(found, "type", backend))


def default_out() -> Path:
    """Both modes share a folder, so each report lists the other's figures beside its own."""
    return paths.data_dir() / "evals" / DATASET


SCHEMA = """
CREATE TABLE IF NOT EXISTS humaneval_runs (
    run_id TEXT PRIMARY KEY,
    settings TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS humaneval_results (
    run_id TEXT NOT NULL REFERENCES humaneval_runs(run_id),
    task_id TEXT NOT NULL,
    passed INTEGER NOT NULL,
    detail TEXT NOT NULL,
    reply TEXT NOT NULL,
    program TEXT NOT NULL,
    seconds REAL NOT NULL,
    check_seconds REAL NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (run_id, task_id)
);
"""


def open_store(path: Path) -> EvalStore:
    """The HumanEval tables of `<out>/eval.db`: runs, and one row per checked problem."""
    return EvalStore(
        path,
        schema=SCHEMA,
        runs_table="humaneval_runs",
        results_table="humaneval_results",
        key="task_id",
    )


def figures(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """count, passed, pass@1 (percent) and mean wall seconds per problem."""
    count = len(rows)
    passed = sum(1 for row in rows if row["passed"])
    return {
        "count": count,
        "passed": passed,
        "pass_at_1": round(100.0 * passed / count, 2) if count else None,
        "seconds_per_problem": round(sum(r["seconds"] for r in rows) / count, 2) if count else None,
    }


async def _solve(
    problem: Problem,
    settings: HumanEvalSettings,
    backend: Backend | None,
    submit: Submit | None,
) -> dict[str, Any]:
    started = time.monotonic()
    usage = Usage()
    if settings.mode == "agent":
        assert submit is not None
        reply = await agent_solve(problem, submit)
    else:
        assert backend is not None
        result = await backend.chat(
            ChatRequest(
                messages=build_messages(problem),
                model=settings.model,
                temperature=settings.temperature,
                max_tokens=settings.max_tokens,
                seed=0,
            )
        )
        reply, usage = result.text, result.usage
    program = completion_program(problem, reply)
    checked = time.monotonic()
    passed, detail = await asyncio.to_thread(check, problem, program)
    now = time.monotonic()
    return {
        "task_id": problem.task_id,
        "passed": int(passed),
        "detail": detail,
        "reply": reply,
        "program": program,
        "seconds": round(now - started, 3),
        "check_seconds": round(now - checked, 3),
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "created_at": time.time(),
    }


async def run_humaneval(
    problems: Sequence[Problem],
    settings: HumanEvalSettings,
    *,
    out: Path,
    backend: Backend | None = None,
    submit: Submit | None = None,
    progress: Progress | None = None,
    command: str = "",
) -> dict[str, Any]:
    """Solve and check the problems not yet done under these settings (single shot with
    `backend`, agent mode with `submit`), then report on all of `problems`: the summary, also
    written to `<out>/report.md`."""
    if settings.mode == "agent" and submit is None:
        raise UsageError("agent mode needs a way to submit tasks")
    if settings.mode == "single-shot" and backend is None:
        raise UsageError("single-shot mode needs a backend")
    run_id = settings.run_id()
    store = open_store(out / "eval.db")
    started = time.monotonic()
    try:
        store.start(run_id, settings)
        done = store.done_ids(run_id)
        todo = [p for p in problems if p.task_id not in done]
        finished = len(problems) - len(todo)
        if progress:
            progress(finished, len(problems))
        # One at a time: on a small machine parallel problems only slow each other down, and
        # each check's wall limit would then measure the neighbours' load.
        for problem in todo:
            store.add(run_id, await _solve(problem, settings, backend, submit))
            finished += 1
            if progress:
                progress(finished, len(problems))
        rows = store.rows(run_id, [p.task_id for p in problems])
        summary = {
            **figures(rows),
            "dataset": DATASET,
            "mode": settings.mode,
            "backend": settings.backend,
            "model": settings.model_label or settings.model,
            "run_id": run_id,
            "answered": len(todo),
            "skipped": len(problems) - len(todo),
            "seconds": round(time.monotonic() - started, 2),
            "out": str(out),
            "db": str(store.path),
            "report": str(out / "report.md"),
        }
        others = [
            {**run, "figures": figures(store.rows(run["run_id"]))}
            for run in store.runs()
            if run["run_id"] != run_id
        ]
        (out / "report.md").write_text(report(summary, rows, others, command), encoding="utf-8")
        return summary
    finally:
        store.close()


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _cell(detail: str) -> str:
    """A failure's detail on one line, safe inside a Markdown table: the failing line and the
    error, without the frame's file and line number."""
    lines = [line.strip() for line in detail.splitlines() if not line.lstrip().startswith("File ")]
    return " · ".join(lines).replace("|", "\\|")[:160]


def report(
    summary: dict[str, Any],
    rows: Sequence[dict[str, Any]],
    others: Sequence[dict[str, Any]],
    command: str = "",
) -> str:
    """report.md: this run's figures, every problem's result, and the folder's other runs."""
    lines = [
        f"# Evaluation: humaneval ({summary['mode']})",
        "",
        f"- command: `{command}`" if command else "- command: (library call)",
        f"- model: {summary['model']} on backend {summary['backend']}",
        f"- run: {summary['run_id']}, {summary['count']} problems, checked in the sandbox "
        f"({CHECK_LIMITS.wall_s:g} s wall limit each)",
        f"- written: {time.strftime('%Y-%m-%d %H:%M:%S')}",
        "",
        "| mode | count | passed | pass@1 | s/problem |",
        "|---|---:|---:|---:|---:|",
        f"| {summary['mode']} | {summary['count']} | {summary['passed']} | "
        f"{_number(summary['pass_at_1'])} | {_number(summary['seconds_per_problem'])} |",
    ]
    if others:
        lines += [
            "",
            "## Other runs in this folder",
            "",
            "| run | mode | model | count | passed | pass@1 | s/problem |",
            "|---|---|---|---:|---:|---:|---:|",
        ]
        for run in others:
            numbers, settings = run["figures"], run["settings"]
            model = settings.get("model_label") or settings.get("model") or "-"
            lines.append(
                f"| {run['run_id']} | {settings.get('mode')} | {model} | {numbers['count']} | "
                f"{numbers['passed']} | {_number(numbers['pass_at_1'])} | "
                f"{_number(numbers['seconds_per_problem'])} |"
            )
    lines += ["", "## Problems", "", "| task | passed | s | detail |", "|---|---|---:|---|"]
    for row in rows:
        lines.append(
            f"| {row['task_id']} | {'yes' if row['passed'] else 'no'} | {row['seconds']:.2f} | "
            f"{'' if row['passed'] else _cell(row['detail'])} |"
        )
    return "\n".join(lines) + "\n"
