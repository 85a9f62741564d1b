"""`serve --engine nxdi`: a Llama on Inferentia/Trainium through NxD Inference.

The calls are the library's documented ones: a `NeuronConfig(tp_degree=, batch_size=,
max_context_length=, seq_len=, torch_dtype=)`, `LlamaInferenceConfig(neuron_config,
load_config=load_pretrained_config(path))`, `NeuronLlamaForCausalLM(path, config)`,
`compile(dir)` once and `load(dir)`, then `HuggingFaceGenerationAdapter(model).generate(...,
streamer=)` per request (transformers' generation loop, which streams the prompt first)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from myninja.backends.serve.neuron_engine import NeuronEngine, import_library

_DTYPES = {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}


class NxdiEngine(NeuronEngine):
    kind = "nxdi"
    package = "neuronx-distributed-inference"
    prompt_first = True

    def _build(self, key: str) -> bool:
        import torch

        configs = import_library(
            "neuronx_distributed_inference.models.config", self.package, self.kind
        )
        llama = import_library(
            "neuronx_distributed_inference.models.llama.modeling_llama", self.package, self.kind
        )
        adapter = import_library(
            "neuronx_distributed_inference.utils.hf_adapter", self.package, self.kind
        )
        shape = self.shape
        neuron_config = configs.NeuronConfig(
            tp_degree=shape.tp_degree,
            batch_size=shape.batch_size,
            max_context_length=shape.n_positions,
            seq_len=shape.n_positions,
            torch_dtype=getattr(torch, _DTYPES[shape.amp]),
        )
        config = llama.LlamaInferenceConfig(
            neuron_config, load_config=adapter.load_pretrained_config(str(self.model_dir))
        )
        model = llama.NeuronLlamaForCausalLM(str(self.model_dir), config)
        cached = self.cache.has(key)
        if not cached:

            def save(folder: Path) -> None:
                model.compile(str(folder))

            self.cache.store(key, save, {"engine": self.kind, "model": str(self.model_dir)})
        model.load(str(self.cache.entry(key)))
        self.generation = adapter.HuggingFaceGenerationAdapter(model)
        return cached

    def _sample(
        self, input_ids: Any, max_new_tokens: int, temperature: float, streamer: Any
    ) -> None:
        import torch
        from transformers import GenerationConfig

        sampling = (
            {"do_sample": True, "temperature": temperature, "top_k": 50}
            if temperature > 0
            else {"do_sample": False}
        )
        config = GenerationConfig(
            max_new_tokens=max_new_tokens,
            eos_token_id=sorted(self.stop_ids) or None,
            pad_token_id=self.tokenizer.pad_token_id
            if self.tokenizer.pad_token_id is not None
            else self.tokenizer.eos_token_id,
            **sampling,
        )
        self.generation.generate(
            input_ids,
            generation_config=config,
            attention_mask=torch.ones_like(input_ids),
            streamer=streamer,
        )
