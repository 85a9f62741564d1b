"""`NeuronLlamaForCausalLM` with NxD Inference's signatures."""

import json
import os

CALLS = []
MODEL_FILE = "model.pt"


class LlamaInferenceConfig:
    def __init__(
        self, neuron_config, fused_spec_config=None, load_config=None, metadata=None, **kwargs
    ):
        self.neuron_config = neuron_config
        if load_config is not None:
            load_config(self)


class NeuronLlamaForCausalLM:
    def __init__(self, model_path, config=None, neuron_config=None):
        self.model_path = model_path
        self.config = config
        self.neuron_config = config.neuron_config
        self.loaded = False
        CALLS.append(
            (
                "init",
                {
                    "model_path": model_path,
                    "tp_degree": self.neuron_config.tp_degree,
                    "batch_size": self.neuron_config.batch_size,
                    "seq_len": self.neuron_config.seq_len,
                    "torch_dtype": str(self.neuron_config.torch_dtype),
                },
            )
        )

    def compile(self, compiled_model_path, debug=False, pre_shard_weights_hook=None, dry_run=False):
        os.makedirs(compiled_model_path, exist_ok=True)
        with open(os.path.join(compiled_model_path, MODEL_FILE), "w") as f:
            json.dump({"tp_degree": self.neuron_config.tp_degree}, f)
        CALLS.append(("compile", compiled_model_path))

    def load(
        self, compiled_model_path, start_rank_id=None, local_ranks_size=None, skip_warmup=False
    ):
        if not os.path.isfile(os.path.join(compiled_model_path, MODEL_FILE)):
            raise FileNotFoundError(f"{compiled_model_path}/{MODEL_FILE}")
        self.loaded = True
        CALLS.append(("load", compiled_model_path))
