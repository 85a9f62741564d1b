"""An evaluation folder's report: `report.md` (this run's figures, per question type too, beside
the folder's other runs), `chart.png` and `chart-types.png`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .chart import run_label, write_chart
from .metrics import REPORTED, aggregate
from .types import TYPES, by_type, chart_figures

if TYPE_CHECKING:
    from .runner import EvalStore


def write_report(
    path: Path, summary: dict[str, Any], command: str, others: list[dict[str, Any]]
) -> None:
    path.write_text(_report(summary, command, others), encoding="utf-8")


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


# The chart's runs: this one and the latest others; more bars than this are unreadable at
# the chart's size (and tab10 has ten colours).
MAX_CHART_RUNS = 10


def other_runs(
    summary: dict[str, Any], store: EvalStore, types: dict[str, str]
) -> list[dict[str, Any]]:
    """The folder's other runs, oldest first: run_id, settings, their aggregate figures and
    those per question type (of the questions this run's file shares with them)."""
    found = []
    for run in store.runs():
        if run["run_id"] == summary["run_id"]:
            continue
        rows = store.rows(run["run_id"])
        dataset = run["settings"].get("dataset")
        found.append({**run, "figures": aggregate(rows), "by_type": by_type(dataset, rows, types)})
    return found


def write_chart_of(
    summary: dict[str, Any], others: list[dict[str, Any]], path: Path, per_type: bool = False
) -> Path | None:
    """chart.png: this run first, then the latest other runs; None without matplotlib.
    `per_type`: chart-types.png, each run's headline metrics per question type instead."""
    # The summary names dataset, mode, corpus, retriever, reader_k and model as settings do.
    shown = [{"run_id": summary["run_id"], "settings": summary, "figures": summary}]
    shown += others[-(MAX_CHART_RUNS - 1) :]
    # A folder shared by --out may hold several datasets: then say which one each run answered.
    mixed = len({run["settings"].get("dataset") for run in shown}) > 1
    labels = [
        (f"{run['settings'].get('dataset')} · " if mixed else "") + run_label(run["settings"])
        for run in shown
    ]
    # Runs that differ only in what the label leaves out (reply cap, prompts) are told apart by
    # their run id, as in the report's tables.
    labels = [
        f"{label} [{run['run_id']}]" if labels.count(label) > 1 else label
        for label, run in zip(labels, shown, strict=True)
    ]
    labels[0] += " (this run)"
    dataset = summary["dataset"]
    if per_type:
        typed = [summary["by_type"], *(run.get("by_type") or {} for run in shown[1:])]
        runs = [(label, chart_figures(dataset, t)) for label, t in zip(labels, typed, strict=True)]
        metrics = list(chart_figures(dataset, {k: {} for k in TYPES.get(dataset, ())}))
    else:
        runs = [
            (label, {name: run["figures"][name] for name in REPORTED.values()})
            for label, run in zip(labels, shown, strict=True)
        ]
        metrics = None
    title = f"runs in {path.parent.name}{' by question type' if per_type else ''} (%)"
    return write_chart(runs, path, title if mixed else f"{dataset}: {title}", metrics)


def _passages_read(summary: dict[str, Any]) -> str:
    if summary["mode"] == "closed-book":
        return "none (closed book)"
    if summary["reader_k"] is None:
        return "all of its own"
    own = " of its own, the best by BM25" if summary["mode"] == "contexts" else ""
    return f"{summary['reader_k']}{own}"


def _report(summary: dict[str, Any], command: str, others: list[dict[str, Any]]) -> str:
    names = list(REPORTED.values())
    lines = [
        f"# Evaluation: {summary['dataset']} ({summary['mode']})",
        "",
        f"- command: `{command}`" if command else "- command: (library call)",
        f"- model: {summary['model']} on backend {summary['backend']}",
        f"- run: {summary['run_id']}, {summary['count']} questions, "
        f"passages read: {_passages_read(summary)}"
        + (
            f", corpus {summary['corpus']} by {summary['retriever']}, k={summary['k']}"
            if summary["mode"] == "corpus"
            else ""
        ),
        f"- written: {time.strftime('%Y-%m-%d %H:%M:%S')}",
        *([] if summary.get("chart") else ["- chart: install myninja[eval] for chart.png"]),
        "",
        "Percentages; – where a metric does not apply (no retrieval, nothing cited).",
        "",
        "| " + " | ".join(["count", *names]) + " |",
        "|" + "---:|" * (len(names) + 1),
        "| " + " | ".join([str(summary["count"]), *(_percent(summary[n]) for n in names)]) + " |",
    ]
    if summary.get("chart"):
        lines += ["", "![runs compared](chart.png)"]
    lines += _type_tables(summary, others, names)
    if others:
        lines += [
            "",
            "## Other runs in this folder",
            "",
            "| run | mode | model | " + " | ".join(["count", *names]) + " |",
            "|---|---|---|" + "---:|" * (len(names) + 1),
        ]
        for run in others:
            figures = run["figures"]
            settings = run["settings"]
            model = settings.get("model_label") or settings.get("model") or "-"
            lines.append(
                f"| {run['run_id']} | {settings.get('mode')} | {model} | "
                + " | ".join([str(figures["count"]), *(_percent(figures[n]) for n in names)])
                + " |"
            )
    return "\n".join(lines) + "\n"


def _type_tables(
    summary: dict[str, Any], others: list[dict[str, Any]], names: list[str]
) -> list[str]:
    """The report's "By question type": this run's figures per type, then every run's headline
    figures per type side by side."""
    typed = summary.get("by_type") or {}
    if not typed:
        return []
    lines = [
        "",
        "## By question type",
        "",
        TYPE_NOTES.get(summary["dataset"], ""),
        "",
        "| " + " | ".join(["type", "count", *names]) + " |",
        "|---|" + "---:|" * (len(names) + 1),
    ]
    for kind, figures in typed.items():
        cells = [str(figures["count"]), *(_percent(figures[n]) for n in names)]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    compared = [run for run in others if run.get("by_type")]
    if compared:
        columns = list(chart_figures(summary["dataset"], typed))
        lines += [
            "",
            "| run | " + " | ".join(columns) + " |",
            "|---|" + "---:|" * len(columns),
        ]
        for run_id, by in [(summary["run_id"] + " (this run)", typed)] + [
            (run["run_id"], run["by_type"]) for run in compared
        ]:
            values = chart_figures(summary["dataset"], by)
            lines.append(
                f"| {run_id} | " + " | ".join(_percent(values.get(c)) for c in columns) + " |"
            )
    if summary.get("chart_types"):
        lines += ["", "![runs by question type](chart-types.png)"]
    return lines


TYPE_NOTES = {
    "hotpotqa": "Bridge or comparison, read from the question (the file does not keep "
    "HotpotQA's own field): a comparison names both supporting paragraphs' subjects or is "
    "answered yes/no.",
    "nq-open": "By the gold answer: a date, a number (a count or an amount), or other.",
}
