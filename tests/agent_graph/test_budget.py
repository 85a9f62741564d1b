"""`[budget]`: its config keys, what counts against it (priced gateway calls, by local day and
by task), what is never stopped (the embedded backend, unpriced and free calls), and that a
call stopped by it waits for the task's calls under way, so their tokens are counted. The CLI
story (a task stopped mid-plan and resumed) is tests/cli/test_budget.py."""

from __future__ import annotations

import asyncio
import logging
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from myninja.agent_graph import budget
from myninja.agent_graph.history import HistoryStore
from myninja.agent_graph.history import usage as ledger
from myninja.agent_graph.metered import MeteredBackend
from myninja.agent_graph.tasks.manager import TaskManager
from myninja.backends.base import ChatRequest
from myninja.backends.factory import make_backend
from myninja.backends.scripted import Rule, ScriptedBackend
from myninja.config import DEFAULT_MODEL, Config
from myninja.config_file import load_config
from myninja.errors import EXIT_UNREACHABLE, BudgetSpent, ConfigError
from tests.agent_graph.scripts import PLAN_TWO_STEPS, ROUTE, three_branches
from tests.local_http import serving
from tests.openai_stub import send_reply


def gateway_config(url: str = "http://127.0.0.1:9/v1", **extra: Any) -> Config:
    return Config.model_validate(
        {
            "backends": {
                "embedded": {"type": "embedded"},
                "gw": {"type": "openai", "url": url, "model": "m", "max_retries": 0},
            },
            "prices": {"m": {"input_per_mtok": 1.0, "output_per_mtok": 10.0}},
            **extra,
        }
    )


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with HistoryStore(tmp_path / "history.db") as store:
        for task_id in ("t_a", "t_b"):
            store.create_task(task_id, "a task", agent="writer", status="running")
        yield store


def spend(store: HistoryStore, task_id: str, ts: float, backend: str = "gw", model: str = "m"):
    """One recorded call costing 0.002 at the test prices (1000 in, 100 out)."""
    ledger.record(
        store,
        task_id,
        agent="writer",
        backend=backend,
        model=model,
        prompt_tokens=1000,
        completion_tokens=100,
        ts=ts,
    )


# Config ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[budget]\ndaily = -1\n", "budget.daily: must be greater than or equal to 0, got -1"),
        ('[budget]\nper_task = "5"\n', "budget.per_task: must be a valid number, got '5'"),
        ("[budget]\ndaily = true\n", "budget.daily: must be a valid number, got True"),
        ("[budget]\ndaily = inf\n", "budget.daily: must be a finite number, got inf"),
        ("[budget]\nmonthly = 3\n", "budget.monthly: unknown key"),
        ("budget = 5\n", "budget: must be a table, got 5"),
    ],
)
def test_a_bad_budget_is_one_config_line(tmp_path: Path, toml: str, expected: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    line = err.value.one_line()
    assert line.startswith(f"{path}: {expected}") and "\n" not in line


def test_budgets_are_optional_money(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("")
    assert load_config(path, environ={}).budget.model_dump() == {"daily": None, "per_task": None}
    path.write_text("[budget]\ndaily = 5.00\nper_task = 1\n")
    assert load_config(path, environ={}).budget.model_dump() == {"daily": 5.0, "per_task": 1.0}
    env = {"MYNINJA_BUDGET__PER_TASK": "0.25"}
    assert load_config(path, environ=env).budget.per_task == 0.25
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={"MYNINJA_BUDGET__DAILY": "lots"})
    assert err.value.one_line() == (
        "environment variable MYNINJA_BUDGET__DAILY: budget.daily: must be a valid number, "
        "got 'lots' (fix it, or unset MYNINJA_BUDGET__DAILY for the default)"
    )


# What counts ------------------------------------------------------------------------------------
def test_daily_counts_every_task_since_local_midnight(store: HistoryStore) -> None:
    config = gateway_config(budget={"daily": 0.005})
    now = time.mktime((2026, 3, 10, 15, 30, 0, 0, 0, -1))
    midnight = budget.day_start(now)
    assert time.localtime(midnight)[:6] == (2026, 3, 10, 0, 0, 0)
    for _ in range(5):
        spend(store, "t_a", midnight - 1)  # yesterday: 0.010, counts nothing today
    budget.check(config, store, "t_b", "gw", "m", now=now)
    spend(store, "t_a", midnight + 10)
    spend(store, "t_a", midnight + 20)
    budget.check(config, store, "t_b", "gw", "m", now=now)  # 0.004 of 0.005
    spend(store, "t_b", midnight + 30)  # another task's call: 0.006 today
    with pytest.raises(BudgetSpent) as err:
        budget.check(config, store, "t_b", "gw", "m", now=now)
    assert err.value.exit_code == EXIT_UNREACHABLE == 4
    line = err.value.one_line()
    assert "today's model calls have cost 0.0060 of [budget] daily = 0.005" in line
    assert "wait until tomorrow, then `myninja tasks resume t_b`" in line
    budget.check(config, store, "t_b", "gw", "m", now=now + 86400)  # the next day: a new budget


def test_per_task_counts_the_tasks_own_calls_on_any_day(store: HistoryStore) -> None:
    config = gateway_config(budget={"per_task": 0.004})
    spend(store, "t_a", time.time() - 3 * 86400)
    spend(store, "t_b", time.time())
    budget.check(config, store, "t_a", "gw", "m")
    spend(store, "t_a", time.time())
    with pytest.raises(BudgetSpent, match=r"task t_a has cost 0\.0040 of its \[budget\] per_t"):
        budget.check(config, store, "t_a", "gw", "m")
    budget.check(config, store, "t_b", "gw", "m")  # the other task has its own


def test_free_and_unpriced_calls_are_never_stopped(
    store: HistoryStore, caplog: pytest.LogCaptureFixture
) -> None:
    config = gateway_config(budget={"daily": 0, "per_task": 0})
    spend(store, "t_a", time.time())
    with pytest.raises(BudgetSpent):  # a budget of 0 stops every priced call
        budget.check(config, store, "t_a", "gw", "m")
    # No price for this model (nor for the backend): not stopped, one warning per process.
    with caplog.at_level(logging.WARNING, logger="myninja.budget"):
        budget.check(config, store, "t_a", "gw", "unpriced-model")
        budget.check(config, store, "t_a", "gw", "unpriced-model")
    warned = [r.getMessage() for r in caplog.records]
    assert warned == [
        "myninja: warning: no price for gw/unpriced-model: its calls do not count against "
        '[budget] (add [prices."unpriced-model"] to the config)'
    ]
    free = gateway_config(
        budget={"per_task": 0}, prices={"free": {"input_per_mtok": 0, "output_per_mtok": 0}}
    )
    budget.check(free, store, "t_a", "gw", "free")  # a price of 0 costs nothing


async def test_the_embedded_backend_is_never_stopped(tmp_path: Path) -> None:
    # Spent budgets of 0, and even a price for the embedded model: its calls cost nothing.
    config = Config.model_validate(
        {
            "graph": {"max_steps": 2, "adaptive": False, "judge": "each"},
            "budget": {"daily": 0, "per_task": 0},
            "prices": {DEFAULT_MODEL: {"input_per_mtok": 100, "output_per_mtok": 100}},
        }
    )
    rules = [ROUTE, PLAN_TWO_STEPS, *three_branches((4, 9, 6))]
    scripted = ScriptedBackend("embedded", [Rule(**r) for r in rules])
    data = tmp_path / "data"
    async with TaskManager.open(config, data, backends={"embedded": scripted}) as manager:
        task_id = await manager.submit("Write a limerick about tmux", agent="writer")
        await asyncio.wait_for(manager.wait(task_id), 30)
        task = manager.store.get_task(task_id)
        assert task is not None and task["status"] == "done", task
        assert len(ledger.calls(manager.store, task_id=task_id)) == len(scripted.calls) > 3


# A stop waits for the calls under way ----------------------------------------------------------
class Slow(BaseHTTPRequestHandler):
    """A chat completion after a second; 1000 prompt and 100 completion tokens."""

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(1.0)
        send_reply(self, {"model": "m"}, "slow", {"prompt_tokens": 1000, "completion_tokens": 100})


async def test_a_stopped_call_waits_for_the_tasks_calls_under_way(store: HistoryStore) -> None:
    with serving(Slow) as url:
        config = gateway_config(f"{url}/v1", budget={"per_task": 0.003})
        gateway = make_backend(config, "gw")
        try:
            metered = MeteredBackend(gateway, store, "t_a", "writer", "gw", "m", config)
            request = ChatRequest([{"role": "user", "content": "hi"}])
            under_way = asyncio.create_task(metered.chat(request))  # starts under budget
            await asyncio.sleep(0.3)
            spend(store, "t_a", time.time())
            spend(store, "t_a", time.time())  # 0.004 of 0.003: spent while it runs
            with pytest.raises(BudgetSpent):
                await metered.chat(request)
            # The stop came only once the call under way had returned and was counted.
            assert under_way.done() and under_way.result().text == "slow"
            assert len(ledger.calls(store, task_id="t_a")) == 3
        finally:
            await gateway.aclose()
