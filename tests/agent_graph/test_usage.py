"""Every model call of a task is counted in history's usage table, per agent, backend and
model: run tasks on the scripted backend through a real TaskManager and check the table's sums
against the tasks' own `task_done` usage and the requests the backend received."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

from myninja.agent_graph.history import HistoryStore
from myninja.agent_graph.history import usage as ledger
from myninja.agent_graph.tasks.manager import TaskManager
from myninja.backends.scripted import Rule, ScriptedBackend
from myninja.config import Config
from tests.agent_graph.scripts import PLAN_ONE_STEP, ROUTE, three_branches

RULES = [ROUTE, PLAN_ONE_STEP, *three_branches((4, 9, 6))]


def done_usage(store: HistoryStore, task_id: str) -> dict[str, int]:
    (done,) = [e for e in store.events(task_id) if e["type"] == "task_done"]
    return done["usage"]


async def run_tasks(config: Config, data: Path, texts: list[str]) -> tuple[list[str], int]:
    """Run each task to its end; the ids and how many requests the backend received."""
    scripted = ScriptedBackend("embedded", [Rule(**r) for r in RULES])
    async with TaskManager.open(config, data, backends={"embedded": scripted}) as manager:
        ids = [await manager.submit(text) for text in texts]
        for task_id in ids:
            await asyncio.wait_for(manager.wait(task_id), 30)
            task = manager.store.get_task(task_id)
            assert task is not None and task["status"] == "done", task
    return ids, len(scripted.calls)


async def test_the_table_sums_to_the_tasks_usage_call_by_call(tmp_path: Path) -> None:
    config = Config.model_validate({"graph": {"max_steps": 4, "adaptive": False, "judge": "each"}})
    texts = ["Write a limerick about tmux", "Hello, how are you?", "Write a haiku about rain"]
    ids, requests = await run_tasks(config, tmp_path / "data", texts)

    with HistoryStore(tmp_path / "data" / "history.db") as store:
        rows = ledger.calls(store)
        # One row per request the backend answered: no call is missed or counted twice.
        assert len(rows) == requests
        for task_id in ids:
            own = [r for r in rows if r["task_id"] == task_id]
            expected = done_usage(store, task_id)
            assert sum(r["prompt_tokens"] for r in own) == expected["prompt_tokens"]
            assert sum(r["completion_tokens"] for r in own) == expected["completion_tokens"]
        lines, total = ledger.summarize(config, rows, "agent")
        wanted: dict[str, Any] = {"prompt_tokens": 0, "completion_tokens": 0}
        for task_id in ids:
            for name in wanted:
                wanted[name] += done_usage(store, task_id)[name]
        assert (total.prompt_tokens, total.completion_tokens) == (
            wanted["prompt_tokens"],
            wanted["completion_tokens"],
        )
        # The full tasks were routed by the model, planned, branched and judged.
        by_agent = {line.key: line for line in lines}
        assert {"router", "writer", "judge"} <= set(by_agent)
        assert sum(line.calls for line in lines) == requests
        # The embedded backend costs nothing, priced or not.
        assert total.cost == 0.0 and all(line.cost == 0.0 for line in lines)
        assert {r["backend"] for r in rows} == {"embedded"}


def test_cost_follows_the_price_table(tmp_path: Path) -> None:
    config = Config.model_validate(
        {
            "backends": {
                "embedded": {"type": "embedded"},
                "gw": {"type": "openai", "url": "http://127.0.0.1:9/v1", "model": "small"},
                "other": {"type": "openai", "url": "http://127.0.0.1:9/v1"},
            },
            "prices": {
                "small": {"input_per_mtok": 0.15, "output_per_mtok": 0.60},
                "gw": {"input_per_mtok": 2.0, "output_per_mtok": 8.0},
            },
        }
    )
    with HistoryStore(tmp_path / "history.db") as store:
        store.create_task("t1", "a task")
        calls = [
            ("writer", "gw", "small", 1_000_000, 500_000),  # the model's price: 0.15 + 0.30
            ("judge", "gw", "large", 250_000, 100_000),  # the backend's: 0.50 + 0.80
            ("router", "embedded", "qwen", 4_000_000, 10),  # embedded: free
            ("writer", "other", "x", 7, 3),  # no price at all
        ]
        for agent, backend, model, prompt, completion in calls:
            ledger.record(
                store,
                "t1",
                agent=agent,
                backend=backend,
                model=model,
                prompt_tokens=prompt,
                completion_tokens=completion,
            )
        lines, total = ledger.summarize(config, ledger.calls(store), "model")
    costs = {line.key: line.cost for line in lines}
    assert costs["small"] is not None and abs(costs["small"] - 0.45) < 1e-9
    assert costs["large"] is not None and abs(costs["large"] - 1.30) < 1e-9
    assert costs["qwen"] == 0.0
    assert costs["x"] is None
    assert total.cost is not None and abs(total.cost - 1.75) < 1e-9
    assert total.unpriced == {"other/x"}
    assert total.prompt_tokens == 5_250_007 and total.completion_tokens == 600_013


def test_a_since_bound_and_grouping_by_day(tmp_path: Path) -> None:
    config = Config()
    with HistoryStore(tmp_path / "history.db") as store:
        store.create_task("t1", "a task")
        # Noon, local time, on two days.
        for day, tokens in (("2026-03-01", 10), ("2026-03-02", 20), ("2026-03-02", 5)):
            ts = noon(day)
            ledger.record(
                store,
                "t1",
                agent="writer",
                backend="embedded",
                model="m",
                prompt_tokens=tokens,
                completion_tokens=1,
                ts=ts,
            )
        lines, _ = ledger.summarize(config, ledger.calls(store), "day")
        assert [(line.key, line.prompt_tokens, line.calls) for line in lines] == [
            ("2026-03-01", 10, 1),
            ("2026-03-02", 25, 2),
        ]
        later = ledger.calls(store, since=noon("2026-03-02"))
        assert sorted(r["prompt_tokens"] for r in later) == [5, 20]


def noon(day: str) -> float:
    return dt.datetime.strptime(f"{day} 12:00", "%Y-%m-%d %H:%M").timestamp()


def test_reading_before_any_call_finds_nothing(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "history.db") as store:
        assert ledger.calls(store) == []
        lines, total = ledger.summarize(Config(), [], "backend")
    assert lines == [] and total.calls == 0 and total.cost == 0.0
