"""When a schedule is due: a plain phrase ("every weekday at 08:00") translated to a cron
expression, a cron expression checked (cronsim), and the next due time after a moment. The
clock the worker's schedules read (`schedule_clock`) is here too, with its test hook."""

from __future__ import annotations

import os
import re
import time
from datetime import datetime, tzinfo

from cronsim import CronSim, CronSimError

from myninja.errors import UsageError

PHRASES_HINT = (
    "write a cron expression such as '0 8 * * 1-5', or one of: every day at HH:MM, "
    "every weekday at HH:MM, every monday at HH:MM, every N minutes, every N hours"
)
_DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_AT = r"at (\d{1,2}):(\d{2})"
# For tests only: a file holding a timestamp that every schedule clock of the process reads
# instead of the real time, so that a test can move a real worker's clock across due times.
TEST_CLOCK_ENV = "MYNINJA_TEST_CLOCK"


def schedule_clock() -> float:
    """Now, for schedules: the real time, or the timestamp in the file that MYNINJA_TEST_CLOCK
    names (tests drive a real worker process on a fake clock with it)."""
    fake = os.environ.get(TEST_CLOCK_ENV)
    if fake:
        with open(fake) as clock:  # the tests replace it atomically
            return float(clock.read())
    return time.time()


def to_cron(spec: str) -> str:
    """The cron expression `spec` means: a plain phrase translated, or a cron expression
    checked. A UsageError says what is wrong, where, and how to write it."""
    text = " ".join(spec.lower().split())
    cron = _phrase(text, spec)
    if cron is None:
        if len(text.split()) != 5:
            raise UsageError(
                f"schedule {spec!r} is neither a known phrase nor a cron expression "
                f"(it has {len(text.split())} fields; cron has 5: minute hour day month weekday)",
                hint=PHRASES_HINT,
            )
        cron = text
    try:
        CronSim(cron, datetime.now().astimezone())
    except (CronSimError, ValueError) as err:
        raise UsageError(f"schedule {spec!r}: {err} in {cron!r}", hint=PHRASES_HINT) from None
    return cron


def _phrase(text: str, spec: str) -> str | None:
    if m := re.fullmatch(rf"every (day|weekday|{'|'.join(_DAYS)}) {_AT}", text):
        hour, minute = int(m[2]), int(m[3])
        if hour > 23 or minute > 59:
            raise UsageError(
                f"schedule {spec!r}: {m[2]}:{m[3]} is not a time of day",
                hint="give the time as HH:MM, from 00:00 to 23:59",
            )
        days = {"day": "*", "weekday": "1-5"}.get(m[1]) or str(_DAYS.index(m[1]))
        return f"{minute} {hour} * * {days}"
    if m := re.fullmatch(r"every (\d+ )?(minute|hour)s?", text):
        n = int(m[1] or 1)
        top = 59 if m[2] == "minute" else 23
        if not 1 <= n <= top:
            raise UsageError(
                f"schedule {spec!r}: every {n} {m[2]}s is out of range",
                hint=f"give from 1 to {top} {m[2]}s, or a cron expression",
            )
        step = "*" if n == 1 else f"*/{n}"
        return f"{step} * * * *" if m[2] == "minute" else f"0 {step} * * *"
    return None


def next_after(cron: str, ts: float, tz: tzinfo | None = None) -> float:
    """The first time after `ts` that `cron` names, in `tz` (default: local time). Local time
    is naive wall-clock time, turned into a timestamp by the rules of its own date: a fixed
    offset would put "08:00" an hour off across a daylight-saving change."""
    return next(CronSim(cron, datetime.fromtimestamp(ts, tz))).timestamp()
