"""`HuggingFaceGenerationAdapter` and `load_pretrained_config` with NxD Inference's signatures.

generate() follows transformers' streaming contract: the prompt is put first, then each new
token as a (batch,) tensor, then end()."""

import json
import os
import time

import torch

from neuronx_distributed_inference.models.llama.modeling_llama import CALLS

SCRIPT = {"reply": [], "delay": 0.0}


def load_pretrained_config(model_path_or_name=None, hf_config=None):
    def load_config(self):
        with open(os.path.join(model_path_or_name, "config.json")) as f:
            self.__dict__.update(json.load(f))

    return load_config


class HuggingFaceGenerationAdapter:
    def __init__(self, model, input_start_offsets=None):
        assert model.loaded, "adapter over a model that was not loaded"
        self.neuron_model = model

    def generate(
        self, input_ids=None, generation_config=None, attention_mask=None, streamer=None, **kwargs
    ):
        batch_size, length = input_ids.shape
        neuron_config = self.neuron_model.neuron_config
        if batch_size != neuron_config.batch_size:
            raise ValueError(
                f"batch size {batch_size} does not match the compiled batch size "
                f"{neuron_config.batch_size}"
            )
        eos = generation_config.eos_token_id
        eos = set(eos if isinstance(eos, list) else [eos])
        record = {
            "input_ids": input_ids.tolist(),
            "do_sample": generation_config.do_sample,
            "max_new_tokens": generation_config.max_new_tokens,
            "put": 0,
        }
        CALLS.append(("generate", record))
        if streamer is not None:
            streamer.put(input_ids.cpu())
        out = [input_ids]
        for step in range(generation_config.max_new_tokens):
            if length + step >= neuron_config.seq_len:
                break
            time.sleep(SCRIPT["delay"])
            token_id = SCRIPT["reply"][step] if step < len(SCRIPT["reply"]) else min(eos)
            next_tokens = torch.full((batch_size,), token_id, dtype=torch.long)
            out.append(next_tokens[:, None])
            if streamer is not None:
                record["put"] += 1  # counted first: the caller may read the token at once
                streamer.put(next_tokens.cpu())
            if token_id in eos:
                break
        if streamer is not None:
            streamer.end()
        return torch.cat(out, dim=-1)
