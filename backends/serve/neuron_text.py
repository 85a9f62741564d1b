"""Turning token ids into streamed text for engines that only give ids (the Neuron libraries).

Detokenising token by token breaks multi-byte characters and the spaces some tokenizers attach
to the next token, so text is decoded over a short window of ids and released only when it is
complete (the offsets method of TGI and vLLM). Stop strings are held back while the text could
still be the start of one."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from myninja.backends.base import ToolCall


class IncrementalDecoder:
    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.prefix_offset = 0
        self.read_offset = 0

    def push(self, token_id: int) -> str:
        """The new text that token completes ("" while a character is still partial)."""
        self.ids.append(token_id)
        decode = self.tokenizer.decode
        before = decode(self.ids[self.prefix_offset : self.read_offset], skip_special_tokens=True)
        after = decode(self.ids[self.prefix_offset :], skip_special_tokens=True)
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self.prefix_offset, self.read_offset = self.read_offset, len(self.ids)
            return after[len(before) :]
        return ""


class StopScanner:
    """Feeds text through and says where the first stop string begins."""

    def __init__(self, stops: list[str] | None) -> None:
        self.stops = [s for s in stops or [] if s]
        self.pending = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """The part of the text that is safe to show now."""
        if not self.stops:
            return text
        self.pending += text
        hits = [i for i in (self.pending.find(s) for s in self.stops) if i >= 0]
        if hits:
            self.stopped = True
            out, self.pending = self.pending[: min(hits)], ""
            return out
        keep = max((_overlap(self.pending, s) for s in self.stops), default=0)
        out = self.pending[: len(self.pending) - keep]
        self.pending = self.pending[len(out) :]
        return out

    def flush(self) -> str:
        out, self.pending = self.pending, ""
        return out


def _overlap(text: str, stop: str) -> int:
    """Length of the longest end of `text` that begins `stop`."""
    for size in range(min(len(text), len(stop) - 1), 0, -1):
        if stop.startswith(text[-size:]):
            return size
    return 0


_TAGGED = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.DOTALL)
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def tool_calls_in(text: str) -> list[ToolCall]:
    """Tool calls a model wrote as text: Llama 3.1's JSON (`{"name", "parameters"}`, maybe
    after <|python_tag|>, several separated by ';'), or Hermes/Qwen <tool_call> tags."""
    candidates = [m.group(1) for m in _TAGGED.finditer(text)]
    if not candidates:
        body = strip_fence(text.replace("<|python_tag|>", "").strip())
        candidates = [part for part in body.split(";") if part.strip()] if body else []
    calls = []
    for raw in candidates:
        try:
            obj = json.loads(raw)
        except ValueError:
            return [] if not _TAGGED.search(text) else calls  # prose, not a call
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
            return []
        arguments = obj.get("parameters", obj.get("arguments", {}))
        calls.append(ToolCall(f"call_{uuid.uuid4().hex[:24]}", obj["name"], json.dumps(arguments)))
    return calls


def strip_fence(text: str) -> str:
    """The inside of a ```json fence, if the whole text is one."""
    match = _FENCE.match(text.strip())
    return match.group(1) if match else text.strip()


def schema_instruction(schema: dict[str, Any]) -> str:
    return (
        "Reply with one JSON value and nothing else (no prose, no code fence). "
        f"It must match this JSON schema:\n{json.dumps(schema)}"
    )
