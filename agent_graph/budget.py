"""Budgets for model spending (`[budget] daily`, `per_task`), checked before each model call.

What was spent is read from history's `usage` table and priced with the config's `[prices]`
(agent_graph/history/usage.py), so the check sees every call any task or process recorded.
`daily` counts the calls of all tasks since local midnight; `per_task` all the calls of one
task, whenever they were made. A call is stopped (`BudgetSpent`, exit 4) when a budget is
already spent as it starts; a call that starts under budget finishes, so a budget may be
overshot by the calls under way when it runs out.

Only gateway calls that cost money are stopped: the embedded (and scripted) backends, and a
model priced at 0, never are. A call with no price counts nothing and is not stopped either (a
self-hosted server is often unpriced); a warning says so once per backend and model, since its
spending goes unchecked until `[prices]` names it.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from datetime import time as day_time
from typing import TYPE_CHECKING

from myninja import paths
from myninja.agent_graph.history import usage
from myninja.config import Config
from myninja.errors import BudgetSpent

if TYPE_CHECKING:
    from myninja.agent_graph.history import HistoryStore

log = logging.getLogger("myninja.budget")
_warned: set[tuple[str, str]] = set()  # unpriced backend/model pairs already warned about


def day_start(now: float) -> float:
    """The Unix time of local midnight starting the day `now` falls in."""
    return datetime.combine(datetime.fromtimestamp(now).date(), day_time.min).timestamp()


def spent(
    config: Config, store: HistoryStore, *, since: float | None = None, task_id: str | None = None
) -> float:
    """What the recorded calls cost (since `since`, of `task_id`); unpriced calls count 0."""
    total = 0.0
    for row in usage.totals(store, since=since, task_id=task_id):
        cost = usage.cost_of(
            config, row["backend"], row["model"], row["prompt_tokens"], row["completion_tokens"]
        )
        total += cost or 0.0
    return total


def money(value: float) -> str:
    return f"{value:.4f}"


def check(
    config: Config,
    store: HistoryStore,
    task_id: str,
    backend: str,
    model: str | None,
    now: float | None = None,
) -> None:
    """Raise BudgetSpent when a call of `task_id` on `backend`/`model` may not start now."""
    budget = config.budget
    if budget.daily is None and budget.per_task is None:
        return
    if getattr(config.backends.get(backend), "type", "") != "openai":
        return  # the embedded model and scripted replies cost nothing
    price = usage.cost_of(config, backend, model or "", 1_000_000, 1_000_000)
    if price is None:
        if (backend, model or "") not in _warned:
            _warned.add((backend, model or ""))
            key = model or backend
            log.warning(
                "myninja: warning: no price for %s/%s: its calls do not count against "
                '[budget] (add [prices."%s"] to the config)',
                backend,
                model or "-",
                key,
            )
        return
    if price <= 0:
        return  # free: the embedded backend, or a price of 0
    config_file = paths.config_file()
    if budget.per_task is not None:
        cost = spent(config, store, task_id=task_id)
        if cost >= budget.per_task:
            raise BudgetSpent(
                f"budget spent: task {task_id} has cost {money(cost)} of its "
                f"[budget] per_task = {budget.per_task:g}",
                hint=f"raise per_task in {config_file}, then `myninja tasks resume {task_id}`",
            )
    if budget.daily is not None:
        now = time.time() if now is None else now
        cost = spent(config, store, since=day_start(now))
        if cost >= budget.daily:
            raise BudgetSpent(
                f"budget spent: today's model calls have cost {money(cost)} of "
                f"[budget] daily = {budget.daily:g}",
                hint=f"raise daily in {config_file} or wait until tomorrow, then "
                f"`myninja tasks resume {task_id}`",
            )
