"""Tokens and cost in the app, from history's usage rows and a price table: the shown task's in
its header, read again when it finishes; today's total in the subtitle, without yesterday's
calls, "?" for its cost once a call has no price, refreshed when a task finishes. Every figure
the test expects is summed here from the rows it seeded, not by the code under test."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest

from myninja.agent_graph.history import HistoryStore
from myninja.agent_graph.history import usage as ledger
from myninja.config import Config
from myninja.ninja_tui.app import MyninjaApp
from tests.ninja_tui.test_history_screen import wait_for

PRICES = {
    "small": (0.15, 0.60),  # by model
    "gw": (2.0, 8.0),  # by backend, for its other models
}
CONFIG = Config.model_validate(
    {
        "backends": {
            "embedded": {"type": "embedded"},
            "gw": {"type": "openai", "url": "http://127.0.0.1:9/v1", "model": "small"},
            "other": {"type": "openai", "url": "http://127.0.0.1:9/v1"},
        },
        "prices": {
            name: {"input_per_mtok": inp, "output_per_mtok": out}
            for name, (inp, out) in PRICES.items()
        },
    }
)


def expected_cost(backend: str, model: str, prompt: int, completion: int) -> float | None:
    if backend == "embedded":
        return 0.0
    price = PRICES.get(model) or PRICES.get(backend)
    if price is None:
        return None
    return (prompt * price[0] + completion * price[1]) / 1e6


def moments() -> tuple[float, float]:
    """A moment earlier today and one yesterday evening, local time."""
    now = time.time()
    midnight = datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight.timestamp() + now) / 2, midnight.timestamp() - 3600


TODAY, YESTERDAY = moments()
# (task, backend, model, prompt tokens, completion tokens, when)
CALLS = [
    ("t_paint", "gw", "small", 1_200, 300, TODAY),  # the model's price
    ("t_paint", "gw", "large", 500, 200, TODAY),  # the backend's price
    ("t_paint", "embedded", "qwen", 4_000, 10, TODAY),  # free
    ("t_paint", "gw", "small", 10_000, 2_000, YESTERDAY),  # the task's, not today's
    ("t_other", "gw", "large", 3_000, 1_000, TODAY),
    ("t_old", "gw", "small", 50_000, 9_000, YESTERDAY),
]


def record(store: HistoryStore, calls: list[tuple[str, str, str, int, int, float]]) -> None:
    for task_id, backend, model, prompt, completion, ts in calls:
        ledger.record(
            store,
            task_id,
            agent="writer",
            backend=backend,
            model=model,
            prompt_tokens=prompt,
            completion_tokens=completion,
            ts=ts,
        )


def usage_phrase(calls: list[tuple[str, str, str, int, int, float]]) -> str:
    tokens = sum(prompt + completion for _, _, _, prompt, completion, _ in calls)
    costs = [expected_cost(b, m, p, c) for _, b, m, p, c, _ in calls]
    cost = "?" if None in costs else f"{sum(c for c in costs if c is not None):.4f}"
    return f"{tokens:,} tok · cost {cost}"


@pytest.fixture
def data_dir(myninja_home: Path) -> Path:
    data = myninja_home / "data"
    data.mkdir()
    with HistoryStore(data / "history.db") as store:
        store.create_task("t_old", "Old task", status="done", created_at=YESTERDAY)
        store.create_task("t_other", "Other task", status="done", created_at=TODAY)
        store.create_task("t_paint", "Paint the gate", status="done", created_at=TODAY + 1)
        record(store, CALLS)
    return data


def header(app: MyninjaApp) -> str:
    return str(app.query_one("#task-header").render())


async def test_the_task_header_shows_its_tokens_and_cost(data_dir: Path) -> None:
    app = MyninjaApp(data_dir, refresh_s=0.1, config=CONFIG)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.selected == "t_paint" and "Paint" in header(app))
        mine = [call for call in CALLS if call[0] == "t_paint"]
        # 0.00018 + 0.00018 + 0.001 + 0.0016 + 0 + 0.0015 + 0.0012 = 0.00566
        wanted = usage_phrase(mine)
        assert wanted == "18,210 tok · cost 0.0057"
        await wait_for(pilot, lambda: wanted in header(app))
        assert "(4 model calls)" in header(app)

        await app.select_task("t_other")  # chosen: its own usage
        other = usage_phrase([call for call in CALLS if call[0] == "t_other"])
        await wait_for(pilot, lambda: f"{other}  (1 model call)" in header(app))


async def test_todays_total_leaves_out_yesterday_and_follows_finished_tasks(
    data_dir: Path,
) -> None:
    app = MyninjaApp(data_dir, refresh_s=0.1, config=CONFIG)
    async with app.run_test(size=(100, 30)) as pilot:
        today = [call for call in CALLS if call[5] == TODAY]
        assert usage_phrase(today) == "10,210 tok · cost 0.0170"
        await wait_for(pilot, lambda: app.sub_title == f"today {usage_phrase(today)}")
        assert "today" in str(app.query_one("HeaderTitle").render())

        # A task runs and finishes meanwhile (elsewhere: a worker, `myninja ask`), on a model
        # with no price: once the list shows it finished, the total has it, its cost unknown.
        store = app.store
        assert store is not None
        store.create_task("t_new", "Unpriced work", status="running", created_at=time.time())
        await pilot.pause(0.3)
        new = [("t_new", "other", "x", 70, 30, time.time())]
        record(store, new)
        store.update_task("t_new", status="done")
        wanted = f"today {usage_phrase(today + new)}"
        assert wanted == "today 10,310 tok · cost ?"
        await wait_for(pilot, lambda: app.sub_title == wanted)
        # A task that appears already finished (a quick one) counts as finishing too.
        quick = [("t_quick", "gw", "small", 1_000, 1_000, time.time())]
        with store.batch():  # the task and its calls in one write, as a quick task may
            store.create_task("t_quick", "Quick task", status="done", created_at=time.time())
            record(store, quick)
        wanted = f"today {usage_phrase(today + new + quick)}"
        await wait_for(pilot, lambda: app.sub_title == wanted)
        await app.select_task("t_new")  # its header has its own usage
        await wait_for(pilot, lambda: "100 tok · cost ?  (1 model call)" in header(app))


async def test_a_shown_task_reads_its_usage_again_when_it_finishes(data_dir: Path) -> None:
    app = MyninjaApp(data_dir, refresh_s=0.1, config=CONFIG)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.store is not None)
        store = app.store
        assert store is not None
        store.create_task("t_live", "Live task", status="running", created_at=time.time())
        first = [("t_live", "gw", "small", 100, 20, time.time())]
        record(store, first)
        await app.select_task("t_live")
        await wait_for(pilot, lambda: usage_phrase(first) in header(app))
        more = [("t_live", "gw", "large", 400, 80, time.time())]
        record(store, more)
        store.update_task("t_live", status="done")
        await wait_for(
            pilot, lambda: f"{usage_phrase(first + more)}  (2 model calls)" in header(app)
        )
