"""`myninja index`: build, list, search and remove local corpora for the researcher.

Indexing shows a progress bar only to a person watching (stderr is a terminal); a script gets
the summary line, or the report as JSON with `--json`."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from myninja.errors import MyninjaError
from myninja.skills.research.corpus import (
    AddReport,
    Corpus,
    Progress,
    corpus_file,
    list_corpora,
    remove_corpus,
)
from myninja.skills.research.retrievers import RETRIEVER_NAMES, make_retriever

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group()
def index() -> None:
    """Local corpora (text, Markdown, HTML, JSONL/TSV passages) the researcher searches."""


@contextmanager
def _progress_bar(show: bool, label: str = "indexing") -> Iterator[Progress | None]:
    if not show:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    columns = (
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("", total=None)

        def update(done: int, total: int, path: Path | None) -> None:
            bar.update(task, completed=done, total=total, description=path.name if path else "")

        yield update


def _embed(corpus: Corpus, show: bool) -> int | None:
    """Embed the passages that have no vector yet, when the dense extra is installed; how many
    were embedded, or None without the extra."""
    from myninja.skills.research import dense

    if not dense.dense_available():
        return None
    with _progress_bar(show, "embedding") as progress:
        update: Callable[[int, int], None] | None = (
            (lambda done, total: progress(done, total, None)) if progress else None
        )
        return dense.embed_missing(corpus, dense.shared_encoder(), update)


def _summary(name: str, report: AddReport) -> str:
    return (
        f"{name}: {report.indexed} files indexed (+{report.passages_added} passages), "
        f"{report.unchanged} unchanged, {report.removed} removed, {len(report.skipped)} skipped; "
        f"{report.files} files, {report.passages} passages in all"
    )


def _skipped_warning(skipped: list[str]) -> str:
    kinds = Counter(Path(p).suffix.lower() or "(no suffix)" for p in skipped)
    listed = ", ".join(f"{suffix} ×{n}" for suffix, n in kinds.most_common())
    files = "file" if len(skipped) == 1 else "files"
    return f"warning: skipped {len(skipped)} {files} it cannot read: {listed}"


@index.command("add")
@click.argument("name")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@json_option
def index_add(name: str, paths: tuple[Path, ...], as_json: bool) -> None:
    """Index files and folders into corpus NAME (made if new); again, only changes are read."""
    new = not corpus_file(name).exists()
    with Corpus.open(name, create=True) as corpus:
        try:
            show = sys.stderr.isatty() and not as_json
            with _progress_bar(show) as progress:
                report = corpus.add(paths, progress=progress)
        except MyninjaError:
            # A mistyped path must not leave an empty corpus behind to show in `index list`.
            if new and corpus.info().files == 0:
                corpus.close()
                remove_corpus(name)
            raise
        embedded = _embed(corpus, show)
    if as_json:
        out = {"corpus": name, **report.to_dict(), "embedded": embedded}
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    if report.skipped:
        click.echo(_skipped_warning(report.skipped), err=True)
    click.echo(_summary(name, report) + (f"; {embedded} embedded" if embedded else ""))


@index.command("list")
@json_option
def index_list(as_json: bool) -> None:
    """The corpora on this machine."""
    infos = list_corpora()
    if as_json:
        click.echo(json.dumps([info.to_dict() for info in infos], ensure_ascii=False, indent=2))
        return
    for info in infos:
        when = (
            time.strftime("%Y-%m-%d %H:%M", time.localtime(info.updated_at))
            if info.updated_at
            else "-"
        )
        click.echo(
            f"{info.name:<20} {info.passages:>9} passages {info.files:>7} files  "
            f"{info.bytes / 1e6:8.1f} MB  {when}"
        )


@index.command("search")
@click.argument("name")
@click.argument("query")
@click.option("--k", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option(
    "--retriever",
    type=click.Choice(RETRIEVER_NAMES),
    default="auto",
    show_default=True,
    help="auto: hybrid (BM25 + MiniLM, fused by rank) with the dense extra, else bm25. "
    "colbert: the ColBERT index of [research.colbert], searched instead of NAME.",
)
@json_option
def index_search(name: str, query: str, k: int, retriever: str, as_json: bool) -> None:
    """The K passages of corpus NAME that best match QUERY."""
    if retriever == "colbert":
        # ColBERT searches its own index (a server's or colbert-ai's), never a local corpus:
        # NAME need not exist.
        from myninja.config_file import load_config
        from myninja.skills.research.colbert import make_colbert_retriever

        with contextlib.closing(make_colbert_retriever(load_config().research.colbert)) as colbert:
            hits = colbert.search(query, k)
    else:
        with Corpus.open(name) as corpus:
            hits = make_retriever(corpus, retriever).search(query, k)
    if as_json:
        click.echo(json.dumps([hit.to_dict() for hit in hits], ensure_ascii=False, indent=2))
        return
    for rank, hit in enumerate(hits, 1):
        passage = hit.passage
        click.echo(f"{rank:>2}. {passage.title or '(untitled)'}  [{hit.score:.3f}]  {passage.id}")
        text = " ".join(passage.text.split())
        click.echo(f"    {text if len(text) <= 200 else text[:199] + '…'}")


@index.command("remove")
@click.argument("name")
def index_remove(name: str) -> None:
    """Delete corpus NAME (its index only; the files it was built from stay)."""
    remove_corpus(name)
    click.echo(f"removed corpus {name}", err=True)
