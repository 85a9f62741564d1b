"""`myninja answer TASK [QUESTION_ID] TEXT`: answer a waiting task's question and resume it."""

from __future__ import annotations

import asyncio
from functools import partial

import click

from myninja import paths
from myninja.agent_graph.tasks.client import WorkerClient
from myninja.config_file import load_config
from myninja.errors import UsageError
from myninja.ninja_tui.cli.ask import answers_option, json_option, read_text
from myninja.ninja_tui.cli.driving import PresetAnswers, drive_here, ensure_worker, follow_worker
from myninja.ninja_tui.cli.render import EventPrinter


@click.command()
@click.argument("task_id")
@click.argument("rest", nargs=-1, required=True, metavar="[QUESTION_ID] TEXT")
@json_option
@answers_option
@click.option("--detach", "-d", is_flag=True, help="Resume in the background worker.")
def answer(task_id: str, rest: tuple[str, ...], as_json: bool, answers_file, detach: bool) -> int:  # type: ignore[no-untyped-def]
    """Answer a question of TASK_ID and resume it (the question id may be left out when the
    task has one open question). TEXT '-' reads stdin."""
    if len(rest) > 2:
        raise UsageError("too many arguments", hint="myninja answer TASK [QUESTION_ID] TEXT")
    question_id, text = (None, rest[0]) if len(rest) == 1 else rest
    text = read_text(text)
    config = load_config()
    answers = PresetAnswers(answers_file)
    return asyncio.run(_answer(config, task_id, question_id, text, as_json, answers, detach))


async def _answer(config, task_id, question_id, text, as_json, answers, detach) -> int:  # type: ignore[no-untyped-def]
    printer = EventPrinter(as_json)
    client = WorkerClient(paths.data_dir())
    if detach or await client.alive():
        await ensure_worker(client)
        await client.request("answer", task_id=task_id, question_id=question_id, text=text)
        if detach:
            return 0
        return await follow_worker(client, task_id, printer)
    from myninja.agent_graph.tasks.manager import TaskManager

    async with TaskManager.open(config) as manager:
        task_id = manager.task(task_id)["id"]
        return await drive_here(
            manager,
            task_id,
            printer,
            answers,
            after_seq=manager.store.last_seq(task_id),  # what follows the answer is news
            begin=partial(manager.answer, task_id, question_id, text),
        )
