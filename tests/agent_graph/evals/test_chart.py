"""chart.png: the figure's bars are checked as data, the file as a real PNG of the set size."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from myninja.agent_graph.evals.chart import (
    SIZE_PX,
    available,
    chart_figure,
    charted_metrics,
    run_label,
    write_chart,
)
from myninja.agent_graph.evals.datasets import load_questions
from myninja.agent_graph.evals.runner import EvalSettings, run_eval
from myninja.backends.scripted import Rule, ScriptedBackend

NQ = Path(__file__).resolve().parents[2] / "fixtures" / "nq-open-oracle-dev5.jsonl"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# matplotlib is the `eval` extra: without it only the fallback test applies.
needs_matplotlib = pytest.mark.skipif(not available(), reason="matplotlib (myninja[eval])")
NAMES = ("em", "substring_acc", "f1", "recall_at_k", "citation_precision", "abstention_rate")


def figures(*values: float | None) -> dict[str, float | None]:
    return dict(zip(NAMES, values, strict=True))


RUNS = [
    ("contexts · read all · m1", figures(40.0, 60.0, 50.0, 10.0, 100.0, 20.0)),
    ("closed-book · m1", figures(20.0, 25.5, 33.3, 0.0, 12.5, 80.0)),
]


def bar_heights(figure) -> list[list[float]]:  # type: ignore[no-untyped-def]
    """Each run's bar heights, in metric order (one BarContainer per run)."""
    (axes,) = figure.axes
    return [[bar.get_height() for bar in container] for container in axes.containers]


@needs_matplotlib
def test_one_bar_per_run_and_metric_with_the_given_heights() -> None:
    figure = chart_figure(RUNS, "t")
    (axes,) = figure.axes
    assert len(axes.patches) == len(RUNS) * len(NAMES)
    assert bar_heights(figure) == [list(f.values()) for _, f in RUNS]
    ticks = [tick.get_text() for tick in axes.get_xticklabels()]
    assert ticks == ["EM", "substring\naccuracy", "F1", "recall@k", "citation\nprecision",
                     "abstention"]  # fmt: skip
    legend = [text.get_text() for text in figure.legends[0].get_texts()]
    assert legend == [label for label, _ in RUNS]
    assert axes.get_ylim()[0] == 0 and max(axes.get_yticks()) == 100
    # The value is written on each bar.
    values = {text.get_text() for text in axes.texts}
    assert {"40.0", "25.5", "33.3", "0.0"} <= values


@needs_matplotlib
def test_a_metric_none_for_every_run_is_left_out_and_a_lone_none_gets_no_bar() -> None:
    runs = [
        ("a", figures(40.0, 60.0, 50.0, None, 100.0, 20.0)),
        ("b", figures(20.0, 30.0, 40.0, None, None, 0.0)),
    ]
    assert "recall_at_k" not in charted_metrics(runs)
    figure = chart_figure(runs, "t")
    (axes,) = figure.axes
    assert len(axes.get_xticks()) == 5
    # b has no citation precision: 5 + 4 bars, and "n/a" where its bar would be, not a 0.
    assert len(axes.patches) == 9
    assert bar_heights(figure) == [[40.0, 60.0, 50.0, 100.0, 20.0], [20.0, 30.0, 40.0, 0.0]]
    assert [text.get_text() for text in axes.texts].count("n/a") == 1


@needs_matplotlib
def test_write_chart_writes_a_png_of_the_set_size_atomically(tmp_path: Path) -> None:
    from matplotlib.image import imread

    path = write_chart(RUNS, tmp_path / "sub" / "chart.png", "nq-open: runs (%)")
    assert path == tmp_path / "sub" / "chart.png"
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    height, width = imread(path).shape[:2]
    assert (width, height) == SIZE_PX
    assert [p.name for p in path.parent.iterdir()] == ["chart.png"]  # no temporary file left


def test_run_labels_name_mode_retriever_passages_and_model() -> None:
    corpus = {
        "mode": "corpus",
        "corpus": "wiki",
        "retriever": "hybrid",
        "reader_k": None,
        "model": None,
        "model_label": "/models/Qwen2.5-1.5B-Instruct-Q4_K_M.gguf",
    }
    assert run_label(corpus) == "corpus wiki (hybrid) · read 5 · Qwen2.5-1.5B-Instruct-Q4_K_M"
    contexts = {"mode": "contexts", "retriever": "bm25", "reader_k": 3, "model": "gpt-4o-mini"}
    assert run_label(contexts) == "contexts · read 3 · gpt-4o-mini"  # no retriever: none used
    assert run_label({"mode": "contexts", "reader_k": None}) == "contexts · read all"
    assert run_label({"mode": "closed-book", "reader_k": 5, "model": "m"}) == "closed-book · m"
    long = run_label({"mode": "closed-book", "model": "x" * 80})
    assert len(long) < 50 and long.endswith("…")


def scripted() -> ScriptedBackend:
    rules = [Rule(match="next deadpool movie", reply="May 18, 2018 [1]")]
    return ScriptedBackend("scripted", rules, default="I don't know")


def run_both_modes(out: Path) -> tuple[dict, dict]:  # type: ignore[type-arg]
    questions = load_questions("nq-open", NQ)
    first = asyncio.run(
        run_eval(questions, EvalSettings("nq-open", "contexts"), scripted(), out=out)
    )
    second = asyncio.run(
        run_eval(questions, EvalSettings("nq-open", "closed-book"), scripted(), out=out)
    )
    return first, second


@needs_matplotlib
def test_run_eval_charts_the_runs_in_its_folder_and_links_the_chart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn: list[list[tuple[str, dict[str, float | None]]]] = []
    real = write_chart

    def spy(runs, path, title, metrics=None):  # type: ignore[no-untyped-def]
        if path.name == "chart.png":
            drawn.append(runs)
        return real(runs, path, title, metrics)

    monkeypatch.setattr("myninja.agent_graph.evals.report.write_chart", spy)
    first, second = run_both_modes(tmp_path)
    chart = tmp_path / "chart.png"
    assert first["chart"] == second["chart"] == str(chart)
    assert chart.read_bytes()[:8] == PNG_SIGNATURE
    report = (tmp_path / "report.md").read_text()
    assert "![runs compared](chart.png)" in report and "install myninja[eval]" not in report
    # The second chart holds both runs, this one first, with the figures the report tables.
    labels = [label for label, _ in drawn[-1]]
    assert labels == ["closed-book (this run)", "contexts · read all"]  # no model named
    assert drawn[-1][0][1]["em"] == second["em"] == 20.0
    assert drawn[-1][1][1]["em"] == first["em"] == 20.0
    assert drawn[-1][1][1]["citation_precision"] == first["citation_precision"] == 100.0
    assert drawn[-1][0][1]["citation_precision"] is None  # closed-book cites nothing
    assert f"| {first['run_id']} | contexts | - | 5 | 20.00 |" in report


def test_without_matplotlib_no_chart_and_the_report_says_how_to_get_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # None in sys.modules makes `import matplotlib` raise ImportError, as if not installed.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert write_chart(RUNS, tmp_path / "alone.png", "t") is None
    assert not (tmp_path / "alone.png").exists()
    first, second = run_both_modes(tmp_path)
    assert first["chart"] is None and second["chart"] is None
    assert not (tmp_path / "chart.png").exists()
    report = (tmp_path / "report.md").read_text()
    assert "- chart: install myninja[eval] for chart.png" in report
    assert "![runs compared]" not in report


def test_the_cli_table_names_the_chart_only_when_there_is_one() -> None:
    from myninja.ninja_tui.cli.eval_cmd import _table

    summary = {
        **figures(40.0, 60.0, 50.0, None, 100.0, 20.0),
        **{"dataset": "nq-open", "mode": "contexts", "model": "m", "count": 5},
        **{"answered": 5, "skipped": 0, "report": "/o/report.md", "chart": "/o/chart.png"},
    }
    assert _table(summary).endswith("; report /o/report.md, chart /o/chart.png")
    assert _table({**summary, "chart": None}).endswith("; report /o/report.md")
    typed = {"date": {"count": 2, "em": 50.0, "substring_acc": 100.0}, "other": {"count": 3,
             "em": 33.333, "substring_acc": None}}  # fmt: skip
    lines = _table({**summary, "by_type": typed}).splitlines()
    assert "  date (2)             em 50.00, substring_acc 100.00" in lines
    assert "  other (3)            em 33.33" in lines


@needs_matplotlib
def test_labels_tell_like_runs_and_datasets_apart_and_the_chart_keeps_the_latest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn: list[tuple[list[str], str]] = []
    real = write_chart

    def spy(runs, path, title, metrics=None):  # type: ignore[no-untyped-def]
        if path.name == "chart.png":
            drawn.append(([label for label, _ in runs], title))
        return real(runs, path, title, metrics)

    monkeypatch.setattr("myninja.agent_graph.evals.report.write_chart", spy)
    nq = load_questions("nq-open", NQ, limit=2)
    hotpot = load_questions("hotpotqa", NQ.with_name("hotpotqa-dev5.jsonl"), limit=2)
    short = asyncio.run(
        run_eval(nq, EvalSettings("nq-open", "contexts", max_tokens=16), scripted(), out=tmp_path)
    )
    long = asyncio.run(run_eval(nq, EvalSettings("nq-open", "contexts"), scripted(), out=tmp_path))
    labels, title = drawn[-1]
    # Same label but for the reply cap: the run ids tell them apart.
    assert labels == [
        f"contexts · read all [{long['run_id']}] (this run)",
        f"contexts · read all [{short['run_id']}]",
    ]
    assert title.startswith("nq-open: ")
    asyncio.run(run_eval(hotpot, EvalSettings("hotpotqa", "closed-book"), scripted(), out=tmp_path))
    labels, title = drawn[-1]
    assert labels[0] == "hotpotqa · closed-book (this run)" and title.startswith("runs in ")
    assert labels[1].startswith("nq-open · contexts · read all [")
    # Past the cap, the chart keeps this run and the latest others.
    monkeypatch.setattr("myninja.agent_graph.evals.report.MAX_CHART_RUNS", 2)
    asyncio.run(run_eval(nq, EvalSettings("nq-open", "closed-book"), scripted(), out=tmp_path))
    labels, _ = drawn[-1]
    assert labels == ["nq-open · closed-book (this run)", "hotpotqa · closed-book"]
