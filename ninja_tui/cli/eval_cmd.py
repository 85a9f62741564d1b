"""`myninja eval`: answer a question set with the researcher's reader and score it, or solve
HumanEval problems (single shot, or through the coder agent) and check them in the sandbox.

A progress bar is shown only to a person watching (stderr is a terminal); `--json` prints the
summary as JSON. Re-running the same command skips the questions already answered."""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from myninja.agent_graph.context import BackendPool
from myninja.agent_graph.evals import humaneval
from myninja.agent_graph.evals.datasets import DATASETS, load_questions
from myninja.agent_graph.evals.metrics import REPORTED
from myninja.agent_graph.evals.reader import REASONING_MAX_TOKENS
from myninja.agent_graph.evals.runner import (
    RETRIEVERS,
    EvalSettings,
    Progress,
    default_out,
    model_name,
    pool_corpus,
    run_eval,
)
from myninja.agent_graph.evals.types import HEADLINE
from myninja.config import Config, Permission
from myninja.config_file import load_config
from myninja.errors import EXIT_UNREACHABLE, BackendUnreachable, UsageError
from myninja.ninja_tui.cli.params import Choice

DEFAULT_MAX_TOKENS = 64  # a short answer and its citations; the researcher's cap if it sets one


@contextmanager
def _progress_bar(show: bool) -> Iterator[Progress | None]:
    if not show:
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("evaluating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _mode(contexts: bool, corpus: str | None, closed_book: bool) -> str:
    chosen = [
        name
        for name, on in (
            ("--contexts", contexts),
            ("--corpus", corpus),
            ("--closed-book", closed_book),
        )
        if on
    ]
    if len(chosen) != 1:
        raise UsageError(
            "choose one of --contexts, --corpus NAME, --closed-book"
            + (f" (got {' and '.join(chosen)})" if chosen else "")
        )
    return {"--contexts": "contexts", "--corpus": "corpus", "--closed-book": "closed-book"}[
        chosen[0]
    ]


def _table(summary: dict[str, Any]) -> str:
    lines = [
        f"{summary['dataset']} ({summary['mode']}), {summary['model']}: "
        f"{summary['count']} questions"
    ]
    for name in REPORTED.values():
        value = summary[name]
        lines.append(f"  {name:<20} {'–' if value is None else f'{value:6.2f}'}")
    for kind, figures in (summary.get("by_type") or {}).items():
        shown = ", ".join(
            f"{name} {figures[name]:.2f}"
            for name in HEADLINE.get(summary["dataset"], ())
            if figures.get(name) is not None
        )
        lines.append(f"  {kind + ' (' + str(figures['count']) + ')':<20} {shown}")
    chart = summary.get("chart")  # None when matplotlib (the eval extra) is missing
    lines.append(
        f"answered {summary['answered']}, already done {summary['skipped']}; "
        f"report {summary['report']}" + (f", chart {chart}" if chart else "")
    )
    return "\n".join(lines)


@click.command("eval")
@click.argument("dataset", type=Choice((*DATASETS, humaneval.DATASET)))
@click.option(
    "--data",
    "data",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The question file (JSONL).",
)
@click.option("--contexts", is_flag=True, help="Read each question's own passages.")
@click.option(
    "--corpus",
    help="Retrieve from this corpus (see `myninja index`); a new name pools the file's passages.",
)
@click.option("--closed-book", is_flag=True, help="No passages: the model alone.")
@click.option(
    "--single-shot", is_flag=True, help="humaneval: one model call per problem (the default)."
)
@click.option(
    "--agent", "through_agent", is_flag=True, help="humaneval: the coder agent works each problem."
)
@click.option("--retriever", type=click.Choice(RETRIEVERS), default="bm25", show_default=True)
@click.option(
    "--k", type=click.IntRange(1, 100), default=10, show_default=True, help="Passages retrieved."
)
@click.option(
    "--reader-k",
    type=click.IntRange(1, 100),
    help="Passages the reader sees [default: 5 retrieved, or all of a question's own].",
)
@click.option("--limit", type=click.IntRange(1), help="Only the first N questions.")
@click.option("--concurrency", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option(
    "--backend",
    "backend_name",
    help="A configured backend (default: the researcher's; humaneval: the coder's).",
)
@click.option("--model", help="A model name, overriding the researcher's (humaneval: coder's).")
@click.option("--max-tokens", type=click.IntRange(8), help="Reply cap per question.")
@click.option(
    "--reason",
    is_flag=True,
    help="The reader thinks in a sentence or two before its short answer (one call; longer).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder for eval.db and report.md [default: <data dir>/evals/<dataset>-<mode>; "
    "humaneval: <data dir>/evals/humaneval, both modes].",
)
def eval_command(
    dataset: str,
    data: Path,
    contexts: bool,
    corpus: str | None,
    closed_book: bool,
    single_shot: bool,
    through_agent: bool,
    retriever: str,
    k: int,
    reader_k: int | None,
    limit: int | None,
    concurrency: int,
    backend_name: str | None,
    model: str | None,
    max_tokens: int | None,
    reason: bool,
    as_json: bool,
    out: Path | None,
) -> None:
    """Score the researcher's answers on DATASET (hotpotqa, nq-open) from --data FILE, or the
    coder's pass@1 on humaneval (--single-shot or --agent)."""
    if dataset == humaneval.DATASET:
        _refuse_options(_QA_ONLY, dataset)
        _eval_humaneval(
            data, limit, single_shot, through_agent, backend_name, model, max_tokens, as_json, out
        )
        return
    _refuse_options(_HUMANEVAL_ONLY, dataset)
    mode = _mode(contexts, corpus, closed_book)
    config = load_config()
    researcher = config.agent("researcher")
    settings = EvalSettings(
        dataset=dataset,
        mode=mode,
        corpus=corpus,
        retriever=retriever,
        k=k,
        reader_k=reader_k,
        backend=backend_name or researcher.backend,
        model=model or researcher.model,
        max_tokens=max_tokens
        or (REASONING_MAX_TOKENS if reason else researcher.max_tokens or DEFAULT_MAX_TOKENS),
        temperature=researcher.temperature if researcher.temperature is not None else 0.0,
        reader="reason" if reason else "direct",
    )
    settings.model_label = model_name(config, settings)
    questions = load_questions(dataset, data, limit)
    if mode == "corpus" and retriever == "colbert":
        from myninja.skills.research.colbert import make_colbert_retriever

        make_colbert_retriever(config.research.colbert).close()  # configured, or one line
    elif mode == "corpus" and corpus:
        # The whole file's passages, not only the first --limit questions': a retriever that
        # searched only the asked questions' passages would have an easier job.
        pooled = pool_corpus(corpus, load_questions(dataset, data) if limit else questions)
        if pooled is not None:
            click.echo(f"pooled {pooled} passages of {data} into corpus {corpus!r}", err=True)
    command = "myninja " + " ".join(shlex.quote(arg) for arg in sys.argv[1:])

    async def go() -> dict[str, Any]:
        pool = BackendPool(config)
        try:
            backend = pool.get(settings.backend)
            with _progress_bar(sys.stderr.isatty() and not as_json) as progress:
                return await run_eval(
                    questions,
                    settings,
                    backend,
                    out=out or default_out(settings),
                    concurrency=concurrency,
                    progress=progress,
                    command=command,
                )
        finally:
            await pool.aclose()

    summary = asyncio.run(go())
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        click.echo(_table(summary))


# -- humaneval --------------------------------------------------------------------------------

_QA_ONLY = (
    "contexts",
    "corpus",
    "closed_book",
    "retriever",
    "k",
    "reader_k",
    "concurrency",
    "reason",
)
_HUMANEVAL_ONLY = ("single_shot", "through_agent")
# What the agent may do without asking: nobody is there to answer during an evaluation.
AGENT_ALLOW = [Permission.RUN_CODE, Permission.WRITE_FILES]


def _refuse_options(names: tuple[str, ...], dataset: str) -> None:
    """A usage error for an option given on the command line that `dataset` has no use for."""
    ctx = click.get_current_context()
    for param in ctx.command.params:
        if param.name in names and ctx.get_parameter_source(param.name) in (
            ParameterSource.COMMANDLINE,
            ParameterSource.ENVIRONMENT,
        ):
            raise UsageError(f"{param.opts[0]} does not apply to {dataset}")


def _humaneval_table(summary: dict[str, Any]) -> str:
    def number(value: float | None) -> str:
        return "–" if value is None else f"{value:6.2f}"

    return "\n".join(
        [
            f"humaneval ({summary['mode']}), {summary['model']}: {summary['count']} problems",
            f"  {'pass@1':<20} {number(summary['pass_at_1'])}",
            f"  {'seconds/problem':<20} {number(summary['seconds_per_problem'])}",
            f"answered {summary['answered']}, already done {summary['skipped']}; "
            f"report {summary['report']}",
        ]
    )


def _eval_humaneval(
    data: Path,
    limit: int | None,
    single_shot: bool,
    through_agent: bool,
    backend_name: str | None,
    model: str | None,
    max_tokens: int | None,
    as_json: bool,
    out: Path | None,
) -> None:
    if single_shot and through_agent:
        raise UsageError("choose one of --single-shot, --agent")
    if through_agent and max_tokens:
        raise UsageError("--max-tokens does not apply to --agent (the coder's config sets it)")
    mode = "agent" if through_agent else "single-shot"
    config = load_config()
    coder = config.agent("coder")
    settings = humaneval.HumanEvalSettings(
        mode=mode,
        backend=backend_name or coder.backend,
        model=model or coder.model,
        max_tokens=None if through_agent else (max_tokens or humaneval.MAX_TOKENS),
    )
    if through_agent:
        settings.agent_config = json.dumps(
            {"graph": config.graph.model_dump(), "coder": coder.model_dump()}, sort_keys=True
        )
    settings.model_label = humaneval.model_label(config, settings.backend, settings.model)
    problems = humaneval.load_problems(data, limit)
    command = "myninja " + " ".join(shlex.quote(arg) for arg in sys.argv[1:])
    folder = out or humaneval.default_out()

    async def go() -> dict[str, Any]:
        with _progress_bar(sys.stderr.isatty() and not as_json) as progress:
            if through_agent:
                return await _humaneval_through_agent(
                    config, problems, settings, backend_name, model, folder, progress, command
                )
            pool = BackendPool(config)
            try:
                return await humaneval.run_humaneval(
                    problems,
                    settings,
                    out=folder,
                    backend=pool.get(settings.backend),
                    progress=progress,
                    command=command,
                )
            finally:
                await pool.aclose()

    summary = asyncio.run(go())
    click.echo(
        json.dumps(summary, ensure_ascii=False, indent=2) if as_json else _humaneval_table(summary)
    )


async def _humaneval_through_agent(
    config: Config,
    problems: list[humaneval.Problem],
    settings: humaneval.HumanEvalSettings,
    backend_name: str | None,
    model: str | None,
    out: Path,
    progress: Progress | None,
    command: str,
) -> dict[str, Any]:
    """Each problem as a task for the coder agent, run to its end in this process (as `ask`
    does); the tasks stay in the history, so `myninja tasks show ID` has each transcript."""
    from myninja.agent_graph.tasks.manager import TaskManager

    async with TaskManager.open(config) as manager:

        async def submit(text: str) -> str:
            task_id = await manager.submit(
                f"@coder {text}", backend=backend_name, model=model, allow=AGENT_ALLOW
            )
            await manager.wait(task_id)
            task = manager.store.get_task(task_id) or {}
            if task.get("status") == "waiting":
                # A question nobody is there to answer: the problem counts as not solved.
                await manager.cancel(task_id)
            failed = [e for e in manager.store.events(task_id) if e.get("type") == "task_failed"]
            if failed and failed[-1].get("exit_code") == EXIT_UNREACHABLE:
                # Not the agent's failure: stop, so a re-run retries instead of scoring 0.
                raise BackendUnreachable(str(failed[-1].get("error") or "backend unreachable"))
            return str(task.get("answer") or "")

        return await humaneval.run_humaneval(
            problems, settings, out=out, submit=submit, progress=progress, command=command
        )
