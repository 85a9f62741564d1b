"""A Hugging Face model folder for the Neuron engine tests, and the library doubles on sys.path.

The tokenizer is a real transformers tokenizer (byte-level, no merges: every byte is a token,
so a character like "ö" or "🙂" spans several tokens) with a real Jinja chat template that also
renders tools. The doubles in neuron_double/ stand in for transformers-neuronx and NxD
Inference (see its README)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

DOUBLE = Path(__file__).parent / "neuron_double"
DOUBLE_MODULES = ("transformers_neuronx", "neuronxcc", "neuronx_distributed_inference")

TEMPLATE = (
    "{% if tools %}<|system|>Tools: {{ tools | tojson }}<|eot|>{% endif %}"
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|eot|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
SPECIALS = ["<|eot|>", "<|end_of_text|>", "<|pad|>"]


def write_model_folder(folder: Path) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    from transformers.models.gpt2.tokenization_gpt2 import bytes_to_unicode

    vocab = {char: i for i, char in enumerate(bytes_to_unicode().values())}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token="<|eot|>",
        pad_token="<|pad|>",
        additional_special_tokens=["<|end_of_text|>"],
    )
    tokenizer.chat_template = TEMPLATE
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(folder)
    eot, end = tokenizer.convert_tokens_to_ids(["<|eot|>", "<|end_of_text|>"])
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "vocab_size": len(tokenizer),
        "eos_token_id": end,
    }
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "generation_config.json").write_text(json.dumps({"eos_token_id": [end, eot]}))
    return folder


def tokenizer_of(folder: Path):  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))


def _forget_doubles() -> None:
    for name in list(sys.modules):
        if name.split(".")[0] in DOUBLE_MODULES:
            del sys.modules[name]


@pytest.fixture
def doubles(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, ModuleType]]:
    """The doubles importable under the real libraries' names, with fresh state."""
    _forget_doubles()
    monkeypatch.syspath_prepend(str(DOUBLE))
    import neuronx_distributed_inference.models.llama.modeling_llama as nxdi_llama
    import neuronx_distributed_inference.utils.hf_adapter as nxdi_adapter
    import neuronxcc
    import transformers_neuronx.llama.model as tnx_llama

    yield {
        "tnx": tnx_llama,
        "nxdi": nxdi_llama,
        "nxdi_adapter": nxdi_adapter,
        "neuronxcc": neuronxcc,
    }
    _forget_doubles()
