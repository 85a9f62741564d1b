"""What our agent runtime costs on top of LangGraph itself, and 100 tasks at once.

(a) Per-step overhead. Tasks run one after another on the scripted backend (instant replies),
    through a real TaskManager (our graph, history.db, event syncing, checkpoints.db with
    durability "sync"), against a bare LangGraph graph of the same topology (route -> plan ->
    fan_out -> branch x N (Send) -> evaluate -> finalize) whose nodes return {} or a minimal
    update, compiled with the checkpointer TaskManager.open makes (today an AsyncSqliteSaver on
    checkpoints.db) and run with durability "sync".
    Steps are counted from each thread's checkpoints (one per superstep, input included), so
    both sides are divided by the steps they really took. Rounds alternate ours/bare, and the
    medians of the per-round figures are reported. The same again with an in-memory saver.
(b) 100 tasks submitted at once to one TaskManager (default graph: 3 branches and the judge;
    checkpoints on), wall time from the first submit until the last task ended; for context
    also a bare graph with 100 concurrent runs, and ours on an in-memory saver.

Prints one JSON object. Targets: (a) ratio <= 1.5 with checkpoints on, (b) <= 3 s on a
2-core machine (the median of the runs).

    python benchmarks/runtime_overhead.py [--tasks 20] [--rounds 5] [--concurrent 100] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import operator
import os
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, Send

from myninja.agent_graph.checkpoints import open_checkpointer
from myninja.agent_graph.tasks.manager import TaskManager
from myninja.backends.scripted import Rule, ScriptedBackend
from myninja.config import Config

STEP_RATIO_TARGET = 1.5
CONCURRENT_TARGET_S = 3.0

# The scripted backend answers every call at once: route, a one-step plan, three branch styles
# (prompts name them in fixed words, see agent_graph/prompts.py) and the judge's scores.
RULES: list[dict[str, Any]] = [
    {"match": r"Route this task", "json": {"agent": "writer", "reason": "it is writing"}},
    {
        "match": r"Task to plan",
        "json": {"steps": [{"title": "Draft", "instruction": "Write the text."}]},
    },
    *(
        {"match": rf"Candidate:\n{name}", "json": {"score": score, "reasons": "judged"}}
        for name, score in (("Answer A", 9), ("Answer B", 5), ("Answer C", 6))
    ),
    {"match": r"Attempt 1\. Answer directly", "reply": "Answer A"},
    {"match": r"Attempt 1\. Work it out", "reply": "Answer B"},
    {"match": r"Attempt 1\. Consider an approach", "reply": "Answer C"},
]


def task_text(i: int) -> str:
    return f"Write limerick number {i} about tmux sessions"


# -- the bare graph ---------------------------------------------------------------------------


class BareState(TypedDict, total=False):
    text: str
    done: Annotated[list[int], operator.add]


def bare_graph(branches: int) -> StateGraph:
    async def route(state: BareState) -> dict[str, Any]:
        return {}

    async def plan(state: BareState) -> Command:
        return Command(goto="fan_out")

    async def fan_out(state: BareState) -> dict[str, Any]:
        return {}

    def send_branches(state: BareState) -> list[Send]:
        return [Send("branch", {"i": i}) for i in range(branches)]

    async def branch(inp: dict[str, Any]) -> dict[str, Any]:
        return {"done": [inp["i"]]}

    async def evaluate(state: BareState) -> Command:
        return Command(goto="finalize")

    async def finalize(state: BareState) -> dict[str, Any]:
        return {}

    graph = StateGraph(BareState)
    graph.add_node("route", route)
    graph.add_node("plan", plan, destinations=("fan_out", END))
    graph.add_node("fan_out", fan_out)
    graph.add_node("branch", branch)
    graph.add_node("evaluate", evaluate, destinations=("plan", "fan_out", "finalize", END))
    graph.add_node("finalize", finalize)
    graph.add_edge(START, "route")
    graph.add_edge("route", "plan")
    graph.add_conditional_edges("fan_out", send_branches, ["branch"])
    graph.add_edge("branch", "evaluate")
    graph.add_edge("finalize", END)
    return graph


@contextlib.asynccontextmanager
async def saver_for(kind: str, data: Path) -> AsyncIterator[Any]:
    """The checkpointer the bare graph runs on: for "sqlite" the very one TaskManager.open sets
    up (checkpoints.db, its pragmas), whatever class that is; else an in-memory one."""
    if kind == "sqlite":
        async with open_checkpointer(data / "checkpoints.db") as saver:
            yield saver
    else:
        yield InMemorySaver()


async def count_steps(graph: Any, thread_id: str) -> int:
    """Supersteps of one thread: one checkpoint each (the input's included)."""
    cfg = {"configurable": {"thread_id": thread_id}}
    return len([s async for s in graph.aget_state_history(cfg)])


# -- one side, one round ----------------------------------------------------------------------


@contextlib.asynccontextmanager
async def our_manager(kind: str, branches: int, data: Path) -> AsyncIterator[TaskManager]:
    config = Config.model_validate({"graph": {"branches": branches}})
    backends = {"embedded": ScriptedBackend("embedded", [Rule(**r) for r in RULES])}
    # "sqlite" is exactly what the worker runs.
    saver = None if kind == "sqlite" else InMemorySaver()
    async with TaskManager.open(config, data, backends=backends, checkpointer=saver) as manager:
        yield manager


async def ours_sequential(kind: str, branches: int, tasks: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        async with our_manager(kind, branches, Path(tmp)) as manager:
            warm = await manager.submit("warm up")
            await manager.wait(warm)
            ids, cpu, started = [], time.process_time(), time.perf_counter()
            for i in range(tasks):
                task_id = await manager.submit(task_text(i))
                await manager.wait(task_id)
                ids.append(task_id)
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            statuses = {manager.store.get_task(i)["status"] for i in ids}  # type: ignore[index]
            assert statuses == {"done"}, statuses
            steps = sum([await count_steps(manager.graph, i) for i in ids])
    return {
        "wall_s": wall,
        "steps": steps,
        "per_step_ms": wall / steps * 1000,
        "cpu_per_step_ms": cpu / steps * 1000,
    }


async def bare_sequential(kind: str, branches: int, tasks: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        async with saver_for(kind, Path(tmp)) as saver:
            graph = bare_graph(branches).compile(checkpointer=saver)
            await graph.ainvoke(
                {"text": "warm up"}, {"configurable": {"thread_id": "warm"}}, durability="sync"
            )
            ids, cpu, started = [], time.process_time(), time.perf_counter()
            for i in range(tasks):
                thread_id = f"t{i}"
                cfg = {"configurable": {"thread_id": thread_id}}
                out = await graph.ainvoke({"text": task_text(i)}, cfg, durability="sync")
                assert len(out["done"]) == branches
                ids.append(thread_id)
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            steps = sum([await count_steps(graph, i) for i in ids])
    return {
        "wall_s": wall,
        "steps": steps,
        "per_step_ms": wall / steps * 1000,
        "cpu_per_step_ms": cpu / steps * 1000,
    }


async def ours_concurrent(kind: str, tasks: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        async with our_manager(kind, 3, Path(tmp)) as manager:
            warm = await manager.submit("warm up")
            await manager.wait(warm)
            gc.collect()
            cpu, started = time.process_time(), time.perf_counter()
            ids = [await manager.submit(task_text(i)) for i in range(tasks)]
            await asyncio.gather(*(manager.wait(i) for i in ids))
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            done = sum(manager.store.get_task(i)["status"] == "done" for i in ids)  # type: ignore[index]
            assert done == tasks, f"{done} of {tasks} done"
    return {"wall_s": wall, "cpu_s": cpu}


async def bare_concurrent(kind: str, tasks: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        async with saver_for(kind, Path(tmp)) as saver:
            graph = bare_graph(3).compile(checkpointer=saver)
            await graph.ainvoke(
                {"text": "warm up"}, {"configurable": {"thread_id": "warm"}}, durability="sync"
            )
            gc.collect()
            cpu, started = time.process_time(), time.perf_counter()
            await asyncio.gather(
                *(
                    graph.ainvoke(
                        {"text": task_text(i)},
                        {"configurable": {"thread_id": f"t{i}"}},
                        durability="sync",
                    )
                    for i in range(tasks)
                )
            )
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"wall_s": wall, "cpu_s": cpu}


# -- putting it together ----------------------------------------------------------------------


def _median(rows: list[dict[str, float]], key: str) -> float:
    return round(statistics.median(r[key] for r in rows), 4)


async def step_overhead(kind: str, branches: int, tasks: int, rounds: int) -> dict[str, Any]:
    ours: list[dict[str, float]] = []
    bare: list[dict[str, float]] = []
    for _ in range(rounds):  # alternate, so a busy moment on the machine hits both sides
        gc.collect()
        ours.append(await ours_sequential(kind, branches, tasks))
        gc.collect()
        bare.append(await bare_sequential(kind, branches, tasks))
    ours_ms, bare_ms = _median(ours, "per_step_ms"), _median(bare, "per_step_ms")
    return {
        "checkpointer": "checkpoints.db as TaskManager.open sets it up"
        if kind == "sqlite"
        else "InMemorySaver",
        "branches": branches,
        "tasks_per_round": tasks,
        "rounds": rounds,
        "steps_per_task": {"ours": ours[0]["steps"] / tasks, "bare": bare[0]["steps"] / tasks},
        "ours_ms_per_step": ours_ms,
        "bare_ms_per_step": bare_ms,
        "ours_ms_per_task": round(statistics.median(r["wall_s"] for r in ours) / tasks * 1000, 3),
        "bare_ms_per_task": round(statistics.median(r["wall_s"] for r in bare) / tasks * 1000, 3),
        "ratio": round(ours_ms / bare_ms, 3),
        # CPU time of the process (both threads): steadier than wall time on a busy machine.
        "ours_cpu_ms_per_step": _median(ours, "cpu_per_step_ms"),
        "bare_cpu_ms_per_step": _median(bare, "cpu_per_step_ms"),
        "cpu_ratio": round(_median(ours, "cpu_per_step_ms") / _median(bare, "cpu_per_step_ms"), 3),
        "ours_ms_per_step_rounds": [round(r["per_step_ms"], 3) for r in ours],
        "bare_ms_per_step_rounds": [round(r["per_step_ms"], 3) for r in bare],
    }


async def concurrent(tasks: int, runs: int) -> dict[str, Any]:
    ours = [await ours_concurrent("sqlite", tasks) for _ in range(runs)]
    bare = [await bare_concurrent("sqlite", tasks) for _ in range(runs)]
    ours_memory = [await ours_concurrent("memory", tasks) for _ in range(runs)]
    median = _median(ours, "wall_s")
    return {
        "tasks": tasks,
        "branches": 3,
        "runs": runs,
        "wall_s": median,
        "wall_s_runs": [round(r["wall_s"], 3) for r in ours],
        "cpu_s": _median(ours, "cpu_s"),
        "per_task_ms": round(median / tasks * 1000, 2),
        "target_s": CONCURRENT_TARGET_S,
        "target_met": median <= CONCURRENT_TARGET_S,
        "context": {
            "bare_langgraph_sqlite_wall_s": _median(bare, "wall_s"),
            "bare_langgraph_sqlite_cpu_s": _median(bare, "cpu_s"),
            "ours_in_memory_saver_wall_s": _median(ours_memory, "wall_s"),
            "ours_in_memory_saver_cpu_s": _median(ours_memory, "cpu_s"),
        },
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        async with saver_for("sqlite", Path(tmp)) as saver:
            saver_class = type(saver).__name__
    primary = await step_overhead("sqlite", 1, args.tasks, args.rounds)
    result: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)},
        "checkpointer_class": saver_class,
        "step_overhead": {
            **primary,
            "target_ratio": STEP_RATIO_TARGET,
            "target_met": primary["ratio"] <= STEP_RATIO_TARGET,
        },
        "step_overhead_branches_3": await step_overhead("sqlite", 3, args.tasks, args.rounds),
        "step_overhead_in_memory": await step_overhead("memory", 1, args.tasks, args.rounds),
        "concurrent": await concurrent(args.concurrent, args.runs),
    }
    result["targets_met"] = (
        result["step_overhead"]["target_met"] and result["concurrent"]["target_met"]
    )
    result["bench_wall_s"] = round(time.perf_counter() - started, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=20, help="sequential tasks per round (a)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (a)")
    parser.add_argument("--concurrent", type=int, default=100, help="tasks at once (b)")
    parser.add_argument("--runs", type=int, default=3, help="runs of (b)")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
