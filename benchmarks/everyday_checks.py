"""The checks of the everyday tasks (benchmarks/data/everyday.jsonl): a regex, a number within
a tolerance, a word count, or the answer's code run in a fresh `python -I` against an expected
value. `check(answer, spec)` says whether an answer passes every condition of its spec."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import tempfile
import textwrap
from typing import Any

PYTHON_TIMEOUT_S = 10

_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_NUMBER = re.compile(r"(?<![\w.])[-−]?\d+(?:\.\d+)?")
_FENCE = re.compile(r"```[^\n`]*\n(.*?)(?:```|\Z)", re.S)
_INLINE = re.compile(r"`([^`\n]+)`")
_WORD = re.compile(r"\w")

# Runs in a fresh `python -I`; reads {"code", "setup", "expr", "expect"} on stdin, prints
# {"ok": bool, "error": str|null}. Tries, in order: the code then `expr`; the code as an
# expression; the code without literal example values for setup's names, then `expr`, then its
# last expression (or the argument of a last `print(...)`).
_RUNNER = textwrap.dedent(
    """
    import ast, contextlib, io, json, sys
    spec = json.load(sys.stdin)
    code, setup, expr = spec["code"], spec["setup"], spec["expr"]
    expected = eval(spec["expect"])

    def fresh():
        ns = {"__name__": "__answer__"}
        exec(setup, ns)
        return ns

    names = set(fresh()) - {"__builtins__", "__name__"}

    def literal_assign(stmt):
        if not isinstance(stmt, ast.Assign):
            return False
        targets = [t for t in stmt.targets if isinstance(t, ast.Name)]
        if len(targets) != len(stmt.targets) or not {t.id for t in targets} <= names:
            return False
        try:
            ast.literal_eval(stmt.value)
        except Exception:
            return False
        return True

    def run(body, ns):
        exec(compile(ast.Module(body=body, type_ignores=[]), "<answer>", "exec"), ns)

    def as_given():
        ns = fresh()
        exec(compile(code, "<answer>", "exec"), ns)
        return eval(expr, ns)

    def as_expression():
        return eval(compile(code.strip(), "<answer>", "eval"), fresh())

    def without_examples():
        ns = fresh()
        run([s for s in ast.parse(code).body if not literal_assign(s)], ns)
        return eval(expr, ns)

    def last_expression():
        body = [s for s in ast.parse(code).body if not literal_assign(s)]
        if not body or not isinstance(body[-1], ast.Expr):
            raise LookupError("no final expression")
        value = body[-1].value
        if (isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
                and value.func.id == "print" and len(value.args) == 1):
            value = value.args[0]
        ns = fresh()
        run(body[:-1], ns)
        return eval(compile(ast.Expression(body=value), "<answer>", "eval"), ns)

    ok = False
    error = None
    for attempt in (as_given, as_expression, without_examples, last_expression):
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                ok = bool(attempt() == expected)
        except BaseException as exc:  # the answer's code may raise anything, exit included
            error = error or f"{type(exc).__name__}: {exc}"[:200]
        if ok:
            break
    print(json.dumps({"ok": bool(ok), "error": None if ok else error}))
    """
)


def numbers(text: str) -> list[float]:
    """Every number written in digits (commas between thousands dropped, `−` read as minus)."""
    text = _THOUSANDS.sub("", text)
    return [float(m.replace("−", "-")) for m in _NUMBER.findall(text)]


def word_count(text: str) -> int:
    return sum(1 for word in text.split() if _WORD.search(word))


def code_candidates(answer: str) -> list[str]:
    """The first fenced block, then all blocks together; with no block, the whole answer and
    then each inline code span."""
    blocks = [b for b in _FENCE.findall(answer) if b.strip()]
    if blocks:
        found = [blocks[0]]
        if len(blocks) > 1:
            found.append("\n".join(blocks))
        return found
    return [answer, *_INLINE.findall(answer)]


def run_python(code: str, setup: str, expr: str, expect: str) -> bool:
    payload = json.dumps({"code": code, "setup": setup, "expr": expr, "expect": expect})
    with tempfile.TemporaryDirectory() as cwd:  # stray files the code writes land here
        try:
            out = subprocess.run(
                [sys.executable, "-I", "-c", _RUNNER],
                input=payload,
                capture_output=True,
                text=True,
                timeout=PYTHON_TIMEOUT_S,
                cwd=cwd,
            )
        except subprocess.TimeoutExpired:
            return False
    lines = out.stdout.strip().splitlines()
    try:
        return bool(json.loads(lines[-1])["ok"])
    except (IndexError, ValueError, KeyError, TypeError):
        return False


def check(answer: str, spec: dict[str, Any]) -> bool:
    """Whether `answer` passes the check `spec`; every condition the spec holds must hold."""
    answer = answer or ""
    if "all" in spec and not all(check(answer, sub) for sub in spec["all"]):
        return False
    if "regex" in spec and not re.search(spec["regex"], answer, re.I | re.M):
        return False
    if "not_regex" in spec and re.search(spec["not_regex"], answer, re.I | re.M):
        return False
    if "number" in spec:
        target = float(spec["number"])
        tol = float(spec.get("tol", 0.0))
        if not any(math.isclose(n, target, rel_tol=tol, abs_tol=1e-9) for n in numbers(answer)):
            return False
    if "min_words" in spec and word_count(answer) < spec["min_words"]:
        return False
    if "max_words" in spec and word_count(answer) > spec["max_words"]:
        return False
    if "python" in spec:
        py = spec["python"]
        if not answer.strip():
            return False
        if not any(
            run_python(code, py.get("setup", ""), py["expr"], py["expect"])
            for code in code_candidates(answer)
        ):
            return False
    return True
