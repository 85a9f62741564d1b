"""The Neuron engines on a real Inferentia/Trainium device.

Skipped unless `neuron-ls` exists. On an instance, point MYNINJA_NEURON_MODEL at a local Llama
instruct checkpoint folder and run, in the DLAMI virtual environment of the library:

    MYNINJA_NEURON_MODEL=~/models/Llama-3.2-1B-Instruct MYNINJA_NEURON_TP=2 \\
        pytest -m neuron tests/backends/test_neuron_device.py

Each engine whose library imports is compiled (minutes), asked one question, and built again
to check that the second start loads the cached artefacts instead of compiling."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

from myninja.backends.base import ChatRequest
from myninja.backends.serve.neuron_cache import CompiledCache, NeuronShape

pytestmark = [
    pytest.mark.neuron,
    pytest.mark.skipif(shutil.which("neuron-ls") is None, reason="no Neuron device (neuron-ls)"),
]

ENGINES = {"tnx": "transformers_neuronx", "nxdi": "neuronx_distributed_inference"}


@pytest.fixture
def model_dir() -> Path:
    value = os.environ.get("MYNINJA_NEURON_MODEL")
    if not value:
        pytest.skip("set MYNINJA_NEURON_MODEL to a local Llama instruct checkpoint folder")
    return Path(value).expanduser()


@pytest.mark.parametrize("kind", sorted(ENGINES))
async def test_an_engine_answers_and_a_restart_skips_compiling(
    kind: str, model_dir: Path, tmp_path: Path
) -> None:
    if importlib.util.find_spec(ENGINES[kind]) is None:
        pytest.skip(f"{ENGINES[kind]} is not installed in this environment")
    from myninja.backends.serve.engines import make_engine

    shape = NeuronShape(tp_degree=int(os.environ.get("MYNINJA_NEURON_TP", "2")), n_positions=1024)
    cache = CompiledCache(tmp_path / "neuron")
    first = make_engine(kind, str(model_dir), shape=shape)
    first.cache = cache  # type: ignore[attr-defined]
    result = await first.chat(
        ChatRequest([{"role": "user", "content": "What is 2 + 3? Answer with the number."}],
                    max_tokens=16, temperature=0)
    )  # fmt: skip
    assert "5" in result.text
    assert result.usage.completion_tokens > 0
    await first.aclose()

    again = make_engine(kind, str(model_dir), shape=shape)
    again.cache = cache  # type: ignore[attr-defined]
    again.load()  # type: ignore[attr-defined]
    assert again.loaded_from_cache is True  # type: ignore[attr-defined]
