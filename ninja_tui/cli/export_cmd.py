"""`myninja export sft|orpo|tasks`: the task history as fine-tuning data, or for people."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from myninja.agent_graph.export.collect import TaskRecord, collect
from myninja.agent_graph.export.scrub import Scrubber
from myninja.agent_graph.history.statuses import FINISHED
from myninja.config import WORKER_AGENTS, Config, EmbeddedBackendConfig
from myninja.config_file import load_config
from myninja.errors import MyninjaError
from myninja.files import write_atomic
from myninja.ninja_tui.cli.tasks_cmd import history

DATES = click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"])


def _filters(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option("--agent", type=click.Choice(WORKER_AGENTS), help="Only this agent."),
            click.option("--since", type=DATES, help="Only tasks from this date (local time) on."),
            click.option("--keep-emails", is_flag=True, help="Do not mask e-mail addresses."),
            click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON."),
            click.option(
                "--with-memory",
                is_flag=True,
                help="Head each prompt with the memories its agents were shown (left out "
                "by default).",
            ),
        ]
    ):
        fn = option(fn)
    return fn


@click.group()
def export() -> None:
    """Export the task history: fine-tuning data (sft, orpo) or a readable record (tasks)."""


@export.command("sft")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="JSONL file.")
@click.option(
    "--min-score",
    type=click.FloatRange(1, 10),
    default=8.0,
    show_default=True,
    help="Unrated tasks judged at least this are included.",
)
@_filters
def export_sft(
    out: Path,
    min_score: float,
    agent: str | None,
    since: dt.datetime | None,
    keep_emails: bool,
    as_json: bool,
    with_memory: bool,
) -> None:
    """Chat records ({"messages": [system, user, assistant]}) of the good tasks: rated good,
    edited by you, or judged at least --min-score and not rated bad. The system message is the
    agent's persona."""
    from myninja.agent_graph.export.training import sft_examples, sft_record

    config, tasks = _tasks(agent, since)
    examples, dropped = sft_examples(tasks, min_score=min_score)
    if with_memory:
        _add_memories(examples)
    scrub = _scrubber(config, keep_emails)
    records = [scrub.deep(sft_record(e)) for e in examples]
    write_atomic(out, (json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    rows: dict[str, Counter[str]] = defaultdict(Counter)
    with _counter(config) as (count, how):
        for example, record in zip(examples, records, strict=True):
            row = rows[example.agent]
            row["records"] += 1
            for message in record["messages"]:
                side = "completion_tokens" if message["role"] == "assistant" else "prompt_tokens"
                row[side] += count(message["content"])
    summary = _summary("sft", out, rows, dropped, scrub, how)
    _report(summary, as_json, ("records", "prompt_tokens", "completion_tokens"))


@export.command("orpo")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="JSONL file.")
@click.option(
    "--min-gap",
    type=click.FloatRange(0.5, 9),
    default=3.0,
    show_default=True,
    help="Judge scores two branches must differ by to make a pair.",
)
@click.option(
    "--format",
    "shape",
    type=click.Choice(["chat", "text"]),
    default="chat",
    show_default=True,
    help="chat: prompt/chosen/rejected as message lists (TRL's conversational format); "
    "text: plain strings.",
)
@_filters
def export_orpo(
    out: Path,
    min_gap: float,
    shape: str,
    agent: str | None,
    since: dt.datetime | None,
    keep_emails: bool,
    as_json: bool,
    with_memory: bool,
) -> None:
    """Preference pairs ({"prompt", "chosen", "rejected"}): your edited answer over the
    original, a good-rated over a bad-rated answer to the same prompt, and the best-judged
    branch over the worst when their scores differ by at least --min-gap."""
    from myninja.agent_graph.export.training import orpo_examples, orpo_record

    config, tasks = _tasks(agent, since)
    examples, dropped = orpo_examples(tasks, min_gap=min_gap)
    if with_memory:
        _add_memories(examples)
    scrub = _scrubber(config, keep_emails)
    records = [scrub.deep(orpo_record(e, chat=shape == "chat")) for e in examples]
    write_atomic(out, (json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    rows: dict[str, Counter[str]] = defaultdict(Counter)
    with _counter(config) as (count, how):
        for example, record in zip(examples, records, strict=True):
            row = rows[example.agent]
            row["pairs"] += 1
            row[f"from_{example.source}"] += 1
            for key in ("prompt", "chosen", "rejected"):
                row[f"{key}_tokens"] += count(_text(record[key]))
    summary = _summary("orpo", out, rows, dropped, scrub, how)
    _report(summary, as_json, ("pairs", "prompt_tokens", "chosen_tokens", "rejected_tokens"))


@export.command("tasks")
@click.option(
    "--format", "shape", type=click.Choice(["md", "json"]), default="md", show_default=True
)
@click.option("--out", type=click.Path(path_type=Path), help="File to write (default: stdout).")
@click.option("--agent", type=click.Choice(WORKER_AGENTS), help="Only this agent.")
@click.option("--since", type=DATES, help="Only tasks from this date (local time) on.")
@click.option("--keep-emails", is_flag=True, help="Do not mask e-mail addresses.")
def export_tasks(
    shape: str, out: Path | None, agent: str | None, since: dt.datetime | None, keep_emails: bool
) -> None:
    """Every finished task (done, failed, cancelled) with its answer, rating, notes, edits and
    sources, as Markdown or JSON."""
    from myninja.agent_graph.export.people import markdown, task_dict

    config, tasks = _tasks(agent, since, statuses=tuple(sorted(FINISHED)))
    scrub = _scrubber(config, keep_emails)
    if shape == "json":
        text = json.dumps([scrub.deep(task_dict(t)) for t in tasks], indent=2, ensure_ascii=False)
        text += "\n"
    else:
        text = scrub.text(markdown(tasks))
    if out is None:
        click.echo(text, nl=False)
        return
    write_atomic(out, [text])
    click.echo(f"Wrote {len(tasks)} tasks to {out}.", err=True)


# -- shared -----------------------------------------------------------------------------------


def _tasks(
    agent: str | None, since: dt.datetime | None, statuses: tuple[str, ...] = ("done",)
) -> tuple[Config, list[TaskRecord]]:
    config = load_config()
    with history() as store:
        tasks = collect(
            store, agent=agent, since=since.timestamp() if since else None, statuses=statuses
        )
    return config, tasks


def _add_memories(examples: list[Any]) -> None:
    from myninja.agent_graph.export.memories import add_to_prompts, shown

    with history() as store:
        add_to_prompts(examples, shown(store, sorted({e.task_id for e in examples})))


def _scrubber(config: Config, keep_emails: bool) -> Scrubber:
    """Every key in the key store is a secret to remove, whatever it looks like."""
    from myninja.backends.keys import key_store, keyring_available

    secrets: list[str] = []
    store = key_store(config)
    if not store.uses_file and not keyring_available():
        return Scrubber(secrets, keep_emails=keep_emails)  # no store: no key can be in one
    try:
        secrets = [value for name in store.names() if (value := store.get(name))]
    except MyninjaError as exc:
        click.echo(
            f"warning: cannot read the key store ({exc.one_line()}); "
            "keys are still removed where they look like keys",
            err=True,
        )
    return Scrubber(secrets, keep_emails=keep_emails)


@contextlib.contextmanager
def _counter(config: Config) -> Iterator[tuple[Callable[[str], int], str]]:
    """Token counts from the embedded model's tokenizer; an estimate where it is missing."""
    cfg = config.backends.get("embedded")
    with contextlib.ExitStack() as stack:
        count: Callable[[str], int] = lambda text: (len(text) + 3) // 4  # noqa: E731
        how = "estimated (4 characters a token)"
        if isinstance(cfg, EmbeddedBackendConfig):
            from myninja.backends.embedded import token_counter

            try:
                count = stack.enter_context(token_counter(cfg.model))
                how = f"counted with the {cfg.model} tokenizer"
            except MyninjaError:  # no llama.cpp, or the weights are not there
                pass
        yield count, how


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(m.get("content") or "" for m in value)
    return value or ""


def _summary(
    kind: str,
    out: Path,
    rows: dict[str, Counter[str]],
    dropped: int,
    scrub: Scrubber,
    how: str,
) -> dict[str, Any]:
    agents = {agent: dict(row) for agent, row in sorted(rows.items())}
    total: Counter[str] = Counter()
    for row in rows.values():
        total.update(row)
    return {
        "kind": kind,
        "out": str(out),
        "agents": agents,
        "total": dict(total),
        "near_duplicates_dropped": dropped,
        "secrets_removed": scrub.counts["secrets"],
        "emails_masked": scrub.counts["emails"],
        "tokens": how,
    }


def _report(summary: dict[str, Any], as_json: bool, columns: tuple[str, ...]) -> None:
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    total = summary["total"].get(columns[0], 0)
    noun = columns[0] if total != 1 else columns[0].rstrip("s")
    click.echo(f"Wrote {total} {noun} to {summary['out']}.")
    if not total:
        click.echo(
            "Nothing to export yet: rate tasks with `myninja feedback ID --good|--bad` "
            "(or + and - in the app), or edit an answer."
        )
        return
    header = ["agent", *(c.replace("_", " ") for c in columns)]
    table = [header] + [
        [agent, *(f"{row.get(c, 0):,}" for c in columns)]
        for agent, row in [*summary["agents"].items(), ("total", summary["total"])]
    ]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for r in table:
        cells = [
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(r)
        ]
        click.echo("  ".join(cells))
    if summary["kind"] == "orpo":
        sources = {s: summary["total"].get(f"from_{s}", 0) for s in ("edit", "rating", "judge")}
        click.echo(
            "Pairs from edits: {edit}, ratings: {rating}, the judge: {judge}.".format(**sources)
        )
    click.echo(
        f"Tokens {summary['tokens']}. Near-duplicate prompts left out: "
        f"{summary['near_duplicates_dropped']}. Removed: {summary['secrets_removed']} secret(s); "
        f"masked: {summary['emails_masked']} e-mail address(es)."
    )
