"""The OpenAI chat-completions wire format, both ways.

The gateway client writes requests and reads replies in it, the embedded engine reads
llama-cpp-python's replies (which use it too), and `serve` writes replies in it. Keeping the
mapping in one place means a field is spelled the same everywhere.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from myninja.backends.base import ChatRequest, ChatResult, Chunk, ToolCall, Usage


def request_payload(request: ChatRequest, model: str, *, stream: bool) -> dict[str, Any]:
    """The JSON body for POST /v1/chat/completions. `json_schema` is left to the caller,
    because servers disagree on how to ask for it (see `response_format_for`)."""
    body: dict[str, Any] = {"model": model, "messages": request.messages, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    for name in ("temperature", "max_tokens", "stop", "tools", "tool_choice", "seed"):
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    return body


def response_format_for(schema: dict[str, Any], mode: str) -> dict[str, Any]:
    if mode == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": schema, "strict": True},
        }
    # llama.cpp-family servers take the schema inside a json_object response format.
    return {"type": "json_object", "schema": schema}


def usage_from(raw: dict[str, Any] | None) -> Usage | None:
    if not raw:
        return None
    return Usage(int(raw.get("prompt_tokens") or 0), int(raw.get("completion_tokens") or 0))


def tool_calls_from(raw: list[dict[str, Any]] | None) -> list[ToolCall]:
    calls = []
    for item in raw or []:
        fn = item.get("function") or {}
        arguments = fn.get("arguments")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments or {})
        calls.append(ToolCall(item.get("id") or _call_id(), fn.get("name", ""), arguments))
    return calls


def result_from_response(body: dict[str, Any], model: str) -> ChatResult:
    """Parse a non-streamed reply. Raises KeyError/TypeError/IndexError on a malformed one."""
    choice = body["choices"][0]
    message = choice["message"]
    return ChatResult(
        text=message.get("content") or "",
        finish_reason=choice.get("finish_reason") or "stop",
        usage=usage_from(body.get("usage")) or Usage(),
        model=body.get("model") or model,
        tool_calls=tool_calls_from(message.get("tool_calls")),
    )


@dataclass
class StreamAssembler:
    """Turns streamed `chat.completion.chunk` objects into Chunks.

    Tool calls arrive as deltas keyed by index (name first, arguments in pieces); they are
    handed out whole on the chunk that carries the finish reason, or by `finish()`."""

    _calls: dict[int, dict[str, str]] = field(default_factory=dict)
    finish_reason: str | None = None
    usage: Usage | None = None
    _flushed: bool = False

    def feed(self, obj: dict[str, Any]) -> Chunk | None:
        usage = usage_from(obj.get("usage"))
        if usage:
            self.usage = usage
        text, finish = "", None
        for choice in obj.get("choices") or []:
            delta = choice.get("delta") or {}
            text += delta.get("content") or ""
            for piece in delta.get("tool_calls") or []:
                slot = self._calls.setdefault(
                    int(piece.get("index", 0)), {"id": "", "name": "", "arguments": ""}
                )
                fn = piece.get("function") or {}
                slot["id"] = piece.get("id") or slot["id"]
                name = fn.get("name") or ""
                # OpenAI sends the name once; llama.cpp servers repeat it in every delta.
                if name != slot["name"]:
                    slot["name"] += name
                args = fn.get("arguments")
                # vLLM's tool parsers name a call in a delta with no "arguments" at all: that
                # adds nothing (finish() turns a call that never got any into "{}").
                if isinstance(args, str):
                    slot["arguments"] += args
                elif args is not None:
                    slot["arguments"] += json.dumps(args)
            finish = choice.get("finish_reason") or finish
        if finish:
            self.finish_reason = finish
        if not text and not finish and not usage:
            return None
        return Chunk(text=text, finish_reason=finish, usage=usage)

    def finish(self) -> Chunk:
        """The closing chunk: finish reason, usage and complete tool calls."""
        calls = [
            ToolCall(slot["id"] or _call_id(), slot["name"], slot["arguments"] or "{}")
            for _, slot in sorted(self._calls.items())
        ]
        reason = self.finish_reason or ("tool_calls" if calls else "stop")
        return Chunk(finish_reason=reason, usage=self.usage or Usage(), tool_calls=calls)


def _call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def response_body(
    result: ChatResult, completion: str, created: int | None = None
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": result.text or None}
    if result.tool_calls:
        message["tool_calls"] = [call.to_openai() for call in result.tool_calls]
    elif message["content"] is None:
        message["content"] = ""
    return {
        "id": completion,
        "object": "chat.completion",
        "created": created or int(time.time()),
        "model": result.model,
        "choices": [{"index": 0, "message": message, "finish_reason": result.finish_reason}],
        "usage": result.usage.to_dict(),
    }


def chunk_body(
    chunk: Chunk, completion: str, model: str, created: int, *, first: bool = False
) -> dict[str, Any]:
    delta: dict[str, Any] = {}
    if first:
        delta["role"] = "assistant"
    if chunk.text:
        delta["content"] = chunk.text
    if chunk.tool_calls:
        delta["tool_calls"] = [
            {"index": i, **call.to_openai()} for i, call in enumerate(chunk.tool_calls)
        ]
    return {
        "id": completion,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": chunk.finish_reason}],
    }


def usage_chunk_body(usage: Usage, completion: str, model: str, created: int) -> dict[str, Any]:
    return {
        "id": completion,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [],
        "usage": usage.to_dict(),
    }
