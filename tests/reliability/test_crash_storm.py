"""Crash storm: the background worker is SIGKILLed at random moments (fixed seed) while
branching tasks, tasks that ask the person a question and tasks that call the files skill run;
after every kill a worker comes back (`myninja worker`, or the next CLI call) and resumes them.
Every task must end done with its expected answer, with exactly the events of a never-killed
run of the same script (none lost, none twice), and history.db and checkpoints.db must pass
`PRAGMA integrity_check`. The run and the counting are benchmarks/crash_resume.py's.

A second test plants a replayed event, a same-key copy and a deleted event in a copy of the
storm's history, and checks that the counting finds each of them: the first test can fail.

The storm found one window on its own, pinned here without chance: a kill after every task of
a step has saved its writes but before LangGraph saved the step's checkpoint. The resumed
task used to be taken for ended (no next node) and marked failed.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.crash_resume import (
    EXPECTED,
    REPO,
    Home,
    Storm,
    compare,
    duplicate_keys,
    figures,
    storm_and_reference,
    tally,
    tally_store,
    text_of,
    twins,
)
from myninja.agent_graph.history import HistoryStore
from myninja.agent_graph.tasks.manager import TaskManager
from myninja.agent_graph.tasks.recorder import state_event_key
from myninja.config_file import load_config

pytestmark = pytest.mark.heavy

KILLS = 8
SEED = 20261128


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Storm, Storm]]:
    storm, reference = storm_and_reference(
        tmp_path_factory.mktemp("crash-storm"), kills=KILLS, seed=SEED
    )
    try:
        yield storm, reference
    finally:
        storm.home.close()
        reference.home.close()


def test_every_task_survives_the_kills_with_its_history_intact(
    runs: tuple[Storm, Storm],
) -> None:
    storm, reference = runs
    counts = tally(storm, reference)
    result = figures(storm, reference, counts)
    summary = json.dumps(result, indent=1)
    assert result["kills"] == KILLS, summary
    assert counts.killed_tasks > 0 and counts.tasks >= 6, summary
    # Every kill found a task running (that is when kills are made) and it moved again.
    assert all(kill.running for kill in storm.kills), summary
    assert result["kills_without_recovery"] == 0, summary
    assert counts.finished_ok == counts.tasks, summary
    assert counts.resumed_and_finished == counts.killed_tasks, summary
    assert (counts.stuck, counts.failed, counts.wrong_answer) == (0, 0, 0), summary
    assert (counts.lost_events, counts.duplicated_events, counts.unexpected_events) == (0, 0, 0), (
        summary
    )
    assert counts.reordered_tasks == 0, summary  # interleaved branches are fine
    assert counts.question_mismatches == 0 and counts.seq_gaps == 0, summary
    assert result["integrity"] == {"history.db": "ok", "checkpoints.db": "ok"}, summary


def test_the_counting_catches_planted_duplicates_and_a_lost_event(
    runs: tuple[Storm, Storm], tmp_path: Path
) -> None:
    storm, reference = runs
    copy = tmp_path / "history.db"
    # The worker was shut down: nothing writes the storm's history any more.
    with sqlite3.connect(storm.home.data / "history.db") as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    replayed, same_key, lost = (
        storm.tasks[0].task_id,
        storm.tasks[1].task_id,
        storm.tasks[2].task_id,
    )

    store = HistoryStore(copy)
    try:
        clean = tally_store(store, copy, storm.tasks, twins(reference))
        assert (clean.lost_events, clean.duplicated_events) == (0, 0), clean.problems

        # A node re-run after a crash stores its events again: a new timestamp, a new key.
        event = next(e for e in store.events(replayed) if e["type"] == "branch_done")
        again = {k: v for k, v in event.items() if k not in ("seq", "task_id", "v")}
        again["ts"] += 1.5
        assert store.append_event(replayed, state_event_key(again), again) is not None
        # The same key stored twice (only possible without the unique index).
        with sqlite3.connect(copy) as conn:
            (index,) = conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'"
                " AND sql LIKE '%UNIQUE%'"
            ).fetchone()
            conn.execute(f'DROP INDEX "{index}"')
            conn.execute(
                "INSERT INTO events (task_id, seq, key, type, ts, data)"
                " SELECT task_id, (SELECT max(seq) + 1 FROM events WHERE task_id = ?), key,"
                " type, ts, data FROM events WHERE task_id = ? AND type = 'branch_done' LIMIT 1",
                (same_key, same_key),
            )
            # An event the crash lost: its row is gone.
            conn.execute(
                "DELETE FROM events WHERE task_id = ? AND seq ="
                " (SELECT max(seq) FROM events WHERE task_id = ? AND type = 'selected')",
                (lost, lost),
            )
        assert duplicate_keys(copy) == {same_key: 1}
        planted = tally_store(store, copy, storm.tasks, twins(reference))
    finally:
        store.close()
    assert planted.duplicated_events == 2, planted.problems
    assert planted.lost_events == 1, planted.problems
    assert planted.seq_gaps == 1 and planted.unexpected_events == 0, planted.problems
    assert {p.split(" ")[0] for p in planted.problems} == {replayed, same_key, lost}, (
        planted.problems
    )


def test_compare_tells_lost_duplicated_unexpected_and_moved_events() -> None:
    ref = [{"type": t, "ts": i, "seq": i + 1} for i, t in enumerate(["a", "b", "c"])]
    same = [{**e, "ts": e["ts"] + 9} for e in ref]  # other times, other seqs: the same events
    clean = {"lost": 0, "duplicated": 0, "unexpected": 0, "reordered": 0, "interleaved": 0}
    assert compare(ref, same) == clean
    assert compare(ref, same[:2])["lost"] == 1
    assert compare(ref, [*same, same[1]])["duplicated"] == 1
    odd = {"type": "z"}
    assert compare(ref, [*same, odd, odd]) == {**clean, "duplicated": 1, "unexpected": 1}
    assert compare(ref, [same[1], same[0], same[2]]) == {**clean, "reordered": 1}
    # Two branches' work may interleave either way; one branch's own order may not change.
    b1 = [{"type": "tool_call", "branch_id": "b1"}, {"type": "branch_done", "branch_id": "b1"}]
    b2 = [{"type": "branch_done", "branch_id": "b2"}]
    step = [
        {"type": "branch_started", "branch_id": "b1"},
        {"type": "branch_started", "branch_id": "b2"},
    ]
    ref = [*step, *b1, *b2, {"type": "evaluation"}]
    assert compare(ref, [*step, *b2, *b1, {"type": "evaluation"}]) == {**clean, "interleaved": 1}
    assert compare(ref, [*step, b1[1], *b2, b1[0], {"type": "evaluation"}]) == {
        **clean,
        "reordered": 1,
    }
    assert compare(ref, [*step, b1[0], {"type": "evaluation"}, b1[1], *b2]) == {
        **clean,
        "reordered": 1,
    }


# One task in a process that dies (os._exit: no cleanup, as under SIGKILL) when LangGraph is
# about to save the checkpoint of the NTH step that updates CHANNEL: the writes of that step's
# tasks, submitted before, are given time to land; the checkpoint never is.
DIE_BEFORE_CHECKPOINT = """
import asyncio, os, sys
from pathlib import Path
from myninja.agent_graph.checkpoints import open_checkpointer
from myninja.agent_graph.tasks.manager import TaskManager
from myninja.config_file import load_config

channel, nth, data, text = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
seen = 0

async def main():
    async with open_checkpointer(data / "checkpoints.db") as saver:
        put = saver.aput

        async def aput(config, checkpoint, metadata, new_versions):
            global seen
            if channel in (checkpoint.get("updated_channels") or ()):
                seen += 1
                if seen == nth:
                    await asyncio.sleep(1.0)
                    async with saver.lock:  # the writes queued before this are saved
                        os._exit(137)
            return await put(config, checkpoint, metadata, new_versions)

        saver.aput = aput
        async with TaskManager.open(load_config(), data, checkpointer=saver) as manager:
            await manager.wait(await manager.submit(text))
    os._exit(3)  # it ended without meeting that step

asyncio.run(main())
"""


@pytest.mark.parametrize(
    ("slot", "channel", "nth"),
    [
        ("limerick/0", "text", 1),  # the input's writes saved, not the first checkpoint
        ("notes/0", "candidates", 1),  # the three branches (two read files) saved theirs
    ],
    ids=["after-input", "after-branches"],
)
def test_a_kill_between_a_steps_writes_and_its_checkpoint(
    slot: str, channel: str, nth: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = Home(tmp_path / "home")
    home.data.mkdir(parents=True)
    monkeypatch.setenv("MYNINJA_HOME", str(home.path))
    text = text_of(slot)
    died = subprocess.run(
        [sys.executable, "-c", DIE_BEFORE_CHECKPOINT, channel, str(nth), str(home.data), text],
        env=home.env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert died.returncode == 137, f"exit {died.returncode}: {died.stderr[-2000:]}"
    with sqlite3.connect(home.data / "checkpoints.db") as conn:
        (latest,) = conn.execute("SELECT max(checkpoint_id) FROM checkpoints").fetchone()
        (writes,) = conn.execute(
            "SELECT count(*) FROM writes WHERE checkpoint_id = ?", (latest,)
        ).fetchone()
    assert writes, "the process died before the step's writes were saved: not the window"

    async def resume_then_reference() -> tuple[dict, list, list]:
        async with TaskManager.open(load_config(home.path / "config.toml"), home.data) as manager:
            (task_id,) = await manager.resume_unfinished()
            await manager.wait(task_id)
            twin = await manager.submit(text)
            await manager.wait(twin)
            store = manager.store
            return store.get_task(task_id) or {}, store.events(task_id), store.events(twin)

    task, events, reference = asyncio.run(resume_then_reference())
    kinds = [e["type"] for e in events]
    assert (task["status"], task["answer"]) == ("done", EXPECTED[slot.split("/")[0]]), (
        task.get("error"),
        kinds,
    )
    assert compare(reference, events) == {
        "lost": 0,
        "duplicated": 0,
        "unexpected": 0,
        "reordered": 0,
        "interleaved": 0,
    }, (kinds, [e["type"] for e in reference])
