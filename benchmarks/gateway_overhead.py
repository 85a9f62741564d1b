"""Our gateway client vs the official `openai` AsyncOpenAI client, same server, same run.

Starts one `myninja serve` (the tiny model by default), then alternates rounds of 50
concurrent streamed completions through each client, each round in a fresh client process so
that client CPU time is measured on its own. Prints JSON. Target: our wall time <= the SDK's.

    python benchmarks/gateway_overhead.py [--model smollm2-135m] [--concurrency 50] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx

CLIENT = textwrap.dedent(
    """
    import asyncio, json, sys, time
    kind, base_url, model = sys.argv[1], sys.argv[2], sys.argv[5]
    n, max_tokens = int(sys.argv[3]), int(sys.argv[4])
    messages = [{"role": "user", "content": "Count from one to ten in words."}]

    async def ours():
        from myninja.backends.base import ChatRequest
        from myninja.backends.gateway import GatewayBackend
        backend = GatewayBackend("bench", base_url, model=model, max_concurrency=n)
        async def one():
            chars = 0
            request = ChatRequest(messages, max_tokens=max_tokens, temperature=0)
            async for chunk in backend.stream(request):
                chars += len(chunk.text)
            return chars
        try:
            return await asyncio.gather(*(one() for _ in range(n)))
        finally:
            await backend.aclose()

    async def sdk():
        import openai
        client = openai.AsyncOpenAI(base_url=base_url, api_key="none", max_retries=0)
        async def one():
            chars = 0
            stream = await client.chat.completions.create(model=model, messages=messages,
                stream=True, max_tokens=max_tokens, temperature=0)
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    chars += len(chunk.choices[0].delta.content)
            return chars
        try:
            return await asyncio.gather(*(one() for _ in range(n)))
        finally:
            await client.close()

    cpu0, wall0 = time.process_time(), time.perf_counter()
    chars = asyncio.run(ours() if kind == "ours" else sdk())
    print(json.dumps({"wall_s": time.perf_counter() - wall0, "cpu_s": time.process_time() - cpu0,
                      "completed": sum(1 for c in chars if c > 0)}))
    """
)


def start_server(model: str, home: str) -> tuple[subprocess.Popen[str], str]:
    myninja = Path(sys.executable).parent / "myninja"
    proc = subprocess.Popen(
        [str(myninja), "serve", "--model", model, "--port", "0", "--threads", "1"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "MYNINJA_HOME": home},
    )
    assert proc.stderr is not None
    base = re.search(r"(http://\S+/v1)", proc.stderr.readline()).group(1)  # type: ignore[union-attr]
    for _ in range(600):
        try:
            httpx.get(f"{base}/models", timeout=2)
            break
        except httpx.TransportError:
            time.sleep(0.2)
    return proc, base


def run_client(kind: str, base: str, n: int, max_tokens: int, model: str) -> dict:
    repo = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "-c", CLIENT, kind, base, str(n), str(max_tokens), model],
        capture_output=True,
        text=True,
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(repo)},
    )
    if out.returncode != 0:
        sys.exit(f"the {kind} client failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        proc, base = start_server(args.model, home)
        try:
            run_client("sdk", base, 2, args.max_tokens, args.model)  # warm the server
            ours, sdk = [], []
            for _ in range(args.rounds):
                ours.append(run_client("ours", base, args.concurrency, args.max_tokens, args.model))
                sdk.append(run_client("sdk", base, args.concurrency, args.max_tokens, args.model))
        finally:
            proc.terminate()
            proc.wait(10)

    def med(rows: list[dict], key: str) -> float:
        return round(statistics.median(r[key] for r in rows), 3)

    print(
        json.dumps(
            {
                "benchmark": "gateway_overhead",
                "server": f"myninja serve --model {args.model}",
                "concurrency": args.concurrency,
                "max_tokens": args.max_tokens,
                "rounds": args.rounds,
                "ours_wall_s": med(ours, "wall_s"),
                "sdk_wall_s": med(sdk, "wall_s"),
                "wall_ratio_ours_over_sdk": round(med(ours, "wall_s") / med(sdk, "wall_s"), 3),
                "ours_client_cpu_s": med(ours, "cpu_s"),
                "sdk_client_cpu_s": med(sdk, "cpu_s"),
                "completed": {
                    "ours": [r["completed"] for r in ours],
                    "sdk": [r["completed"] for r in sdk],
                },
                "target": "ours_wall_s <= sdk_wall_s",
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
