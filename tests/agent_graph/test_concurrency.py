"""Many tasks at once in one TaskManager (real checkpoints, real history.db, scripted backend):
none is lost, each task's events are numbered 1..n, and nothing fails with "database is locked",
also while another process reads history.db the whole time."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from myninja.agent_graph.tasks.manager import TaskManager
from myninja.backends.scripted import Rule, ScriptedBackend
from myninja.config import Config
from tests.agent_graph.scripts import ALTERNATIVE, CAREFUL, DIRECT, PLAN_ONE_STEP, ROUTE, branch
from tests.agent_graph.test_graph import CLASSIC

REPO = Path(__file__).resolve().parents[2]
KINDS = "ABC"

# Every task runs the default graph (3 branches, judged). Its text names a kind, and the judge
# prefers a different branch for each kind, so a task that got another task's candidates or
# evaluations ends with the wrong answer.
RULES: list[dict[str, Any]] = [
    ROUTE,
    PLAN_ONE_STEP,
    *(
        {
            "match": rf"Task: [^\n]*\bkind {kind}\b.*Candidate:\nAnswer 1{candidate}\n",
            "json": {"score": 9 if kind == candidate else 2, "reasons": f"{candidate} for {kind}"},
        }
        for kind in KINDS
        for candidate in KINDS
    ),
    *(
        branch(words, f"Answer 1{candidate}")
        for words, candidate in zip((DIRECT, CAREFUL, ALTERNATIVE), KINDS, strict=True)
    ),
]
EVENT_COUNTS = Counter(
    {
        "task_started": 1,
        "routed": 1,
        "plan": 1,
        "branch_started": 3,
        "branch_done": 3,
        "evaluation": 3,
        "selected": 1,
        "answer": 1,
        "task_done": 1,
    }
)


def task_text(i: int) -> str:
    return f"Write limerick {i} of kind {KINDS[i % 3]} about tmux"


def expected_answer(i: int) -> str:
    return f"Answer 1{KINDS[i % 3]}"


async def run_all(manager: TaskManager, texts: list[str], within_s: float) -> list[str]:
    """Submit every text at once, then wait until every task has stopped running."""
    ids = [await manager.submit(text) for text in texts]
    assert len(manager.running()) == len(ids)  # all started, none queued behind another
    await asyncio.wait_for(asyncio.gather(*(manager.wait(i) for i in ids)), within_s)
    return ids


def check_task(manager: TaskManager, task_id: str, answer: str) -> list[dict[str, Any]]:
    task = manager.store.get_task(task_id)
    assert task is not None
    assert (task["status"], task.get("error")) == ("done", None)
    assert task["answer"] == answer
    events = manager.store.events(task_id)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), task_id
    assert {e["task_id"] for e in events} == {task_id}
    assert Counter(e["type"] for e in events) == EVENT_COUNTS, task_id  # no task_failed
    assert events[0]["type"] == "task_started" and events[-1]["type"] == "task_done"
    assert events[-1]["answer"] == answer
    return events


async def test_a_hundred_tasks_at_once_lose_nothing(tmp_path: Path) -> None:
    scripted = ScriptedBackend("embedded", [Rule(**r) for r in RULES])
    published: dict[str, list[int]] = {}
    async with TaskManager.open(
        Config.model_validate({"graph": CLASSIC}),
        tmp_path / "data",
        backends={"embedded": scripted},
    ) as manager:

        def on_event(event: dict[str, Any]) -> None:
            if event["seq"]:  # durable events only, not the live tokens
                published.setdefault(event["task_id"], []).append(event["seq"])

        manager.listen(None, on_event)
        ids = await run_all(manager, [task_text(i) for i in range(100)], within_s=120)

        assert len(set(ids)) == 100
        assert manager.running() == []
        assert sorted(t["id"] for t in manager.store.list_tasks(status="done", limit=None)) == (
            sorted(ids)
        )
        for i, task_id in enumerate(ids):
            events = check_task(manager, task_id, expected_answer(i))
            # Listeners got each durable event once, in order, with the stored seq.
            assert published[task_id] == [e["seq"] for e in events]


# Reads history.db in a loop until told to stop; any error ends it with a traceback. Each
# task's events, as seen by this reader at any moment, must be numbered 1..n without gaps.
READER = """
import sys, time, traceback
from pathlib import Path
from myninja.agent_graph.history import HistoryStore

path, ready, stop = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
rounds = reads = 0
try:
    with HistoryStore(path) as store:
        ready.touch()
        while not stop.exists():
            for task in store.list_tasks(limit=None):
                seqs = [e["seq"] for e in store.events(task["id"])]
                assert seqs == list(range(1, len(seqs) + 1)), (task["id"], seqs)
                reads += 1
            store.search("limerick tmux")
            store.search("Answer")
            rounds += 1
except Exception:
    traceback.print_exc()
    sys.exit(1)
print(rounds, reads)
"""


@pytest.mark.slow
async def test_tasks_finish_while_another_process_reads_history(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ready, stop = tmp_path / "ready", tmp_path / "stop"
    scripted = ScriptedBackend("embedded", [Rule(**r) for r in RULES])
    async with TaskManager.open(
        Config.model_validate({"graph": CLASSIC}), data, backends={"embedded": scripted}
    ) as manager:
        reader = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            READER,
            str(data / "history.db"),
            str(ready),
            str(stop),
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 60
            while not ready.exists():
                assert reader.returncode is None, (await reader.communicate())[1].decode()
                assert time.monotonic() < deadline, "the reader did not start"
                await asyncio.sleep(0.02)
            ids = await run_all(manager, [task_text(i) for i in range(20)], within_s=120)
            assert reader.returncode is None, "the reader stopped before the tasks finished"
        finally:
            stop.touch()
            out, err = await asyncio.wait_for(reader.communicate(), 60)
        assert reader.returncode == 0, err.decode()
        assert b"locked" not in err
        rounds, reads = map(int, out.split())
        assert rounds >= 1 and reads >= 1  # it really read while the tasks ran
        for i, task_id in enumerate(ids):
            check_task(manager, task_id, expected_answer(i))
