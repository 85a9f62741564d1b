"""`serve --engine tnx`: a Llama on Inferentia/Trainium through transformers-neuronx.

transformers-neuronx reached its end of support with Neuron 2.26; vLLM or NxD Inference is the
way forward (docs/neuron.md), and this engine stays for instances set up with it. The calls
are the library's documented ones: `LlamaForSampling.from_pretrained(path, batch_size=,
tp_degree=, amp=, n_positions=, neuron_config=)`, then either `load(dir)` of saved artefacts
or a compile, `to_neuron()`, `save(dir)`, and `sample(input_ids, sequence_length, top_k=,
temperature=, eos_token_override=, streamer=)` per request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from myninja.backends.serve.neuron_engine import NeuronEngine, import_library


class TnxEngine(NeuronEngine):
    kind = "tnx"
    package = "transformers-neuronx"
    prompt_first = False

    def _build(self, key: str) -> bool:
        llama = import_library("transformers_neuronx.llama.model", self.package, self.kind)
        config = import_library("transformers_neuronx.config", self.package, self.kind)
        shape = self.shape
        self.neuron_model = llama.LlamaForSampling.from_pretrained(
            str(self.model_dir),
            batch_size=shape.batch_size,
            tp_degree=shape.tp_degree,
            amp=shape.amp,
            n_positions=shape.n_positions,
            neuron_config=config.NeuronConfig(),
        )
        if self.cache.has(key):
            self.neuron_model.load(str(self.cache.entry(key)))  # to_neuron() then skips compiling
            self.neuron_model.to_neuron()
            return True
        self.neuron_model.to_neuron()

        def save(folder: Path) -> None:
            self.neuron_model.save(str(folder))

        self.cache.store(key, save, {"engine": self.kind, "model": str(self.model_dir)})
        return False

    def _sample(
        self, input_ids: Any, max_new_tokens: int, temperature: float, streamer: Any
    ) -> None:
        greedy = temperature <= 0
        self.neuron_model.sample(
            input_ids,
            sequence_length=input_ids.shape[1] + max_new_tokens,
            top_k=1 if greedy else 50,
            temperature=1.0 if greedy else float(temperature),  # it must be a float above 0
            eos_token_override=self.tokenizer.eos_token_id,
            streamer=streamer,
        )
