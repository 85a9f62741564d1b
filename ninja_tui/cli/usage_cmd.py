"""`myninja usage`: the tokens the tasks' model calls spent, and their cost by the config's
price table, summed by agent, backend, model or day."""

from __future__ import annotations

import datetime as dt
import json
import re
import time

import click

from myninja.agent_graph import budget as budgets
from myninja.agent_graph.history import HistoryStore
from myninja.agent_graph.history import usage as ledger
from myninja.config import Config
from myninja.config_file import load_config
from myninja.errors import UsageError
from myninja.ninja_tui.cli.tasks_cmd import history
from myninja.ninja_tui.usage_text import cost_text

_AGO = re.compile(r"(\d+)([dh])")


def parse_since(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """`7d` / `12h` back from now, or a date (local time): YYYY-MM-DD[THH:MM]."""
    now = now or dt.datetime.now()
    if match := _AGO.fullmatch(text.strip()):
        n, unit = int(match[1]), match[2]
        return now - (dt.timedelta(days=n) if unit == "d" else dt.timedelta(hours=n))
    for shape in ("%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"):
        try:
            return dt.datetime.strptime(text.strip(), shape)
        except ValueError:
            continue
    raise UsageError(
        f"--since {text!r} is neither a date nor a span",
        hint="give a date like 2026-01-31, or a span back from now like 7d or 12h",
    )


@click.command()
@click.option("--since", help="Only calls from this date (local time) or span (7d, 12h) on.")
@click.option(
    "--by",
    type=click.Choice(ledger.GROUPS),
    default="model",
    show_default=True,
    help="What the rows sum over.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def usage(since: str | None, by: str, as_json: bool) -> None:
    """Tokens and cost of the tasks' model calls."""
    start = parse_since(since) if since else None
    config = load_config()
    with history() as store:
        rows = ledger.calls(store, since=start.timestamp() if start else None)
        budget = _budget(config, store)
    lines, total = ledger.summarize(config, rows, by)
    if as_json:
        body = {
            "since": start.isoformat(timespec="minutes") if start else None,
            "by": by,
            "rows": [line.to_dict() for line in lines],
            "total": total.to_dict(),
            "budget": budget,
        }
        click.echo(json.dumps(body, ensure_ascii=False, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Usage by {by}" + (f" since {start:%Y-%m-%d %H:%M}" if start else ""))
    table.add_column(by)
    for name in ("calls", "prompt", "completion", "total", "cost"):
        table.add_column(name, justify="right")
    for line in [*lines, total]:
        table.add_row(
            line.key,
            str(line.calls),
            str(line.prompt_tokens),
            str(line.completion_tokens),
            str(line.total_tokens),
            cost_text(line.cost),
            end_section=line is lines[-1] if lines else False,
        )
    console = Console()
    console.print(table)
    if total.unpriced:
        # The total's cost leaves these out: say which, and how to price them.
        names = ", ".join(sorted(total.unpriced))
        console.print(f"no price for {names}: add [prices.MODEL] or [prices.BACKEND] to the config")
    if budget["daily"] is not None:
        console.print(
            f"daily budget {cost_text(budget['daily'])}: spent {cost_text(budget['spent_today'])}"
            f" today, {cost_text(budget['left_today'])} left"
        )
    if budget["per_task"] is not None:
        console.print(f"per-task budget {cost_text(budget['per_task'])}")


def _budget(config: Config, store: HistoryStore) -> dict[str, float | None]:
    """The `[budget]` limits, and what today's calls spent against the daily one (priced
    calls only, as the budget counts them)."""
    daily, per_task = config.budget.daily, config.budget.per_task
    today = budgets.spent(config, store, since=budgets.day_start(time.time()))
    return {
        "daily": daily,
        "per_task": per_task,
        "spent_today": today,
        "left_today": None if daily is None else max(daily - today, 0.0),
    }
