"""Decode speed of the embedded backend (the engine every myninja call on the embedded model
goes through: continuous batching, prompt cache) vs raw llama-cpp-python's own loop.

Ours streams one request through `EmbeddedBackend.stream`; raw streams
`Llama.create_chat_completion`. Both run the same GGUF, thread count, prompt and greedy
sampling, each in a fresh process, alternating, in the same run; decode tokens/s =
(tokens - 1) / (last token - first token). This times decoding alone: what a whole task costs
against one plain call is benchmarks/everyday.py's. Prints JSON. Target: ratio (ours / raw)
>= 0.95.

    python benchmarks/embedded_speed.py [--model qwen2.5-coder-1.5b] [--rounds 3] [--max-tokens 128]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

PROMPT = "Write a Python function that checks whether a number is prime, with a docstring."
RAW = textwrap.dedent(
    """
    import json, os, sys, time
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import llama_cpp
    path, threads, max_tokens, system, prompt = sys.argv[1:6]
    llm = llama_cpp.Llama(model_path=path, n_ctx=4096, n_threads=int(threads),
                          n_threads_batch=int(threads), seed=0, verbose=False)
    messages = [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
    first = last = None
    tokens = 0
    for chunk in llm.create_chat_completion(messages, stream=True, temperature=0.0,
                                            max_tokens=int(max_tokens), seed=0):
        if chunk["choices"][0]["delta"].get("content"):
            now = time.perf_counter()
            first = first or now
            last = now
            tokens += 1
    print(json.dumps({"tokens": tokens, "decode_tokens_per_s": (tokens - 1) / (last - first)}))
    """
)


def run_raw(path: Path, threads: int, max_tokens: int, system: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", RAW, str(path), str(threads), str(max_tokens), system, PROMPT],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


OURS = textwrap.dedent(
    """
    import asyncio, json, os, sys, time
    from pathlib import Path
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    sys.path.insert(0, sys.argv[1])
    from myninja.backends.base import ChatRequest
    from myninja.backends.embedded import EmbeddedBackend
    model, models, threads, max_tokens, system, prompt = sys.argv[2:8]
    backend = EmbeddedBackend("embedded", model, threads=int(threads), n_ctx=4096,
                              models_dir=Path(models))
    messages = [{"role": "system", "content": system}, {"role": "user", "content": prompt}]

    async def main():
        stamps = []
        request = ChatRequest(messages, temperature=0.0, max_tokens=int(max_tokens), seed=0)
        async for chunk in backend.stream(request):
            if chunk.text:
                stamps.append(time.perf_counter())
        return stamps

    stamps = asyncio.run(main())
    print(json.dumps({"tokens": len(stamps),
                      "decode_tokens_per_s": (len(stamps) - 1) / (stamps[-1] - stamps[0])}))
    """
)


def run_ours(model: str, models: Path, threads: int, max_tokens: int, system: str) -> dict:
    repo = str(Path(__file__).resolve().parent.parent)
    out = subprocess.run(
        [sys.executable, "-c", OURS, repo, model, str(models), str(threads), str(max_tokens),
         system, PROMPT],
        capture_output=True,
        text=True,
        check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from myninja.agent_graph.personas import persona
    from myninja.backends.models import resolve_model

    with tempfile.TemporaryDirectory() as home:
        models = Path(home) / "data" / "models"
        path = resolve_model(args.model, models)
        system = persona("coder").system_prompt
        raw, ours = [], []
        for _ in range(args.rounds):  # alternate, so drift in machine load hits both
            raw.append(run_raw(path, args.threads, args.max_tokens, system))
            ours.append(run_ours(args.model, models, args.threads, args.max_tokens, system))
    raw_tps = statistics.median(r["decode_tokens_per_s"] for r in raw)
    ours_tps = statistics.median(r["decode_tokens_per_s"] for r in ours)
    print(
        json.dumps(
            {
                "benchmark": "embedded_speed",
                "model": args.model,
                "threads": args.threads,
                "max_tokens": args.max_tokens,
                "rounds": args.rounds,
                "raw_llama_cpp_tokens_per_s": round(raw_tps, 2),
                "embedded_backend_tokens_per_s": round(ours_tps, 2),
                "ratio": round(ours_tps / raw_tps, 3),
                "target_ratio": 0.95,
                "tokens": {"raw": [r["tokens"] for r in raw], "ours": [r["tokens"] for r in ours]},
                "per_round_tokens_per_s": {
                    "raw": [round(r["decode_tokens_per_s"], 2) for r in raw],
                    "ours": [round(r["decode_tokens_per_s"], 2) for r in ours],
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
