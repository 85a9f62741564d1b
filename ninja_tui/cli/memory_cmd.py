"""`myninja memory list|add|forget|confirm|reject|export`: what the agents are told to remember
about you. Memories proposed from your answers are listed marked `proposed` until you confirm
or reject them; only kept ones are shown to agents or exported."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from myninja.agent_graph.history import memories
from myninja.ninja_tui.cli.tasks_cmd import history


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def _origin(memory: dict[str, Any]) -> str:
    return f"task {memory['task_id']}" if memory["source"] == "task" else "you"


def _line(memory: dict[str, Any]) -> str:
    when, origin = _when(memory["created_at"]), _origin(memory)
    mark = "proposed " if memory.get("status") == "proposed" else ""
    return f"{memory['id']:>4}  {when}  {origin:<12} {mark}{memory['text']}"


@click.group()
def memory() -> None:
    """Facts the agents are shown when a task is about them (your time zone, your name)."""


@memory.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object a line.")
def memory_list(as_json: bool) -> None:
    """Every memory, oldest first: id, when, where it came from, text (`proposed` before the
    text of one waiting for your yes)."""
    with history() as store:
        rows = memories.all_memories(store)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False))
    elif not rows:
        click.echo('no memories yet; add one with: myninja memory add "…"')
    else:
        for row in rows:
            click.echo(_line(row))


@memory.command("add")
@click.argument("text")
@click.option("--json", "as_json", is_flag=True)
def memory_add(text: str, as_json: bool) -> None:
    """Remember TEXT (one short fact) for the agents."""
    with history() as store:
        _said(memories.add(store, text), "remembered", as_json)


@memory.command("forget")
@click.argument("memory_id")
@click.option("--json", "as_json", is_flag=True)
def memory_forget(memory_id: str, as_json: bool) -> None:
    """Delete memory MEMORY_ID everywhere it is kept (its search index too)."""
    with history() as store:
        _said(memories.forget(store, memory_id), "forgot", as_json)


@memory.command("confirm")
@click.argument("memory_id")
@click.option("--json", "as_json", is_flag=True)
def memory_confirm(memory_id: str, as_json: bool) -> None:
    """Keep proposed memory MEMORY_ID: agents are shown it from now on."""
    with history() as store:
        _said(memories.confirm(store, memory_id), "kept", as_json)


@memory.command("reject")
@click.argument("memory_id")
@click.option("--json", "as_json", is_flag=True)
def memory_reject(memory_id: str, as_json: bool) -> None:
    """Drop proposed memory MEMORY_ID: it is deleted, never shown to agents."""
    with history() as store:
        _said(memories.reject(store, memory_id), "rejected", as_json)


@memory.command("export")
@click.option("--json", "as_json", is_flag=True, help="One JSON array, with every field.")
def memory_export(as_json: bool) -> None:
    """Every kept memory, to keep or move elsewhere: its text a line, or JSON with --json
    (proposed ones, not yet confirmed, are left out)."""
    with history() as store:
        rows = memories.all_memories(store, status="kept")
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        for row in rows:
            click.echo(row["text"])


def _said(row: dict[str, Any], verb: str, as_json: bool) -> None:
    click.echo(json.dumps(row, ensure_ascii=False) if as_json else f"{verb} {row['id']}")
