"""`LlamaForSampling` with transformers-neuronx's signatures, generating scripted tokens."""

import json
import os
import threading
import time

import torch

CALLS = []  # (name, details) of every call, in order
# reply: token ids to generate; delay: seconds per token; gate: a Semaphore each token acquires
SCRIPT = {"reply": [], "delay": 0.0, "gate": None}
NEFF = "double.neff"


class LlamaForSampling:
    def __init__(
        self,
        config,
        *,
        n_positions=2048,
        batch_size=1,
        amp="f32",
        tp_degree=2,
        context_length_estimate=None,
        context_unroll=None,
        unroll=None,
        neuron_config=None,
        prefixed_length=0,
        **kwargs,
    ):
        self.config = config
        self.n_positions = n_positions
        self.amp = amp
        self.tp_degree = tp_degree
        self.neuron_config = neuron_config
        if isinstance(batch_size, int):
            self.batch_sizes = [batch_size]
        elif isinstance(batch_size, list):
            self.batch_sizes = sorted(batch_size)
        else:
            raise TypeError("batch_size must be list of ints or int type")
        self.neff = None

    @classmethod
    def from_pretrained(cls, pretrained_model_path, *model_args, **kwargs):
        with open(os.path.join(pretrained_model_path, "config.json")) as f:
            config = json.load(f)
        CALLS.append(("from_pretrained", {"path": pretrained_model_path, **kwargs}))
        return cls(config, *model_args, **kwargs)

    def save(self, directory):
        assert self.neff is not None, "save() before to_neuron()"
        if os.path.isfile(directory):
            raise FileExistsError(
                f"Artifacts should be saved to a directory. Found existing file: {directory}"
            )
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, NEFF), "w") as f:
            f.write(self.neff)
        CALLS.append(("save", directory))

    def load(self, directory):
        self._compiled_artifacts_directory = directory
        CALLS.append(("load", directory))

    def to_neuron(self):
        if hasattr(self, "_compiled_artifacts_directory"):
            directory = self._compiled_artifacts_directory
            if not os.path.isdir(directory):
                raise FileNotFoundError(f"Did not find directory: {directory}.")
            with open(os.path.join(directory, NEFF)) as f:
                self.neff = f.read()
            CALLS.append(("to_neuron", "loaded"))
        else:
            self.neff = f"tp{self.tp_degree}-{self.amp}-n{self.n_positions}-b{self.batch_sizes}"
            CALLS.append(("to_neuron", "compiled"))

    def sample(
        self,
        input_ids,
        sequence_length,
        start_ids=None,
        top_k=50,
        top_p=1.0,
        eos_token_override=None,
        temperature=1.0,
        streamer=None,
        stopping_criteria_list=None,
        no_repeat_ngram_size=None,
    ):
        assert self.neff is not None, "sample() before to_neuron()"
        batch_size, context_length = input_ids.shape
        if batch_size not in self.batch_sizes:
            raise ValueError(
                f"Model not compiled for batch_size : {batch_size}. "
                f"Acceptable batch_size is one of the following {self.batch_sizes}"
            )
        if sequence_length > self.n_positions:
            raise ValueError(
                f"sequence_length {sequence_length} exceeds n_positions {self.n_positions}"
            )
        if not isinstance(temperature, float) or not (temperature > 0):
            raise ValueError("temperature has to be a strictly positive float.")
        eos = self.config.get("eos_token_id") if eos_token_override is None else eos_token_override
        record = {
            "thread": threading.current_thread().name,
            "input_ids": input_ids.tolist(),
            "sequence_length": sequence_length,
            "top_k": top_k,
            "temperature": temperature,
            "eos": eos,
            "put": 0,
            "t0": time.monotonic(),
        }
        CALLS.append(("sample", record))
        tokens = [input_ids]
        reply = list(SCRIPT["reply"])
        for step, _ in enumerate(range(context_length, sequence_length)):
            if SCRIPT["gate"] is not None:
                SCRIPT["gate"].acquire(timeout=5)
            time.sleep(SCRIPT["delay"])
            token_id = reply[step] if step < len(reply) else eos
            token = torch.full((batch_size, 1), token_id, dtype=torch.long)
            tokens.append(token)
            if streamer:
                record["put"] += 1  # counted first: the caller may read the token at once
                streamer.put(token)
            if token_id == eos:
                break
        if streamer:
            streamer.end()
        record["ended"] = time.monotonic()
        return torch.cat(tokens, dim=-1)
