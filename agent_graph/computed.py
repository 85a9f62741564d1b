"""Computed answers on the fast path: a question whose answer is a calculation (arithmetic, a
unit conversion, a calendar date) is answered by a few lines of Python the model writes and
the sandbox runs. A small model gets sums and calendars wrong in prose and right in code
(program-aided answering, Gao et al. 2023, "PAL: Program-aided Language Models").

When the program does not run or gives nothing printable, the fast path answers in prose as
it would have: computing costs one short call and one sandboxed run, never the answer."""

from __future__ import annotations

import ast
import re
import tempfile
from pathlib import Path

from myninja.skills.coder.sandbox import SandboxLimits, arun_python

# A short question with a number in it that asks for a sum, a conversion or a date.
_CALCULATION = re.compile(
    r"\d\s*(?:[-+*/×÷^]|\bx\b)\s*\d|%|\bpercent|\b(?:times|plus|minus|divided|multiplied|"
    r"average|mean|median|sum of|product of|square root|cube root|factorial|squared|cubed|"
    r"to the power)\b|\bconvert\b|\bhow (?:many|much|tall|long|far|heavy)\b.*\b(?:in|per|into)\b|"
    r"\bin (?:kilo|centi|milli)?(?:met|gram|litre|liter)|\b(?:in|to) (?:celsius|fahrenheit|"
    r"miles|feet|inches|pounds|ounces|gallons|seconds|minutes|hours)\b|"
    r"\bday of the week\b|\bleap year\b|\b(?:days|weeks|months)\b.*\b(?:between|after|before|"
    r"until|since|from)\b|\bthe (?:day|date) (?:after|before)\b",
    re.IGNORECASE,
)
# Tasks about code want code, not a computed value.
_ABOUT_CODE = re.compile(
    r"\b(?:write|function|script|program|one-liner|snippet|regex|python|sql|bash|code|class)\b",
    re.IGNORECASE,
)
MAX_CHARS = 240

SYSTEM = (
    "You turn a question into a short Python program that computes its answer from the "
    "numbers and dates in the question. Reply with one ```python block and nothing else. Its "
    "last line is an expression whose value is the answer. math, datetime and calendar are "
    "imported, and date and timedelta come from datetime. Examples:\n"
    "What is 12% of 250? -> 250 * 12 / 100\n"
    "How many days are there from 3 May 2021 to 9 June 2021? -> "
    "(date(2021, 6, 9) - date(2021, 5, 3)).days\n"
    'What day of the week was 14 March 1990? -> date(1990, 3, 14).strftime("%A")\n'
    "Is 1800 a leap year? -> calendar.isleap(1800)\n"
    "Convert 5 miles to kilometres. -> 5 * 1.609344\n"
    "What is 3 hours 20 minutes in minutes? -> 3 * 60 + 20"
)
MAX_TOKENS = 200

_BLOCK = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)
_LIMITS = SandboxLimits(wall_s=5.0, cpu_s=5, memory_mb=256, output_bytes=4_000)

# Runs in the sandbox after the model's lines: the value, as a person reads it.
_PRELUDE = "import math, datetime, calendar\nfrom datetime import date, timedelta\n"
_SHOW = """
def _show(value):
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, datetime.datetime):
        return f"{value:%A} {value.day} {value:%B %Y, %H:%M}"
    if isinstance(value, datetime.date):
        return f"{value:%A} {value.day} {value:%B %Y}"
    if isinstance(value, datetime.timedelta):
        return f"{value.days} days" if not value.seconds else str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return ""
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.6g}"
    if isinstance(value, (int, str)):
        return str(value).strip()
    return ""
print(_show(__answer))
"""


def is_calculation(text: str) -> bool:
    """A short question about numbers or dates that is not about writing code."""
    text = text.strip()
    return (
        len(text) <= MAX_CHARS
        and bool(re.search(r"\d", text))
        and bool(_CALCULATION.search(text))
        and not _ABOUT_CODE.search(text)
    )


def source_of(reply: str) -> str:
    """The model's lines: its first python block, else the whole reply."""
    found = _BLOCK.search(reply)
    return (found.group(1) if found else reply.strip().strip("`")).strip()


def program_of(source: str) -> str | None:
    """The model's lines with their last expression kept as `__answer`; None when they are
    not a program that ends in an expression."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    if not tree.body or not isinstance(tree.body[-1], ast.Expr):
        return None
    last = tree.body[-1]
    tree.body[-1] = ast.Assign(targets=[ast.Name("__answer", ast.Store())], value=last.value)
    ast.fix_missing_locations(tree)
    return ast.unparse(tree)


async def run_program(program: str) -> str | None:
    """The program's value as text, run in the sandbox (no network, tight limits), or None."""
    with tempfile.TemporaryDirectory(prefix="myninja-compute-") as folder:
        result = await arun_python(
            _PRELUDE + program + "\n" + _SHOW, workspace=Path(folder), limits=_LIMITS
        )
    value = result.stdout.strip()
    if not result.ok or not value or "\n" in value or len(value) > 200:
        return None
    return value


def computed_answer(value: str, source: str) -> str:
    """The answer first, then how it was worked out."""
    return f"{value}\n\nComputed with Python:\n```python\n{source}\n```"
