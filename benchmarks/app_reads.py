"""How often the app reads history.db while a task streams.

The real MyninjaApp (Textual's Pilot, in this process, its default 0.5 s refresh) and a real
background worker on the scripted backend. A fixed task (one step, three branches of --words
words each streamed --token-delay s apart, the judge) is typed into the app, which selects and
follows it; every SQL statement the app runs on its own history connection is counted
(sqlite3's trace callback) from Enter until the task is done on screen. Reads are SELECTs.
Also the reads per second of the app left open on a finished task (the steady poll). Each
figure is the median of --tasks tasks run one after another.

Prints one JSON object.

    python benchmarks/app_reads.py [--tasks 5] [--words 300] [--token-delay 0.01]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from textual.pilot import Pilot  # noqa: E402
from textual.widgets import Input  # noqa: E402

from benchmarks.runtime_overhead import RULES  # noqa: E402
from myninja.agent_graph.history import HistoryStore  # noqa: E402
from myninja.ninja_tui.app import MyninjaApp  # noqa: E402


def streamed_rules(words: int, token_delay: float) -> list[dict[str, Any]]:
    """RULES with each branch answering `words` words, one token every `token_delay` s; the
    judge still tells the three answers apart by their first words."""
    rules = []
    for rule in RULES:
        if "reply" in rule:
            body = " ".join(f"word{i}" for i in range(words))
            rule = {**rule, "reply": f"{rule['reply']} {body}", "token_delay": token_delay}
        rules.append(rule)
    return rules


def write_config(home: Path, words: int, token_delay: float) -> None:
    home.mkdir(parents=True, exist_ok=True)
    script = home / "script.json"
    script.write_text(json.dumps({"rules": streamed_rules(words, token_delay)}))
    (home / "config.toml").write_text(
        f'worker_idle_s = 600\n[backends.embedded]\ntype = "scripted"\nscript = "{script}"\n'
        '[graph]\nadaptive = false\njudge = "each"\n'
    )


class Counter:
    """Statements run on one sqlite3 connection, by kind."""

    def __init__(self) -> None:
        self.reads = 0
        self.other = 0

    def __call__(self, statement: str) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            self.reads += 1
        else:
            self.other += 1


async def wait_until(pilot: Pilot, check: Any, within_s: float = 120) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("the app never showed what was expected")
        await pilot.pause(0.02)


async def one_task(pilot: Pilot, app: MyninjaApp, probe: HistoryStore, n: int) -> dict[str, Any]:
    assert app.store is not None
    counter = Counter()
    app.store.db.conn.set_trace_callback(counter)
    box = app.query_one("#ask", Input)
    await pilot.press("ctrl+n")
    box.value = f"Write limerick number {n} about tmux sessions"
    start = time.perf_counter()
    await pilot.press("enter")
    await wait_until(pilot, lambda: app.selected is not None and not app.composing)
    task_id = app.selected
    answer = app.query_one("#answer")

    def shown() -> bool:
        task = probe.get_task(task_id or "") or {}
        return task.get("status") == "done" and getattr(answer, "text", "") == task["answer"]

    await wait_until(pilot, shown)
    seconds = time.perf_counter() - start
    app.store.db.conn.set_trace_callback(None)
    events = probe.events(task_id or "")
    return {
        "seconds": round(seconds, 2),
        "reads": counter.reads,
        "reads_per_s": round(counter.reads / seconds, 1),
        "other_statements": counter.other,
        "events_stored": len(events),
    }


async def resting(pilot: Pilot, app: MyninjaApp, seconds: float) -> float:
    """Reads per second with the app open on a finished task, nothing running."""
    assert app.store is not None
    counter = Counter()
    app.store.db.conn.set_trace_callback(counter)
    await pilot.pause(seconds)
    app.store.db.conn.set_trace_callback(None)
    return round(counter.reads / seconds, 1)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="bench-app-reads-"))
    write_config(home, args.words, args.token_delay)
    os.environ["MYNINJA_HOME"] = str(home)
    data = home / "data"
    app = MyninjaApp(data_dir=data)
    runs = []
    async with app.run_test(size=(120, 40)) as pilot:
        await app.worker_client.ensure()
        await wait_until(pilot, lambda: app.store is not None)
        probe = HistoryStore(data / "history.db")
        try:
            for n in range(args.tasks):
                runs.append(await one_task(pilot, app, probe, n))
            idle = await resting(pilot, app, args.idle_s)
        finally:
            probe.close()
            await app.worker_client.request("shutdown")
    return {
        "benchmark": "app_reads",
        "refresh_s": app.refresh_s,
        "words_per_branch": args.words,
        "token_delay_s": args.token_delay,
        "streaming_reads_per_s": statistics.median(r["reads_per_s"] for r in runs),
        "streaming_reads_per_task": statistics.median(r["reads"] for r in runs),
        "resting_reads_per_s": idle,
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=5)
    parser.add_argument("--words", type=int, default=300)
    parser.add_argument("--token-delay", type=float, default=0.01)
    parser.add_argument("--idle-s", type=float, default=10.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main_async(args)), indent=2))


if __name__ == "__main__":
    main()
