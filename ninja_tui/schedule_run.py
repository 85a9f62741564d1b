"""Running a schedule once now, as `myninja schedule run-now` and the app's schedules screen
both do it: claim the run, make sure a worker runs (it submits claimed runs each second), and
wait until the run is a task, so that the id shown is one history knows."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from myninja.agent_graph.tasks.schedules import Run, ScheduleBook
from myninja.errors import MyninjaError

WAIT_S = 15.0
POLL_S = 0.1


async def run_now(
    book: ScheduleBook,
    schedule_id: str,
    start_worker: Callable[[], Awaitable[object]],
    wait_s: float = WAIT_S,
) -> Run:
    """Claim a run of `schedule_id` now, start the worker, and wait (up to `wait_s`) until it
    has submitted the run; a run it could not submit raises the error it met."""
    run = book.run_now(schedule_id)
    await start_worker()
    deadline = time.monotonic() + wait_s
    while not book.submitted(run.task_id) and time.monotonic() < deadline:
        [mine] = [r for r in book.runs(run.schedule_id) if r["task_id"] == run.task_id]
        if mine["error"]:
            raise MyninjaError(f"the run of {run.schedule_id} failed: {mine['error']}")
        await asyncio.sleep(POLL_S)
    return run
