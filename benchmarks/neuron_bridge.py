"""What `serve --engine tnx` adds per token on top of the library's own sampling loop.

The engine runs transformers-neuronx's blocking `sample()` in one worker thread and carries each
token into asyncio (queue, incremental detokenisation, stop checks). Without Neuron hardware the
library is the test double of tests/backends/neuron_double, which makes tokens as fast as Python
can: so the figure is the bridge's cost alone. Baseline in the same run: the double's `sample()`
called directly with a streamer that only counts. A device makes tens to hundreds of tokens a
second; the bridge should carry thousands.

Prints one JSON object.

    python benchmarks/neuron_bridge.py [--tokens 4000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "backends" / "neuron_double"))

from myninja.backends.base import ChatRequest  # noqa: E402
from myninja.backends.serve.neuron_cache import CompiledCache, NeuronShape  # noqa: E402
from myninja.backends.serve.tnx import TnxEngine  # noqa: E402
from tests.backends.neuron_models import write_model_folder  # noqa: E402


class Counting:
    def __init__(self) -> None:
        self.tokens = 0

    def put(self, value: Any) -> None:
        self.tokens += 1

    def end(self) -> None:
        pass


async def one_round(
    engine: TnxEngine, double: Any, tokens: int, first_raw: bool
) -> dict[str, float]:
    import torch

    reply = engine.tokenizer.encode("ab" * tokens, add_special_tokens=False)[:tokens]
    double.SCRIPT.update({"reply": reply, "delay": 0.0, "gate": None})
    prompt = engine._prompt_ids(ChatRequest([{"role": "user", "content": "Go."}]))
    streamer = Counting()

    async def raw() -> float:
        started = time.perf_counter()
        engine.neuron_model.sample(
            torch.tensor([prompt]), sequence_length=len(prompt) + tokens, top_k=1, streamer=streamer
        )
        return time.perf_counter() - started

    async def bridged() -> float:
        nonlocal result
        started = time.perf_counter()
        result = await engine.chat(
            ChatRequest([{"role": "user", "content": "Go."}], max_tokens=tokens)
        )
        return time.perf_counter() - started

    result = None
    if first_raw:  # alternate the order between rounds: neither side always runs warm
        raw_s, bridged_s = await raw(), await bridged()
    else:
        bridged_s, raw_s = await bridged(), await raw()
    assert result is not None
    assert result.usage.completion_tokens == tokens == streamer.tokens
    return {"raw_tokens_per_s": tokens / raw_s, "engine_tokens_per_s": tokens / bridged_s}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    import transformers_neuronx.llama.model as double

    folder = write_model_folder(Path(tempfile.mkdtemp()) / "Llama-Bench")
    shape = NeuronShape(n_positions=args.tokens + 64)
    engine = TnxEngine(folder, shape, cache=CompiledCache(folder.parent / "neuron"))
    engine.load()
    rounds = [await one_round(engine, double, args.tokens, n % 2 == 0) for n in range(args.rounds)]
    raw = statistics.median(r["raw_tokens_per_s"] for r in rounds)
    bridged = statistics.median(r["engine_tokens_per_s"] for r in rounds)
    await engine.aclose()
    return {
        "tokens": args.tokens,
        "rounds": args.rounds,
        "raw_sample_tokens_per_s": round(raw),
        "engine_tokens_per_s": round(bridged),
        "engine_over_raw": round(bridged / raw, 3),
        "bridge_us_per_token": round((1 / bridged - 1 / raw) * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=5)
    print(json.dumps(asyncio.run(main_async(parser.parse_args())), indent=2))


if __name__ == "__main__":
    main()
