"""Which branch each way of choosing keeps, on branches whose correctness is known.

Three branches per problem, from the graph's own branch prompts (persona, task, style line,
temperature) on the default model, decoded together:
- humaneval: HumanEval dev40 through the coder persona; each branch's code is checked as the
  coder skill checks it (its own tests, the task's examples: the `checks`), and is right when
  it passes the problem's hidden tests (in the sandbox);
- hotpotqa: HotpotQA distractor dev, the question's ten paragraphs as numbered sources;
- nq: NQ-open oracle dev, the five passages BM25 ranks best among all the questions' gold
  passages as sources.
A QA branch is right when a gold answer (SQuAD-normalised) occurs in its first sentence.

The ways of choosing, each given the same branches: `first` (branch 1, the greedy-most),
`random` (the expected share of right branches), `judge_each` (the model judge scores each
branch 1-10, the best kept, ties to the first), `judge_compare` (one call sees all three),
`agreement` (the largest group of agreeing answers, else the first), `checks` (checks by code,
then the first), `shipped` (what the graph does: the first branch unless it falls short, then
checks, agreement, the comparing judge; with sources, as HotpotQA and NQ have, all branches,
checks, then the comparing judge), and `oracle` (a right one whenever there is one).
Printed per set: how often each keeps a right branch, and how often it keeps one when at
least one branch is right. Targets: shipped >= first on every set; shipped keeps a right one
in >= 90% of the problems that have one.

Branches and verdicts are kept in --out (JSONL), so a re-run continues where it stopped.

    python benchmarks/judge.py [--sets humaneval,hotpotqa,nq] [--limit 40,50,40] [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.branch_setup import branch_requests, candidate, coder_checks, source  # noqa: E402
from benchmarks.eval_data import dev_file  # noqa: E402

SETS = ("humaneval", "hotpotqa", "nq")
BRANCHES = 3
NQ_SOURCES = 5


# -- the problems -------------------------------------------------------------------------


def problems(name: str, limit: int) -> list[dict[str, Any]]:
    """{id, agent, text, sources, gold | problem} for each problem of a set."""
    if name == "humaneval":
        from myninja.agent_graph.evals import humaneval

        return [
            {"id": p.task_id, "agent": "coder", "text": humaneval.agent_task(p), "sources": [],
             "problem": p}
            for p in humaneval.load_problems(dev_file("humaneval-dev40.jsonl"), limit)
        ]  # fmt: skip
    if name == "hotpotqa":
        rows = [json.loads(x) for x in dev_file("hotpotqa-distractor-dev100.jsonl").open()][:limit]
        return [
            {
                "id": r["question_id"],
                "agent": "researcher",
                "text": r["question_text"],
                "gold": [s for a in r["answers_objects"] for s in a["spans"]],
                "sources": [
                    source(f"{r['question_id']}-{c['id']}", c["title"], c["paragraph_text"])
                    for c in r["contexts"]
                ],
            }
            for r in rows
        ]
    from myninja.skills.research.fts import rank_texts

    rows = [json.loads(x) for x in dev_file("nq-open-oracle-dev200.jsonl").open()]
    pool = [(r["ctxs"][0]["title"], r["ctxs"][0]["text"]) for r in rows]
    found = []
    for i, r in enumerate(rows[:limit]):
        best = rank_texts(r["question"], pool)[:NQ_SOURCES]
        found.append(
            {
                "id": f"nq-{i}",
                "agent": "researcher",
                "text": r["question"],
                "gold": r["answers"],
                "sources": [source(f"nq-{j}", *pool[j]) for j in best],
            }
        )
    return found


# -- branches -------------------------------------------------------------------------------


def right(problem: dict[str, Any], text: str) -> bool:
    if "problem" in problem:
        from myninja.agent_graph.evals import humaneval

        program = humaneval.completion_program(problem["problem"], text)
        return humaneval.check(problem["problem"], program)[0]
    from myninja.agent_graph.judging import first_sentence, normalise

    said = normalise(first_sentence(text))
    return any(normalise(g) and normalise(g) in said for g in problem["gold"])


async def branch_rows(
    backend: Any, problem: dict[str, Any], max_tokens: int, scratch: Path
) -> list[dict[str, Any]]:
    asks = branch_requests(
        problem["agent"], problem["text"], problem["sources"], BRANCHES, max_tokens
    )
    results = await asyncio.gather(*(backend.chat(r) for r in asks))
    rows = []
    for i, result in enumerate(results):
        text = result.text.strip()
        checks: list[dict] = []
        if problem["agent"] == "coder":
            checks = await coder_checks(
                problem["text"], text, scratch / f"{problem['id']}-{i}".replace("/", "_")
            )
        rows.append(
            {"text": text, "checks": checks, "right": await asyncio.to_thread(right, problem, text)}
        )
    return rows


# -- the judge ------------------------------------------------------------------------------


async def judge_each(backend: Any, problem: dict[str, Any], text: str) -> float:
    from myninja.agent_graph.personas import persona
    from myninja.agent_graph.prompts import JUDGE_SCHEMA, judge_messages
    from myninja.agent_graph.structured import StructuredOutputError, structured_call
    from myninja.errors import BackendError

    step = {"title": "Answer", "instruction": problem["text"]}
    try:
        verdict = await structured_call(
            backend,
            judge_messages(problem["text"], step, text, persona("judge").system_prompt, False,
                           cited=bool(problem["sources"])),
            JUDGE_SCHEMA, retries=1, max_tokens=200,
        )  # fmt: skip
    except (StructuredOutputError, BackendError):
        return -1.0
    return float(verdict["score"])


async def judge_compare(backend: Any, problem: dict[str, Any], texts: list[str]) -> int | None:
    from myninja.agent_graph.personas import persona
    from myninja.agent_graph.prompts import COMPARE_SCHEMA, compare_messages
    from myninja.agent_graph.structured import StructuredOutputError, structured_call
    from myninja.errors import BackendError

    step = {"title": "Answer", "instruction": problem["text"]}
    try:
        verdict = await structured_call(
            backend,
            compare_messages(problem["text"], step, texts, persona("judge").system_prompt, False),
            COMPARE_SCHEMA, retries=1, max_tokens=160,
        )  # fmt: skip
    except (StructuredOutputError, BackendError):
        return None
    best = int(verdict["best"]) - 1
    return best if 0 <= best < len(texts) else None


# -- choosing -------------------------------------------------------------------------------


def candidates(problem: dict[str, Any], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [candidate(i, r["text"], r["checks"], problem["sources"]) for i, r in enumerate(rows)]


def choices(problem: dict[str, Any], record: dict[str, Any]) -> dict[str, int | float]:
    """The branch each way keeps (an index), or for `random` the expected rightness."""
    from myninja.agent_graph import judging

    rows = record["branches"]
    state = {"sources": problem["sources"], "text": problem["text"]}
    cands = candidates(problem, rows)
    scores = record["judge_each"]
    kept: dict[str, int | float] = {"first": 0}
    kept["judge_each"] = max(range(len(rows)), key=lambda i: (scores[i], -i))
    compare = record["judge_compare"]
    kept["judge_compare"] = compare if compare is not None else 0
    group = judging.agreeing(cands)
    kept["agreement"] = cands.index(group[0]) if group else 0
    _, checked = judging.by_checks(state, cands)
    kept["checks"] = cands.index(checked[0])
    kept["shipped"] = _shipped(state, cands, compare, record)
    kept["oracle"] = next((i for i, r in enumerate(rows) if r["right"]), 0)
    kept["random"] = sum(r["right"] for r in rows) / len(rows)
    return kept


def _shipped(state: dict, cands: list[dict], compare: int | None, record: dict) -> int:
    """What the graph keeps (nodes/evaluate.py with the default config)."""
    from myninja.agent_graph import judging
    from myninja.config import GraphConfig

    compares = judging.compares_sources(GraphConfig(), state)  # all branches, no agreement
    if not compares and judging.falls_short(state, cands[0]) is None:
        return 0
    whole = [c for c in cands if judging.whole(c)] or cands
    _, group = judging.by_checks(state, whole)
    if len(group) == 1:
        return cands.index(group[0])
    if not compares and (agreeing := judging.agreeing(group)):
        return cands.index(agreeing[0])
    if len(group) == len(cands):
        return compare if compare is not None else 0
    # The judge compares the group alone: its verdict on just those branches.
    sub = record.get("compare_groups", {}).get(",".join(c["branch_id"] for c in group))
    return cands.index(group[sub]) if sub is not None else cands.index(group[0])


def report(name: str, pairs: list[tuple[dict, dict]]) -> dict[str, Any]:
    ways = ("first", "random", "judge_each", "judge_compare", "agreement", "checks", "shipped",
            "oracle")  # fmt: skip
    any_right = [(p, r) for p, r in pairs if any(b["right"] for b in r["branches"])]
    out: dict[str, Any] = {"problems": len(pairs), "with_a_right_branch": len(any_right)}

    def rate(subset: list[tuple[dict, dict]], way: str) -> float:
        total = 0.0
        for problem, record in subset:
            kept = choices(problem, record)[way]
            total += kept if way == "random" else record["branches"][int(kept)]["right"]
        return round(total / max(1, len(subset)), 4)

    out["keeps_a_right_branch"] = {way: rate(pairs, way) for way in ways}
    out["when_one_is_right"] = {way: rate(any_right, way) for way in ways}
    out["targets"] = {
        "shipped_at_least_first": out["keeps_a_right_branch"]["shipped"]
        >= out["keeps_a_right_branch"]["first"],
        "shipped_keeps_a_right_one_90pc": out["when_one_is_right"]["shipped"] >= 0.9,
    }
    return out


# -- the run --------------------------------------------------------------------------------


async def run_set(backend: Any, name: str, limit: int, out: Path, max_tokens: int) -> dict:
    path = out / f"{name}.jsonl"
    done = {json.loads(x)["id"]: json.loads(x) for x in path.open()} if path.exists() else {}
    pairs = []
    with tempfile.TemporaryDirectory() as scratch:
        for problem in problems(name, limit):
            record = done.get(problem["id"])
            if record is None:
                rows = await branch_rows(backend, problem, max_tokens, Path(scratch))
                texts = [r["text"] for r in rows]
                record = {
                    "id": problem["id"],
                    "branches": rows,
                    # One batch for the three calls: the engine decodes concurrent calls together.
                    "judge_each": list(
                        await asyncio.gather(*(judge_each(backend, problem, t) for t in texts))
                    ),
                    "judge_compare": await judge_compare(backend, problem, texts),
                }
                await _compare_groups(backend, problem, record)
                with path.open("a") as f:
                    f.write(json.dumps(record) + "\n")
                print(f"{name} {problem['id']}: right {[r['right'] for r in rows]}",
                      file=sys.stderr)  # fmt: skip
            pairs.append((problem, record))
    return report(name, pairs)


async def _compare_groups(backend: Any, problem: dict, record: dict) -> None:
    """The comparing judge's verdict on the subset of branches the shipped way would give it,
    when that is not all three."""
    from myninja.agent_graph import judging

    cands = candidates(problem, record["branches"])
    state = {"sources": problem["sources"], "text": problem["text"]}
    whole = [c for c in cands if judging.whole(c)] or cands
    _, group = judging.by_checks(state, whole)
    record["compare_groups"] = {}
    if 1 < len(group) < len(cands) and not judging.agreeing(group):
        verdict = await judge_compare(backend, problem, [c["text"] for c in group])
        record["compare_groups"][",".join(c["branch_id"] for c in group)] = verdict


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    from myninja.backends.embedded import EmbeddedBackend
    from myninja.config import GraphConfig

    backend = EmbeddedBackend("embedded", args.model, threads=args.threads)
    limits = dict(zip(SETS, (int(x) for x in args.limit.split(",")), strict=True))
    out = Path(args.out)
    max_tokens = GraphConfig().max_tokens
    result: dict[str, Any] = {"benchmark": "judge", "model": args.model, "branches": BRANCHES}
    for name in args.sets.split(","):
        result[name] = await run_set(backend, name, limits[name], out, max_tokens)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--limit", default="40,50,40", help="problems per set, in SETS order")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "judge"))
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    print(json.dumps(asyncio.run(main_async(args)), indent=2))


if __name__ == "__main__":
    main()
