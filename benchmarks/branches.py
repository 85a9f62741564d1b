"""Three branches against one, on the same prompts, on the default model: what a step's branches
cost when the embedded engine decodes them together (one llama.cpp batch, the shared prompt
prefix evaluated once), and what they cost queued one after another (`parallel = 1`, as the
embedded backend worked before).

The prompts are the graph's own branch prompts (persona, task, the branch's style line) for
six tasks: two coder tasks (HumanEval dev problems, as the coder agent is given them), two
researcher questions with their passages as numbered sources (HotpotQA dev), two advisor
decisions. Branch i has the graph's temperature and style for branch i; the reply cap is the
graph's. Every measurement starts from an empty cache (memory and disk), in one process; the
order of the modes alternates from prompt to prompt. Besides one, three batched and three
queued, `shipped` is the step as the graph works it by default (adaptive branching): the first
branch and the coder's checks of it, then the other two together only when it falls short
(checks failed, citations that do not hold, no answer found); no mode counts a judge's call.
Target: three branches take at most 1.5x the wall time of one. Then the seconds per decoding
step with 1 to 4 sequences in the batch, which bound what batching can save on this machine.
Prints JSON.

    python benchmarks/branches.py [--model qwen2.5-coder-1.5b] [--limit 6] [--max-tokens N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.branch_setup import branch_requests, candidate, coder_checks, source  # noqa: E402
from benchmarks.eval_data import dev_file  # noqa: E402

MODES = ("one", "three", "three_queued", "shipped")
ADVICE = (
    "Should a two-person startup build its first product on a managed platform such as Heroku "
    "or on raw cloud VMs? We expect a few hundred users in the first year.",
    "My team of five wants to adopt code review for every change. Should reviews be required "
    "before merging, or done after merging within a day?",
)


def tasks(limit: int) -> list[dict[str, Any]]:
    """(agent, task text, sources) for each prompt."""
    from myninja.agent_graph.evals import humaneval

    found: list[dict[str, Any]] = []
    for problem in humaneval.load_problems(dev_file("humaneval-dev40.jsonl"), 2):
        found.append({"agent": "coder", "text": humaneval.agent_task(problem), "sources": []})
    lines = dev_file("hotpotqa-distractor-dev100.jsonl").read_text().splitlines()[:2]
    for line in lines:
        row = json.loads(line)
        sources = [
            source(str(i), c["title"], c["paragraph_text"]) for i, c in enumerate(row["contexts"])
        ]
        found.append({"agent": "researcher", "text": row["question_text"], "sources": sources})
    for text in ADVICE:
        found.append({"agent": "advisor", "text": text, "sources": []})
    return found[:limit]


def requests(task: dict[str, Any], branches: int, max_tokens: int) -> list[Any]:
    return branch_requests(task["agent"], task["text"], task["sources"], branches, max_tokens)


async def timed(backend: Any, requests: list[Any], kv: Path) -> dict[str, Any]:
    loaded = await backend._model(backend.model)
    loaded.engine.forget()  # nothing from an earlier measurement
    shutil.rmtree(kv, ignore_errors=True)
    started = time.perf_counter()
    results = await asyncio.gather(*(backend.chat(r) for r in requests))
    return {
        "seconds": round(time.perf_counter() - started, 3),
        "tokens": [r.usage.completion_tokens for r in results],
        "prompt_tokens": results[0].usage.prompt_tokens,
    }


async def timed_shipped(
    backend: Any, task: dict[str, Any], requests: list[Any], kv: Path, scratch: Path
) -> dict[str, Any]:
    """The step as the graph works it by default (`[graph] adaptive`): the first branch and its
    checks; the other two, together, only when it falls short (and their checks). A step
    with sources (`[graph] compare_sourced`) runs all three at once."""
    from myninja.agent_graph import judging
    from myninja.config import GraphConfig

    loaded = await backend._model(backend.model)
    loaded.engine.forget()
    shutil.rmtree(kv, ignore_errors=True)

    async def checked(i: int, request: Any) -> tuple[Any, list[dict[str, Any]]]:
        result = await backend.chat(request)
        if task["agent"] != "coder":
            return result, []
        return result, await coder_checks(task["text"], result.text, scratch / f"b{i}")

    started = time.perf_counter()
    state = {"sources": task["sources"], "text": task["text"]}
    if judging.compares_sources(GraphConfig(), state):
        together = await asyncio.gather(*(checked(i, r) for i, r in enumerate(requests)))
        return {
            "seconds": round(time.perf_counter() - started, 3),
            "tokens": [result.usage.completion_tokens for result, _ in together],
            "prompt_tokens": together[0][0].usage.prompt_tokens,
            "widened": "answers from sources: all branches, compared",
        }
    first, checks = await checked(0, requests[0])
    short = judging.falls_short(state, candidate(0, first.text, checks, task["sources"]))
    tokens = [first.usage.completion_tokens]
    if short is not None:
        rest = await asyncio.gather(*(checked(i, r) for i, r in enumerate(requests[1:], 1)))
        tokens += [result.usage.completion_tokens for result, _ in rest]
    return {
        "seconds": round(time.perf_counter() - started, 3),
        "tokens": tokens,
        "prompt_tokens": first.usage.prompt_tokens,
        "widened": short,
    }


async def step_seconds(backend: Any, steps: int = 64) -> dict[str, float]:
    """Seconds per decoding step with 1 to 4 sequences in the batch (the prompt cached): what
    a batch of branches can save is set by how much more a step of several costs than one."""
    from myninja.backends.base import ChatRequest

    loaded = await backend._model(backend.model)
    messages = [{"role": "user", "content": "Count from 1 to 300, separated by commas."}]

    async def count(seed: int) -> None:
        request = ChatRequest(messages, temperature=0.7, max_tokens=steps, seed=seed)
        await backend.chat(request)

    await count(0)  # the prompt, cached
    found = {}
    for n in (1, 2, 3, 4):
        before, started = loaded.engine.steps, time.perf_counter()
        await asyncio.gather(*(count(seed) for seed in range(1, n + 1)))
        found[str(n)] = round((time.perf_counter() - started) / (loaded.engine.steps - before), 4)
    return found


async def run(args: argparse.Namespace, home: Path) -> dict[str, Any]:
    from myninja.backends.embedded import KV_CACHE, EmbeddedBackend
    from myninja.config import GraphConfig

    models = home / "models"
    kv = models / KV_CACHE
    max_tokens = args.max_tokens or GraphConfig().max_tokens

    def backend(parallel: int) -> EmbeddedBackend:
        return EmbeddedBackend(
            "embedded", args.model, threads=args.threads, models_dir=models, parallel=parallel
        )

    batched, queued = backend(4), backend(1)
    scratch = home / "workspaces"
    rows = []
    for n, task in enumerate(tasks(args.limit)):
        one, three = requests(task, 1, max_tokens), requests(task, 3, max_tokens)
        modes = [("one", batched, one), ("three", batched, three), ("three_queued", queued, three),
                 ("shipped", batched, three)]  # fmt: skip
        if n % 2:
            modes.reverse()  # drift in machine load hits every mode alike
        row: dict[str, Any] = {"agent": task["agent"], "task": task["text"][:80]}
        for name, engine, asks in modes:
            if name == "shipped":
                row[name] = await timed_shipped(engine, task, asks, kv, scratch / str(n))
            else:
                row[name] = await timed(engine, asks, kv)
        for name in MODES[1:]:
            row[f"{name}_over_one"] = round(row[name]["seconds"] / row["one"]["seconds"], 3)
        print(json.dumps(row), file=sys.stderr)
        rows.append(row)

    steps = await step_seconds(batched)

    def total(name: str, agent: str | None = None) -> float:
        return sum(r[name]["seconds"] for r in rows if agent in (None, r["agent"]))

    agents = list(dict.fromkeys(r["agent"] for r in rows))

    return {
        "benchmark": "branches",
        "model": args.model,
        "threads": args.threads,
        "max_tokens": max_tokens,
        "prompts": len(rows),
        "seconds": {name: round(total(name), 2) for name in MODES},
        **{f"{name}_over_one": round(total(name) / total("one"), 3) for name in MODES[1:]},
        "median_three_over_one": round(statistics.median(r["three_over_one"] for r in rows), 3),
        "target_over_one": 1.5,
        "shipped_widened": sum(r["shipped"]["widened"] is not None for r in rows),
        "by_agent": {
            name: {agent: round(total(name, agent) / total("one", agent), 3) for agent in agents}
            for name in MODES[1:]
        },
        "step_seconds": steps,
        "step_over_one": {n: round(s / steps["1"], 3) for n, s in steps.items()},
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--limit", type=int, default=6)
    parser.add_argument("--max-tokens", type=int, default=None)
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    with tempfile.TemporaryDirectory() as home:
        os.environ["MYNINJA_HOME"] = home
        result = asyncio.run(run(args, Path(home)))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
