"""The router on labelled tasks: how often it sends a task where the label says, on the default
model, with the confusion matrix.

Each task is routed in this process exactly as `myninja ask` routes it (rules, then the router
model with its constrained one-word reply; no past corrections). Labels: `fast` (the assistant's
one-call path), researcher, coder, advisor, scheduler, writer. The baseline a person has without
a router is one fixed destination: its accuracy is the share of the largest label, printed too.
Target: accuracy >= 0.90. Prints JSON.

    python benchmarks/routing.py [--data benchmarks/data/routing.jsonl] [--model qwen2.5-coder-1.5b]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LABELS = ("fast", "researcher", "coder", "advisor", "scheduler", "writer")


def label_of(agent: str) -> str:
    return "fast" if agent == "assistant" else agent


async def run(tasks: list[dict], model: str, threads: int) -> list[dict]:
    from myninja.agent_graph.context import BackendPool, GraphContext
    from myninja.agent_graph.nodes.route import choose
    from myninja.config_file import load_config

    config = load_config()
    embedded = config.backends["embedded"]
    embedded.model = model  # type: ignore[union-attr]
    embedded.threads = threads  # type: ignore[union-attr]
    ctx = GraphContext(config=config, backends=BackendPool(config))
    rows = []
    try:
        for task in tasks:
            usage: dict[str, int] = {}
            started = time.perf_counter()
            choice = await choose(ctx, task["text"], usage)
            rows.append(
                {
                    "text": task["text"],
                    "label": task["label"],
                    "routed": label_of(choice.agent),
                    "by": choice.by,
                    "reason": choice.reason,
                    "seconds": round(time.perf_counter() - started, 3),
                }
            )
    finally:
        await ctx.backends.aclose()
    return rows


def report(rows: list[dict], model: str, threads: int, data: str) -> dict:
    right = [r for r in rows if r["routed"] == r["label"]]
    matrix = {
        label: {other: sum(1 for r in rows if r["label"] == label and r["routed"] == other)
                for other in LABELS}
        for label in LABELS
    }  # fmt: skip
    by = {
        way: {
            "tasks": sum(1 for r in rows if r["by"] == way),
            "right": sum(1 for r in right if r["by"] == way),
        }
        for way in sorted({r["by"] for r in rows})
    }
    majority, count = Counter(r["label"] for r in rows).most_common(1)[0]
    model_seconds = [r["seconds"] for r in rows if r["by"] == "model"]
    return {
        "benchmark": "routing",
        "data": data,
        "model": model,
        "threads": threads,
        "tasks": len(rows),
        "accuracy": round(len(right) / len(rows), 4),
        "target_accuracy": 0.90,
        "baseline_one_destination": {"label": majority, "accuracy": round(count / len(rows), 4)},
        "per_label_recall": {
            label: round(matrix[label][label] / max(1, sum(matrix[label].values())), 3)
            for label in LABELS
        },
        "confusion_rows_label_columns_routed": matrix,
        "by": by,
        "median_model_route_s": round(statistics.median(model_seconds), 3)
        if model_seconds
        else None,
        "wrong": [
            {"text": r["text"], "label": r["label"], "routed": r["routed"], "by": r["by"]}
            for r in rows
            if r["routed"] != r["label"]
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT / "benchmarks" / "data" / "routing.jsonl"))
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--home", help="MYNINJA_HOME to use (default: a temporary one)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    tasks = [json.loads(line) for line in Path(args.data).read_text().splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as temp:
        os.environ["MYNINJA_HOME"] = args.home or temp
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        rows = asyncio.run(run(tasks, args.model, args.threads))
    print(json.dumps(report(rows, args.model, args.threads, args.data), indent=2))


if __name__ == "__main__":
    main()
