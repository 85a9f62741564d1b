"""Tokens spent, kept per model call in history.db's `usage` table, and what they cost.

Every call an agent makes to a backend during a task adds one row: the task, the agent, the
backend and model it ran on, its prompt and completion tokens, and when. Rows are written as
the calls return (`agent_graph/metered.py`), so a call made again after a crash or a resumed
question counts again: the table holds what was spent, which for a task that ran through
equals its `task_done` usage.

Costs are computed when read, from the config's price table (`[prices.NAME]`, by model name
first, then by backend name); the embedded backend costs nothing, and a call with no price is
counted in tokens with its cost unknown (None).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from myninja.config import Config

from .connection import fetch
from .migrations import migrate
from .store import HistoryStore

GROUPS = ("agent", "backend", "model", "day")
TABLE = "usage"


def usage_001_table(db: Database) -> None:
    db[TABLE].create(
        {
            "id": int,
            "task_id": str,
            "agent": str,
            "backend": str,
            "model": str,  # the model asked for, or the backend's; "" where neither names one
            "prompt_tokens": int,
            "completion_tokens": int,
            "ts": float,
        },
        pk="id",
        not_null={"task_id", "agent", "backend", "model", "prompt_tokens", "completion_tokens"},
        foreign_keys=[("task_id", "tasks", "id")],
    )
    db[TABLE].create_index(["ts"])
    db[TABLE].create_index(["task_id"])


# Applied by this module on first use, through the store's migration runner (recorded in
# `_migrations` like the others); with nothing pending that is one read.
MIGRATIONS = [usage_001_table]


def record(
    store: HistoryStore,
    task_id: str,
    *,
    agent: str,
    backend: str,
    model: str | None,
    prompt_tokens: int,
    completion_tokens: int,
    ts: float | None = None,
) -> None:
    """One model call's tokens."""
    with store.batch():
        migrate(store.db, MIGRATIONS)  # joins the batch's transaction
        store.db.conn.execute(
            f"INSERT INTO {TABLE} (task_id, agent, backend, model, prompt_tokens,"
            " completion_tokens, ts) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                task_id,
                agent,
                backend,
                model or "",
                int(prompt_tokens),
                int(completion_tokens),
                time.time() if ts is None else ts,
            ),
        )


def calls(
    store: HistoryStore, *, since: float | None = None, task_id: str | None = None
) -> list[dict[str, Any]]:
    """The rows, oldest first; `since` bounds the call's time."""
    if not store.db[TABLE].exists():
        return []  # no call recorded yet: a read need not create the table
    where, params = _where(since, task_id)
    return fetch(store.db, f"SELECT * FROM {TABLE} WHERE {where} ORDER BY ts, id", params)


def _where(since: float | None, task_id: str | None) -> tuple[str, list[Any]]:
    where, params = ["1"], []
    if since is not None:
        where.append("ts >= ?")
        params.append(since)
    if task_id is not None:
        where.append("task_id = ?")
        params.append(task_id)
    return " AND ".join(where), params


def totals(
    store: HistoryStore, *, since: float | None = None, task_id: str | None = None
) -> list[dict[str, Any]]:
    """Tokens summed per backend and model (what a price applies to), in one read: `backend`,
    `model`, `prompt_tokens`, `completion_tokens`."""
    if not store.db[TABLE].exists():
        return []
    where, params = _where(since, task_id)
    return fetch(
        store.db,
        f"SELECT backend, model, SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens)"
        f" AS completion_tokens FROM {TABLE} WHERE {where} GROUP BY backend, model",
        params,
    )


def cost_of(
    config: Config, backend: str, model: str, prompt_tokens: int, completion_tokens: int
) -> float | None:
    """What the tokens cost: the model's price, else the backend's; 0 on the embedded backend;
    None where no price is known."""
    if getattr(config.backends.get(backend), "type", "") == "embedded":
        return 0.0
    price = config.prices.get(model) if model else None
    if price is None:
        price = config.prices.get(backend)
    if price is None:
        return None
    return (prompt_tokens * price.input_per_mtok + completion_tokens * price.output_per_mtok) / 1e6


@dataclass
class Line:
    """The sums of one group."""

    key: str
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = 0.0  # None once a call in it has no price
    unpriced: set[str] = field(default_factory=set)  # backend/model pairs with no price

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, row: dict[str, Any], cost: float | None) -> None:
        self.calls += 1
        self.prompt_tokens += row["prompt_tokens"]
        self.completion_tokens += row["completion_tokens"]
        if cost is None:
            self.unpriced.add(f"{row['backend']}/{row['model'] or '-'}")
            self.cost = None
        elif self.cost is not None:
            self.cost += cost

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "calls": self.calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cost": None if self.cost is None else round(self.cost, 9),
            "unpriced": sorted(self.unpriced),
        }


def group_key(row: dict[str, Any], by: str) -> str:
    if by == "day":
        return datetime.fromtimestamp(row["ts"]).strftime("%Y-%m-%d")  # local time
    return row[by] or "-"


def summarize(config: Config, rows: Iterable[dict[str, Any]], by: str) -> tuple[list[Line], Line]:
    """The rows summed by `by` (one of GROUPS), sorted by key, and the total. A group's cost
    is None when any of its calls has no price; the total's is the sum of the priced ones."""
    if by not in GROUPS:
        raise ValueError(f"cannot group by {by!r}; one of {', '.join(GROUPS)}")
    lines: dict[str, Line] = {}
    total = Line("total")
    priced_sum = 0.0
    for row in rows:
        cost = cost_of(
            config, row["backend"], row["model"], row["prompt_tokens"], row["completion_tokens"]
        )
        key = group_key(row, by)
        lines.setdefault(key, Line(key)).add(row, cost)
        total.add(row, cost)
        priced_sum += cost or 0.0
    total.cost = priced_sum  # what is known; `unpriced` names what is missing
    return [lines[key] for key in sorted(lines)], total
