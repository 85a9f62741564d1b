"""Load: many tasks at once through the real background worker, and the app while it works.

(a) Scripted backend, N tasks (default 200) submitted to the worker at once (3 branches and the
    judge each, replies streamed token by token). Baseline in the same run: one task alone.
    Figures: wall time, tasks/s, per-task latency p50/p95/max (created → finished, from
    history), events recorded, lost or duplicated events (each task must end with exactly one
    task_done and its answer), the worker's peak memory (VmHWM) and its growth over idle.
(b) The app (the real MyninjaApp, driven by Textual's Pilot in this process) while (a) runs:
    keys are typed into the task box at a steady pace from a thread, as the terminal driver
    would, and the time from each key to the box's value changing is measured; baseline: the
    same with the worker idle. Figures: p50/p95/max key latency, loaded vs idle ratio.
(c) The tiny model (SmolLM2-135M, embedded): M tasks (default 50) streaming at once through the
    worker, one branch each; they queue on the one loaded model. Baseline: one task alone.
    Figures: wall, completion tokens/s overall vs alone, worker peak memory.

Prints one JSON object.

    python benchmarks/load.py [--tasks 200] [--model-tasks 50] [--skip-model] [--keys 60]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from textual import events  # noqa: E402
from textual.widgets import Input  # noqa: E402

from benchmarks.runtime_overhead import RULES  # noqa: E402
from myninja.agent_graph.history import HistoryStore  # noqa: E402
from myninja.agent_graph.history.statuses import FINISHED  # noqa: E402
from myninja.agent_graph.tasks.client import WorkerClient  # noqa: E402
from myninja.ninja_tui.app import MyninjaApp  # noqa: E402

STREAMED_RULES = [  # the same answers, but the branches stream token by token
    {**rule, "token_delay": 0.002} if "reply" in rule else rule for rule in RULES
]


def write_config(home: Path, *, model: bool) -> None:
    home.mkdir(parents=True, exist_ok=True)
    if model:
        config = (
            'worker_idle_s = 600\n[backends.embedded]\nmodel = "smollm2-135m"\nthreads = 1\n'
            "[graph]\nbranches = 1\nmax_rounds = 1\nmax_tokens = 24\n"  # load, not quality
        )
    else:
        script = home / "script.json"
        script.write_text(json.dumps({"rules": STREAMED_RULES}))
        config = (
            f'worker_idle_s = 600\n[backends.embedded]\ntype = "scripted"\nscript = "{script}"\n'
        )
    (home / "config.toml").write_text(config)


def peak_memory_kib(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            fields[name] = int(value.split()[0])
    return fields


async def submit_all(client: WorkerClient, texts: list[str], agent: str) -> list[str]:
    replies = await asyncio.gather(*(client.request("submit", text=t, agent=agent) for t in texts))
    return [r["task_id"] for r in replies]


async def wait_done(store: HistoryStore, ids: list[str], timeout_s: float) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        rows = {t["id"]: t["status"] for t in store.list_tasks(limit=None)}
        if all(rows.get(i) in FINISHED for i in ids):
            return time.perf_counter() - started
        await asyncio.sleep(0.1)
    raise TimeoutError(f"tasks not finished after {timeout_s}s")


def task_figures(store: HistoryStore, ids: list[str]) -> dict[str, Any]:
    latencies, statuses, events, lost, duplicated, tokens = [], Counter(), 0, 0, 0, 0
    for task_id in ids:
        task = store.get_task(task_id)
        assert task is not None
        statuses[task["status"]] += 1
        latencies.append(task["finished_at"] - task["created_at"])
        recorded = store.events(task_id)
        events += len(recorded)
        kinds = Counter(e["type"] for e in recorded)
        done = [e for e in recorded if e["type"] == "task_done"]
        lost += kinds["task_done"] == 0 or not (task.get("answer") or "").strip()
        duplicated += max(kinds["task_done"] - 1, 0) + max(kinds["answer"] - 1, 0)
        tokens += sum(((e.get("usage") or {}).get("completion_tokens") or 0) for e in done)
    return {
        "statuses": dict(statuses),
        "latency_p50_s": round(statistics.median(latencies), 3),
        "latency_p95_s": round(sorted(latencies)[int(0.95 * (len(latencies) - 1))], 3),
        "latency_max_s": round(max(latencies), 3),
        "events": events,
        "tasks_without_answer": lost,
        "duplicated_final_events": duplicated,
        "completion_tokens": tokens,
    }


class TimedApp(MyninjaApp):
    """The app, noting when the task box's value changes."""

    CSS_PATH = str(Path(sys.modules[MyninjaApp.__module__].__file__ or "").parent / "app.tcss")
    changes: list[float]

    def on_input_changed(self, event: Input.Changed) -> None:
        self.changes.append(time.perf_counter())


async def key_latency(data_dir: Path, keys: int, every_s: float) -> dict[str, Any]:
    app = TimedApp(data_dir=data_dir)
    app.changes = []
    sent: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.5)
        app.query_one("#ask", Input).focus()
        driver = app._driver
        assert driver is not None

        def typist() -> None:  # the terminal driver hands keys over from a thread, like this
            begin = time.perf_counter()
            for i in range(keys):
                time.sleep(max(0.0, begin + i * every_s - time.perf_counter()))
                char = "abcdefghijklmnopqrstuvwxyz"[i % 26]
                sent.append(time.perf_counter())
                driver.send_message(events.Key(char, char))

        thread = threading.Thread(target=typist, daemon=True)
        thread.start()
        deadline = time.perf_counter() + keys * every_s + 30
        while len(app.changes) < keys and time.perf_counter() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        thread.join()
        arrived = len(app.query_one("#ask", Input).value)
    delays = [(c - s) * 1000 for s, c in zip(sent, app.changes, strict=False)]
    return {
        "keys": keys,
        "keys_arrived": arrived,
        "p50_ms": round(statistics.median(delays), 1),
        "p95_ms": round(sorted(delays)[int(0.95 * (len(delays) - 1))], 1),
        "max_ms": round(max(delays), 1),
    }


@contextlib.asynccontextmanager
async def worker_for(
    home: Path, *, model: bool
) -> AsyncIterator[tuple[WorkerClient, HistoryStore, int]]:
    """A fresh home with its own background worker (client, history, the worker's pid)."""
    write_config(home, model=model)
    os.environ["MYNINJA_HOME"] = str(home)
    data = home / "data"
    client = WorkerClient(data)
    await client.ensure()
    pid = (await client.request("ping"))["pid"]
    store = HistoryStore(data / "history.db")
    try:
        yield client, store, pid
    finally:
        store.close()
        await client.request("shutdown")


async def scripted_load(home: Path, tasks: int, keys: int) -> dict[str, Any]:
    async with worker_for(home, model=False) as (client, store, pid):
        data = home / "data"
        idle = await key_latency(data, keys, 0.05)
        memory_idle = peak_memory_kib(pid)
        alone_ids = await submit_all(client, ["Write limerick number 0 about tmux"], "writer")
        await wait_done(store, alone_ids, 120)
        alone_s = task_figures(store, alone_ids)["latency_max_s"]  # created → finished
        texts = [f"Write limerick number {i} about tmux sessions" for i in range(1, tasks + 1)]
        started = time.perf_counter()
        ids = await submit_all(client, texts, "writer")
        typing = asyncio.create_task(key_latency(data, keys, 0.05))
        await wait_done(store, ids, 1800)
        wall = time.perf_counter() - started
        loaded = await typing
        figures = task_figures(store, ids)
        memory = peak_memory_kib(pid)
    return {
        "tasks": tasks,
        "one_task_alone_s": round(alone_s, 3),
        "wall_s": round(wall, 2),
        "tasks_per_s": round(tasks / wall, 2),
        "speedup_vs_one_after_another": round(tasks * alone_s / wall, 2),
        **figures,
        "worker_rss_idle_mib": round(memory_idle["VmRSS"] / 1024, 1),
        "worker_peak_mib": round(memory["VmHWM"] / 1024, 1),
        "tui_keys_idle": idle,
        "tui_keys_loaded": loaded,
        "tui_p95_loaded_over_idle": round(loaded["p95_ms"] / max(idle["p95_ms"], 0.1), 2),
    }


async def model_load(home: Path, tasks: int) -> dict[str, Any]:
    async with worker_for(home, model=True) as (client, store, pid):
        alone_ids = await submit_all(client, ["Name one colour."], "advisor")
        await wait_done(store, alone_ids, 600)
        alone = task_figures(store, alone_ids)
        alone_s = alone["latency_max_s"]
        texts = [f"Name one colour and one fruit, variant {i}." for i in range(tasks)]
        started = time.perf_counter()
        ids = await submit_all(client, texts, "advisor")
        await wait_done(store, ids, 3600)
        wall = time.perf_counter() - started
        figures = task_figures(store, ids)
        memory = peak_memory_kib(pid)
    alone_rate = alone["completion_tokens"] / alone_s if alone_s else 0
    rate = figures["completion_tokens"] / wall if wall else 0
    return {
        "tasks": tasks,
        "one_task_alone_s": round(alone_s, 2),
        "wall_s": round(wall, 1),
        "completion_tokens_per_s": round(rate, 1),
        "completion_tokens_per_s_alone": round(alone_rate, 1),
        "rate_ratio_vs_alone": round(rate / alone_rate, 2) if alone_rate else None,
        **figures,
        "worker_peak_mib": round(memory["VmHWM"] / 1024, 1),
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="bench-load-"))
    result: dict[str, Any] = {
        "scripted": await scripted_load(root / "scripted", args.tasks, args.keys)
    }
    if not args.skip_model:
        result["tiny_model"] = await model_load(root / "model", args.model_tasks)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--model-tasks", type=int, default=50)
    parser.add_argument("--keys", type=int, default=60, help="keys typed in each app measurement")
    parser.add_argument("--skip-model", action="store_true")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main_async(args)), indent=2))


if __name__ == "__main__":
    main()
