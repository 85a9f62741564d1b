"""What a `[budget]` costs each gateway call: the same metered call to a local OpenAI-compatible
server with no budget (the baseline) and with `daily` and `per_task` set, in one process, the
two alternating call by call, over a history that already holds many calls recorded today (the
check sums them before each call). Prints JSON: median milliseconds per call each way, and the
ratio. A real gateway call takes hundreds of milliseconds; this server answers at once, so the
ratio is the worst case.

    python benchmarks/budget_check.py [--recorded 1000,10000,100000] [--calls 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from myninja.agent_graph.history import HistoryStore  # noqa: E402
from myninja.agent_graph.history import usage as ledger  # noqa: E402
from myninja.agent_graph.metered import MeteredBackend  # noqa: E402
from myninja.backends.base import ChatRequest  # noqa: E402
from myninja.backends.factory import make_backend  # noqa: E402
from myninja.config import Config  # noqa: E402

REPLY = json.dumps(
    {
        "id": "c",
        "object": "chat.completion",
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 1},
    }
).encode()


class Instant(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(REPLY)))
        self.end_headers()
        self.wfile.write(REPLY)


def config(url: str, budget: dict[str, float] | None) -> Config:
    return Config.model_validate(
        {
            "backends": {
                "embedded": {"type": "embedded"},
                "gw": {"type": "openai", "url": url, "model": "m", "max_retries": 0},
            },
            "prices": {"m": {"input_per_mtok": 1.0, "output_per_mtok": 10.0}},
            **({"budget": budget} if budget else {}),
        }
    )


async def measure(url: str, recorded: int, calls: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, HistoryStore(Path(tmp) / "history.db") as store:
        store.create_task("t_old", "earlier work", agent="writer", status="done")
        store.create_task("t_now", "this task", agent="writer", status="running")
        now = time.time()
        with store.batch():
            for i in range(recorded):  # earlier tasks' calls today, one every few seconds
                ledger.record(
                    store,
                    "t_old",
                    agent="writer",
                    backend="gw",
                    model="m",
                    prompt_tokens=10,
                    completion_tokens=1,
                    ts=now - (i % 30_000),
                )
        plain_config = config(url, None)
        budget_config = config(url, {"daily": 1e9, "per_task": 1e9})
        gateway = make_backend(plain_config, "gw")
        try:
            ways = {
                name: MeteredBackend(gateway, store, "t_now", "writer", "gw", "m", cfg)
                for name, cfg in (("no_budget", plain_config), ("budget", budget_config))
            }
            times: dict[str, list[float]] = {name: [] for name in ways}
            request = ChatRequest([{"role": "user", "content": "hi"}], max_tokens=1)
            for i in range(calls):
                order = list(ways) if i % 2 == 0 else list(reversed(ways))
                for name in order:
                    start = time.perf_counter()
                    await ways[name].chat(request)
                    times[name].append((time.perf_counter() - start) * 1000)
        finally:
            await gateway.aclose()
    plain, checked = (statistics.median(times[n]) for n in ("no_budget", "budget"))
    return {
        "recorded_today": recorded,
        "no_budget_ms": round(plain, 3),
        "budget_ms": round(checked, 3),
        "ratio": round(checked / plain, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recorded", default="1000,10000,100000")
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Instant)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        rows = [asyncio.run(measure(url, int(n), args.calls)) for n in args.recorded.split(",")]
    finally:
        server.shutdown()
    print(json.dumps({"benchmark": "budget_check", "calls": args.calls, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
