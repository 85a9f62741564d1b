"""`<out>/chart.png`: the runs in an eval folder side by side, one bar group per metric.

matplotlib is the optional `eval` extra, imported only here and only when a chart is drawn, so
`myninja eval` works without it (`write_chart` then returns None). The figure is a plain
`matplotlib.figure.Figure` on an Agg canvas, never pyplot: pyplot keeps global state (the
current figure, the chosen backend) that would leak into other code and is not thread-safe.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .metrics import REPORTED

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Run = tuple[str, Mapping[str, float | None]]  # (label, report name -> percentage or None)

# Report name -> axis label, in REPORTED's order.
METRIC_LABELS: dict[str, str] = {
    "em": "EM",
    "substring_acc": "substring\naccuracy",
    "f1": "F1",
    "recall_at_k": "recall@k",
    "citation_precision": "citation\nprecision",
    "abstention_rate": "abstention",
}
SIZE_PX = (1000, 500)
DPI = 100
MAX_MODEL_CHARS = 32


def available() -> bool:
    """Whether matplotlib (the `eval` extra) can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _short_model(model: str) -> str:
    # A local model is often named by its file path: the file name is what tells runs apart.
    name = Path(model).name.removesuffix(".gguf") or model
    return name if len(name) <= MAX_MODEL_CHARS else name[: MAX_MODEL_CHARS - 1] + "…"


def run_label(settings: Mapping[str, Any]) -> str:
    """A short label for a run from its stored settings (`asdict(EvalSettings)`): mode, the
    corpus and retriever when it retrieves, the passages read, and the model."""
    mode = settings.get("mode") or "?"
    parts = [mode]
    if mode == "corpus":
        parts = [f"corpus {settings.get('corpus')} ({settings.get('retriever')})"]
    if mode != "closed-book":
        # None is the default: 5 retrieved passages, or all of a question's own.
        fed = settings.get("reader_k")
        parts.append(f"read {fed if fed is not None else 5 if mode == 'corpus' else 'all'}")
    model = settings.get("model_label") or settings.get("model")
    if model:
        parts.append(_short_model(str(model)))
    return " · ".join(parts)


def charted_metrics(runs: Sequence[Run]) -> list[str]:
    """The report names, in REPORTED's order, that at least one run has a value for."""
    return [
        name
        for name in REPORTED.values()
        if any(figures.get(name) is not None for _, figures in runs)
    ]


def chart_figure(runs: Sequence[Run], title: str, metrics: Sequence[str] | None = None) -> Figure:
    """The grouped bar chart as a Figure on an Agg canvas (ImportError without matplotlib).

    One group per metric that some run has; one bar per run, coloured by run, its value
    written above it. A run without a value for a charted metric gets no bar but "n/a" at the
    baseline, so a missing figure is not mistaken for 0.
    """
    # `import matplotlib` first: it fails when the package is missing (or blocked with
    # sys.modules["matplotlib"] = None) even if a submodule was imported earlier.
    import matplotlib  # noqa: F401
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(SIZE_PX[0] / DPI, SIZE_PX[1] / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.set_title(title)
    metrics = [
        name
        for name in (metrics if metrics is not None else charted_metrics(runs))
        if any(figures.get(name) is not None for _, figures in runs)
    ]
    if not runs or not metrics:
        axes.set_axis_off()
        axes.text(0.5, 0.5, "no scored questions yet", ha="center", va="center")
        return figure

    # One metric's bars share at most 0.8 of a unit (the rest is the gap between groups), and a
    # lone run's bar stays narrow rather than filling the group.
    width = min(0.8 / len(runs), 0.3)
    group = width * len(runs)
    colours = [f"C{i % 10}" for i in range(len(runs))]
    # Many runs make narrow bars: their value labels are turned upright to fit.
    rotation = 90 if len(runs) > 4 else 0
    value_size = 8 if len(runs) <= 6 else 7
    for index, (label, figures) in enumerate(runs):
        offset = -group / 2 + width * (index + 0.5)
        xs = [m + offset for m, name in enumerate(metrics) if figures.get(name) is not None]
        heights = [float(v) for name in metrics if (v := figures.get(name)) is not None]
        bars = axes.bar(xs, heights, width * 0.9, label=label, color=colours[index])
        axes.bar_label(bars, fmt="%.1f", padding=2, fontsize=value_size, rotation=rotation)
        for m, name in enumerate(metrics):
            if figures.get(name) is None:
                axes.text(
                    m + offset, 1, "n/a", ha="center", va="bottom", fontsize=value_size, rotation=90
                )
    axes.set_xticks(range(len(metrics)), [_tick(name) for name in metrics])
    # Percentages: a fixed 0-100 scale so charts of different folders compare by eye; the
    # headroom above 100 keeps a full bar's value label inside the axes.
    axes.set_ylim(0, 100 * (1.16 if rotation else 1.08))
    axes.set_yticks(range(0, 101, 20))
    axes.set_ylabel("%")
    axes.yaxis.grid(True, alpha=0.3)
    axes.set_axisbelow(True)
    axes.spines[["top", "right"]].set_visible(False)
    # Below the plot, on the figure: constrained layout then makes room for it, and the labels
    # (up to ~60 characters) fit two to a row at this width.
    figure.legend(loc="outside lower center", ncols=min(len(runs), 2), fontsize=8, frameon=False)
    return figure


def _tick(name: str) -> str:
    """A group's label: the metric's, and under it the question type ("f1 · bridge")."""
    metric, _, kind = name.partition(" · ")
    label = METRIC_LABELS.get(metric, metric)
    return f"{label}\n{kind}" if kind else label


def write_chart(
    runs: list[tuple[str, dict[str, float | None]]],
    path: Path,
    title: str,
    metrics: Sequence[str] | None = None,
) -> Path | None:
    """Draw `runs` (label, report figures) to the PNG `path`, about 1000x500 px; None, writing
    nothing, when matplotlib is not installed. `metrics`: the groups (default: the reported
    metrics some run has)."""
    try:
        figure = chart_figure(runs, title, metrics)
    except ImportError:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    # A temporary file in the same folder, then a rename: a reader never sees half a PNG, and
    # the rename stays on one file system.
    # A unique name opened with "x" rather than mkstemp, so the PNG gets the umask's mode like
    # report.md, not mkstemp's owner-only 0600.
    partial = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with partial.open("xb") as out:
            figure.savefig(out, format="png", dpi=DPI)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path
