"""Prompt-lookup decoding against plain decoding, on the default model: replies that copy from
their prompt (a coder's function with its docstring, the coder's revision of its own answer, a
researcher quoting its sources) and, as a control, advice that copies nothing.

Every request is greedy (lookup checks its drafts against what greedy decoding picks, so the
replies must be the same, and the JSON says whether they were). Each lookup setting (`[embedded]
lookup`, draft tokens per step) runs every prompt from an empty cache, in one process, the
order of the settings alternating from prompt to prompt. Prints JSON: seconds per setting, the
ratio to plain decoding, and per prompt the tokens, drafted and accepted draft tokens.

    python benchmarks/lookup.py [--model qwen2.5-coder-1.5b] [--lookups 4,8] [--max-tokens 512]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.branch_setup import branch_requests, source  # noqa: E402
from benchmarks.eval_data import dev_file  # noqa: E402

ADVICE = "Should I keep my savings in a high-interest account or pay extra off my car loan?"
# What the coder's review sends back when the task's examples fail (skills/coder/review.py).
EXAMPLES_FAILED = "I ran the examples the task gives; these are wrong:\n- {call} should be {want}"


def prompts(limit: int) -> list[dict[str, Any]]:
    """(kind, the first request's messages) for each prompt; revisions are built later."""
    from myninja.agent_graph.evals import humaneval

    found: list[dict[str, Any]] = []
    for problem in humaneval.load_problems(dev_file("humaneval-dev40.jsonl"), 2):
        text = humaneval.agent_task(problem)
        found.append({"kind": "coder", "text": text, "agent": "coder", "sources": []})
        found.append({"kind": "revision", "text": text, "agent": "coder", "sources": []})
    line = dev_file("hotpotqa-distractor-dev100.jsonl").read_text().splitlines()[0]
    row = json.loads(line)
    contexts = enumerate(row["contexts"])
    sources = [source(str(i), c["title"], c["paragraph_text"]) for i, c in contexts]
    found.append({"kind": "researcher", "text": row["question_text"], "agent": "researcher",
                  "sources": sources})  # fmt: skip
    found.append({"kind": "control", "text": ADVICE, "agent": "advisor", "sources": []})
    return found[:limit]


def first_request(prompt: dict[str, Any], max_tokens: int) -> Any:
    (request,) = branch_requests(prompt["agent"], prompt["text"], prompt["sources"], 1, max_tokens)
    request.temperature = 0.0
    return request


def revision_request(first: Any, answer: str, max_tokens: int) -> Any:
    """The coder's revision after its examples failed: its answer and the review's note."""
    from myninja.backends.base import ChatRequest
    from myninja.skills.coder.review import FIX

    note = EXAMPLES_FAILED.format(call="the first example", want="what the docstring says")
    messages = [
        *first.messages,
        {"role": "assistant", "content": answer},
        {"role": "user", "content": f"{note}\n\n{FIX}"},
    ]
    return ChatRequest(messages, temperature=0.0, max_tokens=max_tokens)


async def timed(backend: Any, request: Any, kv: Path) -> dict[str, Any]:
    loaded = await backend._model(backend.model)
    loaded.engine.forget()  # nothing from an earlier measurement
    shutil.rmtree(kv, ignore_errors=True)
    engine = loaded.engine
    drafted, accepted = engine.drafted, engine.accepted
    started = time.perf_counter()
    result = await backend.chat(request)
    return {
        "seconds": round(time.perf_counter() - started, 3),
        "tokens": result.usage.completion_tokens,
        "drafted": engine.drafted - drafted,
        "accepted": engine.accepted - accepted,
        "text": result.text,
    }


async def run(args: argparse.Namespace, home: Path) -> dict[str, Any]:
    from myninja.backends.embedded import KV_CACHE, EmbeddedBackend

    models = home / "models"
    kv = models / KV_CACHE
    settings = [0, *args.lookups]
    backends = {
        n: EmbeddedBackend("embedded", args.model, threads=args.threads, models_dir=models,
                           lookup=n)
        for n in settings
    }  # fmt: skip
    rows = []
    for i, prompt in enumerate(prompts(args.limit)):
        request = first_request(prompt, args.max_tokens)
        if prompt["kind"] == "revision":
            answer = (await backends[0].chat(request)).text
            request = revision_request(request, answer, args.max_tokens)
        order = settings if i % 2 == 0 else settings[::-1]  # drift hits every setting alike
        runs = {n: await timed(backends[n], request, kv) for n in order}
        plain = runs[0]
        row: dict[str, Any] = {"kind": prompt["kind"], "prompt": prompt["text"][:60]}
        for n in settings:
            run_ = runs[n]
            row[str(n)] = {k: v for k, v in run_.items() if k != "text"}
            if n:
                row[str(n)]["same_reply"] = run_["text"] == plain["text"]
                row[str(n)]["over_plain"] = round(run_["seconds"] / plain["seconds"], 3)
        print(json.dumps(row), file=sys.stderr)
        rows.append(row)

    def total(n: int, kind: str | None = None) -> float:
        return sum(r[str(n)]["seconds"] for r in rows if kind in (None, r["kind"]))

    kinds = list(dict.fromkeys(r["kind"] for r in rows))
    return {
        "benchmark": "lookup",
        "model": args.model,
        "threads": args.threads,
        "max_tokens": args.max_tokens,
        "prompts": len(rows),
        "seconds": {str(n): round(total(n), 2) for n in settings},
        "over_plain": {str(n): round(total(n) / total(0), 3) for n in args.lookups},
        "by_kind": {
            str(n): {k: round(total(n, k) / total(0, k), 3) for k in kinds} for n in args.lookups
        },
        "same_replies": all(r[str(n)]["same_reply"] for r in rows for n in args.lookups),
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--limit", type=int, default=6)
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument(
        "--lookups", default="4,8", type=lambda s: [int(x) for x in s.split(",") if x]
    )
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    with tempfile.TemporaryDirectory() as home:
        os.environ["MYNINJA_HOME"] = home
        result = asyncio.run(run(args, Path(home)))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
